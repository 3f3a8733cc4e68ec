//! Distributed runs with real node processes on loopback and the embedded
//! target in its own process: a shared run whose merged report matches
//! the target's count, a killed leader, a killed follower, a follower
//! that cannot take the config, the token, status and stop. Every wait is
//! on a condition with a deadline.

mod common;

use common::cluster::{
    Cluster, LIMIT, Reported, arrival, padded_component, serial, shared_config, with_reports,
};
use common::{BIN, Target, component, wait_bounded};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn submit(dir: &Path, cfg: &Path, nodes: &str, token: Option<&str>) -> Reported {
    let cfg = cfg.display().to_string();
    with_reports(dir, &["submit", &cfg, "--node", nodes], token)
}

fn start_cluster(n: usize, token: Option<&str>, extra: &[(&str, &str)]) -> (Cluster, usize) {
    let mut c = Cluster::new(n, token);
    for i in 0..n {
        c.start_with(i, extra);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    // The state page needs the token; tests with one do not check names.
    if token.is_none() {
        c.await_names(leader, LIMIT);
    }
    (c, leader)
}

fn all_nodes(c: &Cluster) -> String {
    c.peers.clone()
}

/// Waits until the target has seen more than `n` requests.
fn await_requests(target: &Target, n: u64) {
    let until = Instant::now() + LIMIT;
    while target.received() <= n {
        assert!(Instant::now() < until, "the target never saw {n} requests");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nodes_of(report: &Value) -> &Vec<Value> {
    report["cluster"]["nodes"]
        .as_array()
        .expect("per-node breakdown")
}

#[test]
fn three_nodes_share_an_arrival_rate_and_the_merged_report_matches_the_target() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let plugin = padded_component(dir.path(), 20 << 20);
    let cfg = shared_config(dir.path(), &target, &plugin, &arrival(300, 4));
    let (c, leader) = start_cluster(3, None, &[]);
    let follower = (leader + 1) % 3;

    let out = submit(dir.path(), &cfg, &c.nodes[follower].raft, None).finish();
    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    let requests = r["totals"]["requests"].as_u64().unwrap();
    assert_eq!(requests, target.received(), "merged report vs target");
    // 300/s for 4 s cut exactly across the shares; 2 requests each.
    assert_eq!(r["totals"]["iterations"], 1200, "{}", out.output);
    assert_eq!(r["totals"]["dropped_iterations"], 0);
    assert_eq!(requests, 2400);
    let rate = r["totals"]["iterations"].as_f64().unwrap() / 4.0;
    assert!((rate - 300.0).abs() < 1.0, "rate {rate}");
    // The leader coordinates; the two followers ran one half each.
    let nodes = nodes_of(r);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let per_node: u64 = nodes.iter().map(|n| n["requests"].as_u64().unwrap()).sum();
    assert_eq!(per_node, requests);
    assert!(nodes.iter().all(|n| n["status"] == "finished"));
    assert!(
        nodes
            .iter()
            .all(|n| n["node_id"] != c.nodes[leader].name.as_str())
    );
    let spread = r["cluster"]["start_spread_ms"].as_u64().unwrap();
    eprintln!("start spread across nodes: {spread} ms");
    assert!(spread < 100, "start spread {spread} ms");
    // Every second of the series is the sum of both nodes' seconds.
    let series_iterations: u64 = out
        .series
        .iter()
        .map(|row| row["iterations"].as_u64().unwrap())
        .sum();
    assert_eq!(series_iterations, 1200);
    assert!(
        out.output.contains("distributed to 2 node(s)"),
        "{}",
        out.output
    );
}

#[test]
fn a_killed_leader_is_replaced_and_the_run_loses_nothing() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(100, 8),
    );
    let (mut c, leader) = start_cluster(3, None, &[]);

    let run = submit(dir.path(), &cfg, &all_nodes(&c), None);
    await_requests(&target, 200);
    c.kill(leader);
    let out = run.finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    assert_eq!(
        r["totals"]["requests"].as_u64().unwrap(),
        target.received(),
        "{}",
        out.output
    );
    assert_eq!(r["totals"]["iterations"], 800);
    let nodes = nodes_of(r);
    assert!(nodes.iter().all(|n| n["status"] == "finished"), "{nodes:?}");
    let (new_leader, _) = c.await_agreement(LIMIT);
    assert_ne!(new_leader, leader);
}

#[test]
fn a_killed_follower_is_reported_and_its_share_moves_to_a_survivor() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(200, 10),
    );
    let (mut c, leader) = start_cluster(3, None, &[("CLUSTER_NODE_LOST_SECS", "2")]);
    let victim = (leader + 1) % 3;
    let victim_name = c.nodes[victim].name.clone();

    let run = submit(dir.path(), &cfg, &c.nodes[leader].raft, None);
    await_requests(&target, 400);
    c.kill(victim);
    let out = run.finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let nodes = nodes_of(&out.report);
    let lost: Vec<&Value> = nodes.iter().filter(|n| n["status"] == "lost").collect();
    assert_eq!(lost.len(), 1, "{nodes:?}");
    assert_eq!(lost[0]["node_id"], victim_name.as_str());
    let heir = nodes
        .iter()
        .find(|n| n["took_over_from"] == victim_name.as_str())
        .expect("a node took the lost share over");
    assert_eq!(heir["status"], "finished");
    let events = out.report["cluster"]["events"].to_string();
    assert!(
        events.contains(&format!("node {victim_name} lost")),
        "{events}"
    );
    // After the handover the whole rate is back: the last full seconds
    // (merged over nodes) carry at least 90% of 200 iterations each.
    let tail: Vec<u64> = out
        .series
        .iter()
        .filter(|row| (8..=10).contains(&row["t"].as_u64().unwrap()))
        .map(|row| row["iterations"].as_u64().unwrap())
        .collect();
    assert_eq!(tail.len(), 3, "{:?}", out.series);
    assert!(
        tail.iter().all(|n| *n >= 180),
        "iterations per second at the end: {tail:?}"
    );
}

#[test]
fn a_follower_that_cannot_take_the_config_aborts_the_run_by_name() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(50, 2),
    );
    let (c, leader) = start_cluster(3, None, &[("CLUSTER_CONFIG_TIMEOUT_SECS", "1")]);
    let frozen = (leader + 1) % 3;
    let pid = c.nodes[frozen].child.as_ref().unwrap().id().to_string();
    signal("-STOP", &pid);

    let out = submit(dir.path(), &cfg, &c.nodes[leader].raft, None).finish();
    signal("-CONT", &pid);

    assert_eq!(out.code, 1, "{}", out.output);
    let name = &c.nodes[frozen].name;
    assert!(
        out.output.contains(&format!(
            "node {name} ({}) did not acknowledge the config after 3 attempts",
            c.nodes[frozen].raft
        )),
        "{}",
        out.output
    );
    assert_eq!(target.received(), 0, "no load without every node");
    let log = std::fs::read_to_string(&c.nodes[leader].log).unwrap();
    for attempt in 1..=3 {
        assert!(
            log.contains(&format!("attempt {attempt} of 3")),
            "leader log lacks attempt {attempt}: {log}"
        );
    }
}

fn signal(sig: &str, pid: &str) {
    let status = Command::new("kill").args([sig, pid]).status().unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn submit_needs_the_cluster_token() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(50, 1),
    );
    let (c, _) = start_cluster(3, Some("s3cret"), &[]);
    let nodes = all_nodes(&c);

    let none = submit(dir.path(), &cfg, &nodes, None).finish();
    assert_eq!(none.code, 1);
    assert!(none.output.contains("requires a token"), "{}", none.output);
    let wrong = submit(dir.path(), &cfg, &nodes, Some("guess")).finish();
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .output
            .contains("did not prove it holds the cluster token"),
        "{}",
        wrong.output
    );
    assert_eq!(target.received(), 0);

    let right = submit(dir.path(), &cfg, &nodes, Some("s3cret")).finish();
    assert_eq!(right.code, 0, "{}", right.output);
    assert_eq!(right.report["totals"]["iterations"], 50);
}

#[test]
fn stop_ends_the_run_early_and_status_shows_it() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let vus = "    executor: constant-vus\n    vus: 4\n    duration: 60s";
    let cfg = shared_config(dir.path(), &target, &component("quickstart"), vus);
    let (c, leader) = start_cluster(3, None, &[]);
    let follower = c.nodes[(leader + 1) % 3].raft.clone();

    let started = Instant::now();
    let run = submit(dir.path(), &cfg, &follower, None);
    await_requests(&target, 100);
    for i in 0..3 {
        let h = c.health(i).expect("health");
        assert_eq!(h["cluster_ready"], true, "node {i}: {h}");
    }
    let status = cli(&["status", "--node", &follower]);
    assert!(status.contains("Running"), "{status}");
    assert!(status.contains(&c.nodes[leader].name), "{status}");
    cli(&["stop", "--node", &follower]);
    let out = run.finish();

    assert_eq!(out.code, 0, "{}", out.output);
    assert!(started.elapsed() < Duration::from_secs(40));
    assert_eq!(out.report["stopped_early"], true);
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
    let after = cli(&["status", "--node", &follower]);
    assert!(after.contains("Finished"), "{after}");
}

/// Runs a short CLI command that must succeed; returns its output.
fn cli(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("CLUSTER_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, LIMIT);
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(code, 0, "{args:?}: {text}");
    text
}

#[test]
fn an_abort_on_fail_threshold_stops_the_cluster_run() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let yaml = format!(
        "target: {}\nplugins:\n  get: {{ path: {} }}\nscenarios:\n  errors: {{ plugin: get, executor: constant-vus, vus: 2, duration: 60s, params: {{ path: /status/500 }} }}\nthresholds:\n  http_req_failed: [{{ threshold: \"rate<0.5\", abortOnFail: true, delayAbortEval: 1s }}]\n",
        target.url,
        component("single_get").display()
    );
    let cfg = dir.path().join("abort.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (c, _) = start_cluster(3, None, &[]);

    let started = Instant::now();
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();

    assert_eq!(out.code, 99, "{}", out.output);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the run was not aborted"
    );
    assert_eq!(out.report["aborted_by_threshold"], true);
    assert!(
        out.output.contains("failed with abortOnFail"),
        "{}",
        out.output
    );
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
}

#[test]
fn setup_runs_once_for_the_cluster_and_teardown_once_after_the_leader_is_killed() {
    let _g = serial();
    let bin = common::httpbin::Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: lifecycle\ntarget: {}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  s:\n    plugin: steps\n{}\n{}",
        bin.url,
        arrival(30, 6),
        common::httpbin::LIFECYCLE
    );
    let cfg = dir.path().join("test.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (mut c, leader) = start_cluster(3, None, &[]);

    let run = submit(dir.path(), &cfg, &all_nodes(&c), None);
    // Work is flowing on the followers, with setup's token, when the
    // leader that ran setup dies.
    common::cluster::await_true("work requests at httpbin", || {
        bin.log()
            .iter()
            .filter(|l| l.contains("/anything/work/"))
            .count()
            > 20
    });
    c.kill(leader);
    let out = run.finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let iterations = out.report["totals"]["iterations"].as_u64().unwrap();
    assert_eq!(iterations, 180, "{}", out.output);
    let requests = out.report["totals"]["requests"].as_u64().unwrap();
    // The setup and teardown requests are the leaders', not in the merged report.
    assert_eq!(bin.received(requests as usize + 2), requests as usize + 2);
    bin.assert_lifecycle(iterations as usize);
    let (new_leader, _) = c.await_agreement(LIMIT);
    assert_ne!(new_leader, leader);
    assert!(
        out.output
            .contains(&format!("teardown ran on {}", c.nodes[new_leader].name)),
        "{}",
        out.output
    );
}

#[test]
fn a_k6_script_runs_on_three_nodes_with_nothing_installed_on_them() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import exec from 'k6/execution';
import {{ SharedArray }} from 'k6/data';
import {{ path }} from './lib/paths.js';
const paths = new SharedArray('paths', () => JSON.parse(open('./data/paths.json')));
export const options = {{
  scenarios: {{ shop: {{ executor: 'constant-arrival-rate', rate: 40, duration: '4s', preAllocatedVUs: 5, maxVUs: 20 }} }},
  thresholds: {{ checks: ['rate==1'] }},
}};
export function setup() {{ return {{ greeting: 'hello' }}; }}
export default function (data) {{
  const res = http.get('{}' + paths[1].p);
  check(res, {{ 'greeted': (r) => r.body.includes(data.greeting) }});
  check(paths, {{ 'shared': (p) => p.length === 2 && p[1].p === path() }});
  check(null, {{ ['iteration ' + exec.scenario.iterationInTest]: () => true }});
}}
export function handleSummary(data) {{
  const m = data.metrics;
  return {{
    stdout: `summarised: ${{m.http_reqs.values.count}} requests\n`,
    '{summary}': JSON.stringify({{ requests: m.http_reqs.values.count, greeted: data.root_group.checks.find((c) => c.name === 'greeted').passes, ok: m.checks.thresholds['rate==1'].ok, setup: data.setup_data }}),
  }};
}}
"#,
        target.url,
        summary = dir.path().join("summary.json").display()
    );
    let cfg = dir.path().join("shop.js");
    std::fs::write(&cfg, script).unwrap();
    std::fs::create_dir_all(dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("lib/paths.js"),
        "export const path = () => '/';\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/paths.json"),
        r#"[{"p": "/nothing"}, {"p": "/"}]"#,
    )
    .unwrap();
    let (c, _) = start_cluster(3, None, &[]);
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    assert_eq!(r["totals"]["iterations"], 160, "{}", out.output);
    assert_eq!(r["totals"]["requests"].as_u64(), Some(target.received()));
    assert_eq!(r["checks"]["greeted"]["passes"], 160);
    assert_eq!(r["checks"]["shared"]["passes"], 160, "{}", r["checks"]);
    assert_eq!(nodes_of(r).len(), 2);
    // handleSummary() ran where the script was submitted, on the
    // cluster's merged data, and took the table's place.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["requests"].as_u64(), Some(target.received()));
    assert_eq!(summary["greeted"], 160);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["setup"]["greeting"], "hello", "{summary}");
    assert!(
        out.output
            .contains(&format!("summarised: {} requests", target.received())),
        "{}",
        out.output
    );
    assert!(
        !out.output.contains("iterations 160"),
        "the table was printed too: {}",
        out.output
    );
    // exec.scenario.iterationInTest is unique across the nodes (160 check
    // names stay under the report's 200 names a scenario may have).
    let numbered: Vec<_> = r["checks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("iteration "))
        .collect();
    assert_eq!(numbered.len(), 160, "{}", r["checks"]);
    assert!(
        numbered.iter().all(|(_, c)| c["passes"] == 1),
        "{}",
        r["checks"]
    );
}

/// `exec.test.abort()` in setup refuses the run before any load, and
/// `submit` exits with 108 and the reason, as a standalone run does.
#[test]
fn a_script_that_aborts_in_setup_sends_no_load_and_exits_108() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import exec from 'k6/execution';
export const options = {{ vus: 2, duration: '30s' }};
export function setup() {{
  if (http.get('{}/status/503').status !== 200) exec.test.abort('the shop is down');
}}
export default function () {{ http.get('{}/'); }}
"#,
        target.url, target.url
    );
    let cfg = dir.path().join("setup-abort.js");
    std::fs::write(&cfg, script).unwrap();
    let (c, _) = start_cluster(3, None, &[]);
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    assert_eq!(out.code, 108, "{}", out.output);
    assert!(
        out.output.contains(
            "the script aborted the test during setup: the shop is down; no load was sent"
        ),
        "{}",
        out.output
    );
    assert_eq!(target.received(), 1, "only setup's request");
}

/// k6's `rps` holds for the whole cluster: each share takes its part of
/// the cap, so thirty requests at twenty a second last over 1.3 s however
/// many shares there are (a node that took the whole cap would end in
/// under 0.75 s).
#[test]
fn rps_is_split_between_the_shares() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let script = format!(
        "import http from 'k6/http';\nexport const options = {{ rps: 20, vus: 6, iterations: 30 }};\nexport default function () {{ http.get('{}/'); }}\n",
        target.url
    );
    let cfg = dir.path().join("rps.js");
    std::fs::write(&cfg, script).unwrap();
    let (c, _) = start_cluster(3, None, &[]);
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    assert_eq!(r["totals"]["requests"], 30, "{}", out.output);
    assert_eq!(target.received(), 30);
    let secs = r["duration_secs"].as_f64().unwrap();
    assert!(
        secs >= 1.3,
        "30 requests at 20/s over the cluster took {secs} s"
    );
}

/// `exec.test.fail()` in one node's VU marks the cluster's run failed:
/// every share runs to its end, and `submit` exits with 110 and the
/// script's reason, as a standalone run.
#[test]
fn a_script_that_fails_the_test_lets_every_node_finish() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import exec from 'k6/execution';
export const options = {{ scenarios: {{ shop: {{ executor: 'per-vu-iterations', vus: 3, iterations: 4 }} }} }};
export default function () {{
  http.get('{}/');
  if (exec.vu.idInTest === 2 && exec.vu.iterationInScenario === 1) exec.test.fail('checkout broke');
}}
"#,
        target.url
    );
    let cfg = dir.path().join("fail.js");
    std::fs::write(&cfg, script).unwrap();
    let (c, _) = start_cluster(3, None, &[]);
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    assert_eq!(out.code, 110, "{}", out.output);
    let r = &out.report;
    assert_eq!(r["failed_by_script"], "checkout broke", "{}", out.output);
    assert_eq!(r["totals"]["requests"], 12, "{}", out.output);
    assert_eq!(target.received(), 12);
    assert!(
        out.output
            .contains("the script marked the test failed: checkout broke"),
        "{}",
        out.output
    );
}

/// `exec.test.abort()` in one node's VU ends the cluster's run: the
/// other share stops too, long before the scenario's minute is over, and
/// `submit` exits with 108 and the script's reason, as a standalone run.
#[test]
fn a_script_that_aborts_the_test_stops_every_node() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import exec from 'k6/execution';
export const options = {{
  scenarios: {{ shop: {{ executor: 'constant-arrival-rate', rate: 20, duration: '60s', preAllocatedVUs: 4, maxVUs: 10 }} }},
}};
export default function () {{
  const res = http.get('{}/');
  if (exec.scenario.iterationInTest === 20) exec.test.abort('enough');
}}
"#,
        target.url
    );
    let cfg = dir.path().join("abort.js");
    std::fs::write(&cfg, script).unwrap();
    let (c, _) = start_cluster(3, None, &[]);
    let started = Instant::now();
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the run went on for {took:?}: {}",
        out.output
    );
    let r = &out.report;
    // The aborting node's VUs are cut off at once: a request cut off
    // mid-flight counts as interrupted, and the target may not have read it.
    let (reported, sent) = (r["totals"]["requests"].as_u64().unwrap(), target.received());
    let cut = r["scenarios"]["shop"]["requests"]["GET /"]["errors"]["interrupted"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        (reported - cut..=reported).contains(&sent),
        "report {reported} ({cut} interrupted), target {sent}: {}",
        out.output
    );
    assert!(sent < 600, "{sent}");
    // The run says why it ended, and exits as k6 does.
    assert_eq!(out.code, 108, "{}", out.output);
    assert_eq!(r["aborted_by_script"], "enough", "{}", out.output);
    assert!(
        out.output.contains("the script aborted the test: enough"),
        "{}",
        out.output
    );

    // Every share's only iteration aborts, so each share ends at once.
    // Should the last end before the stop it asked for reaches the leader,
    // the reason travels with the share's end as well (in the runs so far
    // the stop landed first; this holds either way).
    let last = "import exec from 'k6/execution';\nexport const options = { scenarios: { once: { executor: 'per-vu-iterations', vus: 1, iterations: 1 } } };\nexport default function () { exec.test.abort('at the end'); }\n";
    let cfg = dir.path().join("last.js");
    std::fs::write(&cfg, last).unwrap();
    let out = submit(dir.path(), &cfg, &all_nodes(&c), None).finish();
    assert_eq!(out.code, 108, "{}", out.output);
    assert_eq!(
        out.report["aborted_by_script"], "at the end",
        "{}",
        out.output
    );
}
