//! Real node processes on loopback: start, kill, read health, agree on a
//! leader. Every process is killed when the Cluster is dropped.

use super::{BIN, wait_bounded};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LIMIT: Duration = Duration::from_secs(30);

/// Elections run on timers; on two cores, clusters of several tests at
/// once would starve each other, so these tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A port nobody listens on now, and never one this process handed out
/// before: the kernel may give a just-released port again, and a node
/// whose Raft and health ports came out equal cannot start.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Node {
    pub name: String,
    pub raft: String,
    pub health: String,
    pub data: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

/// N nodes on loopback sharing one peer list; every process is killed on drop.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub peers: String,
    pub token: Option<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn new(n: usize, token: Option<&str>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                name: format!("node-{i}"),
                raft: format!("127.0.0.1:{}", free_port()),
                health: format!("127.0.0.1:{}", free_port()),
                data: dir.path().join(format!("n{i}")),
                log: dir.path().join(format!("n{i}.log")),
                child: None,
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|n| n.raft.clone())
            .collect::<Vec<_>>()
            .join(",");
        Cluster {
            nodes,
            peers,
            token: token.map(str::to_owned),
            _dir: dir,
        }
    }

    pub fn start(&mut self, i: usize) {
        self.start_with(i, &[]);
    }

    pub fn start_with(&mut self, i: usize, extra: &[(&str, &str)]) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new(BIN);
        cmd.arg("node")
            .env("CLUSTER_ENABLED", "true")
            .env("CLUSTER_NODE_ID", &n.name)
            .env("CLUSTER_BIND_ADDR", &n.raft)
            .env("CLUSTER_HEALTH_ADDR", &n.health)
            .env("CLUSTER_NODES", &self.peers)
            .env("CLUSTER_DATA_DIR", &n.data)
            .env("CLUSTER_ELECTION_TIMEOUT_MS", "500")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&n.log).expect("node log file"));
        match &self.token {
            Some(t) => cmd.env("CLUSTER_TOKEN", t),
            None => cmd.env_remove("CLUSTER_TOKEN"),
        };
        cmd.envs(extra.iter().copied());
        n.child = Some(cmd.spawn().expect("starting a node"));
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn health(&self, i: usize) -> Option<Value> {
        get_json(&self.nodes[i].health, "/health/cluster")
    }

    pub fn state(&self, i: usize) -> Option<Value> {
        get_json(&self.nodes[i].health, "/cluster/state")
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .collect()
    }

    /// Waits until every running node names the same leader in the same
    /// term and exactly one says it leads; returns (leader index, term).
    pub fn await_agreement(&self, deadline: Duration) -> (usize, u64) {
        let until = Instant::now() + deadline;
        loop {
            let healths: Vec<(usize, Value)> = self
                .running()
                .into_iter()
                .filter_map(|i| self.health(i).map(|h| (i, h)))
                .collect();
            if healths.len() == self.running().len() {
                let leaders: Vec<usize> = healths
                    .iter()
                    .filter(|(_, h)| h["state"] == "leader")
                    .map(|(i, _)| *i)
                    .collect();
                let names: Vec<&Value> = healths.iter().map(|(_, h)| &h["leader_id"]).collect();
                let terms: Vec<&Value> = healths.iter().map(|(_, h)| &h["term"]).collect();
                if leaders.len() == 1
                    && names
                        .iter()
                        .all(|n| **n == Value::String(self.nodes[leaders[0]].name.clone()))
                    && terms.iter().all(|t| *t == terms[0])
                {
                    return (leaders[0], terms[0].as_u64().unwrap());
                }
            }
            assert!(
                Instant::now() < until,
                "no agreement on a leader: {healths:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `i` knows every running node by name: a plan
    /// built before a peer's first hello names that peer by address.
    pub fn await_names(&self, i: usize, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            let known = self.state(i).map(|s| s["names"].clone());
            let all = known.as_ref().is_some_and(|names| {
                self.running()
                    .iter()
                    .all(|j| names[&self.nodes[*j].raft] == self.nodes[*j].name.as_str())
            });
            if all {
                return;
            }
            assert!(
                Instant::now() < until,
                "node {i} does not know every name: {known:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn write(&self, via: usize, key: &str, value: &str, token: Option<&str>) -> (i32, String) {
        cli(
            &["cluster-write", key, value, "--node", &self.nodes[via].raft],
            token,
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        // A failing test's node logs go with its temp dir: show their
        // ends first, so a rare failure can be understood from CI output.
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(25)..];
                eprintln!(
                    "--- {} ({}), last lines:\n{}",
                    n.name,
                    n.raft,
                    tail.join("\n")
                );
            }
        }
    }
}

/// Runs a short CLI command with the token (or none); its exit code, and
/// its stdout then stderr.
pub fn cli(args: &[&str], token: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match token {
        Some(t) => cmd.env("CLUSTER_TOKEN", t),
        None => cmd.env_remove("CLUSTER_TOKEN"),
    };
    let mut child = cmd.spawn().unwrap();
    let code = wait_bounded(&mut child, LIMIT);
    let mut out = String::new();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let mut pipe = pipe;
        pipe.read_to_string(&mut out).unwrap();
    }
    (code, out)
}

pub fn get_json(addr: &str, path: &str) -> Option<Value> {
    use std::io::Write;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(300))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    serde_json::from_str(resp.split_once("\r\n\r\n")?.1).ok()
}

/// A CLI run that writes its reports (`submit`, `report`).
pub struct Reported {
    child: Child,
    json: PathBuf,
    series: PathBuf,
}

pub struct Outcome {
    pub code: i32,
    /// stderr, then stdout.
    pub output: String,
    pub report: Value,
    pub series: Vec<Value>,
}

/// Longest a cluster run may take, distribution and failover included.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Starts `loadtest <args> --json .. --timeseries ..` with the token (or none).
pub fn with_reports(dir: &Path, args: &[&str], token: Option<&str>) -> Reported {
    let json = dir.join("report.json");
    let series = dir.join("series.jsonl");
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--json")
        .arg(&json)
        .arg("--timeseries")
        .arg(&series)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match token {
        Some(t) => cmd.env("CLUSTER_TOKEN", t),
        None => cmd.env_remove("CLUSTER_TOKEN"),
    };
    Reported {
        child: cmd.spawn().expect("starting loadtest"),
        json,
        series,
    }
}

impl Reported {
    /// Whether the command has exited.
    pub fn ended(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub fn finish(mut self) -> Outcome {
        let (mut out, mut err) = (
            self.child.stdout.take().unwrap(),
            self.child.stderr.take().unwrap(),
        );
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = out.read_to_string(&mut s);
            s
        });
        let code = wait_bounded(&mut self.child, RUN_LIMIT);
        let output = reader.join().unwrap();
        let report = std::fs::read_to_string(&self.json)
            .ok()
            .map_or(Value::Null, |t| serde_json::from_str(&t).unwrap());
        let series = std::fs::read_to_string(&self.series)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        Outcome {
            code,
            output,
            report,
            series,
        }
    }
}

/// A config with one scenario of the given executor lines.
pub fn shared_config(dir: &Path, target: &super::Target, plugin: &Path, executor: &str) -> PathBuf {
    let yaml = format!(
        "name: shared\ntarget: {}\nplugins:\n  shop: {{ path: {} }}\nscenarios:\n  browse:\n    plugin: shop\n{executor}\n    params: {{ think_ms: 0 }}\n",
        target.url,
        plugin.display()
    );
    let p = dir.join("test.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

pub fn arrival(rate: u32, secs: u32) -> String {
    format!(
        "    executor: constant-arrival-rate\n    rate: {rate}\n    duration: {secs}s\n    preAllocatedVUs: 10\n    maxVUs: 40"
    )
}

/// The quickstart component with a custom section of `pad` bytes
/// appended: a large plugin without a large build.
pub fn padded_component(dir: &Path, pad: usize) -> PathBuf {
    let mut bytes = std::fs::read(super::component("quickstart")).unwrap();
    let name = b"padding";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.resize(body.len() + pad, 0xab);
    bytes.push(0);
    let mut len = body.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(b);
            break;
        }
        bytes.push(b | 0x80);
    }
    bytes.extend_from_slice(&body);
    let p = dir.join("padded.wasm");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A config with one constant-arrival-rate scenario named `scenario`.
pub fn rate_config(
    dir: &Path,
    target: &super::Target,
    name: &str,
    scenario: &str,
    rate: u32,
    secs: u32,
) -> std::path::PathBuf {
    let yaml = format!(
        "name: {name}\ntarget: {}\nplugins:\n  shop: {{ path: {} }}\nscenarios:\n  {scenario}:\n    plugin: shop\n{}\n    params: {{ think_ms: 0 }}\n",
        target.url,
        super::component("quickstart").display(),
        arrival(rate, secs)
    );
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

pub fn iterations(report: &serde_json::Value, scenario: &str) -> u64 {
    report["scenarios"][scenario]["iterations"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits (up to LIMIT) until `ok` holds.
pub fn await_true(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + LIMIT;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A run of `rate_config`'s "first" (browse, 50/s for 10 s) switched to
/// "second" (checkout, 100/s for 3 s) after about 100 requests: marked in
/// the events, browse cut short, checkout whole, every request counted.
pub fn switched_mid_run(out: &Outcome, target: &super::Target) {
    assert_eq!(out.code, 0, "{}", out.output);
    let r = &out.report;
    let events = r["cluster"]["events"].to_string();
    assert!(events.contains("config switched from"), "{events}");
    let browse = iterations(r, "browse");
    assert!(
        browse > 50 && browse < 500,
        "browse ran {browse} of 500 before the switch"
    );
    assert_eq!(iterations(r, "checkout"), 300, "the new config ran whole");
    assert_eq!(r["totals"]["requests"].as_u64().unwrap(), target.received());
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// When the first node of a cluster run began its first iteration (unix ms).
pub fn first_iteration_ms(report: &Value) -> u64 {
    report["cluster"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["started_at_ms"].as_u64())
        .min()
        .unwrap()
}
