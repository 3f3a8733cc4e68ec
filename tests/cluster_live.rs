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
    // Paused: the count stops once running iterations are done.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = target.received();
        std::thread::sleep(Duration::from_millis(500));
        if target.received() == before {
            break;
        }
        assert!(Instant::now() < deadline, "requests went on while paused");
    }
    let (code, out) = cli(&["stop", "--node", &c.peers], None);
    assert_eq!(code, 0, "{out}");

    let out = run.finish();
    assert_eq!(out.code, 0, "a run stopped by an operator: {}", out.output);
    let report: &Value = &out.report;
    let controls: Vec<&str> = report["controls"]
        .as_array()
        .expect("the report lists the live changes")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
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
