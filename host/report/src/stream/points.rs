//! The run's cumulative state as named points with labels, one set per
//! closed second: the one model every output encodes. Names follow k6's
//! (`http_reqs`, `http_req_duration`, `iterations`, `vus`, `checks`) with
//! a `loadtest_` prefix, in base units (seconds); each encoder adds what
//! its receiver's conventions ask for (`_total`, `_bucket`).

use loadtest_engine::metrics::Metrics;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Monotonic since the run's start.
    Counter(f64),
    Gauge(f64),
    /// Cumulative buckets (upper bound, count at or below it), the
    /// count and the sum of all observations.
    Histogram {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

/// Latency bucket bounds in seconds (Prometheus's defaults, finer at the
/// low end where loopback and LAN latencies sit).
pub const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The percentiles sent as gauges next to the histogram, as k6's
/// Prometheus output sends trend stats.
pub const QUANTILES: [(&str, f64); 4] = [
    ("loadtest_http_req_duration_p50", 0.50),
    ("loadtest_http_req_duration_p90", 0.90),
    ("loadtest_http_req_duration_p95", 0.95),
    ("loadtest_http_req_duration_p99", 0.99),
];

/// Every point of the state `m`; `vus` is each scenario's busy VUs now.
pub fn of(m: &Metrics, vus: &[(String, u64)]) -> Vec<Point> {
    let mut out = Vec::new();
    for ((scenario, name), r) in &m.requests {
        let labels = vec![("scenario", scenario.clone()), ("name", name.clone())];
        let point = |name, help, value| Point {
            name,
            help,
            labels: labels.clone(),
            value,
        };
        out.push(point(
            "loadtest_http_reqs",
            "HTTP requests sent",
            Value::Counter(r.count as f64),
        ));
        out.push(point(
            "loadtest_http_req_failed",
            "Requests with a transport error or a 4xx/5xx status",
            Value::Counter(r.failed as f64),
        ));
        let h = &r.latency;
        let buckets = BOUNDS
            .iter()
            .map(|&le| (le, h.count_between(0, (le * 1e6) as u64)))
            .collect();
        out.push(point(
            "loadtest_http_req_duration",
            "Request latency in seconds",
            Value::Histogram {
                buckets,
                count: h.len(),
                sum: h.mean() * h.len() as f64 / 1e6,
            },
        ));
        for (name, q) in QUANTILES {
            let v = if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1e6
            };
            out.push(point(
                name,
                "Request latency percentile since the start, in seconds",
                Value::Gauge(v),
            ));
        }
    }
    for (scenario, s) in &m.scenarios {
        let labels = vec![("scenario", scenario.clone())];
        for (name, help, v) in [
            ("loadtest_iterations", "Iterations completed", s.iterations),
            (
                "loadtest_iterations_failed",
                "Iterations that failed",
                s.failed,
            ),
            (
                "loadtest_dropped_iterations",
                "Scheduled iterations that found no free VU",
                s.dropped,
            ),
        ] {
            out.push(Point {
                name,
                help,
                labels: labels.clone(),
                value: Value::Counter(v as f64),
            });
        }
    }
    for (scenario, n) in vus {
        out.push(Point {
            name: "loadtest_vus",
            help: "VUs in an iteration",
            labels: vec![("scenario", scenario.clone())],
            value: Value::Gauge(*n as f64),
        });
    }
    for ((scenario, check), c) in &m.checks {
        for (result, v) in [("pass", c.passes), ("fail", c.fails)] {
            out.push(Point {
                name: "loadtest_checks",
                help: "Check results",
                labels: vec![
                    ("scenario", scenario.clone()),
                    ("check", check.clone()),
                    ("result", result.into()),
                ],
                value: Value::Counter(v as f64),
            });
        }
    }
    // Setup's and teardown's samples have no scenario (NO_SCENARIO): no
    // label rather than an empty one, which Prometheus reads the same way
    // and other receivers may not.
    for p in &mut out {
        p.labels.retain(|(_, v)| !v.is_empty());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_engine::metrics::RequestStats;

    #[test]
    fn a_request_series_has_its_count_buckets_and_percentiles() {
        let mut m = Metrics::default();
        let mut r = RequestStats::default();
        for us in [300, 800, 2_000, 40_000] {
            r.latency.record(us).unwrap();
        }
        r.count = 4;
        r.failed = 1;
        m.requests.insert(("s".into(), "home".into()), r);
        let points = of(&m, &[("s".into(), 3)]);
        let find = |n: &str| points.iter().find(|p| p.name == n).unwrap();
        assert_eq!(find("loadtest_http_reqs").value, Value::Counter(4.0));
        assert_eq!(find("loadtest_http_req_failed").value, Value::Counter(1.0));
        let Value::Histogram { buckets, count, .. } = &find("loadtest_http_req_duration").value
        else {
            panic!()
        };
        assert_eq!(*count, 4);
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[1], (0.001, 2));
        assert_eq!(buckets[5], (0.025, 3));
        assert_eq!(buckets.last().unwrap().1, 4);
        assert_eq!(find("loadtest_vus").value, Value::Gauge(3.0));
        assert_eq!(
            find("loadtest_http_req_duration").labels,
            vec![("scenario", "s".to_string()), ("name", "home".to_string())]
        );
    }

    #[test]
    fn setups_requests_carry_no_scenario_label() {
        let mut m = Metrics::default();
        m.requests.insert(
            (loadtest_engine::metrics::NO_SCENARIO.into(), "login".into()),
            RequestStats::default(),
        );
        let points = of(&m, &[]);
        let reqs = points.iter().find(|p| p.name == "loadtest_http_reqs");
        assert_eq!(reqs.unwrap().labels, vec![("name", "login".to_string())]);
    }
}
