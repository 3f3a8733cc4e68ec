//! A config ready to leave this machine: the YAML and every byte it
//! references, in a form any node can rebuild the Bundle from. `submit`
//! sends it to a node; `push` puts it into Consul KV.

use crate::config::Bundle;
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
        let as_written = crate::config::parse_with_env(path, &yaml, |_| None)?;
        if as_written != bundle.config {
            eprintln!(
                "warning: LOADTEST_* environment overrides apply to `loadtest run` on this machine only; \
                 the cluster runs {} as written (edit the file to change the cluster run)",
                path.display()
            );
        }
        let mut blobs: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
        let mut plugins = BTreeMap::new();
        for (name, p) in bundle.shipped_plugins() {
            plugins.insert(name, p.digest.clone());
            blobs.insert(p.digest.clone(), p.bytes.clone());
        }
        let mut files = BTreeMap::new();
        for (name, bytes) in bundle.files.iter() {
            let d = crate::config::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes));
            files.insert(name.clone(), d.clone());
            blobs.insert(d, bytes.clone());
        }
        let shipped = Shipped {
            name: bundle.name.clone(),
            yaml,
            plugins,
            files,
            blobs,
        };
        Ok((shipped, bundle))
    }
}
