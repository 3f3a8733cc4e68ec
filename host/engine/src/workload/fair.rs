//! Fair shares of the generator's CPU between scenarios.
//!
//! Every VU is a task on one runtime, and the runtime is fair between
//! tasks, not scenarios: twenty VUs spinning in one scenario leave the
//! VUs of another a small slice of the workers, and an arrival-rate
//! scenario then drops most of its starts. So each scenario's VU tasks run
//! under a [`Lane`] that charges the time spent polling them to the
//! scenario, and a lane that has used its share of the current window
//! parks its tasks until the next one. A scenario alone, or beside
//! scenarios that have not run for a while, is never held back.
//!
//! A lane's share is what the others left in the last windows, less a
//! reserve, and never less than an even split; while the generator is
//! saturated (tasks wait for a worker, see [`super::pressure`]) it is the
//! even split. The reserve is what lets a starved scenario show that it
//! wants more: a scenario kept from the workers uses little because it
//! is kept, so its use alone says nothing of its need. With the reserve
//! the workers also go idle in every window, and an idle worker is what
//! reads the timers and sockets: a runtime whose workers never idle looks
//! at them only every few dozen polls. Shares only while saturated, with
//! no cap otherwise, did not work: the lag probe is woken by those same
//! timers, so it saw the saturation late and lost it as soon as the
//! shares worked. A cap alone did not either: the workers are not the
//! cores (another process, or a debug build, takes part of them), so the
//! capacity it assumes may not be there.

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

/// The part of each window no lane over an even split may take: room
/// for the others to grow into, and for the workers to idle.
const RESERVE_DIVISOR: u64 = 8;

/// A lane that ran within this many windows still takes its share.
const ACTIVE_WINDOWS: u64 = 10;

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
    /// What the lane used in the window before `window`.
    before: AtomicU64,
}

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
        let last = u.window.swap(w, Ordering::Relaxed);
        if last == w {
            u.used.fetch_add(ns, Ordering::Relaxed);
        } else {
            // The first charge of a new window starts its count (racing
            // chargers may lose a little; the share is an estimate).
            let was = u.used.swap(ns, Ordering::Relaxed);
            let before = if last + 1 == w { was } else { 0 };
            u.before.store(before, Ordering::Relaxed);
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

    /// What lane `idx` takes lately: the more of window `w` so far and
    /// the one before it.
    fn recent(&self, idx: usize, w: u64) -> u64 {
        let u = &self.lanes[idx];
        let seen = u.window.load(Ordering::Relaxed);
        let used = u.used.load(Ordering::Relaxed);
        match w.saturating_sub(seen) {
            0 => used.max(u.before.load(Ordering::Relaxed)),
            1 => used,
            _ => 0,
        }
    }

    /// Whether lane `idx` has run lately.
    fn active(&self, idx: usize, w: u64) -> bool {
        let seen = self.lanes[idx].window.load(Ordering::Relaxed);
        self.lanes[idx].used.load(Ordering::Relaxed) > 0 && w.saturating_sub(seen) <= ACTIVE_WINDOWS
    }

    /// Lane `idx`'s share of window `w`; `None` when no other lane ran lately.
    fn share(&self, idx: usize, w: u64) -> Option<u64> {
        let others = (0..self.lanes.len()).filter(|&i| i != idx && self.active(i, w));
        let (count, taken) = others.fold((0, 0), |(n, t), i| (n + 1, t + self.recent(i, w)));
        if count == 0 {
            return None;
        }
        let even = self.capacity_ns / (count + 1);
        if self.pressure.saturated() {
            return Some(even);
        }
        let left = self
            .capacity_ns
            .saturating_sub(self.capacity_ns / RESERVE_DIVISOR)
            .saturating_sub(taken);
        Some(even.max(left))
    }

    /// Until when lane `idx` must wait, if it has used its share of the
    /// current window.
    fn pause(&self, idx: usize, now: Instant) -> Option<Instant> {
        let w = self.window(now);
        let share = self.share(idx, w)?;
        (self.used(idx, w) >= share).then(|| self.window_end(w))
    }
}

/// The longest a VU should keep a worker between iterations that never
/// wait: tokio's own budget counts operations, and in a debug build 128
/// failing iterations take a tenth of a second.
const SLICE: Duration = Duration::from_millis(1);

thread_local! {
    /// When the lane's poll now running on this thread began.
    static POLL_BEGAN: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Called by a VU between iterations: gives the worker back once this
/// poll has run for a [`SLICE`], and otherwise when tokio's budget says so.
pub async fn breathe() {
    if POLL_BEGAN.get().is_some_and(|t| t.elapsed() >= SLICE) {
        tokio::task::yield_now().await;
    } else {
        tokio::task::consume_budget().await;
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
        let outer = POLL_BEGAN.replace(Some(started));
        let out = this.inner.poll(cx);
        POLL_BEGAN.set(outer);
        let ns = started.elapsed().as_nanos() as u64;
        shared.charge(this.lane.idx, shared.window(started), ns);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Two workers: 40 ms a window, 5 ms of it the reserve.
    fn lanes(n: usize) -> Arc<Shared> {
        Lanes::new(n, 2, Pressure::new()).shared.unwrap()
    }

    #[test]
    fn a_lane_takes_what_the_others_leave_less_the_reserve() {
        let s = lanes(2);
        let now = Instant::now();
        let w = s.window(now);
        s.charge(1, w, MS);
        s.charge(0, w, 33 * MS);
        assert_eq!(s.pause(0, now), None, "33 ms is under 40 - 5 - 1");
        s.charge(0, w, MS);
        assert_eq!(s.pause(0, now), Some(s.window_end(w)));
        assert_eq!(s.pause(1, now), None, "lane 1 is far under its share");
    }

    #[test]
    fn while_saturated_the_split_is_even() {
        let s = lanes(2);
        let now = Instant::now();
        let w = s.window(now);
        s.charge(1, w, MS);
        s.charge(0, w, 20 * MS);
        assert_eq!(s.pause(0, now), None);
        s.pressure.mark(now);
        assert_eq!(
            s.pause(0, now),
            Some(s.window_end(w)),
            "20 ms is half of 40"
        );
    }

    #[test]
    fn a_lane_never_gets_less_than_an_even_split() {
        let s = lanes(2);
        let now = Instant::now();
        let w = s.window(now);
        s.charge(1, w, 30 * MS);
        s.charge(0, w, 19 * MS);
        assert_eq!(s.pause(0, now), None, "19 ms is under half of 40");
        s.charge(0, w, MS);
        assert!(s.pause(0, now).is_some());
    }

    #[test]
    fn what_a_lane_took_in_the_window_before_still_counts() {
        let s = lanes(2);
        s.charge(1, 7, 20 * MS);
        s.charge(1, 8, MS);
        // Lane 1 took 20 ms in window 7, so lane 0's share in 8 is 15 ms.
        s.charge(0, 8, 15 * MS);
        assert_eq!(s.share(0, 8), Some(20 * MS), "the even split is the floor");
        assert_eq!(s.recent(1, 8), 20 * MS);
        assert_eq!(s.recent(1, 9), MS, "window 7 is two back from 9");
        assert_eq!(s.recent(1, 10), 0);
    }

    #[test]
    fn a_lane_alone_or_beside_long_idle_lanes_is_never_held() {
        let s = lanes(3);
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
        let s = lanes(2);
        s.charge(0, 7, 5);
        s.charge(0, 7, 5);
        assert_eq!(s.used(0, 7), 10);
        s.charge(0, 8, 1);
        assert_eq!((s.used(0, 8), s.used(0, 7)), (1, 0));
        assert!(s.active(0, 8 + ACTIVE_WINDOWS));
        assert!(!s.active(0, 9 + ACTIVE_WINDOWS));
    }
}
