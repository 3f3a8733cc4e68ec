use loadtest_engine::config::Config;
use loadtest_engine::metrics::{
    CheckStats, FailureKind, GaugeStats, GeneratorStats, GroupStats, Latency, Metrics, NO_SCENARIO,
    Phases, RateStats, ScenarioStats, TrendStats,
};
use loadtest_engine::threshold::Verdict;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The run's results in the shape of the JSON report; the table, the HTML
/// report and the exit code are all read from it.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub duration_secs: f64,
    pub stopped_early: bool,
    /// Set when an `abortOnFail` threshold ended the run.
    pub aborted_by_threshold: bool,
    /// Why a script ended the run (k6's `exec.test.abort()`), if one did.
    pub aborted_by_script: Option<String>,
    /// Why a script marked the test failed (k6's `exec.test.fail()`), if
    /// one did: the run went on, and exits with 110.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_by_script: Option<String>,
    pub totals: Totals,
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    /// What `setup` and `teardown` sent, outside every scenario (k6 tags
    /// their samples with no scenario); counted in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_teardown: Option<SetupTeardownSummary>,
    pub checks: BTreeMap<String, CheckSummary>,
    pub counters: BTreeMap<String, f64>,
    pub trends: BTreeMap<String, TrendSummary>,
    pub gauges: BTreeMap<String, GaugeSummary>,
    pub rates: BTreeMap<String, RateSummary>,
    pub thresholds: Vec<Verdict>,
    /// How loaded the generator itself was: whether it, not the target,
    /// may have limited the run.
    pub generator: GeneratorSummary,
    /// What the operator changed during the run (pause, VUs, rate), each
    /// with the second of the run it happened at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// Set for a run spread over a cluster: who ran what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    pub run_id: String,
    /// Short SHA-256 of the config that ran.
    pub config_version: String,
    pub nodes: Vec<NodeSummary>,
    /// Latest minus earliest start of the nodes' first iterations.
    pub start_spread_ms: Option<u64>,
    /// What happened during the run: distribution, lost nodes, handovers.
    pub events: Vec<String>,
}

/// One node's share of a cluster run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeSummary {
    pub node_id: String,
    pub addr: String,
    /// Which equal part of the load, as `i/n`.
    pub segment: String,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// When the node's first iteration began (Unix ms).
    pub started_at_ms: Option<u64>,
    /// finished, stopped, lost or running.
    pub status: String,
    /// The node whose share this one took over mid-run.
    pub took_over_from: Option<String>,
}

impl ClusterSummary {
    pub fn new(
        run_id: String,
        config_version: String,
        nodes: Vec<NodeSummary>,
        events: Vec<String>,
    ) -> Self {
        let starts: Vec<u64> = nodes
            .iter()
            .filter(|n| n.took_over_from.is_none())
            .filter_map(|n| n.started_at_ms)
            .collect();
        let spread = starts
            .iter()
            .max()
            .zip(starts.iter().min())
            .map(|(a, b)| a - b);
        ClusterSummary {
            run_id,
            config_version,
            nodes,
            start_spread_ms: spread,
            events,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Totals {
    /// HTTP requests sent, whatever their outcome.
    pub requests: u64,
    /// Requests with a transport error or a 4xx/5xx status.
    pub failed: u64,
    pub rate: f64,
    pub iterations: u64,
    pub iterations_failed: u64,
    pub dropped_iterations: u64,
    pub init_failed: u64,
    /// Iterations in which loadtest itself panicked: bugs of ours, which
    /// make the run end with an error even though its data is kept.
    pub panics: u64,
    /// What crossed the sockets, under any TLS: k6's `data_received`
    /// and `data_sent`.
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// The generator's own load, over all its seconds (node-seconds in a
/// cluster run).
#[derive(Debug, Serialize)]
pub struct GeneratorSummary {
    pub seconds: u64,
    /// Seconds with CPU at 95% of the cores or more, or tasks waiting
    /// 10 ms or more for a worker.
    pub saturated_seconds: u64,
    pub cpu_mean_pct: f64,
    pub cpu_max_pct: f64,
    /// The longest a due task waited for a worker.
    pub scheduling_lag_max_ms: f64,
}

impl GeneratorSummary {
    fn of(g: &GeneratorStats) -> Self {
        GeneratorSummary {
            seconds: g.seconds,
            saturated_seconds: g.saturated_seconds,
            cpu_mean_pct: g.cpu_sum_permille as f64 / 10.0 / g.seconds.max(1) as f64,
            cpu_max_pct: g.cpu_max_permille as f64 / 10.0,
            scheduling_lag_max_ms: g.lag_max_us as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScenarioSummary {
    pub executor: String,
    pub iterations: u64,
    pub iterations_failed: u64,
    pub dropped_iterations: u64,
    /// Of the dropped iterations, those skipped while the generator was
    /// saturated: more CPU or more nodes, not more VUs, would keep them.
    pub dropped_while_saturated: u64,
    pub failures: BTreeMap<String, u64>,
    pub failure_messages: BTreeMap<String, u64>,
    pub init_failed: u64,
    pub init_messages: BTreeMap<String, u64>,
    pub iteration_duration_ms: Latency,
    pub requests: BTreeMap<String, RequestSummary>,
    /// k6's request phases (`http_req_waiting`, ...) over every request.
    pub timings_ms: BTreeMap<String, Latency>,
    /// By group path (`::checkout::pay`).
    pub groups: BTreeMap<String, GroupSummary>,
}

/// A scenario's request tables without its iterations: what ran once,
/// before and after the load.
#[derive(Debug, Serialize)]
pub struct SetupTeardownSummary {
    pub requests: BTreeMap<String, RequestSummary>,
    pub timings_ms: BTreeMap<String, Latency>,
    /// `::setup`, `::teardown` and the groups under them.
    pub groups: BTreeMap<String, GroupSummary>,
}

impl From<ScenarioSummary> for SetupTeardownSummary {
    fn from(s: ScenarioSummary) -> Self {
        SetupTeardownSummary {
            requests: s.requests,
            timings_ms: s.timings_ms,
            groups: s.groups,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupSummary {
    /// How often the group ran, and for how long (`group_duration`).
    pub runs: u64,
    pub duration_ms: Latency,
    pub requests: u64,
    pub failed: u64,
    pub latency_ms: Latency,
    pub checks: CheckSummary,
}

/// A gauge's last value and extremes; summed over scenarios (and nodes)
/// that set the same name.
#[derive(Debug, Serialize)]
pub struct GaugeSummary {
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct RateSummary {
    #[serde(flatten)]
    pub counts: RateStats,
    pub rate: f64,
}

#[derive(Debug, Serialize)]
pub struct RequestSummary {
    pub count: u64,
    pub failed: u64,
    pub rate: f64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub latency_ms: Latency,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct CheckSummary {
    #[serde(flatten)]
    pub counts: CheckStats,
    pub rate: f64,
}

#[derive(Debug, Serialize)]
pub struct TrendSummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl ScenarioSummary {
    fn of(executor: &str, s: &ScenarioStats) -> Self {
        ScenarioSummary {
            executor: executor.to_owned(),
            iterations: s.iterations,
            iterations_failed: s.failed,
            dropped_iterations: s.dropped,
            dropped_while_saturated: s.dropped_saturated,
            failures: s
                .failures
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), *v))
                .collect(),
            failure_messages: s.messages.clone(),
            init_failed: s.init_failed,
            init_messages: s.init_messages.clone(),
            iteration_duration_ms: Latency::of_micros(&s.duration),
            requests: BTreeMap::new(),
            timings_ms: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

impl CheckSummary {
    fn of(c: CheckStats) -> Self {
        let rate = c.rate().unwrap_or(0.0);
        CheckSummary { counts: c, rate }
    }
}

impl GroupSummary {
    fn of(g: &GroupStats) -> Self {
        GroupSummary {
            runs: g.duration.len(),
            duration_ms: Latency::of_micros(&g.duration),
            requests: g.requests.count,
            failed: g.requests.failed,
            latency_ms: Latency::of_micros(&g.requests.latency),
            checks: CheckSummary::of(g.checks.clone()),
        }
    }
}

impl TrendSummary {
    fn of(t: &TrendStats) -> Self {
        let q = |q: f64| t.scaled.value_at_quantile(q) as f64 / 1000.0;
        TrendSummary {
            count: t.count,
            min: t.min,
            mean: if t.count == 0 {
                0.0
            } else {
                t.sum / t.count as f64
            },
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            max: t.max,
        }
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// What a summary is built from.
pub struct RunFacts<'a> {
    pub name: &'a str,
    pub config: &'a Config,
    pub metrics: &'a Metrics,
    pub elapsed: Duration,
    pub stopped_early: bool,
    pub aborted_by_threshold: bool,
}

impl Summary {
    pub fn new(f: RunFacts<'_>) -> Summary {
        let (m, secs) = (f.metrics, f.elapsed.as_secs_f64());
        let empty = ScenarioStats::default();
        // Setup and teardown record requests and groups, not iterations.
        let names: BTreeSet<&String> = f
            .config
            .scenarios
            .keys()
            .chain(m.scenarios.keys())
            .chain(m.requests.keys().map(|(s, _)| s))
            .chain(m.groups.keys().map(|(s, _)| s))
            .collect();
        let mut scenarios: BTreeMap<String, ScenarioSummary> = names
            .into_iter()
            .map(|name| {
                let executor = f
                    .config
                    .scenarios
                    .get(name)
                    .map_or("", |s| s.executor.name());
                (
                    name.clone(),
                    ScenarioSummary::of(executor, m.scenarios.get(name).unwrap_or(&empty)),
                )
            })
            .collect();
        for ((scenario, name), r) in &m.requests {
            let request = RequestSummary {
                count: r.count,
                failed: r.failed,
                rate: per_sec(r.count, secs),
                bytes_received: r.bytes,
                bytes_sent: r.sent,
                latency_ms: Latency::of_micros(&r.latency),
                status: r.statuses.clone(),
                errors: r.errors.clone(),
            };
            if let Some(s) = scenarios.get_mut(scenario) {
                s.requests.insert(name.clone(), request);
            }
        }
        for (scenario, p) in &m.phases {
            if let Some(s) = scenarios.get_mut(scenario) {
                for name in Phases::NAMES {
                    if let Some(h) = p.get(name) {
                        s.timings_ms.insert(name.to_owned(), Latency::of_micros(h));
                    }
                }
            }
        }
        for ((scenario, group), g) in &m.groups {
            if let Some(s) = scenarios.get_mut(scenario) {
                s.groups.insert(group.clone(), GroupSummary::of(g));
            }
        }
        let setup_teardown = scenarios.remove(NO_SCENARIO).map(Into::into);
        let mut gauges: BTreeMap<String, GaugeStats> = BTreeMap::new();
        for ((_, name), g) in &m.gauges {
            match gauges.get_mut(name) {
                Some(acc) => acc.sum(g),
                None => {
                    gauges.insert(name.clone(), g.clone());
                }
            }
        }
        let mut rates: BTreeMap<String, RateStats> = BTreeMap::new();
        for ((_, name), r) in &m.rates {
            rates.entry(name.clone()).or_default().merge(r);
        }
        let mut checks: BTreeMap<String, CheckStats> = BTreeMap::new();
        for ((_, name), c) in &m.checks {
            let e = checks.entry(name.clone()).or_default();
            e.passes += c.passes;
            e.fails += c.fails;
        }
        let mut counters: BTreeMap<String, f64> = BTreeMap::new();
        for ((_, name), v) in &m.counters {
            *counters.entry(name.clone()).or_default() += v;
        }
        let mut trends: BTreeMap<String, TrendStats> = BTreeMap::new();
        for ((_, name), t) in &m.trends {
            trends.entry(name.clone()).or_default().merge(t);
        }
        let requests = m.total_requests();
        let sum = |f: fn(&ScenarioStats) -> u64| m.scenarios.values().map(f).sum::<u64>();
        Summary {
            name: f.name.to_owned(),
            duration_secs: secs,
            stopped_early: f.stopped_early,
            aborted_by_threshold: f.aborted_by_threshold,
            aborted_by_script: None,
            failed_by_script: None,
            totals: Totals {
                requests,
                failed: m.total_failed(),
                rate: per_sec(requests, secs),
                iterations: sum(|s| s.iterations),
                iterations_failed: sum(|s| s.failed),
                dropped_iterations: sum(|s| s.dropped),
                init_failed: sum(|s| s.init_failed),
                panics: sum(|s| s.failures.get(&FailureKind::Panic).copied().unwrap_or(0)),
                bytes_received: m.requests.values().map(|r| r.bytes).sum(),
                bytes_sent: m.requests.values().map(|r| r.sent).sum(),
            },
            scenarios,
            setup_teardown,
            checks: checks
                .into_iter()
                .map(|(k, c)| (k, CheckSummary::of(c)))
                .collect(),
            counters,
            trends: trends
                .iter()
                .map(|(k, t)| (k.clone(), TrendSummary::of(t)))
                .collect(),
            gauges: gauges
                .into_iter()
                .map(|(k, g)| {
                    let (value, min, max) = (g.value, g.min, g.max);
                    (k, GaugeSummary { value, min, max })
                })
                .collect(),
            rates: rates
                .into_iter()
                .map(|(k, r)| {
                    let rate = r.rate().unwrap_or(0.0);
                    (k, RateSummary { counts: r, rate })
                })
                .collect(),
            thresholds: loadtest_engine::threshold::evaluate_all(
                &f.config.thresholds.0,
                m,
                f.elapsed,
            ),
            generator: GeneratorSummary::of(&m.generator),
            controls: Vec::new(),
            cluster: None,
        }
    }

    pub fn thresholds_failed(&self) -> bool {
        self.thresholds.iter().any(|v| !v.passed)
    }
}
