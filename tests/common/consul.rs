//! A real Consul agent (`consul agent -dev`) on free loopback ports with a
//! temp data dir, stopped on drop. The binary comes from
//! scripts/consul.sh, which builds the pinned release once and caches it.

use super::cluster::free_port;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Consul {
    child: Child,
    args: Vec<String>,
    pub http: String,
    pub dns_port: u16,
    pub bin: String,
    _dir: tempfile::TempDir,
}

impl Consul {
    pub fn start() -> Consul {
        Self::start_with(&[])
    }

    /// `extra`: more agent flags (say, an ACL config). A free port can be
    /// taken by someone else before the agent binds it (the kernel hands
    /// released ports out again as source ports); that start is retried
    /// with other ports.
    pub fn start_with(extra: &[&str]) -> Consul {
        let bin = super::tool("consul.sh");
        for _ in 0..3 {
            let mut consul = Self::spawn(&bin, extra);
            match consul.ready() {
                Ok(()) => return consul,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("consul did not start: {log}"),
            }
        }
        panic!("consul could not bind free ports in 3 attempts");
    }

    fn spawn(bin: &str, extra: &[&str]) -> Consul {
        let dir = tempfile::tempdir().unwrap();
        let http_port = free_port();
        let dns_port = free_port();
        let mut args: Vec<String> = [
            "agent",
            "-dev",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["-http-port".to_owned(), http_port.to_string()]);
        args.extend(["-dns-port".to_owned(), dns_port.to_string()]);
        for flag in [
            "-grpc-port",
            "-grpc-tls-port",
            "-serf-lan-port",
            "-serf-wan-port",
            "-server-port",
        ] {
            args.extend([flag.to_owned(), free_port().to_string()]);
        }
        args.extend(["-data-dir".to_owned(), dir.path().display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::fs::File::create(dir.path().join("consul.log")).unwrap();
        let child = Command::new(bin)
            .args(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting consul");
        Consul {
            child,
            args,
            http: format!("127.0.0.1:{http_port}"),
            dns_port,
            bin: bin.to_owned(),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("consul.log")).unwrap_or_default()
    }

    /// Waits until the agent has elected itself; `Err(log)` if it exited
    /// or did not within 30 s.
    fn ready(&mut self) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = super::http_try_get(&format!("http://{}/v1/status/leader", self.http));
            if leader.is_some_and(|l| l.contains(':')) {
                return Ok(());
            }
            if self.child.try_wait().ok().flatten().is_some() || Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn await_leader(&mut self) {
        if let Err(log) = self.ready() {
            panic!("consul did not elect itself: {log}");
        }
    }

    /// Stops the agent and starts it again on the same ports (a dev agent
    /// keeps nothing: KV and registrations are gone).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self._dir.path().join("consul.log"))
            .unwrap();
        self.child = Command::new(&self.bin)
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("restarting consul");
        self.await_leader();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Runs the `consul` CLI against this agent; returns (success, output).
    pub fn cli(&self, args: &[&str], token: Option<&str>) -> (bool, String) {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env("CONSUL_HTTP_ADDR", &self.http);
        match token {
            Some(t) => cmd.env("CONSUL_HTTP_TOKEN", t),
            None => cmd.env_remove("CONSUL_HTTP_TOKEN"),
        };
        let out = cmd.output().expect("consul cli");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Consul {
    /// GET on the agent's HTTP API, as JSON (through curl: Consul answers
    /// in chunks, which the harness's minimal GET does not decode).
    pub fn get(&self, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                &format!("http://{}{path}", self.http),
            ])
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The ports of the SRV records Consul's DNS gives for `name`.
    pub fn srv_ports(&self, name: &str) -> Vec<u16> {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.dns_port.to_string(),
                name,
                "SRV",
                "+short",
                "+time=1",
                "+tries=1",
            ])
            .output()
            .expect("dig (Debian's dnsutils)");
        let mut ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect();
        ports.sort();
        ports
    }
}

impl Drop for Consul {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
