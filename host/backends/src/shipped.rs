//! A config ready to leave this machine: the YAML and every byte it
//! references, in a form any node can rebuild the Bundle from. `submit`
//! sends it to a node; `push` puts it into Consul KV or a GCS bucket,
//! both in the same envelope.

use loadtest_engine::config::Bundle;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A config ready to travel: the YAML as written, the digests of the
/// plugins read from files and of the data files, and their bytes.
#[derive(Debug, Clone)]
pub struct Shipped {
    pub name: String,
    pub yaml: String,
    pub plugins: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
    pub blobs: BTreeMap<String, Arc<[u8]>>,
}

impl Shipped {
    /// Reads a config file as `run` would (a bad config fails here, on the
    /// operator's machine) and collects what must travel with it.
    pub fn from_file(path: &Path) -> anyhow::Result<(Shipped, Bundle)> {
        let bundle = Bundle::load(path)?;
        let yaml = std::fs::read_to_string(path)?;
        let as_written = loadtest_engine::config::parse_with_env(path, &yaml, |_| None)?;
        if as_written != bundle.config {
            eprintln!(
                "warning: LOADTEST_* environment overrides apply to `loadtest run` on this machine only; \
                 the cluster runs {} as written (edit the file to change the cluster run)",
                path.display()
            );
        }
        Ok((Shipped::of(&bundle, yaml), bundle))
    }

    /// A config file, or a k6-style script made into a config (its
    /// options read by running it once in the javascript plugin).
    /// Scripts a config names travel with their bytecode, so no node
    /// parses them per VU.
    pub async fn from_path(path: &Path) -> anyhow::Result<(Shipped, Bundle)> {
        let runtime = || -> anyhow::Result<_> {
            let rt =
                loadtest_engine::plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            Ok(Arc::new(rt))
        };
        if !loadtest_engine::script::is_script(path) {
            let (shipped, bundle) = Self::from_file(path)?;
            if bundle.config.script_mains().is_empty() {
                return Ok((shipped, bundle));
            }
            let bundle = loadtest_engine::script::compile_named(bundle, &runtime()?).await;
            return Ok((Shipped::of(&bundle, shipped.yaml), bundle));
        }
        let (bundle, yaml) = loadtest_engine::script::bundle_and_config(path, &runtime()?).await?;
        Ok((Shipped::of(&bundle, yaml), bundle))
    }

    /// What must travel with `bundle`, whose config is `yaml`.
    pub fn of(bundle: &Bundle, yaml: String) -> Shipped {
        let mut blobs: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
        let mut plugins = BTreeMap::new();
        for (name, p) in bundle.shipped_plugins() {
            plugins.insert(name, p.digest.clone());
            blobs.insert(p.digest.clone(), p.bytes.clone());
        }
        let mut files = BTreeMap::new();
        for (name, bytes) in bundle.files.iter() {
            let d = loadtest_engine::config::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes));
            files.insert(name.clone(), d.clone());
            blobs.insert(d, bytes.clone());
        }
        Shipped {
            name: bundle.name.clone(),
            yaml,
            plugins,
            files,
            blobs,
        }
    }
}

impl Shipped {
    /// A config stored as plain YAML (builtin plugins only), named after
    /// where it was read, so its errors read `loadtest/config:4:5: ...`.
    pub fn plain(name: &str, yaml: String) -> Shipped {
        Shipped {
            name: name.to_owned(),
            yaml,
            plugins: BTreeMap::new(),
            files: BTreeMap::new(),
            blobs: BTreeMap::new(),
        }
    }
}

/// What `push` writes where a config is kept: the YAML as written and the
/// digests of the bytes it references, which are stored beside it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "loadtest-bundle")]
    version: u32,
    name: String,
    plugins: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    /// Pieces each blob is stored in, by digest.
    pub chunks: BTreeMap<String, usize>,
    config: String,
}

impl Envelope {
    pub fn of(s: &Shipped, chunks: BTreeMap<String, usize>) -> Envelope {
        Envelope {
            version: 1,
            name: s.name.clone(),
            plugins: s.plugins.clone(),
            files: s.files.clone(),
            chunks,
            config: s.yaml.clone(),
        }
    }

    /// The envelope in a stored value; `None` for a plain YAML config.
    pub fn read(text: &str) -> Option<Envelope> {
        serde_yaml::from_str(text).ok()
    }

    pub fn to_yaml(&self) -> anyhow::Result<String> {
        Ok(serde_yaml::to_string(self)?)
    }

    pub fn into_shipped(self, blobs: BTreeMap<String, Arc<[u8]>>) -> Shipped {
        Shipped {
            name: self.name,
            yaml: self.config,
            plugins: self.plugins,
            files: self.files,
            blobs,
        }
    }
}

/// Fails unless `bytes` have the SHA-256 `digest`; `what` names where
/// they were read.
pub fn check_digest(bytes: &[u8], digest: &str, what: &str) -> anyhow::Result<()> {
    let got = loadtest_engine::config::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes));
    anyhow::ensure!(
        got == digest,
        "{what}: the bytes read have SHA-256 {got}, not {digest}: they were changed or corrupted; \
         push the config again (loadtest push)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts a config names travel with their bytecode: the nodes
    /// that run them load it instead of parsing per VU.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_configs_scripts_travel_with_their_bytecode() {
        let dir = tempfile::tempdir().unwrap();
        let script = "import http from 'k6/http';\nexport default function () {\n  http.get('http://127.0.0.1:1/');\n}\n";
        std::fs::write(dir.path().join("shop.js"), script).unwrap();
        let cfg = dir.path().join("test.yaml");
        let yaml = "plugins:\n  shop: { script: ./shop.js }\nscenarios:\n  s: { plugin: shop, executor: per-vu-iterations, vus: 1, iterations: 1 }\n";
        std::fs::write(&cfg, yaml).unwrap();
        let (shipped, _) = Shipped::from_path(&cfg).await.unwrap();
        for name in ["shop.js", ".bytecode/shop.js", ".bytecode/k6/http"] {
            assert!(
                shipped.files.contains_key(name),
                "{name}: {:?}",
                shipped.files.keys()
            );
        }
        assert_eq!(shipped.yaml, yaml, "the YAML travels as written");
    }
}
