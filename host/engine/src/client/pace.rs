//! A cap on requests per second across every VU of a process (k6's `rps`
//! option, the config's `http.rps`): a request waits for its turn before
//! it goes out, so the cap holds however many VUs there are.
//!
//! Written here rather than taken from a rate-limiting crate: the whole
//! of it is one atomic "next free slot" (the generic cell rate algorithm
//! without a burst), and the crates that offer it bring a clock, a
//! keyed store and their own async timer along.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimit {
    /// Nanoseconds between two requests.
    interval: u64,
    epoch: Instant,
    /// When the next request may go, in nanoseconds since `epoch`.
    next: AtomicU64,
}

impl RateLimit {
    /// `per_second` requests a second at most; none for a cap of 0 or less.
    pub fn new(per_second: f64) -> Option<RateLimit> {
        (per_second > 0.0 && per_second.is_finite()).then(|| RateLimit {
            interval: (1e9 / per_second).max(1.0) as u64,
            epoch: Instant::now(),
            next: AtomicU64::new(0),
        })
    }

    /// Takes the next free slot and waits for it. A slot taken is kept
    /// even if the caller stops waiting (its VU was stopped): the cap
    /// errs on the side of fewer requests.
    pub async fn wait(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let slot = self.take(now);
        if slot > now {
            tokio::time::sleep(Duration::from_nanos(slot - now)).await;
        }
    }

    /// The slot a request asking at `now` gets: the next free one, or now
    /// when the limit has been idle (no burst is saved up).
    fn take(&self, now: u64) -> u64 {
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let slot = next.max(now);
            match self.next.compare_exchange_weak(
                next,
                slot + self.interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return slot,
                Err(seen) => next = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval_and_idle_time_is_not_saved_up() {
        let r = RateLimit::new(10.0).unwrap();
        let ms = 1_000_000;
        assert_eq!(r.take(0), 0);
        assert_eq!(r.take(0), 100 * ms);
        assert_eq!(r.take(50 * ms), 200 * ms);
        // Idle for a second: the next request goes at once, the one after
        // it an interval later, not a burst of ten.
        assert_eq!(r.take(1_500 * ms), 1_500 * ms);
        assert_eq!(r.take(1_500 * ms), 1_600 * ms);
    }

    #[test]
    fn no_cap_for_zero_or_nonsense() {
        assert!(RateLimit::new(0.0).is_none());
        assert!(RateLimit::new(-3.0).is_none());
        assert!(RateLimit::new(f64::NAN).is_none());
    }
}
