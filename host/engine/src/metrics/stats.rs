use super::wire::{entries, hist, phase_hist};
use super::{Context, Event, FailureKind, TagFilter};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latencies are kept in microseconds, 1 µs to 1 h, 3 significant digits.
pub const LATENCY_BOUNDS: (u64, u64, u8) = (1, 3_600_000_000, 3);
/// Request phases at 2 significant digits (1%): six per scenario and
/// interval at the precision of latencies would allocate and clear over a
/// megabyte every second.
pub const PHASE_BOUNDS: (u64, u64, u8) = (1, 3_600_000_000, 2);

/// A latency histogram. Like every histogram here it starts as small as
/// its lowest values need and grows as larger ones arrive (values are
/// clamped to the kind's bounds as they are recorded, see [`record`]): one
/// allocated at its full range is 188 KiB, and every scenario and name
/// has one per second, which a node makes, seals and sends, and a leader
/// merges, mostly to walk and clear zeros.
pub fn histogram() -> Histogram<u64> {
    growing(LATENCY_BOUNDS)
}

pub fn phase_histogram() -> Histogram<u64> {
    growing(PHASE_BOUNDS)
}

fn growing((low, _, sigfig): (u64, u64, u8)) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(low, 2 * low, sigfig)
        .expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// Records a value, clamped to the highest trackable one as a histogram
/// of the full range saturates (latency and phase bounds share it).
/// `saturating_record` would clamp to a growing histogram's current top
/// instead of growing it.
fn record(h: &mut Histogram<u64>, value: u64) {
    let value = value.min(LATENCY_BOUNDS.1);
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// Distinct iteration error messages kept per scenario; more are counted
/// under their kind only, so a message with an id in it cannot eat memory.
const MAX_MESSAGES: usize = 50;

/// Distinct names kept per kind of series (requests, checks, counters,
/// trends). A plugin that puts ids into names gets the rest folded into
/// one series instead of growing the host's memory without bound: each
/// series holds a histogram (up to 188 KiB) per open interval and in the
/// total.
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
    /// Bytes read from the socket, under any TLS: k6's `data_received`.
    pub bytes: u64,
    /// Bytes written to it: k6's `data_sent`.
    #[serde(default)]
    pub sent: u64,
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
            sent: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl RequestStats {
    /// Failed means not expected: by default a transport error or a
    /// status outside 200–399 (see [`super::Expected`]). Bytes are
    /// (received, sent).
    fn record(
        &mut self,
        status: Option<u16>,
        error: Option<&str>,
        expected: Option<bool>,
        micros: u64,
        (bytes, sent): (u64, u64),
    ) {
        self.count += 1;
        self.bytes += bytes;
        self.sent += sent;
        record(&mut self.latency, micros.max(1));
        if let Some(code) = status {
            *self.statuses.entry(code).or_default() += 1;
        }
        if let Some(kind) = error {
            *self.errors.entry(kind.to_owned()).or_default() += 1;
        }
        if expected == Some(false) {
            self.failed += 1;
        }
    }

    pub fn merge(&mut self, o: &RequestStats) {
        self.latency
            .add(&o.latency)
            .expect("histograms share bounds");
        self.count += o.count;
        self.failed += o.failed;
        self.bytes += o.bytes;
        self.sent += o.sent;
        add_all(&mut self.statuses, &o.statuses);
        add_all(&mut self.errors, &o.errors);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckStats {
    pub passes: u64,
    pub fails: u64,
}

impl CheckStats {
    fn add(&mut self, passed: bool) {
        if passed {
            self.passes += 1
        } else {
            self.fails += 1
        }
    }

    pub fn merge(&mut self, o: &CheckStats) {
        self.passes += o.passes;
        self.fails += o.fails;
    }

    pub fn rate(&self) -> Option<f64> {
        let n = self.passes + self.fails;
        (n > 0).then(|| self.passes as f64 / n as f64)
    }
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
    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        record(&mut self.scaled, (value.max(0.0) * 1000.0) as u64);
    }

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

/// k6's rate: the share of samples that were true.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RateStats {
    pub hits: u64,
    pub total: u64,
}

impl RateStats {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += u64::from(hit);
    }

    pub fn merge(&mut self, o: &RateStats) {
        self.hits += o.hits;
        self.total += o.total;
    }

    pub fn rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }
}

/// k6's gauge: the last value set, and the extremes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GaugeStats {
    pub value: f64,
    pub min: f64,
    pub max: f64,
    /// When the value was set (ms since the epoch, as recorded): merging
    /// nodes' gauges keeps the latest value.
    pub at_ms: u64,
}

impl GaugeStats {
    fn new(value: f64) -> GaugeStats {
        GaugeStats {
            value,
            min: value,
            max: value,
            at_ms: now_ms(),
        }
    }

    fn set(&mut self, value: f64) {
        self.value = value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.at_ms = now_ms();
    }

    /// The same gauge name in several scenarios: the values add up and
    /// the extremes widen (for views over scenarios, not node merges).
    pub fn sum(&mut self, o: &GaugeStats) {
        self.value += o.value;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    fn merge(&mut self, o: &GaugeStats) {
        if o.at_ms >= self.at_ms {
            self.value = o.value;
            self.at_ms = o.at_ms;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// k6's request phases (`http_req_blocked` ... `http_req_receiving`), in
/// microseconds. Kept per scenario rather than per name: six histograms
/// for each of hundreds of names would cost more than the names do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phases {
    #[serde(with = "phase_hist")]
    pub blocked: Histogram<u64>,
    #[serde(with = "phase_hist")]
    pub connecting: Histogram<u64>,
    #[serde(with = "phase_hist")]
    pub tls_handshaking: Histogram<u64>,
    #[serde(with = "phase_hist")]
    pub sending: Histogram<u64>,
    #[serde(with = "phase_hist")]
    pub waiting: Histogram<u64>,
    #[serde(with = "phase_hist")]
    pub receiving: Histogram<u64>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            blocked: phase_histogram(),
            connecting: phase_histogram(),
            tls_handshaking: phase_histogram(),
            sending: phase_histogram(),
            waiting: phase_histogram(),
            receiving: phase_histogram(),
        }
    }
}

impl Phases {
    /// The metric names, in the order a request goes through them.
    pub const NAMES: [&str; 6] = [
        "http_req_blocked",
        "http_req_connecting",
        "http_req_tls_handshaking",
        "http_req_sending",
        "http_req_waiting",
        "http_req_receiving",
    ];

    fn all_mut(&mut self) -> [&mut Histogram<u64>; 6] {
        [
            &mut self.blocked,
            &mut self.connecting,
            &mut self.tls_handshaking,
            &mut self.sending,
            &mut self.waiting,
            &mut self.receiving,
        ]
    }

    /// The histogram of a phase by its metric name.
    pub fn get(&self, metric: &str) -> Option<&Histogram<u64>> {
        let all = [
            &self.blocked,
            &self.connecting,
            &self.tls_handshaking,
            &self.sending,
            &self.waiting,
            &self.receiving,
        ];
        Self::NAMES
            .iter()
            .position(|n| *n == metric)
            .map(|i| all[i])
    }

    /// A phase that did not happen (a reused connection's connect) is a
    /// zero sample, as in k6, so every phase counts every answered request.
    fn record(&mut self, t: &super::PhaseMicros) {
        for (h, v) in self.all_mut().into_iter().zip(t) {
            record(h, u64::from(*v));
        }
    }

    pub fn merge(&mut self, o: &Phases) {
        let others = [
            &o.blocked,
            &o.connecting,
            &o.tls_handshaking,
            &o.sending,
            &o.waiting,
            &o.receiving,
        ];
        for (h, other) in self.all_mut().into_iter().zip(others) {
            h.add(other).expect("histograms share bounds");
        }
    }
}

/// One group's requests, checks and run times (`group_duration`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupStats {
    pub requests: RequestStats,
    pub checks: CheckStats,
    /// The same checks by name: k6's group tree (`handleSummary()`'s
    /// `root_group`) lists each check under the group it ran in.
    #[serde(default)]
    pub named_checks: BTreeMap<String, CheckStats>,
    #[serde(with = "hist")]
    pub duration: Histogram<u64>,
}

impl Default for GroupStats {
    fn default() -> Self {
        GroupStats {
            requests: RequestStats::default(),
            checks: CheckStats::default(),
            named_checks: BTreeMap::new(),
            duration: histogram(),
        }
    }
}

impl GroupStats {
    fn merge(&mut self, o: &GroupStats) {
        self.requests.merge(&o.requests);
        self.checks.merge(&o.checks);
        for (name, c) in &o.named_checks {
            self.named_checks.entry(name.clone()).or_default().merge(c);
        }
        self.duration
            .add(&o.duration)
            .expect("histograms share bounds");
    }
}

/// The samples one tag filter let through, in whichever kinds it is about.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tagged {
    #[serde(default)]
    pub requests: Option<Box<RequestStats>>,
    #[serde(default)]
    pub phases: Option<Box<Phases>>,
    #[serde(default)]
    pub checks: CheckStats,
    #[serde(default)]
    pub trend: Option<Box<TrendStats>>,
    #[serde(default)]
    pub counter: f64,
    #[serde(default)]
    pub rate: RateStats,
    #[serde(default)]
    pub gauge: Option<GaugeStats>,
}

impl Tagged {
    fn merge(&mut self, o: &Tagged) {
        if let Some(r) = &o.requests {
            self.requests.get_or_insert_default().merge(r);
        }
        if let Some(p) = &o.phases {
            self.phases.get_or_insert_default().merge(p);
        }
        self.checks.merge(&o.checks);
        if let Some(t) = &o.trend {
            self.trend.get_or_insert_default().merge(t);
        }
        self.counter += o.counter;
        self.rate.merge(&o.rate);
        match (&mut self.gauge, &o.gauge) {
            (Some(g), Some(og)) => g.merge(og),
            (None, Some(og)) => self.gauge = Some(og.clone()),
            _ => {}
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
    /// Of `dropped`, those skipped while the generator was saturated.
    #[serde(default)]
    pub dropped_saturated: u64,
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
            dropped_saturated: 0,
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
    #[serde(default, with = "entries")]
    pub gauges: BTreeMap<(String, String), GaugeStats>,
    #[serde(default, with = "entries")]
    pub rates: BTreeMap<(String, String), RateStats>,
    pub scenarios: BTreeMap<String, ScenarioStats>,
    /// Keyed by scenario and group path (`::a::b`).
    #[serde(default, with = "entries")]
    pub groups: BTreeMap<(String, String), GroupStats>,
    /// Request phases per scenario.
    #[serde(default)]
    pub phases: BTreeMap<String, Phases>,
    /// Series of the thresholds' tag filters, by the filter's key.
    #[serde(default)]
    pub tagged: BTreeMap<String, Tagged>,
    /// The generator's own load (summed over a cluster's nodes).
    #[serde(default)]
    pub generator: GeneratorStats,
}

/// One second of the generator's own load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorSecond {
    /// The latest a task was polled after it was due, in the second.
    pub lag_max_us: u64,
    /// Process CPU time over the second, per mille of all cores.
    pub cpu_permille: u64,
}

/// A scheduling lag this long in a second marks it saturated.
const SATURATED_LAG_US: u64 = 10_000;
/// So does CPU at or above this share of the cores.
const SATURATED_CPU_PERMILLE: u64 = 950;

impl GeneratorSecond {
    /// Whether the generator, not the target, may have set the pace.
    pub fn saturated(&self) -> bool {
        self.lag_max_us >= SATURATED_LAG_US || self.cpu_permille >= SATURATED_CPU_PERMILLE
    }
}

/// The generator's seconds summed up: over a cluster, node-seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorStats {
    pub seconds: u64,
    pub saturated_seconds: u64,
    pub lag_max_us: u64,
    pub cpu_max_permille: u64,
    pub cpu_sum_permille: u64,
}

impl GeneratorStats {
    fn add(&mut self, s: GeneratorSecond) {
        self.seconds += 1;
        self.saturated_seconds += u64::from(s.saturated());
        self.lag_max_us = self.lag_max_us.max(s.lag_max_us);
        self.cpu_max_permille = self.cpu_max_permille.max(s.cpu_permille);
        self.cpu_sum_permille += s.cpu_permille;
    }

    fn merge(&mut self, o: &GeneratorStats) {
        self.seconds += o.seconds;
        self.saturated_seconds += o.saturated_seconds;
        self.lag_max_us = self.lag_max_us.max(o.lag_max_us);
        self.cpu_max_permille = self.cpu_max_permille.max(o.cpu_max_permille);
        self.cpu_sum_permille += o.cpu_sum_permille;
    }
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
                expected,
                micros,
                bytes,
                sent,
                timings,
                ctx,
                ..
            } => {
                let key = series(&self.requests, scenario, name);
                self.requests.entry(key).or_default().record(
                    status,
                    error,
                    expected,
                    micros,
                    (bytes, sent),
                );
                // A request that got no response has no phases to tell.
                if status.is_some() {
                    // Looked up before inserting: no key allocated per request.
                    match self.phases.get_mut(scenario) {
                        Some(p) => p.record(&timings),
                        None => self
                            .phases
                            .entry(scenario.to_owned())
                            .or_default()
                            .record(&timings),
                    }
                }
                if !ctx.group().is_empty() {
                    self.group(scenario, ctx.group()).requests.record(
                        status,
                        error,
                        expected,
                        micros,
                        (bytes, sent),
                    );
                }
            }
            Event::Check { name, passed, ctx } => {
                if !ctx.group().is_empty() {
                    let g = self.group(scenario, ctx.group());
                    g.checks.add(passed);
                    match g.named_checks.get_mut(name.as_str()) {
                        Some(c) => c.add(passed),
                        None => g.named_checks.entry(name.clone()).or_default().add(passed),
                    }
                }
                let key = series(&self.checks, scenario, name);
                self.checks.entry(key).or_default().add(passed);
            }
            Event::Counter { name, value, .. } => {
                let key = series(&self.counters, scenario, name);
                *self.counters.entry(key).or_default() += value
            }
            Event::Trend { name, value, .. } => {
                let key = series(&self.trends, scenario, name);
                self.trends.entry(key).or_default().add(value);
            }
            Event::Gauge { name, value, .. } => {
                let key = series(&self.gauges, scenario, name);
                match self.gauges.get_mut(&key) {
                    Some(g) => g.set(value),
                    None => {
                        self.gauges.insert(key, GaugeStats::new(value));
                    }
                }
            }
            Event::Rate { name, hit, .. } => {
                let key = series(&self.rates, scenario, name);
                self.rates.entry(key).or_default().add(hit);
            }
            Event::Group { group, micros } => {
                record(&mut self.group(scenario, &group).duration, micros.max(1));
            }
            Event::Iteration { micros, failure } => {
                let s = self.scenarios.entry(scenario.to_owned()).or_default();
                s.iterations += 1;
                record(&mut s.duration, micros.max(1));
                if let Some((kind, message)) = failure {
                    s.failed += 1;
                    *s.failures.entry(kind).or_default() += 1;
                    bump_limited(&mut s.messages, clip(message));
                }
            }
            Event::Dropped { saturated } => {
                let s = self.scenarios.entry(scenario.to_owned()).or_default();
                s.dropped += 1;
                s.dropped_saturated += u64::from(saturated);
            }
            Event::Generator(second) => self.generator.add(second),
            Event::InitFailed { message } => {
                let s = self.scenarios.entry(scenario.to_owned()).or_default();
                s.init_failed += 1;
                bump_limited(&mut s.init_messages, clip(message));
            }
        }
    }

    fn group(&mut self, scenario: &str, group: &str) -> &mut GroupStats {
        let key = series(&self.groups, scenario, group.to_owned());
        self.groups.entry(key).or_default()
    }

    /// Feeds `event` to the series of every filter it passes.
    pub fn apply_tagged(&mut self, filters: &[TagFilter], scenario: &str, event: &Event) {
        for f in filters {
            if !f.admits(scenario) {
                continue;
            }
            if let Some(sample) = Sample::of(f, event) {
                sample.add_to(self.tagged.entry(f.key.clone()).or_default());
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
            self.checks.entry(key).or_default().merge(v);
        }
        for ((s, n), v) in &o.counters {
            let key = series(&self.counters, s, n.clone());
            *self.counters.entry(key).or_default() += v;
        }
        for ((s, n), v) in &o.trends {
            let key = series(&self.trends, s, n.clone());
            self.trends.entry(key).or_default().merge(v);
        }
        for ((s, n), v) in &o.gauges {
            let key = series(&self.gauges, s, n.clone());
            match self.gauges.get_mut(&key) {
                Some(g) => g.merge(v),
                None => {
                    self.gauges.insert(key, v.clone());
                }
            }
        }
        for ((s, n), v) in &o.rates {
            let key = series(&self.rates, s, n.clone());
            self.rates.entry(key).or_default().merge(v);
        }
        for ((s, g), v) in &o.groups {
            self.group(s, g).merge(v);
        }
        for (s, v) in &o.phases {
            self.phases.entry(s.clone()).or_default().merge(v);
        }
        for (k, v) in &o.tagged {
            self.tagged.entry(k.clone()).or_default().merge(v);
        }
        self.generator.merge(&o.generator);
        for (k, v) in &o.scenarios {
            let s = self.scenarios.entry(k.clone()).or_default();
            s.iterations += v.iterations;
            s.failed += v.failed;
            s.init_failed += v.init_failed;
            s.dropped += v.dropped;
            s.dropped_saturated += v.dropped_saturated;
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

/// What a filter takes from one event, once it has let it through.
enum Sample<'a> {
    Request(&'a Event),
    Check(bool),
    Counter(f64),
    Trend(f64),
    Gauge(f64),
    Rate(bool),
}

impl<'a> Sample<'a> {
    fn of(f: &TagFilter, event: &'a Event) -> Option<Sample<'a>> {
        use std::borrow::Cow;
        let common = |ctx: &'a Context, k: &str| -> Option<Cow<'a, str>> {
            match k {
                "group" => Some(Cow::Borrowed(ctx.group())),
                _ => ctx.tag(k).map(Cow::Borrowed),
            }
        };
        let (sample, passes) = match event {
            Event::Request {
                name,
                method,
                status,
                error,
                expected,
                ctx,
                ..
            } if f.on_requests() => {
                let passes = f.matches(|k| match k {
                    "name" => Some(Cow::Borrowed(name.as_str())),
                    "method" => Some(Cow::Borrowed(*method)),
                    "status" => Some(Cow::Owned(status.map_or(String::new(), |s| s.to_string()))),
                    "error" => error.map(Cow::Borrowed),
                    "expected_response" => {
                        expected.map(|e| Cow::Borrowed(if e { "true" } else { "false" }))
                    }
                    k => common(ctx, k),
                });
                (Sample::Request(event), passes)
            }
            Event::Check { name, passed, ctx } if f.metric == "checks" => {
                let passes = f.matches(|k| match k {
                    "check" | "name" => Some(Cow::Borrowed(name.as_str())),
                    k => common(ctx, k),
                });
                (Sample::Check(*passed), passes)
            }
            Event::Counter { name, value, ctx } if f.metric == *name => {
                (Sample::Counter(*value), custom(f, ctx, common))
            }
            Event::Trend { name, value, ctx } if f.metric == *name => {
                (Sample::Trend(*value), custom(f, ctx, common))
            }
            Event::Gauge { name, value, ctx } if f.metric == *name => {
                (Sample::Gauge(*value), custom(f, ctx, common))
            }
            Event::Rate { name, hit, ctx } if f.metric == *name => {
                (Sample::Rate(*hit), custom(f, ctx, common))
            }
            _ => return None,
        };
        passes.then_some(sample)
    }

    fn add_to(self, t: &mut Tagged) {
        match self {
            Sample::Request(Event::Request {
                status,
                error,
                expected,
                micros,
                bytes,
                sent,
                timings,
                ..
            }) => {
                let r = t.requests.get_or_insert_default();
                r.record(*status, *error, *expected, *micros, (*bytes, *sent));
                if status.is_some() {
                    t.phases.get_or_insert_default().record(timings);
                }
            }
            Sample::Request(_) => {}
            Sample::Check(passed) => t.checks.add(passed),
            Sample::Counter(v) => t.counter += v,
            Sample::Trend(v) => t.trend.get_or_insert_default().add(v),
            Sample::Gauge(v) => match &mut t.gauge {
                Some(g) => g.set(v),
                None => t.gauge = Some(GaugeStats::new(v)),
            },
            Sample::Rate(hit) => t.rate.add(hit),
        }
    }
}

/// A custom metric's sample passes when its group and tags match (the
/// scenario was checked before).
fn custom<'a>(
    f: &TagFilter,
    ctx: &'a Context,
    common: impl Fn(&'a Context, &str) -> Option<std::borrow::Cow<'a, str>>,
) -> bool {
    f.matches(|k| common(ctx, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histograms start small, grow with their values, clamp at the
    /// bound as a full-range one saturates, and cross the wire.
    #[test]
    fn histograms_grow_with_their_values_and_clamp_at_the_bound() {
        let mut h = histogram();
        let small = h.distinct_values();
        record(&mut h, 900);
        assert_eq!(h.distinct_values(), small);
        record(&mut h, 250_000);
        record(&mut h, u64::MAX);
        assert!(h.distinct_values() > small);
        let mut full = Histogram::<u64>::new_with_bounds(1, LATENCY_BOUNDS.1, 3).unwrap();
        for v in [900, 250_000, u64::MAX] {
            full.saturating_record(v);
        }
        let pairs = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&h), pairs(&full));
        assert!(h.distinct_values() <= full.distinct_values());
        let stats = RequestStats {
            latency: h,
            ..Default::default()
        };
        let back: RequestStats =
            serde_json::from_slice(&serde_json::to_vec(&stats).unwrap()).unwrap();
        assert_eq!(pairs(&back.latency), pairs(&full));
    }

    fn req(name: &str, status: Option<u16>, micros: u64) -> Event {
        Event::Request {
            name: name.into(),
            status,
            error: status.is_none().then_some("connect"),
            expected: Some(status.is_some_and(|s| s < 400)),
            micros,
            bytes: 10,
            sent: 0,
            method: "GET",
            timings: Default::default(),
            ctx: Default::default(),
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
                    ctx: Default::default(),
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
