//! Content-addressed bytes (plugins, data files) as they travel between
//! nodes: asked for by digest, streamed in chunks, checked on arrival.
//! A node that already holds a digest is not sent it again.

use crate::transport::Transport;
use loadtest_engine::config::hex;
use loadtest_wire::rpc::{decode, encode, format_ok, pb};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Status;

/// Chunk size: well under gRPC's 4 MiB message limit.
const CHUNK: usize = 1 << 20;

/// How long an announced blob may take to arrive.
const ANNOUNCED_FOR: Duration = Duration::from_secs(600);

/// A blob a sender is about to send: announced first, so the receiver
/// can refuse it by size before a byte of it is buffered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

/// The blobs this node holds, by digest. In memory: a run's plugins are
/// loaded in memory anyway, and a restarted node is sent them again.
#[derive(Clone)]
pub struct BlobStore {
    held: Arc<Mutex<HashMap<String, Arc<[u8]>>>>,
    /// Announced and not yet arrived: size, and when announced.
    announced: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
    /// The largest blob accepted (`CLUSTER_MAX_BLOB_MB`).
    max_bytes: u64,
}

impl Default for BlobStore {
    fn default() -> Self {
        BlobStore::with_limit(256 << 20)
    }
}

impl BlobStore {
    pub fn with_limit(max_bytes: u64) -> Self {
        BlobStore {
            held: Arc::default(),
            announced: Arc::default(),
            max_bytes,
        }
    }

    /// Records blobs about to be sent, and answers which this node lacks.
    /// Refused whole when one is over the limit, or when all that is
    /// announced and not yet arrived would exceed four times the limit:
    /// a sender cannot make the node hold more than that in flight.
    pub fn announce(&self, refs: &[BlobRef]) -> Result<Vec<String>, String> {
        let limit = self.max_bytes;
        if let Some(big) = refs.iter().find(|r| r.size > limit) {
            return Err(format!(
                "blob {} is {} MiB, over this node's limit of {} MiB (CLUSTER_MAX_BLOB_MB on the nodes)",
                big.digest,
                big.size >> 20,
                limit >> 20
            ));
        }
        let missing = self.missing(&refs.iter().map(|r| r.digest.clone()).collect::<Vec<_>>());
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        announced.retain(|_, (_, at)| at.elapsed() < ANNOUNCED_FOR);
        let fresh: Vec<&BlobRef> = refs
            .iter()
            .filter(|r| missing.contains(&r.digest) && !announced.contains_key(&r.digest))
            .collect();
        let pending: u64 = announced.values().map(|(s, _)| s).sum::<u64>()
            + fresh.iter().map(|r| r.size).sum::<u64>();
        if pending > 4 * limit {
            return Err(format!(
                "{} MiB of blobs would be in flight to this node, over its limit of {} MiB; send fewer at once",
                pending >> 20,
                (4 * limit) >> 20
            ));
        }
        for r in refs.iter().filter(|r| missing.contains(&r.digest)) {
            announced.insert(r.digest.clone(), (r.size, Instant::now()));
        }
        Ok(missing)
    }

    /// The announced size of `digest`, if it was announced and is fresh.
    fn expected(&self, digest: &str) -> Option<u64> {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .filter(|(_, at)| at.elapsed() < ANNOUNCED_FOR)
            .map(|(size, _)| *size)
    }

    pub fn get(&self, digest: &str) -> Option<Arc<[u8]>> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    pub fn insert(&self, bytes: Arc<[u8]>) -> String {
        let digest = digest(&bytes);
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), bytes);
        digest
    }

    /// Keeps only the blobs whose digest is in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d, _| keep.contains(d));
    }

    pub fn missing(&self, digests: &[String]) -> Vec<String> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
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
                match self.expected(&chunk.digest) {
                    None => {
                        return Err(Status::failed_precondition(format!(
                            "blob {} was not announced (MissingBlobs first), or its announcement expired",
                            chunk.digest
                        )));
                    }
                    Some(size) if size != chunk.size => {
                        return Err(Status::invalid_argument(format!(
                            "blob {} was announced as {size} bytes and arrives as {}",
                            chunk.digest, chunk.size
                        )));
                    }
                    Some(_) => {}
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
        let got = digest(&bytes);
        if got != want {
            return Err(Status::data_loss(format!(
                "blob arrived with digest {got}, expected {want}"
            )));
        }
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(want.clone(), bytes.into());
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&want);
        Ok(())
    }
}

pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Sends the node at `addr` whichever of `blobs` it lacks.
pub async fn push(
    addr: &str,
    transport: &Transport,
    blobs: &BTreeMap<String, Arc<[u8]>>,
) -> anyhow::Result<usize> {
    if blobs.is_empty() {
        return Ok(0);
    }
    let mut client = transport
        .coordinator(addr, true)
        .await?
        .max_decoding_message_size(16 << 20);
    let refs: Vec<BlobRef> = blobs
        .iter()
        .map(|(d, b)| BlobRef {
            digest: d.clone(),
            size: b.len() as u64,
        })
        .collect();
    let reply = client.missing_blobs(encode(&refs)?).await?;
    let missing: Result<Vec<String>, String> = decode(reply.get_ref())?;
    let missing = missing.map_err(|e| anyhow::anyhow!("{addr} refused the blobs: {e}"))?;
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

    fn blob_ref(digest: &str, size: u64) -> BlobRef {
        BlobRef {
            digest: digest.into(),
            size,
        }
    }

    #[test]
    fn announcements_are_bounded_per_blob_and_in_flight() {
        let store = BlobStore::with_limit(10);
        let e = store.announce(&[blob_ref("big", 11)]).unwrap_err();
        assert!(e.contains("CLUSTER_MAX_BLOB_MB"), "{e}");
        assert_eq!(store.announce(&[blob_ref("a", 10)]).unwrap(), ["a"]);
        assert_eq!(store.expected("a"), Some(10));
        assert_eq!(store.expected("b"), None);
        let many: Vec<BlobRef> = (0..4).map(|i| blob_ref(&format!("m{i}"), 10)).collect();
        let e = store.announce(&many).unwrap_err();
        assert!(e.contains("in flight"), "{e}");
        // Announcing the same blob again reserves nothing more.
        assert_eq!(store.announce(&[blob_ref("a", 10)]).unwrap(), ["a"]);
    }

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
