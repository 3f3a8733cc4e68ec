//! The cluster at a larger size, with real node processes on loopback: 20
//! nodes (3 voters, the rest learners) lose nothing when the leader is
//! killed mid-run while committing one merged metrics entry per flush,
//! not one per node per second; and a snapshot of tens of MiB installs
//! on a node that joins after the log was purged.

mod common;

use common::cluster::{Cluster, LIMIT, serial, with_reports};
use common::{Target, component};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Waits (bounded) until `node` sees `n` members: voters and learners.
fn await_members(c: &Cluster, node: usize, n: usize, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let members = c.state(node).map_or(0, |s| {
            s["voters"].as_array().map_or(0, Vec::len)
                + s["learners"].as_array().map_or(0, Vec::len)
        });
        if members == n {
            return;
        }
        assert!(
            Instant::now() < until,
            "node {node} sees {members} of {n} members"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The node whose address sorts last: with 3 voters at most, it is not
/// one of the initial ones, so started late it joins as a learner.
fn last_by_address(c: &Cluster) -> usize {
    (0..c.nodes.len())
        .max_by_key(|i| c.nodes[*i].raft.clone())
        .unwrap()
}

fn log_index(c: &Cluster, node: usize) -> u64 {
    c.state(node)
        .and_then(|s| s["last_log_index"].as_u64())
        .unwrap_or(0)
}

#[test]
fn twenty_nodes_lose_nothing_when_the_leader_dies_and_metrics_cost_one_entry_per_flush() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let (rate, secs) = (200u64, 10u64);
    let cfg = dir.path().join("fleet.yaml");
    std::fs::write(
        &cfg,
        format!(
            "name: fleet\ntarget: {}\nplugins:\n  shop: {{ path: {} }}\nscenarios:\n  browse:\n    plugin: shop\n    executor: constant-arrival-rate\n    rate: {rate}\n    duration: {secs}s\n    preAllocatedVUs: 40\n    maxVUs: 80\n    params: {{ think_ms: 0 }}\n",
            target.url,
            component("quickstart").display()
        ),
    )
    .unwrap();
    let mut c = Cluster::new(20, None);
    for i in 0..20 {
        c.start_with(i, &[("CLUSTER_MAX_VOTERS", "3")]);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    await_members(&c, leader, 20, Duration::from_secs(60));
    let before = log_index(&c, leader);

    let run = with_reports(
        dir.path(),
        &["submit", &cfg.display().to_string(), "--node", &c.peers],
        None,
    );
    let until = Instant::now() + LIMIT;
    while target.received() < 3 * rate {
        assert!(Instant::now() < until, "the run did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    // Every scheduled start is accounted for: run, or dropped when 20
    // processes on two cores left a share without a free VU at its time.
    let (iterations, dropped) = (
        r["totals"]["iterations"].as_u64().unwrap(),
        r["totals"]["dropped_iterations"].as_u64().unwrap(),
    );
    assert_eq!(iterations + dropped, rate * secs, "{}", out.output);
    assert!(
        dropped * 50 < rate * secs,
        "{dropped} dropped: {}",
        out.output
    );
    let nodes = r["cluster"]["nodes"].as_array().expect("per-node rows");
    assert_eq!(nodes.len(), 19, "every follower ran a share: {nodes:?}");
    assert!(nodes.iter().all(|n| n["status"] == "finished"), "{nodes:?}");

    // 19 nodes reporting every second for ~10 s: one entry per node per
    // second would be ~190 entries. Merged, the run costs about one a
    // second plus the plan's revisions, elections and the shares' ends.
    let (new_leader, _) = c.await_agreement(LIMIT);
    let grown = log_index(&c, new_leader) - before;
    eprintln!("log entries during the run: {grown}");
    assert!(
        grown < 3 * secs + 19 + 10,
        "{grown} log entries for a {secs} s run on 19 nodes"
    );
}

#[test]
fn a_snapshot_of_tens_of_mib_installs_on_a_node_that_joins_late() {
    let _g = serial();
    let mut c = Cluster::new(4, None);
    // A debug build appending 120 KiB entries with an fsync each can take
    // longer than the 166 ms heartbeat of the tests' 500 ms timeout, and
    // openraft times an append out at the heartbeat: this test is about
    // the snapshot, so it gives Raft a slower beat.
    let settings = [
        ("CLUSTER_SNAPSHOT_LOGS", "100"),
        ("CLUSTER_MAX_VOTERS", "3"),
        ("CLUSTER_ELECTION_TIMEOUT_MS", "1500"),
    ];
    let late = last_by_address(&c);
    for i in (0..4).filter(|i| *i != late) {
        c.start_with(i, &settings);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    // 256 values of 120 KiB: a state of 30 MiB, in snapshots every 100
    // entries with the log before them purged.
    let value = "x".repeat(120 << 10);
    let keys: Vec<String> = (0..256).map(|i| format!("blob-{i:03}")).collect();
    for k in &keys {
        let (code, out) = c.write(leader, k, &value, None);
        assert_eq!(code, 0, "{out}");
    }
    let st = c.state(leader).expect("leader state");
    assert!(
        st["state_bytes"].as_u64().unwrap() > 30 << 20,
        "{}",
        st["state_bytes"]
    );
    assert!(
        st["purged_index"].as_u64().is_some(),
        "the log was purged: {st}"
    );

    c.start_with(late, &settings);
    let until = Instant::now() + Duration::from_secs(90);
    let joined: Value = loop {
        if let Some(s) = c.state(late)
            && s["data"].as_object().is_some_and(|d| d.len() == 256)
        {
            break s;
        }
        assert!(
            Instant::now() < until,
            "node 4 never got the whole state: {:?}",
            c.state(late).map(|s| s["snapshot_index"].clone())
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        joined["snapshot_index"].as_u64().is_some(),
        "it came as a snapshot: {joined}"
    );
    assert_eq!(
        joined["data"]["blob-255"].as_str().map(str::len),
        Some(120 << 10)
    );
    assert!(joined["state_bytes"].as_u64().unwrap() > 30 << 20);
}

#[test]
fn a_node_that_joins_during_a_run_gets_a_share_of_the_next_one() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let cfg = common::cluster::shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &common::cluster::arrival(100, 6),
    );
    let mut c = Cluster::new(4, None);
    let voters = [("CLUSTER_MAX_VOTERS", "3")];
    let late = last_by_address(&c);
    for i in (0..4).filter(|i| *i != late) {
        c.start_with(i, &voters);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let peers = c.peers.clone();
    let submit = || {
        with_reports(
            dir.path(),
            &["submit", &cfg.display().to_string(), "--node", &peers],
            None,
        )
    };
    let run = submit();
    let until = Instant::now() + LIMIT;
    while target.received() < 100 {
        assert!(Instant::now() < until, "the run did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.start_with(late, &voters);
    await_members(&c, leader, 4, LIMIT);
    let first = run.finish();
    assert_eq!(first.code, 0, "{}", first.output);
    let shares = |r: &Value| r["cluster"]["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(
        shares(&first.report),
        2,
        "the run keeps the nodes it started with"
    );
    assert_eq!(
        first.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );

    let before = target.received();
    let second = submit().finish();
    assert_eq!(second.code, 0, "{}", second.output);
    assert_eq!(
        shares(&second.report),
        3,
        "{}",
        second.report["cluster"]["nodes"]
    );
    let newcomer = &c.nodes[late].name;
    assert!(
        second.report["cluster"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["node_id"] == newcomer.as_str() && n["requests"].as_u64() > Some(0)),
        "{newcomer} ran part of the second run"
    );
    assert_eq!(
        second.report["totals"]["requests"].as_u64().unwrap(),
        target.received() - before
    );
}
