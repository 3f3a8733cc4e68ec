//! Fair shares of the generator's CPU between scenarios.
//!
//! Every VU is a task on one runtime, and the runtime is fair between
//! tasks, not scenarios: twenty VUs spinning in one scenario leave the
//! VUs of another a small slice of the workers, and an arrival-rate
//! scenario then drops most of its starts. So each scenario's VU tasks run
//! under a [`Lane`] that charges the time spent polling them to the
//! scenario. Only while the generator is saturated (tasks wait for a
//! worker, see [`super::pressure`]) does a lane that has used an even
//! share of the current window, split among the scenarios active lately,
//! park its tasks until the next window. A scenario alone, or beside
//! scenarios that have not run for a while, is never held back.
//!
//! The split is even rather than by what the others used: a starved
//! scenario uses little because it is starved, so its use says nothing
//! of what it wants.

use super::pressure::Pressure;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// The accounting window: short, so a lane that overran waits little.
const WINDOW: Duration = Duration::from_millis(20);

/// The lanes of one run, one per scenario.
pub struct Lanes {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    origin: Instant,
    /// Worker time in one window: the window times the workers.
    capacity_ns: u64,
    lanes: Box<[Usage]>,
    pressure: Arc<Pressure>,
}

#[derive(Default)]
struct Usage {
    /// The window `used` counts for: the last one the lane ran in.
    window: AtomicU64,
    used: AtomicU64,
}

/// A lane that ran within this many windows still takes its share.
const ACTIVE_WINDOWS: u64 = 10;

/// One scenario's lane; cheap to clone into each VU task.
#[derive(Clone)]
pub struct Lane {
    shared: Option<Arc<Shared>>,
    idx: usize,
}

impl Lanes {
    /// Lanes for `scenarios` scenarios; with one there is nothing to share.
    pub fn new(scenarios: usize, workers: usize, pressure: Arc<Pressure>) -> Lanes {
        let shared = (scenarios > 1).then(|| {
            Arc::new(Shared {
                origin: Instant::now(),
                capacity_ns: WINDOW.as_nanos() as u64 * workers.max(1) as u64,
                lanes: (0..scenarios).map(|_| Usage::default()).collect(),
                pressure,
            })
        });
        Lanes { shared }
    }

    pub fn lane(&self, idx: usize) -> Lane {
        Lane {
            shared: self.shared.clone(),
            idx,
        }
    }
}

impl Shared {
    fn window(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / WINDOW.as_nanos()) as u64
    }

    fn window_end(&self, w: u64) -> Instant {
        self.origin + WINDOW * (w + 1) as u32
    }

    fn charge(&self, idx: usize, w: u64, ns: u64) {
        let u = &self.lanes[idx];
        if u.window.swap(w, Ordering::Relaxed) == w {
            u.used.fetch_add(ns, Ordering::Relaxed);
        } else {
            // The first charge of a new window starts its count (racing
            // chargers may lose a little; the share is an estimate).
            u.used.store(ns, Ordering::Relaxed);
        }
    }

    /// What lane `idx` has used in window `w`.
    fn used(&self, idx: usize, w: u64) -> u64 {
        let u = &self.lanes[idx];
        if u.window.load(Ordering::Relaxed) == w {
            u.used.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether lane `idx` has run lately.
    fn active(&self, idx: usize, w: u64) -> bool {
        let seen = self.lanes[idx].window.load(Ordering::Relaxed);
        self.lanes[idx].used.load(Ordering::Relaxed) > 0 && w.saturating_sub(seen) <= ACTIVE_WINDOWS
    }

    /// Until when lane `idx` must wait, if it has used its share of the
    /// window while the generator is saturated.
    fn pause(&self, idx: usize, now: Instant) -> Option<Instant> {
        if !self.pressure.saturated() {
            return None;
        }
        let w = self.window(now);
        let others = (0..self.lanes.len())
            .filter(|&i| i != idx && self.active(i, w))
            .count() as u64;
        if others == 0 {
            return None;
        }
        let share = self.capacity_ns / (others + 1);
        (self.used(idx, w) >= share).then(|| self.window_end(w))
    }
}

impl Lane {
    /// Runs `fut` under this lane: polls are charged, and parked while the
    /// lane is over its share.
    pub fn run<F: Future>(&self, fut: F) -> Fair<F> {
        Fair {
            inner: fut,
            lane: self.clone(),
            pause: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A VU task's future under its scenario's lane.
    pub struct Fair<F> {
        #[pin]
        inner: F,
        lane: Lane,
        pause: Option<Pin<Box<Sleep>>>,
    }
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(shared) = &this.lane.shared else {
            return this.inner.poll(cx);
        };
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            *this.pause = None;
        } else if let Some(until) = shared.pause(this.lane.idx, Instant::now()) {
            let mut pause = Box::pin(tokio::time::sleep_until(until.into()));
            if pause.as_mut().poll(cx).is_pending() {
                *this.pause = Some(pause);
                return Poll::Pending;
            }
        }
        let started = Instant::now();
        let out = this.inner.poll(cx);
        let ns = started.elapsed().as_nanos() as u64;
        shared.charge(this.lane.idx, shared.window(started), ns);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saturated_lanes(n: usize) -> Arc<Shared> {
        let pressure = Pressure::new();
        pressure.mark(Instant::now());
        Lanes::new(n, 2, pressure).shared.unwrap()
    }

    #[test]
    fn a_lane_over_an_even_share_waits_for_the_next_window_only_when_saturated() {
        let s = saturated_lanes(2);
        let now = Instant::now();
        let w = s.window(now);
        let ms = |n: u64| n * 1_000_000;
        // Two workers: 40 ms a window, 20 ms each, however little lane 1 used.
        s.charge(1, w, ms(1));
        s.charge(0, w, ms(19));
        assert_eq!(s.pause(0, now), None, "19 ms is under its 20 ms share");
        s.charge(0, w, ms(1));
        assert_eq!(s.pause(0, now), Some(s.window_end(w)));
        assert_eq!(s.pause(1, now), None);
        let calm = Lanes::new(2, 2, Pressure::new()).shared.unwrap();
        calm.charge(0, w, ms(40));
        calm.charge(1, w, ms(1));
        assert_eq!(calm.pause(0, now), None, "not saturated: nobody waits");
    }

    #[test]
    fn a_lane_alone_or_beside_long_idle_lanes_is_never_held() {
        let s = saturated_lanes(3);
        let now = Instant::now() + WINDOW * 100;
        let w = s.window(now);
        s.charge(0, w, 1 << 40);
        assert_eq!(s.pause(0, now), None, "the others never ran");
        s.charge(1, w.saturating_sub(ACTIVE_WINDOWS + 1), 5);
        assert_eq!(s.pause(0, now), None, "lane 1 ran too long ago");
        s.charge(2, w.saturating_sub(ACTIVE_WINDOWS), 5);
        assert!(s.pause(0, now).is_some(), "lane 2 ran lately");
        assert!(Lanes::new(1, 2, Pressure::new()).shared.is_none());
    }

    #[test]
    fn counts_start_afresh_with_each_window() {
        let s = saturated_lanes(2);
        s.charge(0, 7, 5);
        s.charge(0, 7, 5);
        assert_eq!(s.used(0, 7), 10);
        s.charge(0, 8, 1);
        assert_eq!((s.used(0, 8), s.used(0, 7)), (1, 0));
        assert!(s.active(0, 8 + ACTIVE_WINDOWS));
        assert!(!s.active(0, 9 + ACTIVE_WINDOWS));
    }
}
