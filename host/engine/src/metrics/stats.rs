use super::wire::{entries, hist};
use super::{Event, FailureKind};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latencies are kept in microseconds, 1 µs to 1 h, 3 significant digits.
pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Distinct iteration error messages kept per scenario; more are counted
/// under their kind only, so a message with an id in it cannot eat memory.
const MAX_MESSAGES: usize = 50;

/// Distinct names kept per kind of series (requests, checks, counters,
/// trends). A plugin that puts ids into names gets the rest folded into
/// one series instead of growing the host's memory without bound: each
/// series holds a ~190 KiB histogram per open interval and in the total.
pub const MAX_SERIES: usize = 200;
pub const OVERFLOW_NAME: &str = "(other names)";

/// Longest name or message kept, in characters.
const MAX_TEXT: usize = 300;

fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// The key a new series goes under: its own while there is room.
fn series<V>(
    map: &BTreeMap<(String, String), V>,
    scenario: &str,
    name: String,
) -> (String, String) {
    let key = (scenario.to_owned(), clip(name));
    if map.len() >= MAX_SERIES && !map.contains_key(&key) {
        (scenario.to_owned(), OVERFLOW_NAME.to_owned())
    } else {
        key
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestStats {
    #[serde(with = "hist")]
    pub latency: Histogram<u64>,
    pub count: u64,
    pub failed: u64,
    pub bytes: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            latency: histogram(),
            count: 0,
            failed: 0,
            bytes: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl RequestStats {
    pub fn merge(&mut self, o: &RequestStats) {
        self.latency
            .add(&o.latency)
            .expect("histograms share bounds");
        self.count += o.count;
        self.failed += o.failed;
        self.bytes += o.bytes;
        add_all(&mut self.statuses, &o.statuses);
        add_all(&mut self.errors, &o.errors);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckStats {
    pub passes: u64,
    pub fails: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrendStats {
    /// Samples scaled by 1000 and clamped at 0, for percentiles.
    #[serde(with = "hist")]
    pub scaled: Histogram<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl TrendStats {
    pub fn merge(&mut self, o: &TrendStats) {
        self.scaled.add(&o.scaled).expect("histograms share bounds");
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

impl Default for TrendStats {
    fn default() -> Self {
        TrendStats {
            scaled: histogram(),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioStats {
    pub iterations: u64,
    pub failed: u64,
    #[serde(with = "entries")]
    pub failures: BTreeMap<FailureKind, u64>,
    pub messages: BTreeMap<String, u64>,
    pub init_failed: u64,
    pub init_messages: BTreeMap<String, u64>,
    #[serde(with = "hist")]
    pub duration: Histogram<u64>,
    pub dropped: u64,
}

impl Default for ScenarioStats {
    fn default() -> Self {
        ScenarioStats {
            iterations: 0,
            failed: 0,
            failures: BTreeMap::new(),
            messages: BTreeMap::new(),
            init_failed: 0,
            init_messages: BTreeMap::new(),
            duration: histogram(),
            dropped: 0,
        }
    }
}

/// Everything measured, keyed by scenario and then by name. It is also
/// what nodes send their leader, so it serializes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(with = "entries")]
    pub requests: BTreeMap<(String, String), RequestStats>,
    #[serde(with = "entries")]
    pub checks: BTreeMap<(String, String), CheckStats>,
    #[serde(with = "entries")]
    pub counters: BTreeMap<(String, String), f64>,
    #[serde(with = "entries")]
    pub trends: BTreeMap<(String, String), TrendStats>,
    pub scenarios: BTreeMap<String, ScenarioStats>,
}

/// A latency distribution summarised in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p999: f64,
    #[serde(rename = "p99.99")]
    pub p9999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of_micros(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Latency {
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p95: 0.0,
                p99: 0.0,
                p999: 0.0,
                p9999: 0.0,
                max: 0.0,
            };
        }
        Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            p9999: ms(h.value_at_quantile(0.9999)),
            max: ms(h.max()),
        }
    }
}

fn add_all<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn bump_limited(map: &mut BTreeMap<String, u64>, key: String) {
    if let Some(v) = map.get_mut(&key) {
        *v += 1;
    } else if map.len() < MAX_MESSAGES {
        map.insert(key, 1);
    }
}

impl Metrics {
    /// Folds one VU event into the totals.
    pub fn apply(&mut self, scenario: &str, event: Event) {
        match event {
            Event::Request {
                name,
                status,
                error,
                micros,
                bytes,
            } => {
                let key = series(&self.requests, scenario, name);
                let s = self.requests.entry(key).or_default();
                s.count += 1;
                s.bytes += bytes;
                s.latency.saturating_record(micros.max(1));
                if let Some(code) = status {
                    *s.statuses.entry(code).or_default() += 1;
                }
                if let Some(kind) = error {
                    *s.errors.entry(kind.to_owned()).or_default() += 1;
                }
                if error.is_some() || status.is_some_and(|c| c >= 400) {
                    s.failed += 1;
                }
            }
            Event::Check { name, passed } => {
                let key = series(&self.checks, scenario, name);
                let c = self.checks.entry(key).or_default();
                if passed { c.passes += 1 } else { c.fails += 1 }
            }
            Event::Counter { name, value } => {
                let key = series(&self.counters, scenario, name);
                *self.counters.entry(key).or_default() += value
            }
            Event::Trend { name, value } => {
                let key = series(&self.trends, scenario, name);
                let t = self.trends.entry(key).or_default();
                t.count += 1;
                t.sum += value;
                t.min = t.min.min(value);
                t.max = t.max.max(value);
                t.scaled.saturating_record((value.max(0.0) * 1000.0) as u64);
            }
            Event::Iteration { micros, failure } => {
                let s = self.scenarios.entry(scenario.to_owned()).or_default();
                s.iterations += 1;
                s.duration.saturating_record(micros.max(1));
                if let Some((kind, message)) = failure {
                    s.failed += 1;
                    *s.failures.entry(kind).or_default() += 1;
                    bump_limited(&mut s.messages, clip(message));
                }
            }
            Event::Dropped => {
                self.scenarios
                    .entry(scenario.to_owned())
                    .or_default()
                    .dropped += 1
            }
            Event::InitFailed { message } => {
                let s = self.scenarios.entry(scenario.to_owned()).or_default();
                s.init_failed += 1;
                bump_limited(&mut s.init_messages, clip(message));
            }
        }
    }

    /// Adds another node's or interval's metrics to these, exactly.
    pub fn merge(&mut self, o: &Metrics) {
        for ((s, n), v) in &o.requests {
            let key = series(&self.requests, s, n.clone());
            self.requests.entry(key).or_default().merge(v);
        }
        for ((s, n), v) in &o.checks {
            let key = series(&self.checks, s, n.clone());
            let c = self.checks.entry(key).or_default();
            c.passes += v.passes;
            c.fails += v.fails;
        }
        for ((s, n), v) in &o.counters {
            let key = series(&self.counters, s, n.clone());
            *self.counters.entry(key).or_default() += v;
        }
        for ((s, n), v) in &o.trends {
            let key = series(&self.trends, s, n.clone());
            self.trends.entry(key).or_default().merge(v);
        }
        for (k, v) in &o.scenarios {
            let s = self.scenarios.entry(k.clone()).or_default();
            s.iterations += v.iterations;
            s.failed += v.failed;
            s.init_failed += v.init_failed;
            s.dropped += v.dropped;
            add_all(&mut s.failures, &v.failures);
            for (m, n) in &v.messages {
                *s.messages.entry(m.clone()).or_default() += n;
            }
            for (m, n) in &v.init_messages {
                *s.init_messages.entry(m.clone()).or_default() += n;
            }
            s.duration
                .add(&v.duration)
                .expect("histograms share bounds");
        }
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().map(|r| r.count).sum()
    }

    pub fn total_failed(&self) -> u64 {
        self.requests.values().map(|r| r.failed).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, status: Option<u16>, micros: u64) -> Event {
        Event::Request {
            name: name.into(),
            status,
            error: status.is_none().then_some("connect"),
            micros,
            bytes: 10,
        }
    }

    #[test]
    fn failed_means_transport_error_or_4xx_5xx() {
        let mut m = Metrics::default();
        m.apply("s", req("a", Some(200), 1000));
        m.apply("s", req("a", Some(302), 1000));
        m.apply("s", req("a", Some(404), 1000));
        m.apply("s", req("a", None, 1000));
        let a = &m.requests[&("s".into(), "a".into())];
        assert_eq!((a.count, a.failed), (4, 2));
        assert_eq!(a.errors["connect"], 1);
        assert_eq!(a.statuses[&404], 1);
    }

    #[test]
    fn merging_equals_recording_everything_in_one_place() {
        let (mut a, mut b, mut all) = (Metrics::default(), Metrics::default(), Metrics::default());
        for i in 1..=1000u64 {
            let e = req("x", Some(200), i * 37 % 5000 + 1);
            if i % 3 == 0 {
                a.apply("s", e.clone())
            } else {
                b.apply("s", e.clone())
            }
            all.apply("s", e);
        }
        a.merge(&b);
        let key = ("s".to_string(), "x".to_string());
        assert_eq!(a.requests[&key].count, 1000);
        assert_eq!(
            Latency::of_micros(&a.requests[&key].latency),
            Latency::of_micros(&all.requests[&key].latency)
        );
    }

    #[test]
    fn invented_names_fold_into_one_series_and_long_texts_are_clipped() {
        let (mut a, mut b) = (Metrics::default(), Metrics::default());
        for i in 0..(MAX_SERIES as u64 + 500) {
            a.apply("s", req(&format!("/item/{i}"), Some(200), 10));
            b.apply(
                "s",
                Event::Check {
                    name: format!("check {i}"),
                    passed: true,
                },
            );
        }
        assert_eq!(a.requests.len(), MAX_SERIES + 1);
        assert_eq!(a.requests[&("s".into(), OVERFLOW_NAME.into())].count, 500);
        assert_eq!(a.total_requests(), MAX_SERIES as u64 + 500);
        // Merging respects the cap too.
        let mut total = Metrics::default();
        total.merge(&a);
        total.merge(&a);
        assert!(total.requests.len() <= MAX_SERIES + 1);
        assert_eq!(total.total_requests(), 2 * (MAX_SERIES as u64 + 500));
        let mut m = Metrics::default();
        m.apply(
            "s",
            Event::Iteration {
                micros: 1,
                failure: Some((FailureKind::Error, "x".repeat(1 << 20))),
            },
        );
        assert!(m.scenarios["s"].messages.keys().all(|k| k.len() < 400));
        assert_eq!(b.checks.len(), MAX_SERIES + 1);
    }

    #[test]
    fn distinct_messages_are_capped() {
        let mut m = Metrics::default();
        for i in 0..(MAX_MESSAGES as u64 + 20) {
            m.apply(
                "s",
                Event::Iteration {
                    micros: 5,
                    failure: Some((FailureKind::Error, format!("id {i}"))),
                },
            );
        }
        let s = &m.scenarios["s"];
        assert_eq!(s.failed, MAX_MESSAGES as u64 + 20);
        assert_eq!(s.messages.len(), MAX_MESSAGES);
    }
}
