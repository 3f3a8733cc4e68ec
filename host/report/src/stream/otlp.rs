//! OpenTelemetry metrics over OTLP/HTTP in its JSON encoding (the
//! protocol's own, so no generated protobuf code is needed): cumulative
//! monotonic sums for counters, gauges, and explicit-bucket histograms.
//! Names are the points' own (`loadtest_http_reqs`), with units, so a
//! Prometheus receiver names them as the remote-write output does
//! (`loadtest_http_reqs_total`, `loadtest_http_req_duration_seconds`).

use super::points::{Point, Value};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

pub const CONTENT: &str = "application/json";

/// The `ExportMetricsServiceRequest` for `batch`; `start_ms` is the
/// run's start, where every cumulative series begins.
pub fn encode(start_ms: i64, batch: &[(i64, Vec<Point>)]) -> Vec<u8> {
    // One metric per name, its data points across the batch.
    let mut metrics: BTreeMap<&str, (&Point, Vec<Json>)> = BTreeMap::new();
    for (ts, points) in batch {
        for p in points {
            let entry = metrics.entry(p.name).or_insert((p, Vec::new()));
            entry.1.push(data_point(p, nanos(start_ms), nanos(*ts)));
        }
    }
    let metrics: Vec<Json> = metrics
        .into_values()
        .map(|(p, points)| metric(p, points))
        .collect();
    let body = json!({
        "resourceMetrics": [{
            "resource": { "attributes": [attr("service.name", "loadtest")] },
            "scopeMetrics": [{
                "scope": { "name": "loadtest", "version": env!("CARGO_PKG_VERSION") },
                "metrics": metrics,
            }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn nanos(ms: i64) -> String {
    (ms.max(0) as u128 * 1_000_000).to_string()
}

fn attr(key: &str, value: &str) -> Json {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// Cumulative, as the protocol's enum numbers it.
const CUMULATIVE: u8 = 2;

fn metric(p: &Point, points: Vec<Json>) -> Json {
    let (unit, data) = match &p.value {
        Value::Counter(_) => (
            "",
            json!({ "sum": { "aggregationTemporality": CUMULATIVE, "isMonotonic": true, "dataPoints": points } }),
        ),
        Value::Gauge(_) if p.name.starts_with("loadtest_http_req_duration_p") => {
            ("s", json!({ "gauge": { "dataPoints": points } }))
        }
        Value::Gauge(_) => ("", json!({ "gauge": { "dataPoints": points } })),
        Value::Histogram { .. } => (
            "s",
            json!({ "histogram": { "aggregationTemporality": CUMULATIVE, "dataPoints": points } }),
        ),
    };
    let mut m = json!({ "name": p.name, "description": p.help, "unit": unit });
    if let (Json::Object(m), Json::Object(d)) = (&mut m, data) {
        m.extend(d);
    }
    m
}

fn data_point(p: &Point, start: String, time: String) -> Json {
    let attributes: Vec<Json> = p.labels.iter().map(|(k, v)| attr(k, v)).collect();
    let mut d = json!({
        "attributes": attributes,
        "startTimeUnixNano": start,
        "timeUnixNano": time,
    });
    let extra = match &p.value {
        Value::Counter(v) | Value::Gauge(v) => json!({ "asDouble": v }),
        Value::Histogram {
            buckets,
            count,
            sum,
        } => {
            // OTLP counts each bucket on its own; ours are cumulative.
            let mut below = 0;
            let mut counts: Vec<String> = buckets
                .iter()
                .map(|(_, n)| {
                    let c = n.saturating_sub(below);
                    below = *n;
                    c.to_string()
                })
                .collect();
            counts.push(count.saturating_sub(below).to_string());
            let bounds: Vec<f64> = buckets.iter().map(|(le, _)| *le).collect();
            json!({ "count": count.to_string(), "sum": sum, "bucketCounts": counts, "explicitBounds": bounds })
        }
    };
    if let (Json::Object(d), Json::Object(e)) = (&mut d, extra) {
        d.extend(e);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_carry_per_bucket_counts_and_counters_are_cumulative_sums() {
        let points = vec![
            Point {
                name: "loadtest_http_reqs",
                help: "",
                labels: vec![("scenario", "s".into())],
                value: Value::Counter(7.0),
            },
            Point {
                name: "loadtest_http_req_duration",
                help: "",
                labels: vec![],
                value: Value::Histogram {
                    buckets: vec![(0.001, 2), (0.01, 5)],
                    count: 7,
                    sum: 0.02,
                },
            },
        ];
        let body: Json = serde_json::from_slice(&encode(1_000, &[(2_000, points)])).unwrap();
        let metrics = &body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        let hist = &metrics[0]["histogram"]["dataPoints"][0];
        assert_eq!(hist["bucketCounts"], json!(["2", "3", "2"]));
        assert_eq!(hist["startTimeUnixNano"], "1000000000");
        assert_eq!(metrics[0]["unit"], "s");
        let sum = &metrics[1]["sum"];
        assert_eq!(sum["isMonotonic"], true);
        assert_eq!(sum["dataPoints"][0]["asDouble"], 7.0);
        assert_eq!(sum["dataPoints"][0]["timeUnixNano"], "2000000000");
    }
}
