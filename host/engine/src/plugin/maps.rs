//! Linux caps a process's memory mappings (`vm.max_map_count`, 65530 by
//! default) and every VU's instance takes several: its linear memory in up
//! to three pieces around the copy-on-write data image, the guard behind
//! it, its async stack and that stack's guard page. Past the cap `mmap`
//! fails, and the next allocation anywhere in the process aborts it. So the
//! run is warned before it starts, and instantiation stops short of the
//! cap: a VU that would cross it fails to start with what to do instead.

use std::sync::Mutex;

/// Mappings per VU, measured with the example scenarios.
pub const PER_VU: u64 = 6;
/// Mappings of the process before any VU.
const BASE: u64 = 2000;
/// Left free for the allocator, the runtime and the connections.
fn headroom(limit: u64) -> u64 {
    (limit / 20).max(1000)
}

/// The process's cap, if it has one.
pub fn limit() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Said before a run whose VUs would not fit.
pub fn warning(vus: u64, limit: u64) -> Option<String> {
    let needed = vus * PER_VU + BASE;
    (needed > limit).then(|| {
        format!(
            "warning: {vus} VUs need about {needed} memory mappings, but vm.max_map_count is \
             {limit}, which allows about {} VUs in one process; the rest will fail to start. {}",
            allowed(limit),
            raise(needed)
        )
    })
}

fn allowed(limit: u64) -> u64 {
    limit.saturating_sub(BASE + headroom(limit)) / PER_VU
}

fn raise(needed: u64) -> String {
    format!(
        "Raise it first: sudo sysctl -w vm.max_map_count={}",
        (needed * 2).next_power_of_two()
    )
}

/// Admits instantiations while the process stays clear of the cap. The
/// file that counts mappings (`/proc/self/maps`, a line each) is read after
/// 16, 64, 256, ... admissions, to learn what this run's instances really
/// take (guests built with the WASI adapter have a second memory), and at
/// every admission near the cap; in between the count is estimated.
pub struct Budget {
    limit: Option<u64>,
    state: Mutex<Tally>,
}

struct Tally {
    /// Mappings before the first admission.
    start: u64,
    /// The last count, and how many had been admitted then.
    counted: u64,
    counted_at: u64,
    admitted: u64,
    per_vu: f64,
}

/// How close to the ceiling, in instances, counting starts on every admission.
const NEAR: f64 = 64.0;

impl Budget {
    pub fn new(limit: Option<u64>) -> Budget {
        Budget::starting_at(limit, count().unwrap_or(BASE))
    }

    fn starting_at(limit: Option<u64>, start: u64) -> Budget {
        Budget {
            limit,
            state: Mutex::new(Tally {
                start,
                counted: start,
                counted_at: 0,
                admitted: 0,
                per_vu: PER_VU as f64,
            }),
        }
    }

    /// `Err` says why one more instance must not be made.
    pub fn admit(&self) -> Result<(), String> {
        self.admit_with(count)
    }

    fn admit_with(&self, count: impl Fn() -> Option<u64>) -> Result<(), String> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let ceiling = limit.saturating_sub(headroom(limit)) as f64;
        let mut t = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let estimate = |t: &Tally, extra: u64| {
            t.counted as f64 + (t.admitted - t.counted_at + extra) as f64 * t.per_vu
        };
        let learning = t.admitted >= 16
            && t.admitted.is_power_of_two()
            && t.admitted.trailing_zeros().is_multiple_of(2);
        let near = estimate(&t, 0) + NEAR * t.per_vu >= ceiling;
        if t.admitted > t.counted_at
            && (learning || near)
            && let Some(n) = count()
        {
            (t.counted, t.counted_at) = (n, t.admitted);
            if learning {
                t.per_vu = (n.saturating_sub(t.start) as f64 / t.admitted as f64).max(1.0);
            }
        }
        if estimate(&t, 1) > ceiling {
            return Err(format!(
                "not started: the process is close to vm.max_map_count ({limit} memory mappings), \
                 which allows about {} VUs of this kind. {}",
                ((ceiling - t.start as f64) / t.per_vu) as u64,
                raise((estimate(&t, 0) * 2.0) as u64)
            ));
        }
        t.admitted += 1;
        Ok(())
    }
}

fn count() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_warning_says_how_many_vus_fit_and_how_to_raise_it() {
        assert_eq!(warning(1000, 65530), None);
        let w = warning(100_000, 65530).unwrap();
        assert!(w.contains("100000 VUs need about 602000"), "{w}");
        assert!(w.contains("allows about 10042 VUs"), "{w}");
        assert!(w.contains("sysctl -w vm.max_map_count=2097152"), "{w}");
    }

    #[test]
    fn admission_stops_short_of_the_cap_by_the_real_count() {
        // The real count runs ahead of the estimate (say, a guest with
        // more memories): admission goes by the count once near the cap.
        let real = AtomicU64::new(2000);
        let budget = Budget::starting_at(Some(20_000), 2000);
        let mut admitted = 0;
        while budget
            .admit_with(|| Some(real.load(Ordering::Relaxed)))
            .is_ok()
        {
            admitted += 1;
            real.fetch_add(PER_VU * 2, Ordering::Relaxed);
            assert!(admitted < 10_000, "never refused");
        }
        let at = real.load(Ordering::Relaxed);
        assert!(at <= 19_000, "crossed the ceiling: {at}");
        assert!(at > 19_000 - PER_VU * 2, "stopped too early: {at}");
        let e = budget.admit_with(|| Some(at)).unwrap_err();
        assert!(e.contains("vm.max_map_count (20000"), "{e}");
        assert!(e.contains("allows about 1416 VUs"), "{e}");
    }

    #[test]
    fn without_a_cap_everything_is_admitted() {
        let budget = Budget::new(None);
        assert!((0..1000).all(|_| budget.admit().is_ok()));
    }
}
