//! Configs in Consul KV. `loadtest push` writes the plugin and data bytes
//! as content-addressed chunks under a sibling prefix (`<key>.blobs/`),
//! each well under Consul's 512 KiB value cap, and only then the config
//! itself: an envelope naming the digests around the YAML as written. A
//! plain YAML written with `consul kv put` (builtin plugins only) is read
//! as it is. Every digest is checked when read.

use super::Client;
use crate::shipped::{Envelope, Shipped};
use rs_consul::CreateOrUpdateKeyRequest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bytes per chunk, well under Consul's 512 KiB value cap.
const CHUNK: usize = 384 << 10;

/// Config bundles in the KV store, through one agent.
pub struct Kv {
    client: Client,
}

impl Kv {
    pub fn new(addr: &str) -> Kv {
        Kv {
            client: Client::new(addr),
        }
    }

    /// A value's bytes as stored (`?raw`) and its index; `None` when absent.
    async fn get_raw(&self, key: &str) -> anyhow::Result<Option<(bytes::Bytes, u64)>> {
        let what = format!("reading `{key}`");
        let r = self
            .client
            .call(
                hyper::Method::GET,
                &format!("/v1/kv/{key}?raw"),
                None,
                &what,
            )
            .await?;
        match r.status {
            200 => Ok(Some((r.body, r.index))),
            404 => Ok(None),
            _ => Err(r.error(&self.client, &what)),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> anyhow::Result<()> {
        let req = CreateOrUpdateKeyRequest {
            key,
            ..Default::default()
        };
        let (ok, _) = self
            .client
            .consul
            .create_or_update_key(req, value)
            .await
            .map_err(|e| anyhow::anyhow!("Consul at {}: writing `{key}`: {e}", self.client.addr))?;
        anyhow::ensure!(
            ok,
            "Consul at {} refused to write `{key}`",
            self.client.addr
        );
        Ok(())
    }

    /// A blocking query: waits (up to `wait`) for the key's index to pass
    /// `index`, then returns its text (`None`: absent) and the new index.
    pub async fn watch(
        &self,
        key: &str,
        index: u64,
        wait: std::time::Duration,
    ) -> anyhow::Result<(Option<String>, u64)> {
        let what = format!("watching `{key}`");
        let path = format!(
            "/v1/kv/{key}?raw&index={index}&wait={}s",
            wait.as_secs().max(1)
        );
        let r = self
            .client
            .call(hyper::Method::GET, &path, None, &what)
            .await?;
        match r.status {
            200 => {
                let text = String::from_utf8(r.body.to_vec()).map_err(|_| {
                    anyhow::anyhow!(
                        "the value at `{key}` is not UTF-8 text; put a YAML config there"
                    )
                })?;
                Ok((Some(text), r.index))
            }
            404 => Ok((None, r.index)),
            _ => Err(r.error(&self.client, &what)),
        }
    }

    /// The config at `key` from text already read (see [`watch`](Self::watch)):
    /// a pushed envelope's bytes are fetched and checked; plain YAML is
    /// taken as it is.
    pub async fn bundle_of(&self, key: &str, value: String) -> anyhow::Result<Shipped> {
        let Some(env) = Envelope::read(&value) else {
            return Ok(Shipped::plain(key, value));
        };
        let mut blobs = BTreeMap::new();
        for (digest, n) in &env.chunks {
            blobs.insert(digest.clone(), self.read_blob(key, digest, *n).await?);
        }
        Ok(env.into_shipped(blobs))
    }

    /// Writes the bytes first, then the config that names them, so a
    /// reader never sees a config whose chunks are not there yet.
    pub async fn push(&self, key: &str, s: &Shipped) -> anyhow::Result<usize> {
        let mut chunks = BTreeMap::new();
        for (digest, bytes) in &s.blobs {
            let parts: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
            for (i, part) in parts.iter().enumerate() {
                self.put(&chunk_key(key, digest, i), part.to_vec()).await?;
            }
            chunks.insert(digest.clone(), parts.len());
        }
        let envelope = Envelope::of(s, chunks.clone());
        self.put(key, envelope.to_yaml()?.into_bytes()).await?;
        Ok(chunks.values().sum())
    }

    async fn read_blob(&self, key: &str, digest: &str, n: usize) -> anyhow::Result<Arc<[u8]>> {
        let mut bytes = Vec::new();
        for i in 0..n {
            let k = chunk_key(key, digest, i);
            let (part, _) = self.get_raw(&k).await?.ok_or_else(|| {
                anyhow::anyhow!("chunk `{k}` is missing; push the config again (loadtest push)")
            })?;
            bytes.extend_from_slice(&part);
        }
        crate::shipped::check_digest(
            &bytes,
            digest,
            &format!("the chunks under `{key}.blobs/{digest}/`"),
        )?;
        Ok(bytes.into())
    }
}

fn chunk_key(key: &str, digest: &str, i: usize) -> String {
    format!("{key}.blobs/{digest}/{i:04}")
}
