//! The newest log entries, kept in memory beside the redb log. The leader
//! sends each entry once to every follower and learner: with 99 of them,
//! every entry was read back from the database and decoded 99 times a
//! second, one replication stream at a time. The entries those streams
//! ask for are almost always the ones just appended, so they are served
//! from here; anything older, or after a gap, comes from the database.

use loadtest_wire::command::TypeConfig;
use openraft::Entry;
use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

/// How many entries are kept. A follower more than this far behind
/// catches up from the database, as before; the leader appends about one
/// entry a second during a run, so this is half a minute of slack.
const KEPT: usize = 32;

/// Consecutive entries, oldest first. Clones share one cache: the log
/// store's readers are clones of it.
#[derive(Clone, Default)]
pub struct LogCache(Arc<Mutex<VecDeque<Entry<TypeConfig>>>>);

impl LogCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry<TypeConfig>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries just written to the log. An entry that does not follow the
    /// newest one kept starts the cache afresh, so what it holds stays
    /// consecutive.
    pub fn appended(&self, entries: &[Entry<TypeConfig>]) {
        let mut kept = self.lock();
        for e in entries {
            if kept
                .back()
                .is_some_and(|b| b.log_id.index + 1 != e.log_id.index)
            {
                kept.clear();
            }
            kept.push_back(e.clone());
            if kept.len() > KEPT {
                kept.pop_front();
            }
        }
    }

    /// The log lost everything from `index` on (a new leader overwrote it).
    pub fn truncated(&self, index: u64) {
        self.lock().retain(|e| e.log_id.index < index);
    }

    /// The log lost everything up to and including `index` (a snapshot covers it).
    pub fn purged(&self, index: u64) {
        self.lock().retain(|e| e.log_id.index > index);
    }

    /// The entries of `range`, when every one of them is kept.
    pub fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry<TypeConfig>>> {
        let kept = self.lock();
        let first = kept.front()?.log_id.index;
        let last = kept.back()?.log_id.index;
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        // One past the last index asked for.
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1)?,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => last + 1,
        };
        if start < first || end > last + 1 || start >= end {
            return None;
        }
        let from = (start - first) as usize;
        let to = (end - first) as usize;
        Some(kept.range(from..to).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    fn entries(from: u64, to: u64) -> Vec<Entry<TypeConfig>> {
        (from..=to)
            .map(|i| Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Blank,
            })
            .collect()
    }

    fn indexes(got: Option<Vec<Entry<TypeConfig>>>) -> Option<Vec<u64>> {
        got.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn serves_only_ranges_it_holds_whole() {
        let c = LogCache::default();
        c.appended(&entries(5, 9));
        assert_eq!(indexes(c.get(&(6..8))), Some(vec![6, 7]));
        assert_eq!(indexes(c.get(&(8..))), Some(vec![8, 9]));
        assert_eq!(indexes(c.get(&(5..=9))), Some(vec![5, 6, 7, 8, 9]));
        // Partly outside, empty, or from the start of the log: the database answers.
        assert_eq!(indexes(c.get(&(4..7))), None);
        assert_eq!(indexes(c.get(&(8..11))), None);
        assert_eq!(indexes(c.get(&(7..7))), None);
        assert_eq!(indexes(c.get(&(..7))), None);
    }

    #[test]
    fn keeps_the_newest_consecutive_entries_through_truncation_purging_and_gaps() {
        let c = LogCache::default();
        c.appended(&entries(1, KEPT as u64 + 10));
        assert_eq!(indexes(c.get(&(10..12))), None, "the oldest were dropped");
        assert!(c.get(&(11..13)).is_some());
        c.truncated(20);
        assert_eq!(indexes(c.get(&(19..))), Some(vec![19]));
        assert_eq!(indexes(c.get(&(19..21))), None);
        c.appended(&entries(20, 21));
        assert_eq!(indexes(c.get(&(19..))), Some(vec![19, 20, 21]));
        c.purged(19);
        assert_eq!(indexes(c.get(&(19..))), None);
        assert_eq!(indexes(c.get(&(20..))), Some(vec![20, 21]));
        // A gap (a snapshot installed, the log restarting further on).
        c.appended(&entries(40, 41));
        assert_eq!(indexes(c.get(&(20..22))), None);
        assert_eq!(indexes(c.get(&(40..))), Some(vec![40, 41]));
    }
}
