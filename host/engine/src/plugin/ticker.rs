//! The engine's epoch clock, which meters guests' CPU and makes busy
//! guests yield. It ticks only while some guest call is in progress:
//! ticking every 2 ms in a process that runs no guest (an idle node, a
//! leader without a share) was a fifth of a cluster leader's CPU samples,
//! and each of a hundred nodes on one machine paid it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;
use wasmtime::Engine;

/// How long the clock keeps ticking after the last guest call ended: long
/// enough that a steady run never parks it between iterations.
const LINGER_TICKS: u32 = 500;

pub struct Ticker {
    /// Guest calls in progress (instantiate, init, iteration, setup, teardown).
    calls: AtomicUsize,
    parked: AtomicBool,
    thread: OnceLock<Thread>,
}

/// A guest call in progress: the clock ticks while one exists.
pub struct Busy<'a>(&'a Ticker);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, SeqCst);
    }
}

impl Ticker {
    /// Starts the clock of `engine`, advancing its epoch every `tick` while
    /// a call is in progress, until the engine is dropped.
    pub fn start(engine: &Engine, tick: Duration) -> Arc<Ticker> {
        let ticker = Arc::new(Ticker {
            calls: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let weak = engine.weak();
        let t = ticker.clone();
        let handle = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                let mut quiet = 0;
                loop {
                    std::thread::sleep(tick);
                    let Some(engine) = weak.upgrade() else { return };
                    engine.increment_epoch();
                    drop(engine);
                    quiet = if t.calls.load(SeqCst) == 0 {
                        quiet + 1
                    } else {
                        0
                    };
                    if quiet >= LINGER_TICKS {
                        t.park_while_idle(|| weak.upgrade().is_some());
                        quiet = 0;
                    }
                }
            })
            .expect("spawning the epoch thread");
        let _ = ticker.thread.set(handle.thread().clone());
        ticker
    }

    /// Marks a guest call as started; wakes the clock if it sleeps.
    pub fn busy(&self) -> Busy<'_> {
        // Both sides use SeqCst: either the clock sees this call before
        // it parks, or this call sees it parked and wakes it.
        self.calls.fetch_add(1, SeqCst);
        if self.parked.load(SeqCst)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
        Busy(self)
    }

    fn park_while_idle(&self, alive: impl Fn() -> bool) {
        self.parked.store(true, SeqCst);
        while self.calls.load(SeqCst) == 0 && alive() {
            std::thread::park_timeout(Duration::from_secs(1));
        }
        self.parked.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_sleeps_without_calls_and_ticks_while_one_runs() {
        let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start(&engine, Duration::from_millis(1));
        // Parked once LINGER_TICKS quiet ticks have passed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ticker.parked.load(SeqCst) {
            assert!(std::time::Instant::now() < deadline, "never parked");
            std::thread::yield_now();
        }
        let busy = ticker.busy();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ticker.parked.load(SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "a call did not wake it"
            );
            std::thread::yield_now();
        }
        drop(busy);
        assert_eq!(ticker.calls.load(SeqCst), 0);
    }
}
