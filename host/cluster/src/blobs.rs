//! Content-addressed bytes (plugins, data files) as they travel between
//! nodes: asked for by digest, streamed in chunks, checked on arrival.
//! A node that already holds a digest is not sent it again.

use crate::network::long_channel;
use loadtest_engine::config::hex;
use loadtest_wire::rpc::{AddToken, decode, encode, format_ok, pb};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tonic::Status;

/// Chunk size: well under gRPC's 4 MiB message limit.
const CHUNK: usize = 1 << 20;

/// The blobs this node holds, by digest. In memory: a run's plugins are
/// loaded in memory anyway, and a restarted node is sent them again.
#[derive(Clone, Default)]
pub struct BlobStore(Arc<Mutex<HashMap<String, Arc<[u8]>>>>);

impl BlobStore {
    pub fn get(&self, digest: &str) -> Option<Arc<[u8]>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    pub fn insert(&self, bytes: Arc<[u8]>) -> String {
        let digest = digest(&bytes);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), bytes);
        digest
    }

    /// Keeps only the blobs whose digest is in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d, _| keep.contains(d));
    }

    pub fn missing(&self, digests: &[String]) -> Vec<String> {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        digests
            .iter()
            .filter(|d| !held.contains_key(*d))
            .cloned()
            .collect()
    }

    /// Receives a PutBlobs stream: every blob must arrive whole and match
    /// its digest, or nothing of it is kept.
    pub async fn receive(
        &self,
        mut stream: tonic::Streaming<pb::BlobChunk>,
    ) -> Result<usize, Status> {
        let mut current: Option<(String, u64, Vec<u8>)> = None;
        let mut stored = 0;
        while let Some(chunk) = stream.message().await? {
            if !chunk.digest.is_empty() {
                format_ok("this blob", chunk.format)?;
                if let Some(done) = current.take() {
                    self.finish(done)?;
                    stored += 1;
                }
                if chunk.size > 1 << 30 {
                    return Err(Status::invalid_argument("blobs over 1 GiB are refused"));
                }
                // Grown as the bytes arrive: a sender's claimed size
                // reserves nothing.
                let reserve = (chunk.size as usize).min(CHUNK);
                current = Some((chunk.digest, chunk.size, Vec::with_capacity(reserve)));
            }
            let Some((_, size, buf)) = current.as_mut() else {
                return Err(Status::invalid_argument(
                    "a blob chunk came before any digest",
                ));
            };
            if (buf.len() + chunk.data.len()) as u64 > *size {
                return Err(Status::invalid_argument(
                    "a blob is longer than its stated size",
                ));
            }
            buf.extend_from_slice(&chunk.data);
        }
        if let Some(done) = current.take() {
            self.finish(done)?;
            stored += 1;
        }
        Ok(stored)
    }

    fn finish(&self, (want, size, bytes): (String, u64, Vec<u8>)) -> Result<(), Status> {
        if bytes.len() as u64 != size {
            return Err(Status::invalid_argument(format!(
                "blob {want} arrived with {} of {size} bytes",
                bytes.len()
            )));
        }
        let got = self.insert(bytes.into());
        if got != want {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&got);
            return Err(Status::data_loss(format!(
                "blob arrived with digest {got}, expected {want}"
            )));
        }
        Ok(())
    }
}

pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Sends the node at `addr` whichever of `blobs` it lacks.
pub async fn push(
    addr: &str,
    token: &AddToken,
    blobs: &BTreeMap<String, Arc<[u8]>>,
) -> anyhow::Result<usize> {
    if blobs.is_empty() {
        return Ok(0);
    }
    let channel = long_channel(addr)?;
    let mut client =
        pb::coordinator_client::CoordinatorClient::with_interceptor(channel, token.clone())
            .max_decoding_message_size(16 << 20);
    let digests: Vec<String> = blobs.keys().cloned().collect();
    let reply = client.missing_blobs(encode(&digests)?).await?;
    let missing: Vec<String> = decode(reply.get_ref())?;
    if missing.is_empty() {
        return Ok(0);
    }
    let mut chunks = Vec::new();
    for d in &missing {
        let Some(bytes) = blobs.get(d) else { continue };
        chunks.extend(chunks_of(d, bytes));
    }
    client.put_blobs(stream_of(chunks)).await?;
    Ok(missing.len())
}

fn chunks_of(digest: &str, bytes: &Arc<[u8]>) -> Vec<pb::BlobChunk> {
    let mut out: Vec<pb::BlobChunk> = bytes
        .chunks(CHUNK)
        .map(|c| pb::BlobChunk {
            digest: String::new(),
            size: 0,
            data: c.to_vec(),
            format: 0,
        })
        .collect();
    if out.is_empty() {
        out.push(pb::BlobChunk::default());
    }
    out[0].digest = digest.to_owned();
    out[0].size = bytes.len() as u64;
    out[0].format = loadtest_wire::FORMAT;
    out
}

/// Feeds the chunks through a small channel, so only a few are in flight.
fn stream_of(items: Vec<pb::BlobChunk>) -> tokio_stream::wrappers::ReceiverStream<pb::BlobChunk> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for item in items {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_blob_and_name_it_once() {
        let bytes: Arc<[u8]> = vec![7u8; CHUNK * 2 + 5].into();
        let c = chunks_of("d", &bytes);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].digest, "d");
        assert_eq!(c[0].size, bytes.len() as u64);
        assert!(c[1..].iter().all(|c| c.digest.is_empty()));
        assert_eq!(c.iter().map(|c| c.data.len()).sum::<usize>(), bytes.len());
        assert_eq!(chunks_of("e", &Arc::from(Vec::new())).len(), 1);
    }
}
