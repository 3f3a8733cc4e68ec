//! Cuts the run into one-second intervals. VUs hand over events tagged
//! with the interval they happened in; an interval is closed two seconds
//! after it ends (late buffers still count, in the oldest open interval),
//! folded into the total, and summarised as a row of the time series.
//! Closed intervals are what a cluster node will stream to its leader.

use super::{Event, Filters, Latency, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const INTERVAL: Duration = Duration::from_secs(1);

/// How long after its end an interval waits for stragglers.
const GRACE: u64 = 2;

/// One second of the run (or, early in a long cluster run, a minute),
/// summarised for charts and the JSON-lines series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Seconds since the run's clock started (end of the interval).
    pub t: u64,
    /// The seconds the row covers: 1, or 60 for the older part of a long
    /// cluster run, whose replicated series keeps minutes past ten.
    #[serde(default = "one_second", skip_serializing_if = "is_one_second")]
    pub secs: u64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub iterations_failed: u64,
    pub dropped_iterations: u64,
    /// VUs in an iteration when the interval was closed.
    pub vus: u64,
    pub latency_ms: Latency,
}

pub struct Collector {
    epoch: Instant,
    open: BTreeMap<u64, Metrics>,
    /// Intervals below this index are closed.
    closed_below: u64,
    total: Metrics,
    rows: Vec<Row>,
    /// Most busy VUs seen in each open interval.
    vus: BTreeMap<u64, u64>,
    /// Closed intervals not yet taken by a cluster node's metric stream
    /// (kept only when streaming is on).
    outbox: Option<Vec<Closed>>,
    /// The thresholds' tag filters, each fed its own series.
    filters: Filters,
}

/// A closed interval as a cluster node streams it to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Closed {
    pub idx: u64,
    pub vus: u64,
    pub metrics: Metrics,
}

impl Collector {
    pub fn new(epoch: Instant) -> Collector {
        Collector {
            epoch,
            open: BTreeMap::new(),
            closed_below: 0,
            total: Metrics::default(),
            rows: Vec::new(),
            vus: BTreeMap::new(),
            outbox: None,
            filters: Filters::from([]),
        }
    }

    /// Gives every filter a series of its own (see [`super::TagFilter`]).
    pub fn with_filters(mut self, filters: Filters) -> Self {
        self.filters = filters;
        self
    }

    /// Keeps every closed interval for [`take_closed`](Self::take_closed).
    pub fn streaming(mut self) -> Self {
        self.outbox = Some(Vec::new());
        self
    }

    /// Starts keeping closed intervals (for `--out`), if not already.
    pub fn keep_closed(&mut self) {
        self.outbox.get_or_insert_with(Vec::new);
    }

    /// The intervals closed since the last call (streaming collectors).
    pub fn take_closed(&mut self) -> Vec<Closed> {
        self.outbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The interval `at` falls in.
    pub fn interval_of(epoch: Instant, at: Instant) -> u64 {
        at.saturating_duration_since(epoch).as_secs()
    }

    /// Folds a VU's buffered events from interval `idx` in.
    pub fn apply(&mut self, idx: u64, scenario: &str, events: impl IntoIterator<Item = Event>) {
        let idx = idx.max(self.closed_below);
        let m = self.open.entry(idx).or_default();
        for e in events {
            if !self.filters.is_empty() {
                m.apply_tagged(&self.filters, scenario, &e);
            }
            m.apply(scenario, e);
        }
    }

    /// Samples the busy-VU gauge; an interval's row shows its highest sample.
    pub fn observe_vus(&mut self, now: Instant, busy: u64) {
        let v = self
            .vus
            .entry(Self::interval_of(self.epoch, now))
            .or_default();
        *v = (*v).max(busy);
    }

    /// Closes every interval that ended more than the grace period before
    /// `now`; returns them in order, for streaming.
    pub fn close_due(&mut self, now: Instant) -> Vec<(u64, Metrics)> {
        let current = Self::interval_of(self.epoch, now);
        self.close_below(current.saturating_sub(GRACE))
    }

    /// Closes everything (the run is over).
    pub fn close_all(&mut self) -> Vec<(u64, Metrics)> {
        let last = self
            .open
            .keys()
            .chain(self.vus.keys())
            .max()
            .map_or(self.closed_below, |k| k + 1);
        self.close_below(last)
    }

    fn close_below(&mut self, below: u64) -> Vec<(u64, Metrics)> {
        let mut closed = Vec::new();
        while self.closed_below < below {
            let idx = self.closed_below;
            let m = self.open.remove(&idx).unwrap_or_default();
            let vus = self.vus.remove(&idx).unwrap_or(0);
            self.total.merge(&m);
            self.rows.push(row(idx, &m, vus));
            if let Some(out) = &mut self.outbox {
                out.push(Closed {
                    idx,
                    vus,
                    metrics: m.clone(),
                });
            }
            closed.push((idx, m));
            self.closed_below += 1;
        }
        closed
    }

    /// Takes a second closed elsewhere (a cluster run's merged series, as
    /// the operator mirrors it for its dashboard and outputs) as if it had
    /// closed here. Seconds must come in order; one already taken is
    /// ignored.
    pub fn absorb(&mut self, c: Closed) {
        if c.idx < self.closed_below {
            return;
        }
        self.closed_below = c.idx + 1;
        self.total.merge(&c.metrics);
        self.rows.push(row(c.idx, &c.metrics, c.vus));
        if let Some(out) = &mut self.outbox {
            out.push(c);
        }
    }

    /// Takes a minute closed elsewhere (the folded start of a long
    /// cluster run): counted and charted, but not streamed, since outputs
    /// take seconds.
    pub fn absorb_minute(&mut self, c: Closed, secs: u64) {
        let end = (c.idx + 1) * secs;
        if end <= self.closed_below {
            return;
        }
        self.closed_below = end;
        self.total.merge(&c.metrics);
        let mut r = row(end - 1, &c.metrics, c.vus);
        r.secs = secs;
        self.rows.push(r);
    }

    /// Everything so far, closed and open: for live views and thresholds.
    pub fn cumulative(&self) -> Metrics {
        let mut m = self.total.clone();
        for open in self.open.values() {
            m.merge(open);
        }
        m
    }

    /// The closed total; equal to [`cumulative`](Self::cumulative) after `close_all`.
    pub fn total(&self) -> &Metrics {
        &self.total
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

fn one_second() -> u64 {
    1
}

fn is_one_second(secs: &u64) -> bool {
    *secs == 1
}

/// The time-series row of interval `idx`.
pub fn row(idx: u64, m: &Metrics, vus: u64) -> Row {
    let mut latency = super::stats::histogram();
    for r in m.requests.values() {
        latency.add(&r.latency).expect("histograms share bounds");
    }
    let scenarios = m.scenarios.values();
    Row {
        t: idx + 1,
        secs: 1,
        requests: m.total_requests(),
        failed: m.total_failed(),
        iterations: scenarios.clone().map(|s| s.iterations).sum(),
        iterations_failed: scenarios.clone().map(|s| s.failed).sum(),
        dropped_iterations: scenarios.map(|s| s.dropped).sum(),
        vus,
        latency_ms: Latency::of_micros(&latency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ms: u64) -> Event {
        Event::Request {
            name: "r".into(),
            status: Some(200),
            error: None,
            expected: Some(true),
            micros: ms * 1000,
            bytes: 1,
            sent: 0,
            method: "GET",
            timings: Default::default(),
            ctx: Default::default(),
        }
    }

    #[test]
    fn intervals_close_after_grace_and_add_up_to_the_total() {
        let epoch = Instant::now();
        let mut c = Collector::new(epoch);
        c.apply(0, "s", [req(1), req(2)]);
        c.apply(1, "s", [req(3)]);
        c.apply(3, "s", [req(4)]);
        c.observe_vus(epoch, 7);
        let closed = c.close_due(epoch + Duration::from_millis(3500));
        assert_eq!(closed.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(c.rows()[0].requests, 2);
        assert_eq!(c.rows()[0].vus, 7);
        // A straggler for a closed interval lands in the oldest open one.
        c.apply(0, "s", [req(5)]);
        assert_eq!(c.cumulative().total_requests(), 5);
        c.close_all();
        assert_eq!(
            c.rows().iter().map(|r| r.requests).collect::<Vec<_>>(),
            vec![2, 2, 0, 1]
        );
        assert_eq!(c.total().total_requests(), 5);
    }
}
