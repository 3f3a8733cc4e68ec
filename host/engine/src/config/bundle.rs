//! The Bundle: a parsed config plus the bytes of every plugin it names.
//! It is what a config source produces and what the engine runs, so
//! standalone and cluster mode share everything downstream of loading.

use super::{Config, ConfigError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PluginBytes {
    pub bytes: Arc<[u8]>,
    /// Lower-case hex SHA-256 of `bytes`: the plugin's identity.
    pub digest: String,
}

impl PluginBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        let digest = hex(&Sha256::digest(&bytes));
        PluginBytes {
            bytes: bytes.into(),
            digest,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub name: String,
    pub config: Config,
    pub plugins: BTreeMap<String, PluginBytes>,
    /// The config's `files`, by name.
    pub files: Arc<BTreeMap<String, Arc<[u8]>>>,
    /// The arrays its scripts share between VUs (k6's `SharedArray`),
    /// filled as the test runs: clones of the Bundle share them.
    pub shared_arrays: crate::plugin::SharedArrays,
}

impl Bundle {
    /// Reads a config file and every plugin file it references, with
    /// environment overrides from the process environment.
    pub fn load(path: &Path) -> Result<Bundle, ConfigError> {
        Self::load_with_env(path, |k| std::env::var(k).ok())
    }

    pub fn load_with_env(
        path: &Path,
        vars: impl Fn(&str) -> Option<String>,
    ) -> Result<Bundle, ConfigError> {
        let yaml = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path, None, format!("cannot read the config file: {e}"))
        })?;
        let config = super::parse_with_env(path, &yaml, vars)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = config;
        let mut plugins = BTreeMap::new();
        let mut files = BTreeMap::new();
        for (name, source) in &config.plugins {
            let bytes = match source {
                super::schema::PluginSource::Path(p) => read_plugin(path, base, name, p)?,
                super::schema::PluginSource::Builtin(b) => crate::plugin::builtin::bytes(b)
                    .map_err(|e| {
                        ConfigError::new(path, Some(format!("plugins.{name}.builtin")), e)
                    })?,
                super::schema::PluginSource::Script(p) => {
                    let (_, found) = crate::script::collect(&resolve(base, p)).map_err(|e| {
                        ConfigError::new(
                            path,
                            Some(format!("plugins.{name}.script")),
                            e.to_string(),
                        )
                    })?;
                    files.extend(found);
                    javascript()
                }
            };
            plugins.insert(name.clone(), PluginBytes::new(bytes));
        }
        attach_scripts(&mut config);
        for (name, p) in &config.files {
            let file = resolve(base, p);
            let bytes = std::fs::read(&file).map_err(|e| {
                ConfigError::new(
                    path,
                    Some(format!("files.{name}")),
                    format!(
                        "cannot read {}: {e}; the path is relative to the config file",
                        file.display()
                    ),
                )
            })?;
            files.insert(name.clone(), Arc::from(bytes));
        }
        Ok(Bundle {
            name: config.display_name(path),
            config,
            plugins,
            files: Arc::new(files),
            shared_arrays: Default::default(),
        })
    }
}

impl Bundle {
    /// Rebuilds a Bundle on a cluster node from the YAML and the bytes
    /// that travelled with it (plugins by name, files by name). Builtin
    /// plugins come from this binary. No environment overrides apply:
    /// every node must parse the same config the same way.
    pub fn from_shipped(
        name: &str,
        yaml: &str,
        mut shipped: BTreeMap<String, Arc<[u8]>>,
        files: BTreeMap<String, Arc<[u8]>>,
    ) -> Result<Bundle, ConfigError> {
        let path = Path::new(name);
        let mut config = super::parse_with_env(path, yaml, |_| None)?;
        attach_scripts(&mut config);
        let mut plugins = BTreeMap::new();
        for (pname, source) in &config.plugins {
            let bytes = match source {
                super::schema::PluginSource::Path(_) => {
                    shipped.remove(pname).map(|b| b.to_vec()).ok_or_else(|| {
                        ConfigError::new(
                            path,
                            Some(format!("plugins.{pname}")),
                            "the plugin's bytes did not travel with the config",
                        )
                    })?
                }
                super::schema::PluginSource::Builtin(b) => crate::plugin::builtin::bytes(b)
                    .map_err(|e| {
                        ConfigError::new(path, Some(format!("plugins.{pname}.builtin")), e)
                    })?,
                super::schema::PluginSource::Script(_) => javascript(),
            };
            plugins.insert(pname.clone(), PluginBytes::new(bytes));
        }
        for fname in config.files.keys() {
            if !files.contains_key(fname) {
                return Err(ConfigError::new(
                    path,
                    Some(format!("files.{fname}")),
                    "the file did not travel with the config",
                ));
            }
        }
        Ok(Bundle {
            name: config.display_name(path),
            config,
            plugins,
            files: Arc::new(files),
            shared_arrays: Default::default(),
        })
    }

    /// The plugins read from files (not builtin), by name: what must
    /// travel with the config to other machines.
    pub fn shipped_plugins(&self) -> BTreeMap<String, &PluginBytes> {
        self.config
            .plugins
            .iter()
            .filter(|(_, s)| matches!(s, super::schema::PluginSource::Path(_)))
            .filter_map(|(n, _)| self.plugins.get(n).map(|p| (n.clone(), p)))
            .collect()
    }
}

fn javascript() -> Vec<u8> {
    crate::plugin::builtin::bytes("javascript").expect("the javascript plugin is built in")
}

/// Tells the javascript plugin which file a `script:` plugin's scenarios
/// run: `params.main`, unless the scenario set it.
fn attach_scripts(config: &mut super::Config) {
    let mains = config.script_mains();
    for scenario in config.scenarios.values_mut() {
        let Some(main) = mains.get(&scenario.plugin) else {
            continue;
        };
        if scenario.params.is_null() {
            scenario.params = serde_json::Value::Object(Default::default());
        }
        if let Some(params) = scenario.params.as_object_mut() {
            params
                .entry("main")
                .or_insert_with(|| serde_json::Value::String(main.clone()));
        }
    }
}

fn read_plugin(config: &Path, base: &Path, name: &str, p: &Path) -> Result<Vec<u8>, ConfigError> {
    let file = resolve(base, p);
    std::fs::read(&file).map_err(|e| {
        ConfigError::new(
            config,
            Some(format!("plugins.{name}.path")),
            format!(
                "cannot read plugin file {}: {e}; build it first (scripts/build-plugins.sh builds the bundled ones) or fix the path, which is relative to the config file",
                file.display()
            ),
        )
    })
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
