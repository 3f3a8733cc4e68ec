//! The live dashboard and live control, with real processes: a run with
//! `--dashboard` against the embedded target, its page loaded in headless
//! Chromium (Debian's), and `loadtest pause`/`resume`/`scale` steering it.
//! Counts come from the target and the JSON report; rates are compared
//! with wide margins, never timed exactly.

mod common;

use common::browser::{dump_dom, figure, screenshot};
use common::{BIN, Target, component, http_try_get, wait_bounded, write_config};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `loadtest run --dashboard` in its own process, interrupted on drop.
struct Run {
    child: Child,
    /// `http://127.0.0.1:PORT/`
    url: String,
    /// `127.0.0.1:PORT`
    addr: String,
    report: PathBuf,
}

impl Run {
    fn start(dir: &tempfile::TempDir, yaml: &str, extra: &[&str]) -> Run {
        let cfg = write_config(dir, yaml);
        let report = dir.path().join("report.json");
        let mut child = Command::new(BIN)
            .args(["run", "-q", "--dashboard", "127.0.0.1:0", "--json"])
            .arg(&report)
            .args(extra)
            .arg(&cfg)
            .env("NO_COLOR", "1")
            .env_remove("CLUSTER_ENABLED")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting loadtest");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("loadtest: {line}");
                let _ = tx.send(line);
            }
        });
        let url = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the run prints its dashboard's address");
            if let Some(u) = line.strip_prefix("dashboard: ") {
                break u.trim().to_string();
            }
        };
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Run {
            child,
            url,
            addr,
            report,
        }
    }

    fn state(&self) -> Value {
        let body = http_try_get(&format!("{}api/state", self.url)).expect("the dashboard answers");
        serde_json::from_str(&body).expect("the state is JSON")
    }

    /// Waits (up to 60 s) until the dashboard's state satisfies `cond`.
    fn wait_state(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.state();
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never {what}: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the JSON report: the run is over (the dashboard lingers).
    fn wait_report(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !self.report.exists() {
            assert!(Instant::now() < deadline, "the run never wrote its report");
            std::thread::sleep(Duration::from_millis(100));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(v) = serde_json::from_str(&std::fs::read_to_string(&self.report).unwrap()) {
                return v;
            }
            assert!(Instant::now() < deadline, "the report is not JSON");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `loadtest <args> --dashboard ADDR`: (exit code, stdout, stderr).
    fn steer(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .args(["--dashboard", &self.addr])
            .output()
            .expect("running loadtest");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Ctrl-C (ends the linger) and the exit code.
    fn interrupt(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        wait_bounded(&mut self.child, Duration::from_secs(30))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shop(target: &str, scenario: &str) -> String {
    format!(
        "target: {target}\nplugins:\n  shop: {{ path: {} }}\n  get: {{ path: {} }}\nscenarios:\n{scenario}",
        component("quickstart").display(),
        component("single_get").display()
    )
}

fn requests_in(state: &Value) -> u64 {
    figure(state["status"].as_str().unwrap_or(""), "requests").unwrap_or(0)
}

#[test]
fn the_dashboard_follows_the_run_in_chromium_and_ends_with_its_report() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(
        &dir,
        &shop(
            &target.url,
            "  s: { plugin: shop, executor: constant-vus, vus: 2, duration: 10s, params: { think_ms: 10 } }\nthresholds:\n  http_req_failed: [\"rate<0.01\"]\n",
        ),
        &["--dashboard-linger", "60s"],
    );
    let page = http_try_get(&run.url).unwrap();
    assert!(
        !page.contains("src=") && !page.contains("href=\"http"),
        "the page must load nothing from elsewhere"
    );
    run.wait_state("counted a request", |s| requests_in(s) > 0);

    let first = dump_dom(&run.url);
    let n1 = figure(&first, "requests").unwrap_or_else(|| panic!("no request count: {first}"));
    assert!(first.contains(">running<"), "{first}");
    assert_eq!(first.matches("<svg class=\"chart\"").count(), 4, "{first}");
    run.wait_state("counted more", |s| requests_in(s) > n1 + 50);
    let second = dump_dom(&run.url);
    let n2 = figure(&second, "requests").unwrap();
    assert!(n2 > n1, "the page's count did not move: {n1} then {n2}");

    let report = run.wait_report();
    let last = dump_dom(&run.url);
    let total = report["totals"]["requests"].as_u64().unwrap();
    assert!(last.contains(">finished<"), "{last}");
    assert_eq!(figure(&last, "requests"), Some(total), "{last}");
    assert_eq!(total, target.received(), "report and target disagree");
    assert!(
        last.contains("thresholds passed"),
        "the final report is shown: {last}"
    );
    assert!(
        last.contains("id=\"save\"") && last.contains("href=\"blob:"),
        "the report can be saved: {last}"
    );
    let shot = dir.path().join("dashboard.png");
    screenshot(&run.url, &shot);
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("loadtest-dashboard.png"));
    assert_eq!(run.interrupt(), 0, "a clean run that lingered exits 0");
}

#[test]
fn scaling_an_externally_controlled_scenario_changes_the_load_at_the_target() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(
        &dir,
        &shop(
            &target.url,
            "  ext: { plugin: shop, executor: externally-controlled, vus: 1, maxVUs: 6, duration: 40s, params: { think_ms: 50 } }\n",
        ),
        &[],
    );
    run.wait_state("counted a request", |s| requests_in(s) > 0);
    let rate = |window: Duration| {
        let before = target.received();
        std::thread::sleep(window);
        (target.received() - before) as f64 / window.as_secs_f64()
    };
    let one_vu = rate(Duration::from_secs(2));

    let (code, said, err) = run.steer(&["pause"]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("paused"), "{said}");
    target.await_quiet("while paused");

    let (code, said, err) = run.steer(&["scale", "--vus", "6"]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("6 VUs"), "{said}");
    let (code, _, err) = run.steer(&["resume"]);
    assert_eq!(code, 0, "{err}");
    run.wait_state("shown 6 busy VUs", |s| {
        s["status"].as_str().unwrap_or("").contains("VUs 6/6")
    });
    let six_vus = rate(Duration::from_secs(2));
    assert!(
        six_vus > 3.0 * one_vu,
        "six VUs made {six_vus:.0} req/s against one VU's {one_vu:.0}"
    );

    let (code, _, err) = run.steer(&["scale", "--vus", "7"]);
    assert_ne!(code, 0);
    assert!(err.contains("maxVUs 6"), "{err}");
    let (code, _, err) = run.steer(&["scale", "--rate", "2"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no scenario of this run takes a rate factor"),
        "{err}"
    );

    // A page from another site cannot steer: it cannot send the header.
    let mut s = std::net::TcpStream::connect(&run.addr).unwrap();
    write!(
        s,
        "POST /api/control?action=pause HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        run.addr
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let code = run.interrupt();
    assert_eq!(code, 130, "interrupted");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let controls = common::controls(&report);
    assert_eq!(controls.len(), 3, "{controls:?}");
    assert!(
        controls[0].contains("paused")
            && controls[1].contains("6 VUs")
            && controls[2].contains("resumed")
    );
    assert_eq!(
        report["totals"]["requests"].as_u64(),
        Some(target.received())
    );
}

#[test]
fn a_rate_factor_changes_an_arrival_rate_from_the_moment_it_is_set() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series.jsonl");
    let run = Run::start(
        &dir,
        &shop(
            &target.url,
            "  open: { plugin: get, executor: constant-arrival-rate, rate: 20, duration: 10s, preAllocatedVUs: 4, maxVUs: 20 }\n",
        ),
        &["--timeseries", series.to_str().unwrap()],
    );
    run.wait_state("closed two seconds", |s| {
        s["body"].as_str().unwrap_or("").contains("points=") && requests_in(s) >= 40
    });
    let (code, said, err) = run.steer(&["scale", "--rate", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("3× the configured rate"), "{said}");
    let report = run.wait_report();
    let changed_at: f64 = report["controls"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("at ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rows: Vec<Value> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |t: u64| {
        rows.iter()
            .find(|r| r["t"] == t)
            .map(|r| r["requests"].as_u64().unwrap())
    };
    let before = at(changed_at.floor() as u64).unwrap();
    let after = at(changed_at.ceil() as u64 + 2).unwrap();
    assert!((15..=25).contains(&before), "before the change: {before}/s");
    assert!((50..=70).contains(&after), "after the change: {after}/s");
    assert_eq!(
        report["totals"]["requests"].as_u64(),
        Some(target.received())
    );
    drop(run);
}
