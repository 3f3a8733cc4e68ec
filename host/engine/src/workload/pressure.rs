//! The generator watching itself: is this process, not the target, what
//! limits the run? A probe task asks the runtime for a wake-up every few
//! milliseconds and measures how late it comes (a runnable task waiting
//! for a worker: scheduling lag), and reads the process's CPU time once a
//! second. Both go into the run's metrics; the lag also tells the
//! scheduler when scenarios compete for CPU (see [`super::fair`]), and the
//! executors when a dropped iteration was the generator's fault.

use crate::metrics::{Event, GeneratorSecond, Recorder, Sink};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the probe asks to be woken.
const PROBE: Duration = Duration::from_millis(5);
/// A wake-up this late means tasks are queueing for a worker.
pub const SATURATED_LAG: Duration = Duration::from_millis(5);
/// How long one late wake-up keeps the generator marked saturated, so a
/// busy spell reads as one state, not a flicker.
const STICKY: Duration = Duration::from_millis(100);

/// The shared reading: until when the generator counts as saturated.
pub struct Pressure {
    origin: Instant,
    saturated_until_ns: AtomicU64,
}

impl Pressure {
    pub fn new() -> Arc<Pressure> {
        Arc::new(Pressure {
            origin: Instant::now(),
            saturated_until_ns: AtomicU64::new(0),
        })
    }

    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// Whether tasks have been waiting for a worker in the last moments.
    pub fn saturated(&self) -> bool {
        self.saturated_until_ns.load(Ordering::Relaxed) > self.ns(Instant::now())
    }

    pub(super) fn mark(&self, now: Instant) {
        let until = self.ns(now + STICKY);
        self.saturated_until_ns.fetch_max(until, Ordering::Relaxed);
    }
}

/// Runs the probe until aborted, recording a [`GeneratorSecond`] each second.
pub fn spawn_probe(pressure: Arc<Pressure>, sink: Sink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut recorder = Recorder::new("".into(), sink);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let mut second = Second::start(cores);
        loop {
            let want = Instant::now() + PROBE;
            tokio::time::sleep_until(want.into()).await;
            let now = Instant::now();
            let lag = now.saturating_duration_since(want);
            if lag >= SATURATED_LAG {
                pressure.mark(now);
            }
            second.lag_max = second.lag_max.max(lag);
            if now >= second.began + Duration::from_secs(1) {
                recorder.record(Event::Generator(second.end(now)));
                recorder.maybe_flush(now);
                second = Second::start(cores);
            }
        }
    })
}

struct Second {
    began: Instant,
    cpu_at_start: Duration,
    lag_max: Duration,
    cores: u64,
}

impl Second {
    fn start(cores: u64) -> Second {
        Second {
            began: Instant::now(),
            cpu_at_start: process_cpu(),
            lag_max: Duration::ZERO,
            cores,
        }
    }

    fn end(&self, now: Instant) -> GeneratorSecond {
        let wall = now.saturating_duration_since(self.began).as_nanos().max(1) as u64;
        let cpu = process_cpu().saturating_sub(self.cpu_at_start).as_nanos() as u64;
        GeneratorSecond {
            lag_max_us: self.lag_max.as_micros() as u64,
            cpu_permille: (cpu.saturating_mul(1000) / wall / self.cores.max(1)).min(1000),
        }
    }
}

/// User plus system CPU time of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_wake_up_marks_the_generator_saturated_for_a_while() {
        let p = Pressure::new();
        assert!(!p.saturated());
        p.mark(Instant::now());
        assert!(p.saturated());
        p.mark(Instant::now() - STICKY * 2);
        assert!(p.saturated(), "an older mark never shortens a newer one");
    }

    #[test]
    fn process_cpu_moves_forward_when_this_process_works() {
        let before = process_cpu();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu() > before);
    }
}
