//! Workload models, thresholds and reports, checked by counting: the
//! embedded target's own request count, the JSON report and the
//! per-second series. Wall-clock precision is never asserted; where a
//! number depends on timing the tolerance is stated next to it.

mod common;

use common::{BIN, Target, component, run_loadtest, wait_bounded, write_config};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn plugins() -> String {
    format!(
        "plugins:\n  get: {{ path: {} }}\n  hostile: {{ path: {} }}\n  shop: {{ path: {} }}\n",
        component("single_get").display(),
        component("hostile").display(),
        component("quickstart").display()
    )
}

fn yaml(target: &str, rest: &str) -> String {
    format!("target: {target}\n{}{rest}", plugins())
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    &report["scenarios"][name]
}

/// A scenario's iterations started and dropped, from its report.
fn started_and_dropped(s: &Value) -> (u64, u64) {
    (
        s["iterations"].as_u64().unwrap(),
        s["dropped_iterations"].as_u64().unwrap(),
    )
}

fn read_series(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("time series written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn iteration_executors_run_exactly_the_configured_iterations() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  shared: { plugin: get, executor: shared-iterations, vus: 7, iterations: 101 }
  pervu: { plugin: get, executor: per-vu-iterations, vus: 3, iterations: 13 }
",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scenario(&run.report, "shared")["iterations"], 101);
    assert_eq!(scenario(&run.report, "pervu")["iterations"], 39);
    assert_eq!(target.received(), 140);
}

#[test]
fn constant_arrival_rate_starts_exactly_rate_times_duration() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  arrive: { plugin: get, executor: constant-arrival-rate, rate: 150, timeUnit: 1s, duration: 3s, preAllocatedVUs: 20, maxVUs: 50 }
",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = scenario(&run.report, "arrive");
    // The schedule has exactly 150 x 3 starts. The target answers in well
    // under a millisecond and 50 VUs may exist, so none should be dropped;
    // even so, count started plus dropped so the test states the schedule.
    let (iterations, dropped) = started_and_dropped(s);
    assert_eq!(iterations + dropped, 450);
    assert_eq!(dropped, 0, "{s}");
    assert_eq!(target.received(), 450);
}

#[test]
fn a_ramping_arrival_rate_rises_and_falls_in_the_series() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  ramp:
    plugin: get
    executor: ramping-arrival-rate
    startRate: 0
    stages: [{ duration: 3s, target: 300 }, { duration: 3s, target: 0 }]
    preAllocatedVUs: 10
    maxVUs: 50
",
        ),
    );
    let run = run_loadtest(
        &dir,
        &[
            "run",
            "-q",
            "--timeseries",
            series.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The ramp's area: 0->300/s over 3 s and back: 900 starts exactly.
    let s = scenario(&run.report, "ramp");
    let (started, dropped) = started_and_dropped(s);
    assert_eq!(started + dropped, 900);
    let rows: Vec<u64> = read_series(&series)
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rows.iter().sum::<u64>(),
        run.report["totals"]["requests"].as_u64().unwrap()
    );
    let peak = rows.iter().copied().max().unwrap();
    let at = rows.iter().position(|r| *r == peak).unwrap();
    let first = rows.iter().position(|r| *r > 0).unwrap();
    let last = rows.iter().rposition(|r| *r > 0).unwrap();
    // Per-second buckets of a 3 s ramp: the first and last seconds carry
    // about a sixth and the peak seconds about five sixths of 300.
    assert!(first < at && at < last, "no rise and fall: {rows:?}");
    assert!(
        rows[first] * 2 < peak && rows[last] * 2 < peak,
        "no rise and fall: {rows:?}"
    );
}

#[test]
fn ramping_vus_follow_their_stages() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  ramp:
    plugin: shop
    executor: ramping-vus
    startVUs: 0
    stages: [{ duration: 2s, target: 8 }, { duration: 1s, target: 8 }, { duration: 2s, target: 0 }]
    gracefulRampDown: 1s
    params: { think_ms: 100 }
",
        ),
    );
    let run = run_loadtest(
        &dir,
        &[
            "run",
            "-q",
            "--timeseries",
            series.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let vus: Vec<u64> = read_series(&series)
        .iter()
        .map(|r| r["vus"].as_u64().unwrap())
        .collect();
    let peak = vus.iter().copied().max().unwrap();
    assert_eq!(peak, 8, "{vus:?}");
    let at = vus.iter().position(|v| *v == peak).unwrap();
    assert!(
        vus[..at].iter().any(|v| *v > 0 && *v < peak),
        "no ramp up: {vus:?}"
    );
    assert!(
        vus[at..].iter().any(|v| *v > 0 && *v < peak),
        "no ramp down: {vus:?}"
    );
    assert_eq!(
        run.report["totals"]["requests"].as_u64(),
        Some(target.received())
    );
}

#[test]
fn a_slow_target_under_arrival_rate_drops_iterations() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // 50 starts/s, but 2 VUs each busy 200 ms per iteration can start at
    // most 10/s: about 80 of the 100 starts find no VU.
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  slow:
    plugin: get
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    preAllocatedVUs: 2
    maxVUs: 2
    params: { path: /delay/200 }
",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = scenario(&run.report, "slow");
    let (iterations, dropped) = started_and_dropped(s);
    assert_eq!(iterations + dropped, 100);
    assert!((60..=95).contains(&dropped), "dropped {dropped}");
    assert!(run.stdout.contains("iterations dropped"), "{}", run.stdout);
}

#[test]
fn open_model_latency_counts_from_the_scheduled_start() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // Starts every 50 ms, each iteration takes 100 ms, one VU is ready and
    // each further VU takes 300 ms in init. Iterations handed to a new VU
    // start about 300 ms late, and their latency includes that wait,
    // although the target itself always answers in about 100 ms.
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  late:
    plugin: hostile
    executor: constant-arrival-rate
    rate: 20
    duration: 1s
    preAllocatedVUs: 1
    maxVUs: 20
    params: { mode: ok, init_sleep_ms: 300, path: /delay/100 }
",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let latency = &scenario(&run.report, "late")["requests"]["hostile"]["latency_ms"];
    assert!(latency["max"].as_f64().unwrap() >= 350.0, "{latency}");
    assert!(latency["min"].as_f64().unwrap() < 250.0, "{latency}");
}

#[test]
fn segments_add_up_to_exactly_the_whole() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  shared: { plugin: get, executor: shared-iterations, vus: 4, iterations: 100 }
  pervu: { plugin: get, executor: per-vu-iterations, vus: 5, iterations: 4 }
  arrive: { plugin: get, executor: constant-arrival-rate, rate: 100, duration: 2s, preAllocatedVUs: 6 }
  ramp:
    plugin: get
    executor: ramping-arrival-rate
    stages: [{ duration: 2s, target: 70 }]
    preAllocatedVUs: 6
",
        ),
    );
    let mut sums = std::collections::BTreeMap::<String, u64>::new();
    for seg in ["1/3", "2/3", "3/3"] {
        let run = run_loadtest(
            &dir,
            &["run", "-q", "--segment", seg, cfg.to_str().unwrap()],
        );
        assert_eq!(run.code, 0, "{seg}: {}", run.stderr);
        for (name, s) in run.report["scenarios"].as_object().unwrap() {
            let (started, dropped) = started_and_dropped(s);
            let n = started + dropped;
            *sums.entry(name.clone()).or_default() += n;
        }
    }
    assert_eq!(sums["shared"], 100);
    assert_eq!(sums["pervu"], 20);
    assert_eq!(sums["arrive"], 200);
    assert_eq!(sums["ramp"], 70);
}

#[test]
fn thresholds_decide_the_exit_code() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let body = "scenarios:
  ok: { plugin: get, executor: per-vu-iterations, vus: 2, iterations: 10 }
  bad: { plugin: get, executor: per-vu-iterations, vus: 1, iterations: 5, params: { path: /status/503 } }
thresholds:
";
    let passing = format!(
        "{body}  \"http_req_failed{{scenario:ok}}\": [\"rate<0.01\"]\n  \"http_reqs\": [\"count==25\"]\n"
    );
    let cfg = write_config(&dir, &yaml(&target.url, &passing));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.report["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true)
    );

    let failing = format!(
        "{body}  http_req_failed: [\"rate<0.01\"]\n  \"http_req_duration{{scenario:ok}}\": [\"p(99)<5000\"]\n"
    );
    let cfg = write_config(&dir, &yaml(&target.url, &failing));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 99, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("✗ http_req_failed rate<0.01  (observed 0.2000)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("✓ http_req_duration{scenario:ok} p(99)<5000"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_abort_on_fail_threshold_ends_the_run_early() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  errors: { plugin: get, executor: constant-vus, vus: 2, duration: 60s, params: { path: /status/500 } }
thresholds:
  http_req_failed: [{ threshold: \"rate<0.5\", abortOnFail: true, delayAbortEval: 1s }]
",
        ),
    );
    let started = Instant::now();
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 99, "{}", run.stderr);
    assert_eq!(run.report["aborted_by_threshold"], true);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run was not aborted"
    );
    assert!(
        run.stderr.contains("failed with abortOnFail"),
        "{}",
        run.stderr
    );
}

#[test]
fn sigint_mid_run_still_writes_the_report() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:\n  long: { plugin: shop, executor: constant-vus, vus: 3, duration: 120s, params: { think_ms: 20 } }\n",
        ),
    );
    let mut child = Command::new(BIN)
        .args([
            "run",
            "-q",
            "--json",
            report.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.received() < 20 {
        assert!(Instant::now() < deadline, "no traffic reached the target");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(wait_bounded(&mut child, Duration::from_secs(30)), 130);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written")).unwrap();
    assert_eq!(report["stopped_early"], true);
    // Graceful stop lets running iterations finish, so nothing sent is lost.
    assert_eq!(
        report["totals"]["requests"].as_u64(),
        Some(target.received())
    );
}

#[test]
fn the_html_report_renders_its_charts_in_headless_chromium() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:\n  s: { plugin: shop, executor: constant-vus, vus: 2, duration: 3s, params: { think_ms: 10 } }\nthresholds:\n  checks: [\"rate>0.99\"]\n",
        ),
    );
    let run = run_loadtest(
        &dir,
        &[
            "run",
            "-q",
            "--html",
            html.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        !text.contains("src=") && !text.contains("href="),
        "the report must not load anything"
    );

    let shot = dir.path().join("report.png");
    let url = format!("file://{}", html.display());
    let dom = common::browser::dump_dom(&url);
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 4, "{dom}");
    let drawn = dom.split("<polyline").skip(1).filter(|p| {
        p.split("points=\"")
            .nth(1)
            .is_some_and(|pts| pts.split(' ').count() >= 3)
    });
    assert!(drawn.count() >= 4, "charts have no lines: {dom}");
    assert!(dom.contains("thresholds passed"), "{dom}");
    common::browser::screenshot(&url, &shot);
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("loadtest-report.png"));
}

#[test]
fn exec_weights_pick_flows_in_proportion() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:
  mixed:
    plugin: hostile
    executor: shared-iterations
    vus: 4
    iterations: 800
    exec: { browse: 3, buy: 1 }
    params: { mode: ok }
",
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = &scenario(&run.report, "mixed")["requests"];
    let (browse, buy) = (
        requests["browse"]["count"].as_u64().unwrap(),
        requests["buy"]["count"].as_u64().unwrap(),
    );
    assert_eq!(browse + buy, 800);
    // Expected 600 / 200; a binomial spread over 800 draws has sd ~12, so
    // 100 either way is far outside chance.
    assert!((500..=700).contains(&browse), "browse {browse}, buy {buy}");
}

#[test]
fn the_prometheus_endpoint_serves_live_metrics_during_the_run() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = write_config(
        &dir,
        &yaml(
            &target.url,
            "scenarios:\n  s: { plugin: get, executor: constant-vus, vus: 2, duration: 20s }\n",
        ),
    );
    let mut child = Command::new(BIN)
        .args([
            "run",
            "-q",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            cfg.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let scraped = loop {
        if let Some(body) = scrape(port)
            && let Some(line) = body
                .lines()
                .find(|l| l.starts_with("loadtest_http_reqs_total{scenario=\"s\",name=\"get\"}"))
            && line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no live request count at /metrics"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    wait_bounded(&mut child, Duration::from_secs(30));
    assert!(
        scraped.contains("# TYPE loadtest_http_req_duration_seconds summary"),
        "{scraped}"
    );
    assert!(scraped.contains("quantile=\"0.99\""), "{scraped}");
    assert!(
        scraped.contains("loadtest_vus{scenario=\"s\"}"),
        "{scraped}"
    );
}

fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
