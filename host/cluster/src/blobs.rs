//! Content-addressed bytes (plugins, data files) as they travel between
//! nodes: asked for by digest, streamed in chunks, checked on arrival.
//! A node that already holds a digest is not sent it again.

use crate::transport::Transport;
use loadtest_engine::config::hex;
use loadtest_wire::rpc::{decode, encode, format_ok, pb};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
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

/// The blobs this node holds, by digest. A node keeps them on disk, in a
/// directory of its data dir: an upload is written as it arrives (one
/// chunk in memory at a time) and hashed on the way, so a sender can make
/// the node hold no more than a chunk per stream, whatever it claims or
/// sends. Bytes are read back when a run's config is prepared. Without a
/// directory (unit tests, the operator's side) they stay in memory.
#[derive(Clone)]
pub struct BlobStore {
    held: Arc<Mutex<HashMap<String, Kept>>>,
    /// Announced and not yet arrived: size, and when announced.
    announced: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
    /// The largest blob accepted (`CLUSTER_MAX_BLOB_MB`).
    max_bytes: u64,
    dir: Option<Arc<PathBuf>>,
}

/// Where a held blob is.
#[derive(Clone)]
enum Kept {
    Memory(Arc<[u8]>),
    File(PathBuf),
}

/// A blob on its way in.
struct Incoming {
    digest: String,
    size: u64,
    received: u64,
    hasher: Sha256,
    into: Landing,
}

enum Landing {
    Memory(Vec<u8>),
    /// The partial file, removed unless the blob arrives whole.
    File(std::fs::File, PathBuf),
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
            dir: None,
        }
    }

    /// A store that keeps blobs in `dir`. What an earlier run of the node
    /// left there is removed: peers send what a run needs again.
    pub fn on_disk(dir: PathBuf, max_bytes: u64) -> anyhow::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot clear {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        Ok(BlobStore {
            dir: Some(Arc::new(dir)),
            ..BlobStore::with_limit(max_bytes)
        })
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

    /// The bytes of `digest`, if this node holds it (read from disk for a
    /// node's store).
    pub fn get(&self, digest: &str) -> Option<Arc<[u8]>> {
        let kept = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()?;
        match kept {
            Kept::Memory(bytes) => Some(bytes),
            Kept::File(path) => match std::fs::read(&path) {
                Ok(bytes) => Some(bytes.into()),
                Err(e) => {
                    tracing::error!("blob {digest} cannot be read from {}: {e}", path.display());
                    None
                }
            },
        }
    }

    pub fn insert(&self, bytes: Arc<[u8]>) -> String {
        let digest = digest(&bytes);
        let kept = match &self.dir {
            Some(dir) => {
                let path = dir.join(&digest);
                match std::fs::write(&path, &bytes) {
                    Ok(()) => Kept::File(path),
                    Err(e) => {
                        tracing::warn!(
                            "blob {digest} kept in memory: cannot write {}: {e}",
                            path.display()
                        );
                        Kept::Memory(bytes)
                    }
                }
            }
            None => Kept::Memory(bytes),
        };
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), kept);
        digest
    }

    /// Keeps only the blobs whose digest is in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d, kept| {
                let keeping = keep.contains(d);
                if let (false, Kept::File(path)) = (keeping, kept) {
                    let _ = std::fs::remove_file(path);
                }
                keeping
            });
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
        let mut current: Option<Incoming> = None;
        let mut stored = 0;
        while let Some(chunk) = stream.message().await? {
            if !chunk.digest.is_empty() {
                format_ok("this blob", chunk.format)?;
                if let Some(done) = current.take() {
                    self.finish(done)?;
                    stored += 1;
                }
                self.check_announced(&chunk)?;
                current = Some(self.incoming(chunk.digest.clone(), chunk.size)?);
            }
            let Some(incoming) = current.as_mut() else {
                return Err(Status::invalid_argument(
                    "a blob chunk came before any digest",
                ));
            };
            incoming.take(&chunk.data)?;
        }
        if let Some(done) = current.take() {
            self.finish(done)?;
            stored += 1;
        }
        Ok(stored)
    }

    fn check_announced(&self, chunk: &pb::BlobChunk) -> Result<(), Status> {
        match self.expected(&chunk.digest) {
            None => Err(Status::failed_precondition(format!(
                "blob {} was not announced (MissingBlobs first), or its announcement expired",
                chunk.digest
            ))),
            Some(size) if size != chunk.size => Err(Status::invalid_argument(format!(
                "blob {} was announced as {size} bytes and arrives as {}",
                chunk.digest, chunk.size
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Where an announced blob is written as it arrives.
    fn incoming(&self, digest: String, size: u64) -> Result<Incoming, Status> {
        let into = match &self.dir {
            Some(dir) => {
                let path = dir.join(format!(".partial-{digest}"));
                let file = std::fs::File::create(&path).map_err(|e| {
                    Status::resource_exhausted(format!("cannot write {}: {e}", path.display()))
                })?;
                Landing::File(file, path)
            }
            // Grown as the bytes arrive: a sender's claimed size reserves
            // nothing.
            None => Landing::Memory(Vec::with_capacity((size as usize).min(CHUNK))),
        };
        Ok(Incoming {
            digest,
            size,
            received: 0,
            hasher: Sha256::new(),
            into,
        })
    }

    fn finish(&self, mut incoming: Incoming) -> Result<(), Status> {
        let want = incoming.digest.clone();
        let size = incoming.size;
        if incoming.received != size {
            return Err(Status::invalid_argument(format!(
                "blob {want} arrived with {} of {size} bytes",
                incoming.received
            )));
        }
        let got = hex(&std::mem::take(&mut incoming.hasher).finalize());
        if got != want {
            return Err(Status::data_loss(format!(
                "blob arrived with digest {got}, expected {want}"
            )));
        }
        let kept = incoming.keep()?;
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(want.clone(), kept);
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&want);
        Ok(())
    }
}

impl Incoming {
    /// Writes one chunk on, refusing bytes past the announced size.
    fn take(&mut self, data: &[u8]) -> Result<(), Status> {
        if self.received + data.len() as u64 > self.size {
            return Err(Status::invalid_argument(
                "a blob is longer than its stated size",
            ));
        }
        self.hasher.update(data);
        self.received += data.len() as u64;
        match &mut self.into {
            Landing::Memory(buf) => buf.extend_from_slice(data),
            Landing::File(file, path) => std::io::Write::write_all(file, data).map_err(|e| {
                Status::resource_exhausted(format!("cannot write {}: {e}", path.display()))
            })?,
        }
        Ok(())
    }

    /// The whole, checked blob where it stays.
    fn keep(mut self) -> Result<Kept, Status> {
        match std::mem::replace(&mut self.into, Landing::Memory(Vec::new())) {
            Landing::Memory(buf) => Ok(Kept::Memory(buf.into())),
            Landing::File(file, partial) => {
                drop(file);
                let path = partial.with_file_name(&self.digest);
                std::fs::rename(&partial, &path).map_err(|e| {
                    Status::internal(format!("cannot keep blob {}: {e}", self.digest))
                })?;
                Ok(Kept::File(path))
            }
        }
    }
}

impl Drop for Incoming {
    /// A blob that did not arrive whole leaves no partial file behind.
    fn drop(&mut self) {
        if let Landing::File(_, path) = &self.into {
            let _ = std::fs::remove_file(path);
        }
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

    /// Receives `data` as blob `want` the way `receive` does, chunk by chunk.
    fn arrive(store: &BlobStore, want: &str, data: &[u8]) -> Result<(), Status> {
        store
            .announce(&[blob_ref(want, data.len() as u64)])
            .map_err(Status::invalid_argument)?;
        let mut incoming = store.incoming(want.to_owned(), data.len() as u64)?;
        for c in data.chunks(3) {
            incoming.take(c)?;
        }
        store.finish(incoming)
    }

    fn files_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_nodes_blobs_are_written_to_disk_as_they_arrive_and_removed_when_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        let store = BlobStore::on_disk(blobs.clone(), 1 << 20).unwrap();
        let data = b"plugin bytes, in several chunks";
        let d = digest(data);
        arrive(&store, &d, data).unwrap();
        assert_eq!(files_in(&blobs), [d.as_str()]);
        assert_eq!(store.get(&d).as_deref(), Some(&data[..]));
        assert!(store.missing(std::slice::from_ref(&d)).is_empty());

        // A blob whose bytes do not match its digest leaves nothing behind.
        let wrong = digest(b"something else");
        let e = arrive(&store, &wrong, data).unwrap_err();
        assert_eq!(e.code(), tonic::Code::DataLoss, "{e}");
        assert_eq!(files_in(&blobs), [d.as_str()], "no partial file is left");
        // Nor does one cut short.
        let short = digest(b"abcdef");
        store.announce(&[blob_ref(&short, 6)]).unwrap();
        let mut incoming = store.incoming(short.clone(), 6).unwrap();
        incoming.take(b"abc").unwrap();
        assert!(store.finish(incoming).is_err());
        assert_eq!(files_in(&blobs), [d.as_str()]);

        store.retain(&Default::default());
        assert!(files_in(&blobs).is_empty(), "an unused blob is removed");
        assert!(store.get(&d).is_none());
        // A restarted node starts with an empty directory.
        std::fs::write(blobs.join("leftover"), b"x").unwrap();
        let _ = BlobStore::on_disk(blobs.clone(), 1 << 20).unwrap();
        assert!(files_in(&blobs).is_empty());
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
