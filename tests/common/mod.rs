//! Process harness for the integration tests: start the embedded target,
//! run the CLI with a time bound, read its JSON report.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod consul;
pub mod gcs;
pub mod httpbin;
pub mod prometheus;
pub mod rawhttp;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_loadtest");

/// Longest any single CLI run in a test may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A built guest component, by crate name.
pub fn component(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/components")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins.sh first",
        p.display()
    );
    p
}

/// The embedded target in its own process, killed on drop.
pub struct Target {
    child: Child,
    pub url: String,
}

impl Target {
    pub fn start() -> Target {
        Self::start_with(&[])
    }

    /// HTTPS with a self-signed certificate.
    pub fn start_tls() -> Target {
        Self::start_with(&["--tls"])
    }

    fn start_with(extra: &[&str]) -> Target {
        let mut child = Command::new(BIN)
            .args(["target", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the target");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("target prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("address line")
            .to_owned();
        Target { child, url }
    }

    /// Waits (up to 10 s) until no request arrives for half a second: a
    /// paused run's running iterations are done.
    pub fn await_quiet(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = self.received();
            std::thread::sleep(Duration::from_millis(500));
            if self.received() == before {
                return;
            }
            assert!(Instant::now() < deadline, "requests went on {what}");
        }
    }

    /// Requests the target has received (its own count).
    pub fn received(&self) -> u64 {
        if self.url.starts_with("https://") {
            return self.received_tls();
        }
        self.stat("requests")
    }

    /// Connections that carried at least one counted request.
    pub fn connections(&self) -> u64 {
        self.stat("connections")
    }

    /// The most requests the target was answering at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.stat("peak_in_flight")
    }

    fn stat(&self, name: &str) -> u64 {
        let body = http_get(&format!("{}/__stats", self.url));
        let v: Value = serde_json::from_str(&body).expect("stats are JSON");
        v[name].as_u64().unwrap_or_else(|| panic!("{name} in {v}"))
    }
}

impl Target {
    /// The harness has no TLS client; the count comes through `curl`.
    fn received_tls(&self) -> u64 {
        let out = Command::new("curl")
            .args(["-sk", &format!("{}/__stats", self.url)])
            .output()
            .expect("curl");
        let v: Value = serde_json::from_slice(&out.stdout).expect("stats are JSON");
        v["requests"].as_u64().expect("requests count")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET that answers `None` when nothing serves yet: refused, or reset
/// by a server still starting (Prometheus accepts before it is ready).
pub fn http_try_get(url: &str) -> Option<String> {
    exchange(url).ok()
}

/// A minimal blocking GET, so the harness needs no HTTP client crate.
fn http_get(url: &str) -> String {
    exchange(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn exchange(url: &str) -> std::io::Result<String> {
    use std::io::Write;
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn write_config(dir: &tempfile::TempDir, yaml: &str) -> PathBuf {
    let p = dir.path().join("test.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

pub struct RunResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The `--json` report (Null when the run wrote none).
    pub report: Value,
    /// The process's peak resident memory.
    pub peak_rss_mib: u64,
    /// From start to exit.
    pub took: Duration,
}

/// Runs the CLI; for `run`, adds `--json` and parses the report.
pub fn run_loadtest(dir: &tempfile::TempDir, args: &[&str]) -> RunResult {
    run_loadtest_env(dir, args, &[])
}

/// [`run_loadtest`] with extra environment variables.
pub fn run_loadtest_env(dir: &tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> RunResult {
    let report_path = dir.path().join("report.json");
    let _ = std::fs::remove_file(&report_path);
    let mut cmd = Command::new(BIN);
    cmd.args(args).envs(env.iter().copied());
    if args.first() == Some(&"run") {
        cmd.arg("--json").arg(&report_path);
    }
    let started = Instant::now();
    let mut child = cmd
        .env_remove("CLUSTER_ENABLED")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting loadtest");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (code, peak_rss_mib) = wait_measured(&mut child, RUN_LIMIT);
    let took = started.elapsed();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .map_or(Value::Null, |t| {
            serde_json::from_str(&t).expect("report is JSON")
        });
    RunResult {
        code,
        stdout,
        stderr,
        report,
        peak_rss_mib,
        took,
    }
}

/// Like [`wait_bounded`], and also returns the child's own peak resident
/// memory in MiB (from `wait4`, so other children do not count).
pub fn wait_measured(child: &mut Child, limit: Duration) -> (i32, u64) {
    let deadline = Instant::now() + limit;
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: wait4 writes only the status and the rusage it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            return (code, usage.ru_maxrss as u64 / 1024);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live changes a JSON report lists (`controls`).
pub fn controls(report: &Value) -> Vec<&str> {
    report["controls"]
        .as_array()
        .expect("the report lists the live changes")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

/// Runs `loadtest run -q` on `cfg` until `ready` holds (waited for up to
/// 90 s: beside the other tests' compiles of large components on two
/// busy cores, a run once sent nothing for over 30 s), then sends SIGINT,
/// as Ctrl-C does. Returns the exit code, how long the process took to
/// exit after the signal, and the JSON report.
pub fn run_interrupted(cfg: &Path, mut ready: impl FnMut() -> bool) -> (i32, Duration, Value) {
    let dir = cfg.parent().unwrap();
    let report = dir.join("report.json");
    let mut child = Command::new(BIN)
        .args(["run", "-q", "--json", report.to_str().unwrap()])
        .arg(cfg)
        .env("NO_COLOR", "1")
        .env_remove("CLUSTER_ENABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting loadtest");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "the run never got ready to interrupt"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let code = wait_bounded(&mut child, Duration::from_secs(30));
    let took = signalled.elapsed();
    let report = std::fs::read_to_string(&report)
        .ok()
        .map_or(Value::Null, |t| {
            serde_json::from_str(&t).expect("report is JSON")
        });
    (code, took, report)
}

/// Waits for the child's exit, killing it (and failing) past `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The path a `scripts/<script>` prints: a real service's binary, built
/// once and cached outside the repo (Consul, the GCS emulator).
pub fn tool(script: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let out = Command::new(path)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
