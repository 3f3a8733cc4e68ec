//! Watching and steering a cluster run live, with real node processes on
//! loopback and the embedded target in its own process: live changes go
//! through the plan and every node applies them at the same moment.
//! Counts come from the target and the merged report; rates are compared
//! with wide margins, never timed exactly.

mod common;

use common::cluster::{Cluster, LIMIT, Reported, cli, serial, with_reports};
use common::{Target, component};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn start_cluster(n: usize) -> (Cluster, usize) {
    let mut c = Cluster::new(n, None);
    for i in 0..n {
        c.start(i);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    c.await_names(leader, LIMIT);
    (c, leader)
}

fn config(dir: &Path, target: &Target, scenario: &str) -> PathBuf {
    let yaml = format!(
        "name: live\ntarget: {}\nplugins:\n  shop: {{ path: {} }}\nscenarios:\n{scenario}",
        target.url,
        component("quickstart").display()
    );
    let p = dir.join("live.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn submit(dir: &Path, cfg: &Path, nodes: &str, extra: &[&str]) -> Reported {
    let cfg = cfg.display().to_string();
    let mut args = vec!["submit", &cfg, "--node", nodes];
    args.extend_from_slice(extra);
    with_reports(dir, &args, None)
}

/// Requests per second at the target over `window`.
fn rate(target: &Target, window: Duration) -> f64 {
    let before = target.received();
    std::thread::sleep(window);
    (target.received() - before) as f64 / window.as_secs_f64()
}

fn await_requests(target: &Target, n: u64) {
    let until = Instant::now() + LIMIT;
    while target.received() <= n {
        assert!(Instant::now() < until, "the target never saw {n} requests");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nodes whose log says they run a share (the leader may not).
fn sharing(c: &Cluster) -> usize {
    c.nodes
        .iter()
        .filter(|n| std::fs::read_to_string(&n.log).is_ok_and(|l| l.contains("running share")))
        .count()
}

/// When each node's log says it applied a live change that says `what`,
/// as seconds of the day (the log's UTC timestamps).
fn applied_at(c: &Cluster, what: &str) -> Vec<f64> {
    c.nodes
        .iter()
        .filter_map(|n| {
            let log = std::fs::read_to_string(&n.log).ok()?;
            let line = log
                .lines()
                .find(|l| l.contains("live change: ") && l.contains(what) && !l.contains("(on"))?;
            let time = line.split('T').nth(1)?.split('Z').next()?;
            let mut parts = time.split(':');
            let (h, m, s): (f64, f64, f64) = (
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            );
            Some(h * 3600.0 + m * 60.0 + s)
        })
        .collect()
}

#[test]
fn a_scale_change_reaches_every_node_at_once_and_the_report_records_it() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = config(
        dir.path(),
        &target,
        "  ext: { plugin: shop, executor: externally-controlled, vus: 1, maxVUs: 6, duration: 60s, params: { think_ms: 50 } }\n",
    );
    let (c, _) = start_cluster(3);
    let run = submit(dir.path(), &cfg, &c.peers, &[]);
    await_requests(&target, 10);
    let one_vu = rate(&target, Duration::from_secs(2));

    let (code, said) = cli(&["scale", "--vus", "7", "--node", &c.peers], None);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("maxVUs 6"), "{said}");
    let (code, said) = cli(&["scale", "--vus", "6", "--node", &c.peers], None);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("6 VUs") && said.contains("on every node at"),
        "{said}"
    );
    // Every node with a share applies it, at the same moment.
    let shares = sharing(&c);
    assert!(shares >= 2, "the run is shared");
    common::cluster::await_true("every node applied the change", || {
        applied_at(&c, "6 VUs").len() == shares
    });
    let at = applied_at(&c, "6 VUs");
    let spread =
        at.iter().cloned().fold(f64::MIN, f64::max) - at.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.25,
        "the nodes applied it {spread:.3} s apart: {at:?}"
    );
    // VUs start and finish an iteration before the rate shows them.
    std::thread::sleep(Duration::from_secs(1));
    let six_vus = rate(&target, Duration::from_secs(2));
    assert!(
        six_vus > 3.0 * one_vu,
        "six VUs made {six_vus:.0} req/s against one VU's {one_vu:.0}"
    );

    let (code, said) = cli(&["pause", "--node", &c.peers], None);
    assert_eq!(code, 0, "{said}");
    common::cluster::await_true("every node paused", || {
        applied_at(&c, "paused").len() == shares
    });
    target.await_quiet("while paused");
    let (code, out) = cli(&["stop", "--node", &c.peers], None);
    assert_eq!(code, 0, "{out}");

    let out = run.finish();
    assert_eq!(out.code, 0, "a run stopped by an operator: {}", out.output);
    let report: &Value = &out.report;
    let controls = common::controls(report);
    assert_eq!(controls.len(), 2, "{controls:?}");
    assert!(controls[0].contains("6 VUs") && controls[1].contains("paused"));
    let events = report["cluster"]["events"].to_string();
    assert!(events.contains("live change at"), "{events}");
    let nodes = report["cluster"]["nodes"].as_array().unwrap();
    assert!(
        nodes.iter().all(|n| n["requests"].as_u64().unwrap() > 0),
        "every node ran its share of the six VUs: {nodes:?}"
    );
    assert_eq!(
        report["totals"]["requests"].as_u64(),
        Some(target.received()),
        "report and target disagree"
    );
}

/// A `submit` with live outputs in its own process, killed on drop.
struct Operator {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    report: PathBuf,
}

impl Operator {
    fn submit(dir: &Path, cfg: &Path, nodes: &str, extra: &[&str]) -> Operator {
        use std::io::BufRead;
        let report = dir.join("report.json");
        let mut child = std::process::Command::new(common::BIN)
            .args(["submit", "-q", "--node", nodes, "--json"])
            .arg(&report)
            .args(extra)
            .arg(cfg)
            .env("NO_COLOR", "1")
            .env_remove("CLUSTER_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting loadtest submit");
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("submit: {line}");
                let _ = tx.send(line);
            }
        });
        Operator {
            child,
            lines,
            report,
        }
    }

    /// The URL the operator printed after `prefix`.
    fn printed(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("submit never printed `{prefix}`"));
            if let Some(u) = line.strip_prefix(prefix) {
                return u.trim().to_string();
            }
        }
    }

    /// Waits for the JSON report (the run is over; a dashboard lingers).
    fn wait_report(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(v) = std::fs::read_to_string(&self.report)
                .map_err(|_| ())
                .and_then(|t| serde_json::from_str(&t).map_err(|_| ()))
            {
                return v;
            }
            assert!(Instant::now() < deadline, "submit never wrote its report");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C (ends the linger) and the exit code.
    fn interrupt(mut self) -> i32 {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        common::wait_bounded(&mut self.child, Duration::from_secs(30))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dashboard_state(url: &str) -> Value {
    let body = common::http_try_get(&format!("{url}api/state")).expect("the dashboard answers");
    serde_json::from_str(&body).expect("the state is JSON")
}

fn requests_in(state: &Value) -> u64 {
    common::browser::figure(state["status"].as_str().unwrap_or(""), "requests").unwrap_or(0)
}

fn wait_state(url: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = dashboard_state(url);
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never {what}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_cluster_dashboard_shows_the_merged_run_through_a_leader_kill_and_steers_it() {
    use common::browser::{dump_dom, figure, screenshot};
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = config(
        dir.path(),
        &target,
        "  open: { plugin: shop, executor: constant-arrival-rate, rate: 40, duration: 16s, preAllocatedVUs: 4, maxVUs: 40, params: { think_ms: 0 } }\n",
    );
    let (mut c, leader) = start_cluster(3);
    let op = Operator::submit(
        dir.path(),
        &cfg,
        &c.peers,
        &["--dashboard", "127.0.0.1:0", "--dashboard-linger", "60s"],
    );
    let url = op.printed("dashboard: ");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let page = common::http_try_get(&url).unwrap();
    assert!(
        !page.contains("src=") && !page.contains("href=\"http"),
        "the page must load nothing from elsewhere"
    );
    wait_state(&url, "counted merged requests", |s| requests_in(s) > 0);
    let first = dump_dom(&url);
    let n1 = figure(&first, "requests").unwrap_or_else(|| panic!("no request count: {first}"));
    assert!(first.contains(">running<"), "{first}");
    assert!(
        figure(&first, "shares").is_some_and(|n| n >= 2),
        "per-node shares: {first}"
    );
    assert!(first.contains("node-"), "the nodes' rows: {first}");

    // A live change from the dashboard's control endpoint (what its
    // buttons send) goes through the cluster's leader.
    let steer = std::process::Command::new(common::BIN)
        .args(["scale", "--rate", "2", "--dashboard", &addr])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&steer.stdout);
    assert!(
        steer.status.success(),
        "{}",
        String::from_utf8_lossy(&steer.stderr)
    );
    assert!(
        said.contains("2× the configured rate") && said.contains("on every node"),
        "{said}"
    );

    c.kill(leader);
    let after = wait_state(&url, "counted more after the leader died", |s| {
        requests_in(s) > n1 + 100
    });
    assert!(requests_in(&after) > n1);
    let second = dump_dom(&url);
    let n2 = figure(&second, "requests").unwrap();
    assert!(n2 > n1, "the page's count did not move: {n1} then {n2}");

    let report = op.wait_report();
    let total = report["totals"]["requests"].as_u64().unwrap();
    assert_eq!(total, target.received(), "report and target disagree");
    let last = wait_state(&url, "shown the final report", |s| s["done"] == true);
    assert_eq!(requests_in(&last), total, "{last}");
    let dom = dump_dom(&url);
    assert!(dom.contains(">finished<"), "{dom}");
    assert_eq!(figure(&dom, "requests"), Some(total));
    assert!(
        dom.contains("live change at"),
        "the events name the change: {dom}"
    );
    // Twice the rate after the change: more than the 640 of 16 s at 40/s.
    assert!(
        total > 800,
        "the rate change did not show at the target: {total}"
    );
    let shot = dir.path().join("cluster-dashboard.png");
    screenshot(&url, &shot);
    let _ = std::fs::copy(
        &shot,
        std::env::temp_dir().join("loadtest-cluster-dashboard.png"),
    );
    assert_eq!(op.interrupt(), 0, "a clean run that lingered exits 0");
}

#[test]
fn a_cluster_runs_merged_series_reaches_prometheus_and_the_scrape_endpoint() {
    let _g = serial();
    let prom = common::prometheus::Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = config(
        dir.path(),
        &target,
        "  s: { plugin: shop, executor: constant-vus, vus: 4, duration: 6s, params: { think_ms: 10 } }\n",
    );
    let (c, _) = start_cluster(3);
    let scrape = format!("127.0.0.1:{}", common::cluster::free_port());
    let write = format!("prometheus={}/api/v1/write", prom.url);
    let op = Operator::submit(
        dir.path(),
        &cfg,
        &c.peers,
        &["--out", &write, "--metrics-addr", &scrape],
    );
    // The operator's scrape endpoint counts merged requests while the run goes.
    common::cluster::await_true("the scrape endpoint counts requests", || {
        common::http_try_get(&format!("http://{scrape}/metrics")).is_some_and(|m| {
            m.lines()
                .filter(|l| l.starts_with("loadtest_http_reqs_total"))
                .any(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0))
        })
    });
    let report = op.wait_report();
    let total = report["totals"]["requests"].as_u64().unwrap();
    assert_eq!(total, target.received(), "report and target disagree");
    prom.wait_for("sum(loadtest_http_reqs_total)", total as f64);
    let mut op = op;
    assert_eq!(
        common::wait_bounded(&mut op.child, Duration::from_secs(30)),
        0
    );
}

/// The run's request count on a node's health port `/metrics`.
fn scraped(c: &Cluster, i: usize) -> Option<f64> {
    let text = common::http_try_get(&format!("http://{}/metrics", c.nodes[i].health))?;
    text.lines()
        .filter(|l| l.starts_with("loadtest_http_reqs_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

#[test]
fn the_leader_streams_the_configs_outputs_and_serves_metrics_through_a_failover() {
    let _g = serial();
    let prom = common::prometheus::Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = config(
        dir.path(),
        &target,
        &format!(
            "  open: {{ plugin: shop, executor: constant-arrival-rate, rate: 40, duration: 14s, preAllocatedVUs: 4, maxVUs: 40, params: {{ think_ms: 0 }} }}\noutputs: [\"prometheus={}/api/v1/write\"]\n",
            prom.url
        ),
    );
    let (mut c, leader) = start_cluster(3);
    let run = submit(dir.path(), &cfg, &c.peers, &[]);
    common::cluster::await_true("the leader's /metrics counts requests", || {
        scraped(&c, leader).is_some_and(|n| n > 0.0)
    });
    let follower = (leader + 1) % 3;
    assert_eq!(scraped(&c, follower), None, "only the leader publishes");
    prom.wait_for_some("sum(loadtest_http_reqs_total)");

    c.kill(leader);
    let (new_leader, _) = c.await_agreement(LIMIT);
    common::cluster::await_true("the new leader's /metrics counts requests", || {
        scraped(&c, new_leader).is_some_and(|n| n > 0.0)
    });
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.output);
    let total = out.report["totals"]["requests"].as_u64().unwrap();
    assert_eq!(total, target.received(), "report and target disagree");
    // Streamed by two leaders, counted once.
    prom.wait_for("sum(loadtest_http_reqs_total)", total as f64);
    common::cluster::await_true("the new leader's /metrics holds the whole run", || {
        scraped(&c, new_leader) == Some(total as f64)
    });
}
