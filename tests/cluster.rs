//! Cluster core with real node processes on loopback: election, failover,
//! restart with durable state, learners, the token, bad settings. Every
//! wait is on a condition (a node's health) with a deadline.

mod common;

use common::cluster::{Cluster, LIMIT, free_port, serial};
use common::{BIN, wait_bounded};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fixed shuffle, so a failure can be replayed.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed;
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    order
}

#[test]
fn three_nodes_started_in_any_order_elect_exactly_one_leader() {
    let _turn = serial();
    for seed in [1u64, 7, 42] {
        let mut c = Cluster::new(3, None);
        for (k, i) in shuffled(3, seed).into_iter().enumerate() {
            c.start(i);
            if k == 0 {
                // The first node alone is below quorum: it must wait, not lead.
                let until = Instant::now() + Duration::from_secs(5);
                while c.health(i).is_none() {
                    assert!(Instant::now() < until, "node did not come up");
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert_eq!(c.health(i).unwrap()["state"], "forming");
            }
        }
        let started = Instant::now();
        let (leader, term) = c.await_agreement(LIMIT);
        eprintln!(
            "seed {seed}: leader {} in term {term}, agreed after {:?}",
            c.nodes[leader].name,
            started.elapsed()
        );
        for i in 0..3 {
            assert_eq!(c.health(i).unwrap()["peers"], 3);
        }
    }
}

#[test]
fn a_killed_leader_is_replaced_and_rejoins_with_the_committed_state() {
    let _turn = serial();
    let mut c = Cluster::new(3, None);
    for i in 0..3 {
        c.start(i);
    }
    let (leader, term) = c.await_agreement(LIMIT);
    let (code, out) = c.write((leader + 1) % 3, "setting", "v1", None);
    assert_eq!(code, 0, "{out}");

    let killed = Instant::now();
    c.kill(leader);
    let (new_leader, new_term) = c.await_agreement(LIMIT);
    eprintln!("failover took {:?}", killed.elapsed());
    assert_ne!(new_leader, leader);
    assert!(new_term > term);

    c.start(leader);
    let until = Instant::now() + LIMIT;
    loop {
        let s = c.state(leader);
        if let Some(s) = &s
            && s["state"] == "follower"
            && s["data"]["setting"] == "v1"
            && s["leader_id"] == Value::String(c.nodes[new_leader].name.clone())
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the restarted node did not rejoin: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A write after the restart reaches it too.
    assert_eq!(c.write(leader, "setting", "v2", None).0, 0);
    let until = Instant::now() + LIMIT;
    while c.state(leader).is_none_or(|s| s["data"]["setting"] != "v2") {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn voters_are_capped_and_a_learner_replaces_a_lost_voter() {
    let _turn = serial();
    let mut c = Cluster::new(7, None);
    for i in 0..7 {
        c.start(i);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let until = Instant::now() + LIMIT;
    let mut state = c.state(leader).unwrap();
    while state["learners"].as_array().unwrap().len() != 2 {
        assert!(Instant::now() < until, "learners were not added: {state}");
        std::thread::sleep(Duration::from_millis(100));
        state = c.state(leader).unwrap();
    }
    assert_eq!(state["voters"].as_array().unwrap().len(), 5);
    let learners: Vec<String> = state["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    // Kill a voter that is not the leader.
    let victim = (0..7)
        .find(|i| {
            *i != leader
                && state["voters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == c.nodes[*i].raft.as_str())
        })
        .unwrap();
    c.kill(victim);
    let until = Instant::now() + LIMIT;
    loop {
        let s = c.await_agreement(LIMIT).0;
        let st = c.state(s).unwrap();
        let voters: Vec<&str> = st["voters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if voters.len() == 5
            && voters.iter().any(|v| learners.iter().any(|l| l == v))
            && !voters.contains(&c.nodes[victim].raft.as_str())
        {
            break;
        }
        assert!(Instant::now() < until, "no learner was promoted: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cluster_rpcs_without_the_token_are_rejected() {
    let _turn = serial();
    let mut c = Cluster::new(3, Some("s3cret"));
    for i in 0..3 {
        c.start(i);
    }
    c.await_agreement(LIMIT);
    let (code, out) = c.write(0, "k", "v", None);
    assert_ne!(code, 0);
    assert!(out.contains("requires a token"), "{out}");
    // With another token the operator does not even send it: the node
    // cannot prove it holds the same one.
    let (code, out) = c.write(0, "k", "v", Some("wrong"));
    assert_ne!(code, 0);
    assert!(
        out.contains("did not prove it holds the cluster token"),
        "{out}"
    );
    let (code, out) = c.write(0, "k", "v", Some("s3cret"));
    assert_eq!(code, 0, "{out}");
}

fn node_error(envs: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("node")
        .env("CLUSTER_DATA_DIR", dir.path())
        .env("NO_COLOR", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, LIMIT);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (code, err)
}

#[test]
fn bad_settings_are_clear_errors_not_panics() {
    let _turn = serial();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let health = format!("127.0.0.1:{}", free_port());
    for (nodes, needle) in [
        ("", "CLUSTER_NODES is not set"),
        ("a:1,,b:2", "empty entry"),
        ("a:1,b", "no port"),
    ] {
        let (code, err) = node_error(&[
            ("CLUSTER_NODES", nodes),
            ("CLUSTER_BIND_ADDR", &bind),
            ("CLUSTER_HEALTH_ADDR", &health),
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let (code, err) = node_error(&[
        ("CLUSTER_NODES", &busy_addr),
        ("CLUSTER_BIND_ADDR", &busy_addr),
        ("CLUSTER_HEALTH_ADDR", &health),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn a_node_whose_peers_are_unreachable_stays_forming_and_says_why() {
    let _turn = serial();
    let mut c = Cluster::new(3, None);
    c.start(0);
    let until = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while Instant::now() < until {
        seen = c.health(0);
        if seen.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let h = seen.expect("health endpoint up");
    assert_eq!(h["state"], "forming");
    assert_eq!(h["leader_id"], Value::Null);
    // The log says what the node waits for; one of three is no quorum, so
    // it is still forming after saying so.
    let until = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&c.nodes[0].log).unwrap_or_default();
        if log.contains("waiting for") {
            break log;
        }
        assert!(Instant::now() < until, "no forming message: {log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        log.contains(&c.nodes[1].raft) && log.contains(&c.nodes[2].raft),
        "{log}"
    );
    assert!(log.contains("1 of 3 voters reachable, need 2"), "{log}");
    assert_eq!(c.health(0).unwrap()["state"], "forming");
}

#[test]
fn logs_are_compacted_and_a_late_node_catches_up_from_a_snapshot() {
    let _turn = serial();
    let mut c = Cluster::new(3, None);
    let small = [("CLUSTER_SNAPSHOT_LOGS", "10")];
    c.start_with(0, &small);
    c.start_with(1, &small);
    let (leader, _) = c.await_agreement(LIMIT);
    for k in 0..25 {
        let (code, out) = c.write(leader, &format!("key{k}"), &format!("value{k}"), None);
        assert_eq!(code, 0, "{out}");
    }
    let until = Instant::now() + LIMIT;
    let mut s = c.state(leader).unwrap();
    while s["purged_index"].is_null() || s["snapshot_index"].is_null() {
        assert!(Instant::now() < until, "no snapshot or purge: {s}");
        std::thread::sleep(Duration::from_millis(100));
        s = c.state(leader).unwrap();
    }
    // The third node starts empty; the entries it lacks are gone from the
    // log, so it can only catch up by installing a snapshot.
    c.start_with(2, &small);
    let until = Instant::now() + LIMIT;
    loop {
        if let Some(s) = c.state(2)
            && s["data"]["key24"] == "value24"
            && s["data"]["key0"] == "value0"
            && s["state"] == "follower"
        {
            assert!(
                !s["snapshot_index"].is_null(),
                "caught up without a snapshot: {s}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "the late node did not catch up: {:?}",
            c.state(2)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn restarting_every_node_keeps_one_cluster_and_its_state() {
    let _turn = serial();
    let mut c = Cluster::new(3, None);
    for i in 0..3 {
        c.start(i);
    }
    let (leader, term) = c.await_agreement(LIMIT);
    assert_eq!(c.write(leader, "setting", "kept", None).0, 0);
    for i in 0..3 {
        c.kill(i);
    }
    // Back in another order: nobody bootstraps again (a node with Raft
    // state never does), the old cluster has a leader again (openraft may
    // resume the persisted leader in its term), and the state is there.
    for i in shuffled(3, 5) {
        c.start(i);
    }
    let (_, new_term) = c.await_agreement(LIMIT);
    assert!(new_term >= term, "term went back: {new_term} after {term}");
    let until = Instant::now() + LIMIT;
    for i in 0..3 {
        while c
            .state(i)
            .is_none_or(|s| s["data"]["setting"] != "kept" || s["peers"] != 3)
        {
            assert!(
                Instant::now() < until,
                "node {i} lost the state: {:?}",
                c.state(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
