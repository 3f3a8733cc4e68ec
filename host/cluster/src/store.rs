//! Durable Raft state in one redb file: the log, the vote, the committed
//! id and the state machine; the latest snapshot is a file beside it
//! (`snapshots`). A restarted node reads everything back and rejoins with
//! what it had.

// openraft's traits fix the (large) storage error type.
#![allow(clippy::result_large_err)]

use crate::log_cache::LogCache;
use crate::snapshots::Snapshots;
use loadtest_wire::Versioned;
use loadtest_wire::command::{Applied, Command, NodeId, TypeConfig};
use loadtest_wire::plan::{self, Plan};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The state machine's map, one row per key: an apply writes only the
/// keys it changed, so a long run's per-second metrics cost what they
/// add, not the size of everything before them.
const KV: TableDefinition<&str, &str> = TableDefinition::new("kv");

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Bytes this process appended to its Raft log, for `/cluster/state` and
/// the fleet benchmark (one node per process).
pub static LOG_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The database's page cache. The state machine is in memory and the
/// log is read back only for replication and snapshots (the OS caches the
/// file too), so the cache needs little: it fills with pages as the file
/// is written, and every node's RSS grew with it, by 0.2-0.45 MiB a
/// minute in a 30-minute soak, at redb's default (1 GiB) and at 16 MiB.
const CACHE_BYTES: usize = 2 << 20;

/// Opens (or creates) the node's database.
pub fn open(dir: &Path) -> anyhow::Result<Arc<Database>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the data dir {}: {e}", dir.display()))?;
    let path = dir.join("raft.redb");
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.open_table(KV)?;
    txn.commit()?;
    check_store_format(&db, &path)?;
    Ok(Arc::new(db))
}

/// Refuses a store a newer loadtest wrote (its log entries and state may
/// have shapes this build would misread), and stamps a new or older one
/// with this build's format.
fn check_store_format(db: &Database, path: &Path) -> anyhow::Result<()> {
    let stored: Option<u32> = get_meta(db, "format")?;
    if let Some(format) = stored {
        loadtest_wire::check_format(&format!("the node's store {}", path.display()), format)
            .map_err(anyhow::Error::msg)?;
    }
    if stored != Some(loadtest_wire::FORMAT) {
        put_meta(db, "format", &loadtest_wire::FORMAT)?;
    }
    Ok(())
}

fn get_meta<T: for<'a> Deserialize<'a>>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, anyhow::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(META)?;
    match table.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

fn put_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> Result<(), anyhow::Error> {
    let bytes = serde_json::to_vec(value)?;
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(key, bytes.as_slice())?;
    txn.commit()?;
    Ok(())
}

fn io<E: std::fmt::Display>(e: E) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}

/// Whether this data dir already holds Raft state (then the node must not
/// bootstrap a cluster again).
pub fn is_initialized(db: &Database) -> anyhow::Result<bool> {
    let vote: Option<Vote<NodeId>> = get_meta(db, "vote")?;
    let txn = db.begin_read()?;
    let has_log = txn.open_table(LOG)?.iter()?.next().is_some();
    Ok(vote.is_some() || has_log)
}

#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    recent: LogCache,
}

impl LogStore {
    pub fn new(db: Arc<Database>) -> Self {
        LogStore {
            db,
            recent: LogCache::default(),
        }
    }

    fn read_range(
        &self,
        range: (Bound<u64>, Bound<u64>),
    ) -> anyhow::Result<Vec<Entry<TypeConfig>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let mut out = Vec::new();
        for item in table.range::<u64>(range)? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    fn last_entry(&self) -> anyhow::Result<Option<Entry<TypeConfig>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let last = table.last()?;
        match last {
            Some((_, v)) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        if let Some(kept) = self.recent.get(&range) {
            return Ok(kept);
        }
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        self.read_range(bounds)
            .map_err(|e| StorageIOError::read_logs(io(e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let purged: Option<LogId<NodeId>> =
            get_meta(&self.db, "last_purged").map_err(|e| StorageIOError::read_logs(io(e)))?;
        let last = self
            .last_entry()
            .map_err(|e| StorageIOError::read_logs(io(e)))?
            .map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        put_meta(&self.db, "vote", vote).map_err(|e| StorageIOError::write_vote(io(e)).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        get_meta(&self.db, "vote").map_err(|e| StorageIOError::read_vote(io(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        put_meta(&self.db, "committed", &committed).map_err(|e| StorageIOError::write(io(e)).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let c: Option<Option<LogId<NodeId>>> =
            get_meta(&self.db, "committed").map_err(|e| StorageIOError::read(io(e)))?;
        Ok(c.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let write = || -> anyhow::Result<()> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for entry in &entries {
                    let bytes = serde_json::to_vec(&entry)?;
                    table.insert(entry.log_id.index, bytes.as_slice())?;
                    LOG_BYTES.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
            txn.commit()?;
            Ok(())
        };
        match write() {
            Ok(()) => {
                self.recent.appended(&entries);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(io(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.recent.truncated(log_id.index);
        self.delete_range(log_id.index..)
            .map_err(|e| StorageIOError::write_logs(io(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        put_meta(&self.db, "last_purged", &log_id)
            .map_err(|e| StorageIOError::write_logs(io(e)))?;
        self.recent.purged(log_id.index);
        self.delete_range(..=log_id.index)
            .map_err(|e| StorageIOError::write_logs(io(e)).into())
    }
}

impl LogStore {
    fn delete_range(&self, range: impl RangeBounds<u64>) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(LOG)?;
            let keys: Vec<u64> = table
                .range::<u64>((range.start_bound().cloned(), range.end_bound().cloned()))?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for k in keys {
                table.remove(k)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// What Raft needs besides the map to resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedMeta {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
}

/// One command on the map, and the keys it may have changed (a superset
/// is fine: unchanged keys are rewritten as they are, absent ones removed
/// again), known before it runs. Deterministic: every node applies the
/// same entries to the same map and gets the same result.
fn apply_command(data: &mut BTreeMap<String, String>, cmd: Command) -> (Applied, Vec<String>) {
    let changed = |changed| Applied {
        changed,
        ..Applied::default()
    };
    match cmd {
        Command::Set { key, value } => {
            let previous = data.insert(key.clone(), value);
            (
                Applied {
                    previous,
                    ..Applied::default()
                },
                vec![key],
            )
        }
        Command::Delete { key } => {
            let previous = data.remove(&key);
            (
                Applied {
                    previous,
                    ..Applied::default()
                },
                vec![key],
            )
        }
        Command::Plan(p) => {
            let keys = std::iter::once(plan::PLAN.to_owned())
                .chain(plan::replaced_keys(data, &p))
                .collect();
            (changed(plan::apply_plan(data, &p)), keys)
        }
        Command::Merged(raw) => match raw.decode() {
            Ok(m) => {
                let keys = plan::merged_keys(data, &m);
                (changed(plan::apply_merged(data, &m)), keys)
            }
            // Every node skips the same bad entry, so the maps stay equal;
            // the shares' watermarks did not move, and the leader builds
            // the next entry from them.
            Err(e) => {
                tracing::error!("skipped a merged metrics entry that does not decode: {e}");
                (changed(false), Vec::new())
            }
        },
        Command::Stop { run_id, reason } => (
            changed(plan::apply_stop(data, &run_id, reason.as_deref())),
            vec![plan::PLAN.to_owned()],
        ),
    }
}

/// The replicated state: a map, plus what Raft needs to resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, openraft::BasicNode>,
    pub data: BTreeMap<String, String>,
}

/// The plan's text and the plan decoded from it.
type DecodedPlan = (String, Arc<Plan>);

#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    /// The data dir, where the latest snapshot is kept as a file.
    dir: Arc<PathBuf>,
    state: Arc<std::sync::RwLock<State>>,
    /// Bumped after every apply or installed snapshot, so node tasks can
    /// wait for the state to change instead of polling it.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    plan: Arc<std::sync::Mutex<Option<DecodedPlan>>>,
}

impl StateMachine {
    pub fn open(db: Arc<Database>, dir: &Path) -> anyhow::Result<Self> {
        let dir = Arc::new(dir.to_path_buf());
        let Some(meta) = get_meta::<AppliedMeta>(&db, "applied")? else {
            // A data dir from before the per-key table kept the whole state
            // in one value: move it into the table once.
            let state: State = get_meta(&db, "state")?.unwrap_or_default();
            let sm = Self::with_state(db, dir, state.clone());
            let meta = AppliedMeta {
                last_applied: state.last_applied,
                membership: state.membership,
            };
            sm.persist(&meta, None, Some(&state.data))
                .map_err(|e| anyhow::anyhow!("moving the state into its table: {e}"))?;
            return Ok(sm);
        };
        let mut state = State {
            last_applied: meta.last_applied,
            membership: meta.membership,
            data: BTreeMap::new(),
        };
        let txn = db.begin_read()?;
        for row in txn.open_table(KV)?.iter()? {
            let (k, v) = row?;
            state
                .data
                .insert(k.value().to_owned(), v.value().to_owned());
        }
        drop(txn);
        Ok(Self::with_state(db, dir, state))
    }

    fn with_state(db: Arc<Database>, dir: Arc<PathBuf>, state: State) -> Self {
        StateMachine {
            db,
            dir,
            state: Arc::new(std::sync::RwLock::new(state)),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
            plan: Arc::default(),
        }
    }

    /// The current plan, decoded once per change of its text: every
    /// node's metrics batch asks for it each second, and with 100 nodes
    /// it is tens of KiB of JSON.
    pub fn plan(&self) -> Option<Arc<Plan>> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        let text = s.data.get(plan::PLAN)?;
        let mut cache = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, p)) = cache.as_ref()
            && cached == text
        {
            return Some(p.clone());
        }
        let p = Arc::new(serde_json::from_str::<Plan>(text).ok()?);
        *cache = Some((text.clone(), p.clone()));
        Some(p)
    }

    /// One value of the map.
    pub fn get(&self, key: &str) -> Option<String> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.data.get(key).cloned()
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The entries under `prefix` from key `from` on, at most `limit`.
    pub fn range(&self, prefix: &str, from: &str, limit: usize) -> Vec<(String, String)> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.data
            .range(from.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// A read-only view of the applied state, for health and status.
    pub fn view(&self) -> State {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn snapshots(&self) -> Snapshots<'_> {
        Snapshots {
            dir: &self.dir,
            db: &self.db,
            table: META,
        }
    }

    /// Writes the given keys' current values (absent: removed) and the
    /// applied position in one transaction; `None` rewrites the whole map.
    fn persist(
        &self,
        meta: &AppliedMeta,
        rows: Option<Vec<(String, Option<String>)>>,
        all: Option<&BTreeMap<String, String>>,
    ) -> StorageResult<()> {
        let write = || -> anyhow::Result<()> {
            let txn = self.db.begin_write()?;
            {
                let mut kv = txn.open_table(KV)?;
                if let Some(all) = all {
                    kv.retain(|_, _| false)?;
                    for (k, v) in all {
                        kv.insert(k.as_str(), v.as_str())?;
                    }
                }
                for (k, v) in rows.into_iter().flatten() {
                    match v {
                        Some(v) => kv.insert(k.as_str(), v.as_str())?,
                        None => kv.remove(k.as_str())?,
                    };
                }
                let bytes = serde_json::to_vec(meta)?;
                txn.open_table(META)?.insert("applied", bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| StorageIOError::write_state_machine(io(e)).into())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// Serialising a state of tens of MiB takes a while: it runs off Raft's
    /// one-thread runtime, so heartbeats and votes go on meanwhile.
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let state = self.view();
        let sm = self.clone();
        let build = move || -> StorageResult<Snapshot<TypeConfig>> {
            let data = Versioned::to_json(&state)
                .map_err(|e| StorageIOError::read_state_machine(io(e)))?;
            let id = state.last_applied.map_or("none".to_string(), |l| {
                format!("{}-{}", l.leader_id, l.index)
            });
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id: id,
            };
            sm.snapshots()
                .save(&meta, &data)
                .map_err(|e| StorageIOError::write_snapshot(None, io(e)))?;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })
        };
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)))?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let (meta, rows) = {
            let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
            let mut touched = std::collections::BTreeSet::new();
            for entry in entries {
                s.last_applied = Some(entry.log_id);
                let applied = match entry.payload {
                    EntryPayload::Blank => Applied::default(),
                    EntryPayload::Membership(m) => {
                        s.membership = StoredMembership::new(Some(entry.log_id), m);
                        Applied::default()
                    }
                    EntryPayload::Normal(cmd) => {
                        let (applied, keys) = apply_command(&mut s.data, cmd);
                        touched.extend(keys);
                        applied
                    }
                };
                out.push(applied);
            }
            let rows: Vec<(String, Option<String>)> = touched
                .into_iter()
                .map(|k| {
                    let v = s.data.get(&k).cloned();
                    (k, v)
                })
                .collect();
            let meta = AppliedMeta {
                last_applied: s.last_applied,
                membership: s.membership.clone(),
            };
            (meta, rows)
        };
        self.persist(&meta, Some(rows), None)?;
        self.changed();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        // Parsed and stored off Raft's runtime, like a build.
        let (sm, meta) = (self.clone(), meta.clone());
        let install = move || -> StorageResult<()> {
            let data = snapshot.into_inner();
            let mut state: State = Versioned::from_json("the snapshot", &data)
                .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), io(e)))?;
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            let applied = AppliedMeta {
                last_applied: state.last_applied,
                membership: state.membership.clone(),
            };
            sm.persist(&applied, None, Some(&state.data))?;
            sm.snapshots()
                .save(&meta, &data)
                .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), io(e)))?;
            *sm.state.write().unwrap_or_else(|p| p.into_inner()) = state;
            sm.changed();
            Ok(())
        };
        tokio::task::spawn_blocking(install)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, io(e)))?
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let stored = self
            .snapshots()
            .load()
            .map_err(|e| StorageIOError::read_snapshot(None, io(e)))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_wire::plan::{Merged, Status};
    use loadtest_wire::raw::Raw;
    use openraft::CommittedLeaderId;

    fn entry(index: u64, cmd: Command) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn plan(run: &str) -> Plan {
        serde_json::from_value(serde_json::json!({
            "run_id": run, "name": "t", "version": "v", "yaml": "", "plugins": {},
            "files": {}, "status": "running", "start_at_ms": 0, "assignments": [],
            "events": [],
        }))
        .expect("a plan")
    }

    /// Every node meets the same bad entry and skips it the same way; the
    /// decoded plan follows every write to its text.
    #[tokio::test]
    async fn a_merged_entry_that_does_not_decode_is_skipped_and_the_plan_follows_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(open(dir.path()).unwrap(), dir.path()).unwrap();
        let bad: Raw<Merged> = serde_json::from_str(r#"{"run_id":7}"#).unwrap();
        let applied = sm
            .apply([
                entry(1, Command::Plan(Box::new(plan("r1")))),
                entry(2, Command::Merged(bad)),
            ])
            .await
            .unwrap();
        assert_eq!((applied[0].changed, applied[1].changed), (true, false));
        let before = sm.plan().expect("a plan");
        assert_eq!(
            (before.run_id.as_str(), before.status),
            ("r1", Status::Running)
        );
        sm.apply([entry(
            3,
            Command::Stop {
                run_id: "r1".into(),
                reason: None,
            },
        )])
        .await
        .unwrap();
        assert_eq!(sm.plan().expect("a plan").status, Status::Stopping);
        // Read back from disk, the same state.
        drop(sm);
        let sm = StateMachine::open(open(dir.path()).unwrap(), dir.path()).unwrap();
        assert_eq!(sm.plan().expect("a plan").status, Status::Stopping);
    }
}
