//! The `loadtest:scenario@0.2.0` world end to end, through the Rust SDK
//! (tests/plugins/features): setup and teardown, k6's timings, groups and
//! tags with thresholds on them, gauges and rates, batches, the cookie
//! jar. That 0.1 components still run is shown by tests/languages.rs.

mod common;

use common::httpbin::Httpbin;
use common::{Target, component, run_loadtest, write_config};
use serde_json::Value;

fn config(target: &str, mode: &str, vus: u32, iterations: u32, extra: &str) -> String {
    format!(
        "target: {target}\nplugins:\n  f: {{ path: {} }}\nscenarios:\n  s:\n    plugin: f\n    executor: per-vu-iterations\n    vus: {vus}\n    iterations: {iterations}\n    params: {{ {mode} }}\n{extra}",
        component("features").display()
    )
}

fn check(report: &Value, name: &str) -> (u64, u64) {
    let c = &report["checks"][name];
    assert!(c.is_object(), "no check `{name}` in {}", report["checks"]);
    (c["passes"].as_u64().unwrap(), c["fails"].as_u64().unwrap())
}

fn verdict<'a>(report: &'a Value, metric: &str, threshold: &str) -> &'a Value {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == metric && v["threshold"] == threshold)
        .unwrap_or_else(|| {
            panic!(
                "no verdict {metric} {threshold} in {}",
                report["thresholds"]
            )
        })
}

#[test]
fn setup_runs_once_before_the_vus_and_teardown_once_after_with_its_data() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&target.url, "mode: setup", 3, 4, ""));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    // Setup's and teardown's requests count outside the scenario, as k6
    // leaves them without a `scenario` tag.
    let requests = &r["scenarios"]["s"]["requests"];
    assert_eq!(requests["work"]["count"], 12);
    assert!(requests.get("setup login").is_none(), "{requests}");
    let outside = &r["setup_teardown"]["requests"];
    assert_eq!(outside["setup login"]["count"], 1, "{outside}");
    assert_eq!(outside["teardown"]["count"], 1, "{outside}");
    assert_eq!(check(r, "setup ran as VU 0"), (1, 0));
    assert_eq!(check(r, "every VU sees setup's data"), (12, 0));
    assert_eq!(check(r, "teardown got setup's data"), (1, 0));
    // What the server saw is what the report says.
    assert_eq!(target.received(), 14);
    assert_eq!(r["totals"]["requests"], 14);
    let groups = &r["setup_teardown"]["groups"];
    assert_eq!(groups["::setup"]["requests"], 1, "{groups}");
    assert_eq!(groups["::teardown"]["requests"], 1, "{groups}");
}

#[test]
fn a_failing_setup_stops_the_run_before_any_load_with_its_message() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &config(&target.url, "mode: setup, fail_setup: true", 3, 4, ""),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("scenario `s`: setup failed: the login service said no"),
        "{}",
        run.stderr
    );
    assert_eq!(target.received(), 0);
}

#[test]
fn timings_are_in_the_response_and_the_metrics_and_thresholds_read_them() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let thresholds = "thresholds:\n  http_req_waiting: [\"p(95)<5000\"]\n  http_req_connecting: [\"max<5000\"]\n  http_req_receiving: [\"max<0\"]\n";
    let cfg = write_config(
        &dir,
        &config(&target.url, "mode: timings", 2, 3, thresholds),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    // The impossible receiving threshold fails the run.
    assert_eq!(run.code, 99, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    assert_eq!(check(r, "phases add up to the duration"), (12, 0));
    assert_eq!(check(r, "waiting is within the duration"), (12, 0));
    assert_eq!(
        check(r, "the whole request covers connect, TLS and the exchange"),
        (12, 0)
    );
    assert_eq!(check(r, "a new connection has a connect time"), (2, 0));
    assert_eq!(check(r, "a reused connection has none"), (10, 0));
    let timings = &r["scenarios"]["s"]["timings_ms"];
    for phase in [
        "http_req_blocked",
        "http_req_connecting",
        "http_req_waiting",
    ] {
        assert!(timings[phase]["max"].is_number(), "{phase} in {timings}");
    }
    assert!(
        timings["http_req_waiting"]["max"].as_f64().unwrap() > 0.0,
        "{timings}"
    );
    assert_eq!(verdict(r, "http_req_waiting", "p(95)<5000")["passed"], true);
    assert_eq!(
        verdict(r, "http_req_connecting", "max<5000")["passed"],
        true
    );
    assert_eq!(verdict(r, "http_req_receiving", "max<0")["passed"], false);
}

#[test]
fn groups_tags_gauges_and_rates_carry_their_samples_into_thresholds() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let thresholds = r#"thresholds:
  "http_reqs{group:::checkout::pay}": ["count==6"]
  "http_req_failed{status:503}": ["rate==1"]
  "http_req_failed{group:::checkout}": ["rate==0"]
  "http_reqs{tier:gold}": ["count==12"]
  "http_reqs{kind:landing}": ["count==6"]
  "http_reqs{method:POST}": ["count>0"]
  "checks{group:::checkout::pay}": ["rate==0"]
  "group_duration{group:::checkout}": ["count==6"]
  "vu_id": ["value>0", "max==2"]
  "even_iteration": ["rate>0.9"]
"#;
    let cfg = write_config(&dir, &config(&target.url, "mode: groups", 2, 3, thresholds));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 99, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    let passed = |m: &str, t: &str| verdict(r, m, t)["passed"].as_bool().unwrap();
    assert!(passed("http_reqs{group:::checkout::pay}", "count==6"));
    assert!(passed("http_req_failed{status:503}", "rate==1"));
    assert!(passed("http_req_failed{group:::checkout}", "rate==0"));
    assert!(passed("http_reqs{tier:gold}", "count==12"));
    assert!(passed("http_reqs{kind:landing}", "count==6"));
    assert!(passed("checks{group:::checkout::pay}", "rate==0"));
    assert!(passed("group_duration{group:::checkout}", "count==6"));
    assert!(passed("vu_id", "value>0"));
    assert!(passed("vu_id", "max==2"));
    // Failing on purpose: no POST was sent, and only half the iterations are even.
    assert!(!passed("http_reqs{method:POST}", "count>0"));
    assert!(!passed("even_iteration", "rate>0.9"));
    let groups = &r["scenarios"]["s"]["groups"];
    assert_eq!(groups["::checkout"]["runs"], 6, "{groups}");
    assert_eq!(groups["::checkout"]["requests"], 6);
    assert_eq!(groups["::checkout::pay"]["requests"], 6);
    assert_eq!(groups["::checkout::pay"]["failed"], 6);
    assert_eq!(groups["::checkout::pay"]["checks"]["fails"], 6);
    // Per-name rows are still there, whatever the group.
    assert_eq!(r["scenarios"]["s"]["requests"]["home"]["count"], 6);
    assert_eq!(r["gauges"]["vu_id"]["max"], 2.0);
    assert_eq!(r["rates"]["even_iteration"]["total"], 6);
    assert_eq!(r["rates"]["even_iteration"]["hits"], 4);
}

#[test]
fn a_batch_sends_every_request_and_the_counts_match_the_server() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let http = "http: { batch: 4, batchPerHost: 3 }\n";
    let cfg = write_config(
        &dir,
        &config(&target.url, "mode: batch, batch: 7", 2, 3, http),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    assert_eq!(check(r, "a result for every request"), (6, 0));
    assert_eq!(check(r, "every batched request answered 200"), (6, 0));
    assert_eq!(r["scenarios"]["s"]["requests"]["batched"]["count"], 42);
    assert_eq!(target.received(), 42);
}

#[test]
fn the_cookie_jar_is_the_scenarios_to_read_and_write() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&bin.url, "mode: cookies", 1, 2, ""));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    for name in [
        "the jar starts empty",
        "a cookie the scenario set is sent",
        "the jar reads it back",
        "a refused cookie says why",
        "a per-request redirect limit ends the chain",
        "the final URL is the last hop's",
        "a held response gives its body and headers when asked",
        "clear empties the jar",
    ] {
        assert_eq!(check(r, name), (2, 0), "{name}");
    }
}

/// The SDK's later imports from Rust: an own cookie jar, a response's
/// connection, `batch_held`, `progress`, and `fail_test`, which lets the
/// run end and exits with 110.
#[test]
fn the_sdks_later_imports_work_from_rust() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&bin.url, "mode: later", 1, 2, ""));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 110, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    assert_eq!(r["failed_by_script"], "seen enough");
    for name in [
        "an own jar is used within it only",
        "a held response tells its connection",
        "batch_held keeps each response",
        "progress counts this node's run",
    ] {
        assert_eq!(check(r, name), (2, 0), "{name}: {r}");
    }
}

#[test]
fn teardown_runs_after_ctrl_c_too() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&target.url, "mode: setup", 2, 1, "").replace(
        "executor: per-vu-iterations\n    vus: 2\n    iterations: 1",
        "executor: constant-vus\n    vus: 2\n    duration: 120s",
    );
    let cfg = write_config(&dir, &yaml);
    let (code, _, r) = common::run_interrupted(&cfg, || target.received() >= 20);
    assert_eq!(code, 130);
    assert_eq!(r["setup_teardown"]["requests"]["teardown"]["count"], 1);
    assert_eq!(check(&r, "teardown got setup's data"), (1, 0));
    // Teardown's request is in the report like every other.
    assert_eq!(r["totals"]["requests"].as_u64(), Some(target.received()));
}
