//! Consul KV as the cluster's config source, against a real Consul agent
//! (scripts/consul.sh) and real node processes: `push` then a run, the
//! missing-key hint then a plain YAML put with the consul CLI, a corrupted
//! chunk refused, a parse error with its position, and the ACL token;
//! and Consul's DNS interface as a DNS server nodes discover each other by.

mod common;

use common::cluster::{
    Cluster, LIMIT, arrival, await_true, first_iteration_ms, iterations, now_ms, padded_component,
    rate_config, serial, shared_config, switched_mid_run, with_reports,
};
use common::consul::Consul;
use common::{BIN, Target, component, wait_bounded};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn consul_cluster(consul: &Consul) -> Cluster {
    let mut c = Cluster::new(3, None);
    let url = consul.url();
    for i in 0..3 {
        c.start_with(
            i,
            &[
                ("CLUSTER_CONFIG_SOURCE", "consul-kv"),
                ("CONSUL_ADDR", url.as_str()),
            ],
        );
    }
    c.await_agreement(LIMIT);
    c
}

/// `loadtest push`; returns (exit code, stderr).
fn push(cfg: &Path, consul: &str, token: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("push")
        .arg(cfg)
        .args(["--consul", consul])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match token {
        Some(t) => cmd.env("CONSUL_HTTP_TOKEN", t),
        None => cmd.env_remove("CONSUL_HTTP_TOKEN"),
    };
    let mut child = cmd.spawn().unwrap();
    let code = wait_bounded(&mut child, LIMIT);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (code, err)
}

/// Waits until some node's log contains `needle`; returns that log.
fn await_log(c: &Cluster, needle: &str) -> String {
    let until = Instant::now() + LIMIT;
    loop {
        for n in &c.nodes {
            let log = std::fs::read_to_string(&n.log).unwrap_or_default();
            if log.contains(needle) {
                return log;
            }
        }
        assert!(Instant::now() < until, "no node logged `{needle}`");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pushed_config_with_a_large_plugin_runs_from_consul_kv() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let consul = Consul::start();
    let target = Target::start();
    let plugin = padded_component(dir.path(), 20 << 20);
    let cfg = shared_config(dir.path(), &target, &plugin, &arrival(200, 3));
    let c = consul_cluster(&consul);

    let (code, err) = push(&cfg, &consul.url(), None);
    assert_eq!(code, 0, "{err}");
    let pushed = now_ms();
    assert!(
        err.contains("chunk(s) under `loadtest/config.blobs/`"),
        "{err}"
    );
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    assert_eq!(r["totals"]["iterations"], 600, "{}", out.output);
    assert_eq!(r["totals"]["requests"].as_u64().unwrap(), target.received());
    eprintln!(
        "push to first iteration: {} ms",
        first_iteration_ms(r).saturating_sub(pushed)
    );
}

#[test]
fn a_missing_key_says_how_to_fix_it_and_a_plain_yaml_put_then_runs() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let consul = Consul::start();
    let target = Target::start();
    let c = consul_cluster(&consul);

    let log = await_log(&c, "consul kv put loadtest/config @config.yaml");
    assert_eq!(
        log.matches("has no config at `loadtest/config`").count(),
        1,
        "the hint is logged once: {log}"
    );
    // Plain YAML with a builtin plugin, written with Consul's own CLI.
    let yaml = format!(
        "name: plain\ntarget: {}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  s:\n    plugin: steps\n    executor: shared-iterations\n    vus: 2\n    iterations: 40\n    params:\n      steps:\n        - request: {{ path: / }}\n",
        target.url
    );
    let file = dir.path().join("plain.yaml");
    std::fs::write(&file, yaml).unwrap();
    let (ok, text) = consul.cli(
        &[
            "kv",
            "put",
            "loadtest/config",
            &format!("@{}", file.display()),
        ],
        None,
    );
    assert!(ok, "{text}");
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();
    assert_eq!(out.code, 0, "{}", out.output);
    assert_eq!(out.report["totals"]["requests"], 40);
    assert_eq!(target.received(), 40);
    assert_eq!(out.report["name"], "plain");
}

#[test]
fn a_corrupted_chunk_is_refused_and_nothing_runs() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let consul = Consul::start();
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(50, 1),
    );
    let (code, err) = push(&cfg, &consul.url(), None);
    assert_eq!(code, 0, "{err}");
    let (ok, keys) = consul.cli(&["kv", "get", "-keys", "loadtest/config.blobs/"], None);
    assert!(ok, "{keys}");
    let dirs = keys
        .lines()
        .next()
        .expect("a blob prefix")
        .trim()
        .to_owned();
    let (ok, chunks) = consul.cli(&["kv", "get", "-keys", &dirs], None);
    assert!(ok, "{chunks}");
    let chunk = chunks.lines().next().expect("a chunk").trim().to_owned();
    let (ok, text) = consul.cli(&["kv", "put", &chunk, "AAAAAAAA"], None);
    assert!(ok, "{text}");

    let c = consul_cluster(&consul);
    let log = await_log(&c, "were changed or corrupted");
    assert!(log.contains("push the config again"), "{log}");
    assert_eq!(target.received(), 0);
}

#[test]
fn a_bad_config_in_consul_is_reported_with_its_position() {
    let _g = serial();
    let consul = Consul::start();
    let (ok, text) = consul.cli(
        &[
            "kv",
            "put",
            "loadtest/config",
            "target: http://127.0.0.1:1\nscenarios:\n  s:\n    executor: constant-vus\n    vuus: 3\n",
        ],
        None,
    );
    assert!(ok, "{text}");
    let c = consul_cluster(&consul);
    let log = await_log(&c, "cannot run:");
    assert!(
        log.contains("loadtest/config:5:5") && log.contains("scenarios.s.vuus"),
        "{log}"
    );
}

#[test]
fn push_sends_the_acl_token_when_set() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let acl = "acl { enabled = true\n default_policy = \"deny\"\n tokens { initial_management = \"root-token\" } }";
    let consul = Consul::start_with(&["-hcl", acl]);
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(10, 1),
    );

    let (code, err) = push(&cfg, &consul.url(), None);
    assert_eq!(code, 1);
    assert!(
        err.contains("403") || err.contains("Permission denied"),
        "{err}"
    );
    let (code, err) = push(&cfg, &consul.url(), Some("root-token"));
    assert_eq!(code, 0, "{err}");
    let (ok, value) = consul.cli(&["kv", "get", "loadtest/config"], Some("root-token"));
    assert!(ok && value.contains("loadtest-bundle: 1"), "{value}");
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// Tags by node id, from the catalog.
fn tags(consul: &Consul) -> Vec<(String, String)> {
    let entries = consul.get("/v1/catalog/service/loadtest-cluster");
    let mut tags: Vec<(String, String)> = entries
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["ServiceMeta"]["node_id"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        e["ServiceTags"][0].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

#[test]
fn nodes_find_each_other_through_consul_and_tags_follow_raft() {
    let _g = serial();
    let consul = Consul::start();
    let mut c = Cluster::new(3, None);
    let url = consul.url();
    for i in 0..3 {
        c.start_with(
            i,
            &[
                ("DISCOVERY_MODE", "consul"),
                ("CLUSTER_NODES", ""),
                ("CONSUL_ADDR", url.as_str()),
            ],
        );
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    let name = |i: usize| names[i].clone();
    let expected = |leader: usize, alive: &[usize]| {
        let mut v: Vec<(String, String)> = alive
            .iter()
            .map(|i| {
                let tag = if *i == leader { "leader" } else { "follower" };
                (name(*i), tag.to_owned())
            })
            .collect();
        v.sort();
        v
    };
    await_true("catalog tags leader/follower", || {
        tags(&consul) == expected(leader, &[0, 1, 2])
    });
    let dns = "leader.loadtest-cluster.service.consul";
    await_true("the leader in Consul DNS", || {
        consul.srv_ports(dns) == vec![port_of(&c.nodes[leader].raft)]
    });
    let state = c.state(leader).unwrap();
    assert_eq!(state["voters"].as_array().unwrap().len(), 3, "{state}");
    idle_nodes_stay_idle(&c);

    // SIGKILL: no deregistration; its check fails and the tag moves.
    c.kill(leader);
    let alive: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (next, _) = c.await_agreement(LIMIT);
    await_true("the new leader in Consul DNS", || {
        consul.srv_ports(dns) == vec![port_of(&c.nodes[next].raft)]
    });
    await_true("the survivors' tags", || {
        let t = tags(&consul);
        alive.iter().all(|i| {
            t.contains(&(
                name(*i),
                if *i == next { "leader" } else { "follower" }.to_owned(),
            ))
        })
    });

    // A graceful stop deregisters.
    let follower = *alive.iter().find(|i| **i != next).unwrap();
    let pid = c.nodes[follower].child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_bounded(c.nodes[follower].child.as_mut().unwrap(), LIMIT);
    await_true("the stopped node gone from the catalog", || {
        !tags(&consul).iter().any(|(n, _)| *n == name(follower))
    });
    let log = std::fs::read_to_string(&c.nodes[follower].log).unwrap();
    assert!(log.contains("Consul: deregistered"), "{log}");
}

/// CPU time (user + system) of a live process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A formed cluster with no run keeps each node far below a core: the
/// registration loop once woke on every Raft metrics update, which made it
/// spin (about 65% of a core each). A node at rest uses under 1%; the
/// bound is loose so that a busy machine cannot fail it.
fn idle_nodes_stay_idle(c: &Cluster) {
    let pids: Vec<u32> = c
        .nodes
        .iter()
        .map(|n| n.child.as_ref().unwrap().id())
        .collect();
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for (pid, b) in pids.iter().zip(before) {
        let share = (cpu_ticks(*pid) - b) as f64 / hz / window.as_secs_f64();
        assert!(
            share < 0.25,
            "node {pid} used {:.0}% of a core at rest",
            share * 100.0
        );
    }
}

fn await_requests(target: &Target, n: u64) {
    await_true(&format!("{n} requests at the target"), || {
        target.received() > n
    });
}

#[test]
fn a_kv_update_mid_run_is_switched_in_and_marked() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let consul = Consul::start();
    let target = Target::start();
    let c = consul_cluster(&consul);
    let first = rate_config(dir.path(), &target, "first", "browse", 50, 10);
    let second = rate_config(dir.path(), &target, "second", "checkout", 100, 3);

    assert_eq!(push(&first, &consul.url(), None).0, 0);
    await_requests(&target, 100);
    assert_eq!(push(&second, &consul.url(), None).0, 0);
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    switched_mid_run(&out, &target);
}

#[test]
fn an_invalid_update_is_refused_and_the_run_goes_on() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let consul = Consul::start();
    let target = Target::start();
    let c = consul_cluster(&consul);
    let first = rate_config(dir.path(), &target, "first", "browse", 50, 6);

    assert_eq!(push(&first, &consul.url(), None).0, 0);
    await_requests(&target, 50);
    let (ok, text) = consul.cli(&["kv", "put", "loadtest/config", "scenarios: [oops"], None);
    assert!(ok, "{text}");
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let events = out.report["cluster"]["events"].to_string();
    assert!(events.contains("refused, the run goes on"), "{events}");
    assert_eq!(
        iterations(&out.report, "browse"),
        300,
        "the run was untouched"
    );
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
}

#[test]
fn the_run_survives_a_consul_restart_and_the_watcher_recovers() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut consul = Consul::start();
    let target = Target::start();
    let c = consul_cluster(&consul);
    let first = rate_config(dir.path(), &target, "first", "browse", 50, 12);
    let second = rate_config(dir.path(), &target, "second", "checkout", 50, 2);

    assert_eq!(push(&first, &consul.url(), None).0, 0);
    await_requests(&target, 50);
    consul.restart();
    // A dev agent comes back empty; the watcher finds it again and takes
    // the next config written.
    assert_eq!(push(&second, &consul.url(), None).0, 0);
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    assert_eq!(out.code, 0, "{}", out.output);
    let events = out.report["cluster"]["events"].to_string();
    assert!(events.contains("config switched from"), "{events}");
    assert_eq!(iterations(&out.report, "checkout"), 100);
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
}

/// Registers node `i`'s Raft port as an instance of `service` (no check:
/// Consul's DNS lists it at once), the way an orchestrator would.
fn register(consul: &Consul, c: &Cluster, i: usize, service: &str) {
    let port = port_of(&c.nodes[i].raft);
    let (ok, out) = consul.cli(
        &[
            "services",
            "register",
            &format!("-name={service}"),
            &format!("-id={}", c.nodes[i].name),
            "-address=127.0.0.1",
            &format!("-port={port}"),
        ],
        None,
    );
    assert!(ok, "{out}");
}

#[test]
fn nodes_find_each_other_through_dns_srv_records_and_a_later_one_joins() {
    let _g = serial();
    let consul = Consul::start();
    let mut c = Cluster::new(4, None);
    for i in 0..3 {
        register(&consul, &c, i, "lt-dns");
    }
    let server = format!("127.0.0.1:{}", consul.dns_port);
    let env = [
        ("DISCOVERY_MODE", "dns"),
        ("CLUSTER_NODES", ""),
        ("CLUSTER_DNS_NAME", "lt-dns.service.consul"),
        ("CLUSTER_DNS_SERVER", server.as_str()),
        ("CLUSTER_BOOTSTRAP_EXPECT", "3"),
    ];
    for i in 0..3 {
        c.start_with(i, &env);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let state = c.state(leader).unwrap();
    assert_eq!(state["voters"].as_array().unwrap().len(), 3, "{state}");
    let logs: String = (0..3)
        .map(|i| std::fs::read_to_string(&c.nodes[i].log).unwrap())
        .collect();
    assert!(logs.contains("nodes found through DNS"), "{logs}");

    // A node that appears in DNS later is added as a learner.
    register(&consul, &c, 3, "lt-dns");
    c.start_with(3, &env);
    await_true("the fourth node as a learner", || {
        c.state(leader).is_some_and(|s| {
            s["learners"]
                .as_array()
                .is_some_and(|l| l.iter().any(|a| *a == c.nodes[3].raft.as_str()))
        })
    });
    c.await_agreement(LIMIT);
}
