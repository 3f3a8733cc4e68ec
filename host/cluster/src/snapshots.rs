//! The latest Raft snapshot, as a file beside the database.
//!
//! redb has one writer at a time. A state of tens of MiB written inside a
//! redb transaction held that writer for as long as the write took, and
//! the log's appends on Raft's runtime waited behind it: heartbeats
//! stopped and followers started elections (a 30 MiB state did this in a
//! test once redb's page cache was smaller than the snapshot). A file is
//! written outside any lock; only its name and meta go through redb, in a
//! transaction of a few hundred bytes.

use loadtest_wire::command::NodeId;
use openraft::SnapshotMeta;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The snapshot's bytes and what openraft knows it by.
pub struct Stored {
    pub meta: Meta,
    pub data: Vec<u8>,
}

/// The row in the database that names the file.
#[derive(Serialize, Deserialize)]
struct Pointer {
    meta: Meta,
    file: String,
}

const POINTER: &str = "snapshot_file";
/// Where earlier builds kept the snapshot inside the database: its meta
/// and bytes as two values, and before that both as one JSON value.
const OLD_KEYS: [&str; 3] = ["snapshot_meta", "snapshot_data", "snapshot"];
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".json";

pub struct Snapshots<'a> {
    pub dir: &'a Path,
    pub db: &'a Database,
    pub table: TableDefinition<'static, &'static str, &'static [u8]>,
}

impl Snapshots<'_> {
    /// Writes the file (synced, then renamed into place), points the
    /// database at it, and removes the files and values it replaces. A
    /// crash before the pointer commits leaves the previous snapshot whole.
    pub fn save(&self, meta: &Meta, data: &[u8]) -> anyhow::Result<()> {
        let file = file_name(&meta.snapshot_id);
        let path = self.dir.join(&file);
        write_synced(self.dir, &path, data)?;
        let pointer = serde_json::to_vec(&Pointer {
            meta: meta.clone(),
            file: file.clone(),
        })?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(self.table)?;
            table.insert(POINTER, pointer.as_slice())?;
            for key in OLD_KEYS {
                table.remove(key)?;
            }
        }
        txn.commit()?;
        self.remove_others(&file);
        Ok(())
    }

    /// The latest snapshot, wherever this or an earlier build kept it.
    pub fn load(&self) -> anyhow::Result<Option<Stored>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(self.table)?;
        if let Some(p) = table.get(POINTER)? {
            let p: Pointer = serde_json::from_slice(p.value())?;
            let path = self.dir.join(&p.file);
            let data = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "the store names the snapshot {} but it cannot be read ({e}); \
                     restore the data dir from a backup or clear it to rejoin as a new node",
                    path.display()
                )
            })?;
            return Ok(Some(Stored { meta: p.meta, data }));
        }
        if let (Some(meta), Some(data)) = (table.get(OLD_KEYS[0])?, table.get(OLD_KEYS[1])?) {
            return Ok(Some(Stored {
                meta: serde_json::from_slice(meta.value())?,
                data: data.value().to_vec(),
            }));
        }
        match table.get(OLD_KEYS[2])? {
            Some(v) => {
                let old: OldStored = serde_json::from_slice(v.value())?;
                Ok(Some(Stored {
                    meta: old.meta,
                    data: old.data,
                }))
            }
            None => Ok(None),
        }
    }

    /// Best effort: a file left behind costs disk, not correctness, and
    /// the next save tries again.
    fn remove_others(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with(PREFIX) && name.ends_with(SUFFIX);
            if ours && name != keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The one-value shape of the oldest stores.
#[derive(Deserialize)]
struct OldStored {
    meta: Meta,
    data: Vec<u8>,
}

/// A file name from a snapshot id (`<leader>-<index>`), with anything
/// but letters, digits and dashes replaced: ids carry node names.
fn file_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{safe}{SUFFIX}")
}

fn write_synced(dir: &Path, path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(".snapshot.partial");
    let fail = |what: &str, e: std::io::Error| {
        anyhow::anyhow!("cannot {what} the snapshot {}: {e}", tmp.display())
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create", e))?;
    f.write_all(data).map_err(|e| fail("write", e))?;
    f.sync_all().map_err(|e| fail("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| fail("rename", e))?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot sync {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, StoredMembership};

    const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

    fn meta(index: u64) -> Meta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("1-node/1-{index}"),
        }
    }

    fn open(dir: &Path) -> Database {
        let db = Database::create(dir.join("raft.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE).unwrap();
        txn.commit().unwrap();
        db
    }

    fn at<'a>(dir: &'a Path, db: &'a Database) -> Snapshots<'a> {
        Snapshots {
            dir,
            db,
            table: TABLE,
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(PREFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_latest_snapshot_survives_a_reopen_and_replaces_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let s = at(dir.path(), &db);
            assert!(s.load().unwrap().is_none());
            s.save(&meta(100), b"first").unwrap();
            s.save(&meta(200), b"second").unwrap();
        }
        let db = open(dir.path());
        let s = at(dir.path(), &db);
        let got = s.load().unwrap().expect("a snapshot");
        assert_eq!(got.data, b"second");
        assert_eq!(got.meta.snapshot_id, "1-node/1-200");
        assert_eq!(files(dir.path()), vec!["snapshot-1-node_1-200.json"]);
    }

    #[test]
    fn a_snapshot_kept_inside_the_database_by_an_earlier_build_is_read_then_moved_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(TABLE).unwrap();
            let m = serde_json::to_vec(&meta(7)).unwrap();
            t.insert("snapshot_meta", m.as_slice()).unwrap();
            t.insert("snapshot_data", b"old".as_slice()).unwrap();
        }
        txn.commit().unwrap();
        let s = at(dir.path(), &db);
        assert_eq!(s.load().unwrap().unwrap().data, b"old");
        s.save(&meta(8), b"new").unwrap();
        let txn = db.begin_read().unwrap();
        assert!(
            txn.open_table(TABLE)
                .unwrap()
                .get("snapshot_data")
                .unwrap()
                .is_none()
        );
        drop(txn);
        assert_eq!(s.load().unwrap().unwrap().data, b"new");
    }

    #[test]
    fn a_missing_snapshot_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let s = at(dir.path(), &db);
        s.save(&meta(1), b"x").unwrap();
        std::fs::remove_file(dir.path().join("snapshot-1-node_1-1.json")).unwrap();
        let err = s.load().err().expect("an error").to_string();
        assert!(
            err.contains("cannot be read") && err.contains("data dir"),
            "{err}"
        );
    }
}
