//! A network partition, for real: five nodes, each in its own network
//! namespace on a bridge this test creates (and removes), cut into 3 + 2
//! with blackhole routes, then healed. Needs root (ip netns).

mod common;

use common::{BIN, wait_bounded};
use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);
const RAFT_PORT: u16 = 7000;
const HEALTH_PORT: u16 = 8080;
/// The nodes' token: /cluster/state asks for it too.
const TOKEN: &str = "partition-test";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2) is needed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge and one namespace per host, named after this process so that
/// parallel runs do not collide; removed on drop.
struct Net {
    tag: String,
    subnet: String,
    hosts: usize,
}

impl Net {
    fn new(hosts: usize) -> Net {
        let pid = std::process::id();
        let net = Net {
            tag: format!("lt{}", pid % 100_000),
            subnet: format!("10.213.{}", pid % 250),
            hosts,
        };
        let br = net.bridge();
        ip(&["link", "add", &br, "type", "bridge"]);
        ip(&["addr", "add", &format!("{}.254/24", net.subnet), "dev", &br]);
        ip(&["link", "set", &br, "up"]);
        for i in 1..=hosts {
            let (ns, host_end, ns_end) = (
                net.ns(i),
                format!("{}h{i}", net.tag),
                format!("{}n{i}", net.tag),
            );
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
            ]);
            ip(&["link", "set", &ns_end, "netns", &ns]);
            ip(&["link", "set", &host_end, "master", &br]);
            ip(&["link", "set", &host_end, "up"]);
            ip(&[
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.addr(i)),
                "dev",
                &ns_end,
            ]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", &ns_end, "up"]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}ns{i}", self.tag)
    }

    fn addr(&self, i: usize) -> String {
        format!("{}.{i}", self.subnet)
    }

    /// Drops all traffic between the two groups (both directions).
    fn cut(&self, a: &[usize], b: &[usize], add: bool) {
        let verb = if add { "add" } else { "del" };
        for (from, to) in [(a, b), (b, a)] {
            for i in from {
                for j in to {
                    ip(&[
                        "netns",
                        "exec",
                        &self.ns(*i),
                        "ip",
                        "route",
                        verb,
                        "blackhole",
                        &format!("{}/32", self.addr(*j)),
                    ]);
                }
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 1..=self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .status();
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{}h{i}", self.tag)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
    }
}

struct Nodes {
    children: Vec<Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn health(net: &Net, i: usize) -> Option<Value> {
    use std::io::Write;
    let addr = format!("{}:{HEALTH_PORT}", net.addr(i));
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(300))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /cluster/state HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    serde_json::from_str(resp.split_once("\r\n\r\n")?.1).ok()
}

/// Waits until the nodes in `group` agree on one leader among them.
fn agree(net: &Net, group: &[usize]) -> (String, u64) {
    let until = Instant::now() + LIMIT;
    loop {
        let hs: Vec<Value> = group.iter().filter_map(|i| health(net, *i)).collect();
        if hs.len() == group.len() {
            let leaders = hs.iter().filter(|h| h["state"] == "leader").count();
            let same = hs
                .iter()
                .all(|h| h["leader_id"] == hs[0]["leader_id"] && h["term"] == hs[0]["term"]);
            if leaders == 1 && same && hs[0]["leader_id"].is_string() {
                return (
                    hs[0]["leader_id"].as_str().unwrap().to_owned(),
                    hs[0]["term"].as_u64().unwrap(),
                );
            }
        }
        assert!(
            Instant::now() < until,
            "group {group:?} did not agree: {hs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(net: &Net, via: usize, value: &str) -> i32 {
    let mut child = Command::new(BIN)
        .args([
            "cluster-write",
            "setting",
            value,
            "--node",
            &format!("{}:{RAFT_PORT}", net.addr(via)),
        ])
        .env("CLUSTER_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, LIMIT)
}

#[test]
fn a_minority_partition_cannot_lead_or_commit_and_rejoins_after_healing() {
    let net = Net::new(5);
    let peers: Vec<String> = (1..=5)
        .map(|i| format!("{}:{RAFT_PORT}", net.addr(i)))
        .collect();
    let mut nodes = Nodes {
        children: Vec::new(),
    };
    for i in 1..=5 {
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(i), BIN, "node"])
            .env("CLUSTER_NODE_ID", format!("node-{i}"))
            .env("CLUSTER_BIND_ADDR", format!("{}:{RAFT_PORT}", net.addr(i)))
            .env(
                "CLUSTER_HEALTH_ADDR",
                format!("{}:{HEALTH_PORT}", net.addr(i)),
            )
            .env("CLUSTER_NODES", peers.join(","))
            .env(
                "CLUSTER_DATA_DIR",
                std::env::temp_dir().join(format!("{}-n{i}", net.tag)),
            )
            .env("CLUSTER_ELECTION_TIMEOUT_MS", "500")
            .env("CLUSTER_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log_of(&net, i)).unwrap())
            .spawn()
            .unwrap();
        nodes.children.push(child);
    }
    let all = [1, 2, 3, 4, 5];
    let (leader, _) = agree(&net, &all);
    let leader_idx: usize = leader.trim_start_matches("node-").parse().unwrap();
    // Keep the leader on the majority side; the minority is two followers.
    let minority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| *i != leader_idx)
        .take(2)
        .collect();
    let majority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !minority.contains(i))
        .collect();
    net.cut(&minority, &majority, true);

    // The majority keeps (or re-elects) a leader and commits.
    let (_, majority_term) = agree(&net, &majority);
    assert_eq!(write(&net, majority[0], "during-partition"), 0);
    // The minority cannot commit.
    assert_ne!(write(&net, minority[0], "minority-write"), 0);
    // Over a few seconds of elections, no minority node reports a leader of
    // a newer term than the majority's.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let (_, maj_term) = agree(&net, &majority);
        for i in &minority {
            if let Some(h) = health(&net, *i)
                && h["leader_id"].is_string()
            {
                assert!(
                    h["term"].as_u64().unwrap() <= maj_term.max(majority_term),
                    "minority leader in a newer term: {h}"
                );
                assert_ne!(h["state"], "leader", "a minority node leads: {h}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    net.cut(&minority, &majority, false);
    agree(&net, &all);
    let until = Instant::now() + LIMIT;
    for i in &minority {
        while health(&net, *i).is_none_or(|h| h["data"]["setting"] != "during-partition") {
            assert!(
                Instant::now() < until,
                "node {i} did not catch up after healing: {:?}\n{}",
                health(&net, *i),
                log_tail(&net, *i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for i in 1..=5 {
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-n{i}", net.tag)));
        let _ = std::fs::remove_file(log_of(&net, i));
    }
}

/// Where node `i` logs, for the message of a failed check.
fn log_of(net: &Net, i: usize) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-n{i}.log", net.tag))
}

fn log_tail(net: &Net, i: usize) -> String {
    let log = std::fs::read_to_string(log_of(net, i)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
