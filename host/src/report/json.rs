use crate::metrics::{CheckStats, Latency, Metrics, ScenarioStats};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The run's results in the shape of the JSON report.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub duration_secs: f64,
    pub stopped_early: bool,
    pub totals: Totals,
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    pub checks: BTreeMap<String, CheckSummary>,
    pub counters: BTreeMap<String, f64>,
    pub trends: BTreeMap<String, TrendSummary>,
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
    pub init_failed: u64,
    pub bytes_received: u64,
}

#[derive(Debug, Serialize)]
pub struct ScenarioSummary {
    pub iterations: u64,
    pub iterations_failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub failure_messages: BTreeMap<String, u64>,
    pub init_failed: u64,
    pub init_messages: BTreeMap<String, u64>,
    pub iteration_duration_ms: Latency,
    pub requests: BTreeMap<String, RequestSummary>,
}

#[derive(Debug, Serialize)]
pub struct RequestSummary {
    pub count: u64,
    pub failed: u64,
    pub rate: f64,
    pub bytes_received: u64,
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
    fn of(s: &ScenarioStats) -> Self {
        ScenarioSummary {
            iterations: s.iterations,
            iterations_failed: s.failed,
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
        }
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

impl Summary {
    pub fn new(name: &str, m: &Metrics, elapsed: Duration, stopped_early: bool) -> Summary {
        let secs = elapsed.as_secs_f64();
        let empty = ScenarioStats::default();
        let names: BTreeSet<&String> = m
            .scenarios
            .keys()
            .chain(m.requests.keys().map(|(s, _)| s))
            .collect();
        let mut scenarios: BTreeMap<String, ScenarioSummary> = names
            .into_iter()
            .map(|name| {
                (
                    name.clone(),
                    ScenarioSummary::of(m.scenarios.get(name).unwrap_or(&empty)),
                )
            })
            .collect();
        for ((scenario, name), r) in &m.requests {
            let request = RequestSummary {
                count: r.count,
                failed: r.failed,
                rate: per_sec(r.count, secs),
                bytes_received: r.bytes,
                latency_ms: Latency::of_micros(&r.latency),
                status: r.statuses.clone(),
                errors: r.errors.clone(),
            };
            if let Some(s) = scenarios.get_mut(scenario) {
                s.requests.insert(name.clone(), request);
            }
        }
        let checks = m
            .checks
            .iter()
            .map(|(k, c)| {
                let total = c.passes + c.fails;
                let rate = if total == 0 {
                    0.0
                } else {
                    c.passes as f64 / total as f64
                };
                (
                    k.clone(),
                    CheckSummary {
                        counts: c.clone(),
                        rate,
                    },
                )
            })
            .collect();
        let trends = m
            .trends
            .iter()
            .map(|(k, t)| {
                let q = |q: f64| t.scaled.value_at_quantile(q) as f64 / 1000.0;
                let mean = if t.count == 0 {
                    0.0
                } else {
                    t.sum / t.count as f64
                };
                let summary = TrendSummary {
                    count: t.count,
                    min: t.min,
                    mean,
                    p50: q(0.5),
                    p90: q(0.9),
                    p95: q(0.95),
                    p99: q(0.99),
                    max: t.max,
                };
                (k.clone(), summary)
            })
            .collect();
        let requests = m.total_requests();
        Summary {
            name: name.to_owned(),
            duration_secs: secs,
            stopped_early,
            totals: Totals {
                requests,
                failed: m.total_failed(),
                rate: per_sec(requests, secs),
                iterations: m.scenarios.values().map(|s| s.iterations).sum(),
                iterations_failed: m.scenarios.values().map(|s| s.failed).sum(),
                init_failed: m.scenarios.values().map(|s| s.init_failed).sum(),
                bytes_received: m.requests.values().map(|r| r.bytes).sum(),
            },
            scenarios,
            checks,
            counters: m.counters.clone(),
            trends,
        }
    }
}
