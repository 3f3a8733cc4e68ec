//! Configs in Consul KV. `loadtest push` writes the plugin and data bytes
//! as content-addressed chunks under a sibling prefix (`<key>.blobs/`),
//! base64 text small enough for Consul's 512 KiB value cap, and only then
//! the config itself: an envelope naming the digests around the YAML as
//! written. A plain YAML written with `consul kv put` (builtin plugins
//! only) is read as it is. Every digest is checked when read.

use super::Shipped;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rs_consul::{Config, Consul, ConsulError, CreateOrUpdateKeyRequest, ReadKeyRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Raw bytes per chunk: 256 KiB is 342 KiB as base64, well under the cap.
const CHUNK: usize = 256 << 10;

/// What `push` writes at the config key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "loadtest-bundle")]
    version: u32,
    name: String,
    plugins: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    /// Chunks per digest.
    chunks: BTreeMap<String, usize>,
    config: String,
}

pub struct Kv {
    consul: Consul,
    addr: String,
}

/// The agent's address: `CONSUL_ADDR`, else `CONSUL_HTTP_ADDR` (Consul's
/// own variable, with or without a scheme), else the local agent.
pub fn address(explicit: Option<&str>) -> String {
    let raw = explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("CONSUL_ADDR").ok())
        .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:8500".into());
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    }
}

impl Kv {
    /// A client for the agent at `addr` with `CONSUL_HTTP_TOKEN` when set.
    pub fn new(addr: &str) -> Kv {
        let token = std::env::var("CONSUL_HTTP_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let consul = Consul::new(Config {
            address: addr.to_owned(),
            token,
            ..Config::default()
        });
        Kv {
            consul,
            addr: addr.to_owned(),
        }
    }

    fn fail(&self, what: &str, key: &str, e: ConsulError) -> anyhow::Error {
        anyhow::anyhow!("Consul at {}: {what} `{key}`: {e}", self.addr)
    }

    async fn put(&self, key: &str, value: String) -> anyhow::Result<()> {
        let req = CreateOrUpdateKeyRequest {
            key,
            ..Default::default()
        };
        let (ok, _) = self
            .consul
            .create_or_update_key(req, value.into_bytes())
            .await
            .map_err(|e| self.fail("writing", key, e))?;
        anyhow::ensure!(ok, "Consul at {} refused to write `{key}`", self.addr);
        Ok(())
    }

    /// The value at `key` and its modify index; `None` when absent.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<(String, u64)>> {
        let req = ReadKeyRequest {
            key,
            ..Default::default()
        };
        match self.consul.read_key(req).await {
            Ok(r) => Ok(r
                .response
                .into_iter()
                .next()
                .map(|e| (e.value.unwrap_or_default(), e.modify_index.max(0) as u64))),
            Err(ConsulError::UnexpectedResponseCode(code, _)) if code.as_u16() == 404 => Ok(None),
            Err(e) => Err(self.fail("reading", key, e)),
        }
    }

    /// Writes the bytes first, then the config that names them, so a
    /// reader never sees a config whose chunks are not there yet.
    pub async fn push(&self, key: &str, s: &Shipped) -> anyhow::Result<usize> {
        let mut chunks = BTreeMap::new();
        for (digest, bytes) in &s.blobs {
            let parts: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
            for (i, part) in parts.iter().enumerate() {
                self.put(&chunk_key(key, digest, i), B64.encode(part))
                    .await?;
            }
            chunks.insert(digest.clone(), parts.len());
        }
        let envelope = Envelope {
            version: 1,
            name: s.name.clone(),
            plugins: s.plugins.clone(),
            files: s.files.clone(),
            chunks: chunks.clone(),
            config: s.yaml.clone(),
        };
        self.put(key, serde_yaml::to_string(&envelope)?).await?;
        Ok(chunks.values().sum())
    }

    /// Reads a config and its bytes; `Ok(None)` when the key is absent.
    pub async fn fetch(&self, key: &str) -> anyhow::Result<Option<(Shipped, u64)>> {
        let Some((value, index)) = self.get(key).await? else {
            return Ok(None);
        };
        let Ok(env) = serde_yaml::from_str::<Envelope>(&value) else {
            let name = key.rsplit('/').next().unwrap_or(key).to_owned();
            let plain = Shipped {
                name,
                yaml: value,
                plugins: BTreeMap::new(),
                files: BTreeMap::new(),
                blobs: BTreeMap::new(),
            };
            return Ok(Some((plain, index)));
        };
        let mut blobs = BTreeMap::new();
        for (digest, n) in &env.chunks {
            blobs.insert(digest.clone(), self.read_blob(key, digest, *n).await?);
        }
        let shipped = Shipped {
            name: env.name,
            yaml: env.config,
            plugins: env.plugins,
            files: env.files,
            blobs,
        };
        Ok(Some((shipped, index)))
    }

    async fn read_blob(&self, key: &str, digest: &str, n: usize) -> anyhow::Result<Arc<[u8]>> {
        let mut bytes = Vec::new();
        for i in 0..n {
            let k = chunk_key(key, digest, i);
            let (text, _) = self.get(&k).await?.ok_or_else(|| {
                anyhow::anyhow!("chunk `{k}` is missing; push the config again (loadtest push)")
            })?;
            let part = B64.decode(text.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "chunk `{k}` is not base64 ({e}); push the config again (loadtest push)"
                )
            })?;
            bytes.extend_from_slice(&part);
        }
        let got = crate::config::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        anyhow::ensure!(
            got == digest,
            "the chunks under `{key}.blobs/{digest}/` add up to bytes with SHA-256 {got}, not {digest}: \
             they were changed or corrupted; push the config again (loadtest push)"
        );
        Ok(bytes.into())
    }
}

fn chunk_key(key: &str, digest: &str, i: usize) -> String {
    format!("{key}.blobs/{digest}/{i:04}")
}
