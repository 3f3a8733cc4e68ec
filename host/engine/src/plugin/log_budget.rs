//! A cap on the log lines a scenario's plugin writes: a plugin logging in
//! a loop would otherwise fill the disk and bury the run's own messages.
//! Lines past the per-second budget are dropped and counted; the count is
//! logged when the next second starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One scenario's budget, shared by its VUs.
pub struct LogBudget {
    per_second: u64,
    epoch: Instant,
    /// The second the counts are for.
    second: AtomicU64,
    used: AtomicU64,
    dropped: AtomicU64,
    /// Every line dropped in the run.
    pub dropped_total: AtomicU64,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Write,
    /// Write, after saying how many lines the last busy second dropped.
    WriteAfterDropping(u64),
    Drop,
}

impl LogBudget {
    pub fn new(per_second: u32) -> LogBudget {
        LogBudget {
            per_second: per_second.into(),
            epoch: Instant::now(),
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// Takes one line out of the budget. Racing VUs may let a few lines
    /// more than the budget through at a second's turn; that is fine.
    pub fn take(&self) -> Verdict {
        let now = self.epoch.elapsed().as_secs();
        let mut carried = 0;
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.used.store(0, Ordering::Relaxed);
            carried = self.dropped.swap(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.per_second {
            return match carried {
                0 => Verdict::Write,
                n => Verdict::WriteAfterDropping(n),
            };
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        Verdict::Drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_budget_are_dropped_and_counted() {
        let b = LogBudget::new(3);
        let verdicts: Vec<_> = (0..10).map(|_| b.take()).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Write).count(), 3);
        assert_eq!(b.dropped_total.load(Ordering::Relaxed), 7);
    }
}
