//! Prometheus remote write 1.0: a snappy-compressed protobuf
//! `WriteRequest` of time series, each a label set and its samples.
//! Histograms go as Prometheus's classic ones (`_bucket` with `le`,
//! `_sum`, `_count`), which every receiver of the protocol understands.

use super::points::{Point, Value};
use std::collections::BTreeMap;

pub const CONTENT: &str = "application/x-protobuf";
pub const HEADERS: &[(&str, &str)] = &[
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

/// The request body for `batch` (timestamp ms, points), compressed.
pub fn encode(batch: &[(i64, Vec<Point>)]) -> Vec<u8> {
    let body = prost::Message::encode_to_vec(&request(batch));
    snap::raw::Encoder::new()
        .compress_vec(&body)
        .unwrap_or_default()
}

/// One series per label set, its samples in time order (the receiver
/// refuses a series whose samples go back in time).
fn request(batch: &[(i64, Vec<Point>)]) -> WriteRequest {
    let mut series: BTreeMap<Vec<Label>, Vec<Sample>> = BTreeMap::new();
    for (ts, points) in batch {
        for p in points {
            for (labels, value) in samples(p) {
                series.entry(labels).or_default().push(Sample {
                    value,
                    timestamp: *ts,
                });
            }
        }
    }
    WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(labels, samples)| TimeSeries { labels, samples })
            .collect(),
    }
}

/// The (labels, value) pairs one point becomes.
fn samples(p: &Point) -> Vec<(Vec<Label>, f64)> {
    let labels = |name: String, extra: Option<(&str, String)>| {
        let mut l: Vec<Label> = std::iter::once(("__name__", name))
            .chain(p.labels.iter().map(|(k, v)| (*k, v.clone())))
            .chain(extra)
            .map(|(name, value)| Label {
                name: name.to_string(),
                value,
            })
            .collect();
        // The protocol wants labels sorted by name.
        l.sort();
        l
    };
    match &p.value {
        Value::Counter(v) => vec![(labels(format!("{}_total", p.name), None), *v)],
        Value::Gauge(v) => vec![(labels(gauge_name(p.name), None), *v)],
        Value::Histogram {
            buckets,
            count,
            sum,
        } => {
            let base = format!("{}_seconds", p.name);
            let mut out: Vec<_> = buckets
                .iter()
                .map(|(le, n)| {
                    (
                        labels(format!("{base}_bucket"), Some(("le", le.to_string()))),
                        *n as f64,
                    )
                })
                .collect();
            out.push((
                labels(format!("{base}_bucket"), Some(("le", "+Inf".into()))),
                *count as f64,
            ));
            out.push((labels(format!("{base}_count"), None), *count as f64));
            out.push((labels(format!("{base}_sum"), None), *sum));
            out
        }
    }
}

/// Latency percentiles are in seconds, and say so in their name.
fn gauge_name(name: &str) -> String {
    if name.starts_with("loadtest_http_req_duration_p") {
        format!("{name}_seconds")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_becomes_classic_series_with_sorted_labels_and_ordered_samples() {
        let point = |n: u64| Point {
            name: "loadtest_http_req_duration",
            help: "",
            labels: vec![("scenario", "s".into()), ("name", "home".into())],
            value: Value::Histogram {
                buckets: vec![(0.001, n), (0.01, n + 1)],
                count: n + 2,
                sum: 0.5,
            },
        };
        let req = request(&[(1000, vec![point(0)]), (2000, vec![point(1)])]);
        let names: Vec<String> = req
            .timeseries
            .iter()
            .map(|s| {
                s.labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert!(
            names.contains(
                &"__name__=loadtest_http_req_duration_seconds_bucket,le=+Inf,name=home,scenario=s"
                    .to_string()
            ),
            "{names:?}"
        );
        assert_eq!(req.timeseries.len(), 5);
        let times: Vec<i64> = req.timeseries[0]
            .samples
            .iter()
            .map(|s| s.timestamp)
            .collect();
        assert_eq!(times, [1000, 2000]);
        let decoded = snap::raw::Decoder::new()
            .decompress_vec(&encode(&[(1000, vec![point(0)])]))
            .unwrap();
        let back: WriteRequest = prost::Message::decode(&decoded[..]).unwrap();
        assert_eq!(back.timeseries.len(), 5);
    }
}
