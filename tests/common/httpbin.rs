//! httpbin (a third-party HTTP test server from PyPI) under gunicorn, on a
//! free loopback port, with an access log so a test can count what it
//! received. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Httpbin {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Httpbin {
    pub fn start() -> Httpbin {
        let gunicorn = super::tool("httpbin.sh");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let port = super::cluster::free_port();
        let child = Command::new(gunicorn)
            .args(["-b", &format!("127.0.0.1:{port}"), "-w", "2"])
            .arg("--access-logfile")
            .arg(&log)
            .args(["--access-logformat", "%(m)s %(U)s %(s)s", "httpbin:app"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting gunicorn");
        let mut bin = Httpbin {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let limit = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bin.child.try_wait() {
                panic!("gunicorn exited at start: {status}");
            }
            assert!(Instant::now() < limit, "httpbin did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        bin
    }

    /// The requests httpbin logged, once it has logged at least `expected`
    /// (it writes each line after answering) or 10 s have passed.
    pub fn received(&self, expected: usize) -> usize {
        let limit = Instant::now() + Duration::from_secs(10);
        loop {
            let n = std::fs::read_to_string(&self.log)
                .map(|s| s.lines().count())
                .unwrap_or(0);
            if n >= expected || Instant::now() > limit {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The logged requests, as "METHOD /path STATUS" lines.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// http-steps params with `setup:` and `teardown:` steps, a group and a
/// tag: setup takes a token once (`/uuid`), every VU's requests carry it,
/// teardown hands it back once. [`Httpbin::assert_lifecycle`] checks it.
pub const LIFECYCLE: &str = r#"    params:
      setup:
        - request: { path: /uuid, name: setup uuid }
          extract: [{ var: token, json: $.uuid }]
      teardown:
        - request: { path: "/anything/teardown/${token}", name: teardown }
      steps:
        - group: browse
          request: { path: "/anything/work/${token}", name: work, tags: { kind: work } }
          assert: [{ status: 200 }]
        - group: browse
          request: { path: /get, name: get }
"#;

impl Httpbin {
    /// After a run of [`LIFECYCLE`] with `iterations` in all: setup and
    /// teardown each reached the server once, and every iteration carried
    /// setup's token, the one teardown got.
    pub fn assert_lifecycle(&self, iterations: usize) {
        let log = self.log();
        let setups = log.iter().filter(|l| *l == "GET /uuid 200").count();
        assert_eq!(setups, 1, "setup ran once: {log:?}");
        let (work, n) = tokens(&log, "GET /anything/work/");
        assert_eq!(n, iterations, "{log:?}");
        let (teardown, m) = tokens(&log, "GET /anything/teardown/");
        assert_eq!(m, 1, "teardown ran once: {log:?}");
        assert_eq!(work.len(), 1, "one token for every VU: {work:?}");
        assert_eq!(work, teardown);
        assert!(work.iter().all(|t| t.len() == 36), "a uuid: {work:?}");
    }
}

/// The distinct tokens the log's lines carry after `prefix`, and how many
/// lines had one.
fn tokens(log: &[String], prefix: &str) -> (std::collections::BTreeSet<String>, usize) {
    let found: Vec<String> = log
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    let n = found.len();
    (found.into_iter().collect(), n)
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
