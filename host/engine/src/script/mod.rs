//! k6-style JavaScript as a test: `loadtest run script.js`. The script and
//! the files it imports or opens become the Bundle's data files, the
//! builtin `javascript` plugin runs it, and its `options` (read by running
//! the script's top level once in that plugin) become the config.

mod files;
mod options;
mod remote;
pub mod summary;

pub use files::collect;
pub use options::config_of;

use crate::config::Bundle;
use crate::plugin::Runtime;
use crate::workload::{self, Live};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Whether `path` names a script rather than a YAML config.
pub fn is_script(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs")
    )
}

/// The script's options and exported functions, as the plugin reports them.
#[derive(Debug, serde::Deserialize)]
pub struct Described {
    #[serde(default)]
    pub options: serde_json::Value,
    #[serde(default)]
    pub exports: Vec<String>,
    /// The bytecode of each module the probe compiled (base64, stamped by
    /// the plugin's build), shipped so that VUs load it instead of
    /// parsing: a script is compiled once per run, not once per VU.
    #[serde(default)]
    pub bytecode: BTreeMap<String, String>,
}

/// Where the plugin looks for a module's bytecode among the files.
fn bytecode_file(module: &str) -> String {
    format!(".bytecode/{module}")
}

/// Reads the script and what it needs, asks it for its options, and
/// builds the Bundle a run of it is.
pub async fn bundle(path: &Path, runtime: &Arc<Runtime>) -> anyhow::Result<Bundle> {
    Ok(bundle_and_config(path, runtime).await?.0)
}

/// [`bundle`], with the config it made (YAML, in JSON's notation): what
/// travels to a cluster in place of a config file.
pub async fn bundle_and_config(
    path: &Path,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<(Bundle, String)> {
    let (main, mut files) = collect(path)?;
    let name = path
        .file_stem()
        .map_or("script".into(), |s| s.to_string_lossy().into_owned());
    let env: serde_json::Map<String, serde_json::Value> = std::env::vars()
        .filter(|(k, _)| k != "CLUSTER_TOKEN")
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let probe = options::probe_config(&name, &main, &env, &files);
    let probe = Bundle::from_shipped(&name, &probe, Default::default(), files.clone())?;
    let described = describe(&probe, runtime)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    add_bytecode(&mut files, &described)?;
    let yaml = config_of(&name, &main, &described, &env, files.keys())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut bundle = Bundle::from_shipped(&name, &yaml, Default::default(), files)?;
    // The probe ran the script's top level with the run's environment:
    // the arrays it built are the run's, and no VU builds them again.
    bundle.shared_arrays = probe.shared_arrays.clone();
    Ok((bundle, yaml))
}

/// Compiles the scripts a YAML config names as plugins (`script:
/// ./shop.js`) to bytecode that travels with them, as a run of a script
/// does: each VU then loads bytecode instead of parsing the script and
/// its imports. When every scenario of a script gives its VUs the same
/// `env`, the compile runs under it, and the SharedArrays its top level
/// builds are the run's: no VU builds them again. A script whose top
/// level fails here (it may need an `env` its scenarios differ in) is
/// left to be parsed by each VU, with a warning: the run decides whether
/// it works, as before.
pub async fn compile_named(mut bundle: Bundle, runtime: &Arc<Runtime>) -> Bundle {
    let mains = bundle.config.script_mains();
    for (plugin, main) in mains {
        let env = common_env(&bundle.config, &plugin);
        let arrays = env.is_some().then(|| bundle.shared_arrays.clone());
        let env = env.unwrap_or_default();
        let mut files = (*bundle.files).clone();
        match compile(&bundle.name, &main, &env, arrays, &mut files, runtime).await {
            Ok(()) => bundle.files = Arc::new(files),
            Err(e) => {
                tracing::warn!("{main}: not compiled ahead ({e:#}); every VU will parse it instead")
            }
        }
    }
    bundle
}

/// The `env` every scenario running `plugin` gives its VUs (params'
/// `env`, then `scenarioEnv` over it), when they all give the same one.
fn common_env(
    config: &crate::config::Config,
    plugin: &str,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let object = |params: &serde_json::Value, key: &str| {
        params
            .get(key)
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default()
    };
    let mut envs = config
        .scenarios
        .values()
        .filter(|s| s.plugin == plugin)
        .map(|s| {
            let mut env = object(&s.params, "env");
            env.extend(object(&s.params, "scenarioEnv"));
            env
        });
    let first = envs.next()?;
    envs.all(|e| e == first).then_some(first)
}

/// Runs the probe on `main` among `files` under `env` and adds the
/// bytecode it wrote; the arrays it builds go to `arrays` when given.
async fn compile(
    name: &str,
    main: &str,
    env: &serde_json::Map<String, serde_json::Value>,
    arrays: Option<crate::plugin::SharedArrays>,
    files: &mut BTreeMap<String, Arc<[u8]>>,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<()> {
    let probe = options::probe_config(name, main, env, files);
    let mut probe = Bundle::from_shipped(name, &probe, Default::default(), files.clone())?;
    if let Some(arrays) = arrays {
        probe.shared_arrays = arrays;
    }
    let described = describe(&probe, runtime).await?;
    add_bytecode(files, &described)
}

fn add_bytecode(
    files: &mut BTreeMap<String, Arc<[u8]>>,
    described: &Described,
) -> anyhow::Result<()> {
    for (module, code) in &described.bytecode {
        let code = base64::engine::general_purpose::STANDARD
            .decode(code)
            .map_err(|e| anyhow::anyhow!("the javascript plugin's bytecode of {module}: {e}"))?;
        files.insert(bytecode_file(module), code.into());
    }
    Ok(())
}

async fn describe(probe: &Bundle, runtime: &Arc<Runtime>) -> anyhow::Result<Described> {
    let text = ask(probe, runtime)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the javascript plugin did not describe the script"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Runs the one scenario of a probe config (`options::probe_config_with`)
/// and gives what the plugin's setup answered; a failure is the script's
/// message, not wrapped in the scenario's name.
async fn ask(probe: &Bundle, runtime: &Arc<Runtime>) -> anyhow::Result<Option<String>> {
    let data = workload::setup(probe, runtime, &Live::new())
        .await
        .map_err(|e| match e.downcast::<workload::LifecycleError>() {
            Ok(failed) => anyhow::anyhow!("{}", failed.message),
            Err(e) => e,
        })?;
    Ok(data.0.into_values().next().flatten())
}
