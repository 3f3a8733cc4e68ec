//! Scenarios written in other languages run like Rust ones: the same
//! quickstart scenario, built by scripts/build-plugins.sh, against the
//! embedded target, with the target's count as the check.

mod common;

use common::{Target, component, run_loadtest, write_config};

/// Each VU logs in once (`params.user`), then 20 iterations of two
/// requests carry its token.
fn quickstart_in(plugin: &str, world: &str) {
    // The C, Go, JavaScript and Python examples are built against
    // loadtest:scenario@0.1.0: proof that components of the first version
    // still run. The Rust SDK builds against 0.2.0.
    let inspect = run_loadtest(
        &tempfile::tempdir().unwrap(),
        &["inspect", component(plugin).to_str().unwrap()],
    );
    let other = if world == "0.1.0" { "@0.2.0" } else { "@0.1.0" };
    assert!(
        inspect
            .stdout
            .contains(&format!("loadtest:scenario/http@{world}"))
            && !inspect.stdout.contains(other),
        "{plugin} should import loadtest:scenario {world}: {}",
        inspect.stdout
    );
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "target: {}\nplugins:\n  p: {{ path: {} }}\nscenarios:\n  s: {{ plugin: p, executor: per-vu-iterations, vus: 3, iterations: 20, params: {{ user: ada }} }}\n",
        target.url,
        component(plugin).display()
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report["scenarios"]["s"]["iterations"], 60);
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(123));
    assert_eq!(target.received(), 123);
    assert_eq!(
        run.report["scenarios"]["s"]["requests"]["login"]["count"],
        3
    );
    assert_eq!(
        run.report["checks"]["logged in"]["passes"], 3,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.report["checks"]["order echoed"]["passes"], 60,
        "{}",
        run.stdout
    );
}

#[test]
fn the_javascript_quickstart_runs_and_its_counts_match_the_target() {
    quickstart_in("js_quickstart", "0.1.0");
}

#[test]
fn the_python_quickstart_runs_and_its_counts_match_the_target() {
    quickstart_in("py_quickstart", "0.1.0");
}

#[test]
fn the_c_quickstart_runs_and_its_counts_match_the_target() {
    quickstart_in("c_quickstart", "0.1.0");
}

#[test]
fn the_go_quickstart_runs_and_its_counts_match_the_target() {
    quickstart_in("go_quickstart", "0.1.0");
}

/// Requests made through `wasi:http` (the `scenario-http` world): the
/// host sends and records them like its own import's, failures included.
fn through_wasi_http(plugin: &str) {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let config = |base: &str| {
        format!(
            "target: {}\nplugins:\n  p: {{ path: {} }}\nscenarios:\n  s: {{ plugin: p, executor: per-vu-iterations, vus: 3, iterations: 20, params: {{ base: \"{base}\" }} }}\n",
            target.url,
            component(plugin).display()
        )
    };
    let cfg = write_config(&dir, &config(&target.url));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report["scenarios"]["s"]["iterations"], 60);
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(120));
    assert_eq!(target.received(), 120);
    assert_eq!(run.report["checks"]["order echoed"]["passes"], 60);
    let names = run.report["scenarios"]["s"]["requests"].to_string();
    assert!(
        names.contains("GET /") && names.contains("POST /echo"),
        "{names}"
    );

    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let cfg = write_config(&dir, &config(&closed));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(
        run.report["totals"]["requests"].as_u64(),
        Some(60),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.report["totals"]["failed"].as_u64(),
        Some(60),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.report["scenarios"]["s"]["iterations_failed"], 60,
        "{}",
        run.stdout
    );
    let errors = run.report["scenarios"]["s"]["requests"]["GET /"]["errors"].to_string();
    assert!(errors.contains("connect"), "{errors}");
}

#[test]
fn javascript_fetch_goes_through_the_host_and_is_recorded() {
    through_wasi_http("js_fetch");
}

/// A `fetch` still waiting at the target when a stop's gracefulStop runs
/// out counts, failed as interrupted, as a request of the `http` import.
#[test]
fn a_fetch_cut_off_by_a_stop_still_counts() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // Every fetch waits 20 s at the target (the query keeps fetch's "/" off the path).
    let cfg = write_config(
        &dir,
        &format!(
            "target: {url}\nplugins:\n  p: {{ path: {} }}\nscenarios:\n  s: {{ plugin: p, executor: constant-vus, vus: 2, duration: 60s, gracefulStop: 1s, params: {{ base: \"{url}/delay/20000?to=\" }} }}\n",
            component("js_fetch").display(),
            url = target.url,
        ),
    );
    let (code, took, r) = common::run_interrupted(&cfg, || target.received() >= 2);
    assert_eq!(code, 130);
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(r["totals"]["requests"].as_u64(), Some(target.received()));
    assert_eq!(r["totals"]["failed"], r["totals"]["requests"], "{r}");
    assert!(r.to_string().contains("\"interrupted\""), "{r}");
}

#[test]
fn python_wasi_http_requests_go_through_the_host_and_are_recorded() {
    through_wasi_http("py_fetch");
}

#[test]
fn the_rust_quickstart_logs_in_and_its_counts_match_the_target() {
    quickstart_in("quickstart", "0.2.0");
}
