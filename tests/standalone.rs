//! Standalone runs as a user makes them: the `loadtest` binary, a config
//! file, the embedded target in its own process. The target's own request
//! count is the ground truth the reports are checked against.

mod common;

use common::{Target, closed_port, component, run_loadtest, run_loadtest_env, write_config};
use serde_json::Value;

fn config(target: &str, plugin: &str, executor: &str) -> String {
    format!(
        "target: {target}\nplugins:\n  p: {{ path: {} }}\nscenarios:\n  s:\n    plugin: p\n{executor}",
        component(plugin).display()
    )
}

#[test]
fn report_counts_equal_what_the_target_received() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &config(
            &target.url,
            "quickstart",
            "    executor: constant-vus\n    vus: 10\n    duration: 2s\n",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let totals = &run.report["totals"];
    let received = target.received();
    assert!(received > 100, "only {received} requests in 2 s");
    assert_eq!(
        totals["requests"].as_u64(),
        Some(received),
        "report vs target"
    );
    assert_eq!(totals["failed"].as_u64(), Some(0));
    let checks = &run.report["checks"];
    assert_eq!(checks["order echoed"]["fails"].as_u64(), Some(0));
    assert!(
        run.stdout.contains("home") && run.stdout.contains("p99"),
        "{}",
        run.stdout
    );
}

#[test]
fn per_vu_iterations_runs_exactly_vus_times_iterations() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &config(
            &target.url,
            "quickstart",
            "    executor: per-vu-iterations\n    vus: 4\n    iterations: 25\n",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.report["scenarios"]["s"]["iterations"].as_u64(),
        Some(100)
    );
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(200));
    assert_eq!(target.received(), 200);
}

/// Runs the hostile plugin misbehaving on every second iteration and
/// returns the scenario's part of the report.
fn hostile_run(mode: &str) -> Value {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = format!(
        "    executor: per-vu-iterations\n    vus: 2\n    iterations: 6\n    params: {{ mode: {mode}, every: 2 }}\nsandbox: {{ cpuPerCall: 200ms, memoryMb: 16 }}\n"
    );
    let cfg = write_config(&dir, &config(&target.url, "hostile", &executor));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(
        run.code, 0,
        "a misbehaving plugin must not fail the run: {}",
        run.stderr
    );
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(12));
    assert_eq!(target.received(), 12);
    let s = run.report["scenarios"]["s"].clone();
    assert_eq!(s["iterations"].as_u64(), Some(12), "{s}");
    assert_eq!(s["iterations_failed"].as_u64(), Some(6), "{s}");
    s
}

/// Every one of `n` requests was sent, none failed, and the target got them.
fn assert_clean_run(run: &common::RunResult, target: &Target, n: u64) {
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(n));
    assert_eq!(
        run.report["totals"]["failed"].as_u64(),
        Some(0),
        "{}",
        run.stdout
    );
    assert_eq!(target.received(), n);
}

fn has_message(scenario: &Value, needle: &str) -> bool {
    scenario["failure_messages"]
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.contains(needle)))
}

#[test]
fn a_guest_error_fails_only_its_iteration() {
    let s = hostile_run("error");
    assert_eq!(s["failures"]["error"].as_u64(), Some(6));
    assert!(has_message(&s, "failed on purpose"), "{s}");
}

#[test]
fn a_trap_fails_its_iteration_and_the_vu_continues_on_a_fresh_instance() {
    let s = hostile_run("trap");
    assert_eq!(s["failures"]["trap"].as_u64(), Some(6));
    assert!(has_message(&s, "unreachable"), "{s}");
}

#[test]
fn an_endless_loop_is_cut_off_by_the_cpu_budget() {
    let s = hostile_run("loop");
    assert_eq!(s["failures"]["cpu_limit"].as_u64(), Some(6), "{s}");
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let s = hostile_run("oom");
    assert_eq!(s["failures"]["memory_limit"].as_u64(), Some(6), "{s}");
}

#[test]
fn a_failing_init_is_reported_and_exits_3() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n    params: { mode: init-fail }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.report["totals"]["init_failed"].as_u64(), Some(2));
    assert!(
        run.stdout.contains("init refused: no credentials"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("2 VU(s) failed to start"),
        "{}",
        run.stderr
    );
    assert_eq!(target.received(), 0);
}

/// A panic in loadtest's own code (here a debug build's failpoint, in the
/// host during every VU's third iteration) is a bug: it is logged as one,
/// fails only that iteration, the VU goes on, the data is kept, and the
/// run ends with an error.
#[test]
fn a_panic_in_an_iteration_is_reported_as_a_bug_and_the_run_keeps_its_data() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 5\n";
    let cfg = write_config(&dir, &config(&target.url, "quickstart", executor));
    let failpoint = [("LOADTEST_FAILPOINT", "iteration-panic=2")];
    let run = run_loadtest_env(&dir, &["run", "-q", cfg.to_str().unwrap()], &failpoint);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for needle in [
        "loadtest hit a bug: a panic at",
        "failpoint iteration-panic=2",
        "please report",
        "hit a bug (a panic) in 2 iteration(s)",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let s = &run.report["scenarios"]["s"];
    assert_eq!(s["iterations"].as_u64(), Some(10), "{s}");
    assert_eq!(s["failures"]["panic"].as_u64(), Some(2), "{s}");
    assert!(has_message(s, "a bug in loadtest"), "{s}");
    assert_eq!(run.report["totals"]["panics"].as_u64(), Some(2));
    // Eight iterations of two requests each; the panicked ones sent none.
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(16));
    assert_eq!(target.received(), 16);
}

#[test]
fn a_panic_while_a_vu_starts_is_a_failed_start_named_as_a_bug() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n";
    let cfg = write_config(&dir, &config(&target.url, "quickstart", executor));
    let failpoint = [("LOADTEST_FAILPOINT", "init-panic")];
    let run = run_loadtest_env(&dir, &["run", "-q", cfg.to_str().unwrap()], &failpoint);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.report["totals"]["init_failed"].as_u64(), Some(2));
    let messages = &run.report["scenarios"]["s"]["init_messages"];
    assert!(
        messages.to_string().contains("a bug in loadtest"),
        "{messages}"
    );
    assert!(
        run.stderr.contains("failpoint init-panic"),
        "{}",
        run.stderr
    );
    assert_eq!(target.received(), 0);
}

#[test]
fn an_unreachable_target_counts_errors_and_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let cfg = write_config(
        &dir,
        &config(
            &url,
            "quickstart",
            "    executor: per-vu-iterations\n    vus: 2\n    iterations: 5\n",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let totals = &run.report["totals"];
    // The scenario's first request fails, so each iteration sends one.
    assert_eq!(totals["requests"].as_u64(), Some(10));
    assert_eq!(totals["failed"].as_u64(), Some(10));
    assert_eq!(
        run.report["scenarios"]["s"]["requests"]["home"]["errors"]["connect"].as_u64(),
        Some(10)
    );
    assert_eq!(totals["iterations_failed"].as_u64(), Some(10));
}

/// Runs `loadtest validate` and `loadtest run` on a bad config; both must
/// refuse with exit 1 and an error containing every `needle`.
fn assert_rejected(yaml: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, yaml);
    for cmd in ["validate", "run"] {
        let run = run_loadtest(&dir, &[cmd, cfg.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{cmd}: {}", run.stderr);
        for n in needles {
            assert!(
                run.stderr.contains(n),
                "{cmd}: expected `{n}` in: {}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    assert_rejected(
        "scenarios:\n  s: { plugin: p\n",
        &["test.yaml:3:1", "`scenarios.s`", "did not find expected"],
    );
}

#[test]
fn unknown_fields_and_executors_name_the_field_path() {
    let good = config(
        "http://127.0.0.1:1",
        "quickstart",
        "    executor: constant-vus\n    duration: 1s\n",
    );
    assert_rejected(
        &good.replace("duration: 1s", "duration: 1s\n    vuus: 3"),
        &["test.yaml:9:5", "scenarios.s.vuus", "unknown field `vuus`"],
    );
    assert_rejected(
        &good.replace("constant-vus", "warp-speed"),
        &[
            "test.yaml:7:15",
            "scenarios.s.executor",
            "unknown variant `warp-speed`",
        ],
    );
}

#[test]
fn a_missing_plugin_file_says_which_and_how_to_fix() {
    let yaml = "plugins:\n  p: { path: nowhere.wasm }\nscenarios:\n  s: { plugin: p, executor: constant-vus, duration: 1s }\n";
    assert_rejected(yaml, &["plugins.p.path", "nowhere.wasm", "build it first"]);
}

#[test]
fn files_that_are_not_scenario_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "junk.wasm",
            b"this is not wasm at all",
            "not a WebAssembly file",
        ),
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "core WebAssembly module, not a component",
        ),
        // A valid, empty component: it exports nothing.
        (
            "empty.wasm",
            b"\0asm\x0d\0\x01\0",
            "does not implement the loadtest:scenario world",
        ),
    ];
    for (file, bytes, needle) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let yaml = format!(
            "plugins:\n  p: {{ path: {} }}\nscenarios:\n  s: {{ plugin: p, executor: constant-vus, duration: 1s }}\n",
            path.display()
        );
        assert_rejected(&yaml, &["plugin `p`", needle]);
    }
}

#[test]
fn the_quickstart_example_validates() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    );
    let run = run_loadtest(&dir, &["validate", example]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("ok (1 scenario(s), 1 plugin(s))"),
        "{}",
        run.stdout
    );
}

#[test]
fn connections_the_server_closes_are_replaced_without_losing_requests() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 20\n    params: { mode: ok, path: /close }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_clean_run(&run, &target, 40);
}

#[test]
fn http2_prior_knowledge_talks_h2c_to_the_target() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{}http: {{ http2PriorKnowledge: true }}\n",
        config(
            &target.url,
            "quickstart",
            "    executor: per-vu-iterations\n    vus: 3\n    iterations: 10\n"
        )
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_clean_run(&run, &target, 60);
}

#[test]
fn https_targets_work_and_unverifiable_certificates_are_connect_errors() {
    let target = Target::start_tls();
    assert!(target.url.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 5\n";
    let trusting = format!(
        "{}http: {{ insecureSkipTLSVerify: true }}\n",
        config(&target.url, "quickstart", executor)
    );
    let run = run_loadtest(
        &dir,
        &["run", "-q", write_config(&dir, &trusting).to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_clean_run(&run, &target, 20);

    // TLS records and handshakes count in data_sent and data_received, as
    // in k6: more than the same requests in the clear.
    let plain = Target::start();
    let clear = config(&plain.url, "quickstart", executor);
    let clear = run_loadtest(
        &dir,
        &["run", "-q", write_config(&dir, &clear).to_str().unwrap()],
    );
    assert_eq!(clear.code, 0, "{}", clear.stderr);
    for key in ["bytes_sent", "bytes_received"] {
        let bytes = |r: &Value| r["totals"][key].as_u64().unwrap();
        let (tls, clear) = (bytes(&run.report), bytes(&clear.report));
        // Two connections, each at least a hello each way.
        assert!(
            tls > clear + 2 * 100,
            "{key}: {tls} over TLS, {clear} in the clear"
        );
    }

    // Without the flag the self-signed certificate is refused.
    let strict = config(&target.url, "quickstart", executor);
    let run = run_loadtest(
        &dir,
        &["run", "-q", write_config(&dir, &strict).to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.report["totals"]["failed"].as_u64(),
        Some(10),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.report["scenarios"]["s"]["requests"]["home"]["errors"]["connect"].as_u64(),
        Some(10)
    );
    assert_eq!(target.received(), 20);
}

#[test]
fn inspect_lists_the_interface_and_says_whether_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let good = component("quickstart");
    let run = run_loadtest(&dir, &["inspect", good.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("loadtest:scenario/http@0.2.0 (interface)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("loadtest:scenario/lifecycle@0.2.0 (interface)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("iteration (function)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("runs as a loadtest:scenario plugin: yes"),
        "{}",
        run.stdout
    );

    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let run = run_loadtest(&dir, &["inspect", empty.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("runs as a loadtest:scenario plugin: no"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("must export `init"), "{}", run.stderr);
}

#[test]
fn a_request_past_its_timeout_is_cut_off_as_a_timeout() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 1\n    iterations: 3\n    params: { mode: ok, path: /delay/2000 }\n";
    let yaml = format!(
        "{}http: {{ timeout: 200ms }}\n",
        config(&target.url, "hostile", executor)
    );
    let started = std::time::Instant::now();
    let run = run_loadtest(
        &dir,
        &["run", "-q", write_config(&dir, &yaml).to_str().unwrap()],
    );
    let took = started.elapsed();
    let req = &run.report["scenarios"]["s"]["requests"]["hostile"];
    assert_eq!(req["errors"]["timeout"].as_u64(), Some(3), "{}", run.stdout);
    let p50 = req["latency_ms"]["p50"].as_f64().unwrap();
    assert!(
        (190.0..1000.0).contains(&p50),
        "cut off at {p50} ms, not 200"
    );
    // Waiting the server out would take 3 x 2 s.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // Each request went out: a timed-out connection is not reused.
    assert_eq!(target.received(), 3);
}

#[test]
fn an_init_that_never_returns_is_cut_off_by_the_init_timeout() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 1\n    params: { mode: init-hang }\nsandbox: { initTimeout: 1s }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let started = std::time::Instant::now();
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let s = &run.report["scenarios"]["s"];
    assert_eq!(s["init_failed"], 2, "{s}");
    assert!(
        s["init_messages"]
            .to_string()
            .contains("init did not return within 1s (sandbox.initTimeout)"),
        "{s}"
    );
}

#[test]
fn ctrl_c_while_vus_start_ends_the_run_and_writes_the_report() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: constant-vus\n    vus: 3\n    duration: 60s\n    params: { mode: init-hang }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    // Ready when every VU's init has sent its request and waits forever.
    let (code, took, r) = common::run_interrupted(&cfg, || target.received() >= 3);
    assert_eq!(code, 130);
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(r["stopped_early"], true);
    assert_eq!(r["totals"]["requests"].as_u64(), Some(target.received()));
}

#[test]
fn a_plugin_logging_in_a_loop_is_held_to_its_log_budget() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n    params: { mode: log }\nsandbox: { logsPerSecond: 50 }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let floods = run.stderr.lines().filter(|l| l.contains("flood ")).count();
    // 6000 lines asked for; the run lasts a second or two.
    assert!(floods > 0 && floods <= 200, "{floods} flood lines written");
    assert!(
        run.stderr
            .contains("plugin log lines were dropped over the budget"),
        "{}",
        run.stderr.lines().last().unwrap_or_default()
    );
    assert_eq!(run.report["totals"]["iterations"], 6);
}

#[test]
fn out_of_range_numbers_in_a_config_file_are_refused_where_they_are_written() {
    let base = |executor: &str| config("http://127.0.0.1:1", "quickstart", executor);
    // (config, where, field path)
    let cases = [
        (
            base("    executor: constant-vus\n    duration: 1e20\n"),
            "test.yaml:8:",
            "scenarios.s.duration",
        ),
        (
            base("    executor: constant-vus\n    vus: 18446744073709551615\n    duration: 1s\n"),
            "test.yaml:8:",
            "scenarios.s.vus",
        ),
        (
            base(
                "    executor: constant-arrival-rate\n    rate: -5\n    duration: 1s\n    preAllocatedVUs: 1\n",
            ),
            "test.yaml:8:",
            "scenarios.s.rate",
        ),
        (
            base(
                "    executor: constant-vus\n    duration: 1s\n    gracefulStop: 100000000000000s\n",
            ),
            "test.yaml:9:",
            "scenarios.s.gracefulStop",
        ),
        (
            format!(
                "{}http: {{ timeout: 99999999999999h }}\n",
                base("    executor: constant-vus\n    duration: 1s\n")
            ),
            "test.yaml:9:",
            "http.timeout",
        ),
    ];
    for (yaml, at, field) in &cases {
        assert_rejected(yaml, &[at, field]);
    }
    // Within u32, but no scenario can hold that many VUs.
    assert_rejected(
        &base(
            "    executor: constant-arrival-rate\n    rate: 5\n    duration: 1s\n    preAllocatedVUs: 1\n    maxVUs: 4000000000\n",
        ),
        &["test.yaml:11:", "scenarios.s.maxVUs", "at most 1000000"],
    );
}

/// `loadtest run` with every report on a config, signalled with SIGTERM
/// `times` times once `ready` holds. Returns the exit code, how long it
/// took to exit after the first signal, and the report directory.
fn run_terminated(
    dir: &tempfile::TempDir,
    cfg: &std::path::Path,
    times: usize,
    ready: impl Fn() -> bool,
) -> (i32, std::time::Duration) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let d = dir.path();
    let mut child = Command::new(common::BIN)
        .args(["run", "-q", "--json"])
        .arg(d.join("report.json"))
        .arg("--html")
        .arg(d.join("report.html"))
        .arg("--timeseries")
        .arg(d.join("series.jsonl"))
        .arg(cfg)
        .env_remove("CLUSTER_ENABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    for _ in 0..times {
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = common::wait_bounded(&mut child, Duration::from_secs(60));
    (code, signalled.elapsed())
}

/// Every report of an interrupted run is there and agrees with the target.
fn assert_reports_written(dir: &tempfile::TempDir, target: &Target) {
    let d = dir.path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["stopped_early"], true);
    assert_eq!(
        report["totals"]["requests"].as_u64(),
        Some(target.received())
    );
    // Every request waited at the target and was cut off: each counts,
    // failed as interrupted.
    assert_eq!(report["totals"]["failed"], report["totals"]["requests"]);
    assert!(report.to_string().contains("\"interrupted\""), "{report}");
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("stopped early"), "the HTML report says so");
    assert!(std::fs::read_to_string(d.join("series.jsonl")).is_ok_and(|s| !s.is_empty()));
}

#[test]
fn sigterm_ends_a_run_within_graceful_stop_and_writes_every_report() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // Each iteration waits 5 s at the target; gracefulStop gives it 1 s.
    let executor = "    executor: constant-vus\n    vus: 2\n    duration: 60s\n    gracefulStop: 1s\n    params: { mode: ok, path: /delay/20000 }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let (code, took) = run_terminated(&dir, &cfg, 1, || target.received() >= 2);
    assert_eq!(code, 130);
    assert!(
        took < std::time::Duration::from_secs(5),
        "gracefulStop is 1 s, the run took {took:?} to end"
    );
    assert_reports_written(&dir, &target);
}

#[test]
fn a_second_sigterm_ends_the_run_at_once_and_still_writes_every_report() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // gracefulStop would wait 30 s for the iterations at the target.
    let executor = "    executor: constant-vus\n    vus: 2\n    duration: 60s\n    gracefulStop: 30s\n    params: { mode: ok, path: /delay/20000 }\n";
    let cfg = write_config(&dir, &config(&target.url, "hostile", executor));
    let (code, took) = run_terminated(&dir, &cfg, 2, || target.received() >= 2);
    assert_eq!(code, 130);
    assert!(
        took < std::time::Duration::from_secs(5),
        "a second SIGTERM took {took:?} to end the run"
    );
    assert_reports_written(&dir, &target);
}
