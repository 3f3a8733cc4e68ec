//! `--out` into a real Prometheus server (built from the Go module proxy
//! by scripts/prometheus.sh) with its remote-write and OTLP receivers on:
//! after a run, its HTTP API must hold the report's request count, and
//! latency percentiles near the report's. One server per test, on a
//! loopback port of its own, in a temporary directory.

mod common;

use common::prometheus::Prometheus;
use common::{Target, component, run_loadtest, write_config};

/// Runs 4 s of load with `--out OUT` and checks what Prometheus holds.
fn run_into(out: impl Fn(&str) -> String) {
    let prom = Prometheus::start();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &format!(
            "target: {}\nplugins:\n  shop: {{ path: {} }}\nscenarios:\n  s: {{ plugin: shop, executor: constant-vus, vus: 2, duration: 4s, params: {{ think_ms: 5 }} }}\n",
            target.url,
            component("quickstart").display()
        ),
    );
    let out = out(&prom.url);
    let run = run_loadtest(&dir, &["run", "-q", "--out", &out, cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("--out"),
        "a push failed: {}",
        run.stderr
    );
    let total = run.report["totals"]["requests"].as_u64().unwrap();
    assert_eq!(total, target.received());
    prom.wait_for("sum(loadtest_http_reqs_total)", total as f64);
    let home = &run.report["scenarios"]["s"]["requests"]["home"];
    let count = home["count"].as_f64().unwrap();
    prom.wait_for(
        "sum(loadtest_http_req_duration_seconds_count{name=\"home\"})",
        count,
    );
    // The quickstart checks each of its requests once.
    prom.wait_for("sum(loadtest_checks_total{result=\"pass\"})", total as f64);
    // The percentile gauges carry the report's own figure (same
    // histogram), the buckets an estimate within their width.
    let p95_ms = home["latency_ms"]["p95"].as_f64().unwrap();
    let gauge = prom
        .value("loadtest_http_req_duration_p95_seconds{name=\"home\"}")
        .expect("the p95 gauge");
    assert!(
        (gauge * 1e3 - p95_ms).abs() <= p95_ms * 0.01 + 0.01,
        "p95 gauge {} ms against the report's {p95_ms} ms",
        gauge * 1e3
    );
    let estimate = prom
        .value("histogram_quantile(0.95, sum by (le) (loadtest_http_req_duration_seconds_bucket{name=\"home\"}))")
        .expect("a quantile from the buckets");
    assert!(
        estimate * 1e3 <= p95_ms * 2.5 + 1.0 && estimate * 1e3 >= p95_ms / 2.5,
        "bucket p95 {} ms against the report's {p95_ms} ms",
        estimate * 1e3
    );
}

#[test]
fn remote_write_lands_the_reports_counts_in_prometheus() {
    run_into(|url| format!("prometheus={url}/api/v1/write"));
}

#[test]
fn otlp_lands_the_reports_counts_in_prometheus() {
    run_into(|url| format!("otlp={url}/api/v1/otlp/v1/metrics"));
}

#[test]
fn a_receiver_that_refuses_or_is_down_costs_the_run_nothing() {
    let prom = Prometheus::start();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &format!(
            "target: {}\nplugins:\n  get: {{ path: {} }}\nscenarios:\n  s: {{ plugin: get, executor: constant-arrival-rate, rate: 20, duration: 3s, preAllocatedVUs: 2 }}\n",
            target.url,
            component("single_get").display()
        ),
    );
    // Remote write to the OTLP receiver: refused as content it cannot
    // read (400), which is dropped, not sent again every second.
    let refused = format!("prometheus={}/api/v1/otlp/v1/metrics", prom.url);
    let down = format!("otlp=http://127.0.0.1:{}/v1/metrics", common::closed_port());
    let run = run_loadtest(
        &dir,
        &[
            "run",
            "-q",
            "--out",
            &refused,
            "--out",
            &down,
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(60));
    assert!(
        run.stderr.contains("400") && run.stderr.contains("dropped"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("cannot reach").count(),
        1,
        "a receiver that is down is reported once: {}",
        run.stderr
    );
    assert!(run.stderr.contains("were not delivered"), "{}", run.stderr);
}

#[test]
fn outputs_named_in_the_config_stream_like_out() {
    let prom = Prometheus::start();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let cfg = write_config(
        &dir,
        &format!(
            "target: {}\noutputs: [\"prometheus={}/api/v1/write\", \"json={}\"]\nplugins:\n  get: {{ path: {} }}\nscenarios:\n  s: {{ plugin: get, executor: constant-arrival-rate, rate: 20, duration: 3s, preAllocatedVUs: 2 }}\n",
            target.url,
            prom.url,
            series.display(),
            component("single_get").display()
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(60));
    prom.wait_for("sum(loadtest_http_reqs_total)", 60.0);
    let lines = std::fs::read_to_string(&series).unwrap();
    assert!(
        lines.contains("\"loadtest_http_reqs\""),
        "the JSON-lines output: {lines}"
    );

    let bad = write_config(
        &dir,
        &format!(
            "target: {}\noutputs: [\"kafka=broker:9092\"]\nplugins:\n  get: {{ path: {} }}\nscenarios:\n  s: {{ plugin: get, executor: constant-arrival-rate, rate: 20, duration: 3s, preAllocatedVUs: 2 }}\n",
            target.url,
            component("single_get").display()
        ),
    );
    let before = target.received();
    let run = run_loadtest(&dir, &["run", "-q", bad.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(":2:") && run.stderr.contains("`kafka=broker:9092` is not an output"),
        "{}",
        run.stderr
    );
    assert_eq!(target.received(), before, "nothing was sent");
}
