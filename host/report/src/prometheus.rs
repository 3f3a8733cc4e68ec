//! A Prometheus scrape endpoint live during the run (`--metrics-addr`).
//! The text exposition format is a few lines per series, written here
//! directly from the same metrics the reports use; a metrics crate would
//! only mirror them into a second registry.

use crate::httpd::Reply;
use loadtest_engine::metrics::Metrics;
use loadtest_engine::workload::Live;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// Binds `addr` and serves `/metrics` until the task is aborted.
pub async fn bind(addr: SocketAddr, live: Live) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    crate::httpd::serve("--metrics-addr", addr, move |asked| match asked.path {
        "/metrics" => Reply::Found("text/plain; version=0.0.4", exposition(&live).into_bytes()),
        _ => Reply::NotFound,
    })
    .await
}

/// The Prometheus text of what `live` measured so far (also a cluster
/// leader's `/metrics`).
pub fn exposition(live: &Live) -> String {
    let m = live.cumulative();
    let mut out = String::new();
    requests(&mut out, &m);
    scenarios(&mut out, &m, live);
    checks(&mut out, &m);
    out
}

fn requests(out: &mut String, m: &Metrics) {
    let _ = writeln!(
        out,
        "# HELP loadtest_http_reqs_total HTTP requests sent.\n# TYPE loadtest_http_reqs_total counter"
    );
    for ((s, n), r) in &m.requests {
        let _ = writeln!(
            out,
            "loadtest_http_reqs_total{{scenario=\"{}\",name=\"{}\"}} {}",
            esc(s),
            esc(n),
            r.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP loadtest_http_req_failed_total Requests with a transport error or a 4xx/5xx status.\n# TYPE loadtest_http_req_failed_total counter"
    );
    for ((s, n), r) in &m.requests {
        let _ = writeln!(
            out,
            "loadtest_http_req_failed_total{{scenario=\"{}\",name=\"{}\"}} {}",
            esc(s),
            esc(n),
            r.failed
        );
    }
    let _ = writeln!(
        out,
        "# HELP loadtest_http_req_duration_seconds Request latency.\n# TYPE loadtest_http_req_duration_seconds summary"
    );
    for ((s, n), r) in &m.requests {
        let labels = format!("scenario=\"{}\",name=\"{}\"", esc(s), esc(n));
        for q in [0.5, 0.9, 0.95, 0.99] {
            let v = r.latency.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(
                out,
                "loadtest_http_req_duration_seconds{{{labels},quantile=\"{q}\"}} {v}"
            );
        }
        let sum = r.latency.mean() * r.latency.len() as f64 / 1e6;
        let _ = writeln!(
            out,
            "loadtest_http_req_duration_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            out,
            "loadtest_http_req_duration_seconds_count{{{labels}}} {}",
            r.latency.len()
        );
    }
}

fn scenarios(out: &mut String, m: &Metrics, live: &Live) {
    let _ = writeln!(out, "# TYPE loadtest_iterations_total counter");
    for (s, st) in &m.scenarios {
        let _ = writeln!(
            out,
            "loadtest_iterations_total{{scenario=\"{}\"}} {}",
            esc(s),
            st.iterations
        );
    }
    let _ = writeln!(out, "# TYPE loadtest_iterations_failed_total counter");
    for (s, st) in &m.scenarios {
        let _ = writeln!(
            out,
            "loadtest_iterations_failed_total{{scenario=\"{}\"}} {}",
            esc(s),
            st.failed
        );
    }
    let _ = writeln!(out, "# TYPE loadtest_dropped_iterations_total counter");
    for (s, st) in &m.scenarios {
        let _ = writeln!(
            out,
            "loadtest_dropped_iterations_total{{scenario=\"{}\"}} {}",
            esc(s),
            st.dropped
        );
    }
    let _ = writeln!(
        out,
        "# HELP loadtest_vus VUs in an iteration now.\n# TYPE loadtest_vus gauge"
    );
    for (name, _, active) in live
        .scenarios
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "loadtest_vus{{scenario=\"{}\"}} {}",
            esc(name),
            active.load(Ordering::Relaxed)
        );
    }
}

fn checks(out: &mut String, m: &Metrics) {
    let _ = writeln!(out, "# TYPE loadtest_checks_total counter");
    for ((s, n), c) in &m.checks {
        for (result, v) in [("pass", c.passes), ("fail", c.fails)] {
            let _ = writeln!(
                out,
                "loadtest_checks_total{{scenario=\"{}\",check=\"{}\",result=\"{result}\"}} {v}",
                esc(s),
                esc(n)
            );
        }
    }
}

/// Escapes a label value as the exposition format requires.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
