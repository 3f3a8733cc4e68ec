//! Configs in a bucket. `loadtest push --gcs gs://b/dir/test.yaml` writes
//! each plugin and data file as one object named by its digest under a
//! sibling prefix (`dir/test.yaml.blobs/<sha256>`), skipping those already
//! there, and only then the config: the same envelope Consul KV holds. A
//! plain YAML uploaded by other means (builtin plugins only) is read as
//! it is. Every digest is checked when read.

use super::{Gcs, Problem};
use crate::shipped::{Envelope, Shipped, check_digest};
use std::collections::BTreeMap;

fn blob_name(object: &str, digest: &str) -> String {
    format!("{object}.blobs/{digest}")
}

/// What a push wrote.
pub struct Pushed {
    pub written: usize,
    pub reused: usize,
    pub bytes: usize,
}

impl Gcs {
    /// Writes the bytes first, then the config that names them, so a
    /// reader never sees a config whose objects are not there yet.
    pub async fn push(&self, bucket: &str, object: &str, s: &Shipped) -> anyhow::Result<Pushed> {
        let prefix = format!("{object}.blobs/");
        let present: Vec<String> = self
            .list(bucket, &prefix)
            .await?
            .into_iter()
            .map(|l| l.name)
            .collect();
        let mut pushed = Pushed {
            written: 0,
            reused: 0,
            bytes: 0,
        };
        let mut chunks = BTreeMap::new();
        for (digest, bytes) in &s.blobs {
            let name = blob_name(object, digest);
            chunks.insert(digest.clone(), 1);
            if present.contains(&name) {
                pushed.reused += 1;
                continue;
            }
            // A blob's name is its digest: an existing one is the same bytes.
            match self.write(bucket, &name, bytes.to_vec(), Some(0)).await {
                Ok(_) | Err(Problem::Precondition) => {}
                Err(e) => return Err(e.into()),
            }
            pushed.written += 1;
            pushed.bytes += bytes.len();
        }
        let envelope = Envelope::of(s, chunks);
        self.write(bucket, object, envelope.to_yaml()?.into_bytes(), None)
            .await?;
        Ok(pushed)
    }

    /// The config in `text` (read from gs://bucket/object): a pushed
    /// envelope's objects are fetched and checked; plain YAML is taken as
    /// it is.
    pub async fn bundle_of(
        &self,
        bucket: &str,
        object: &str,
        text: String,
    ) -> Result<Shipped, Problem> {
        let Some(env) = Envelope::read(&text) else {
            return Ok(Shipped::plain(&format!("gs://{bucket}/{object}"), text));
        };
        let mut blobs = BTreeMap::new();
        for digest in env.chunks.keys() {
            let name = blob_name(object, digest);
            let Some((bytes, _)) = self.read(bucket, &name).await? else {
                return Err(Problem::Missing(format!(
                    "gs://{bucket}/{name} (named by the config) is missing; push the config again (loadtest push --gcs)"
                )));
            };
            check_digest(&bytes, digest, &format!("gs://{bucket}/{name}"))
                .map_err(|e| Problem::Missing(format!("{e:#}")))?;
            blobs.insert(digest.clone(), bytes.into());
        }
        Ok(env.into_shipped(blobs))
    }
}
