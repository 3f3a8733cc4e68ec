//! A GCS emulator (fake-gcs-server, from scripts/fake-gcs.sh) on a free
//! loopback port, and a stand-in for the GCE metadata server: the one
//! thing ADC asks on GCP, a token, served from a thread of the test so
//! each test can make it fail or deny. Both stop on drop.

use super::cluster::free_port;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    /// `127.0.0.1:port`, for STORAGE_EMULATOR_HOST.
    pub host: String,
}

impl Emulator {
    /// An empty in-memory store with the given buckets.
    pub fn start(buckets: &[&str]) -> Emulator {
        let bin = super::tool("fake-gcs.sh");
        for _ in 0..3 {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let child = Command::new(&bin)
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                ])
                .args(["-port", &port.to_string(), "-public-host", &host])
                .args(["-log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting fake-gcs-server");
            let mut e = Emulator { child, host };
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                if e.curl(&[
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    &e.url("/storage/v1/b"),
                ])
                .0 == "200"
                {
                    for b in buckets {
                        e.create_bucket(b);
                    }
                    return e;
                }
                if e.child.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = e.child.kill();
        }
        panic!("fake-gcs-server did not start in 3 attempts");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// curl's (stdout, success).
    fn curl(&self, args: &[&str]) -> (String, bool) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.success(),
        )
    }

    pub fn create_bucket(&self, name: &str) {
        let body = format!("{{\"name\":\"{name}\"}}");
        let (out, ok) = self.curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &self.url("/storage/v1/b?project=test"),
        ]);
        assert!(ok && out.contains(name), "creating bucket {name}: {out}");
    }

    /// Uploads bytes as an object.
    pub fn put(&self, bucket: &str, object: &str, bytes: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let url = self.url(&format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            encode(object)
        ));
        let data = format!("@{}", file.path().display());
        let (out, ok) = self.curl(&["-X", "POST", "--data-binary", &data, &url]);
        assert!(
            ok && out.contains("\"generation\""),
            "uploading {object}: {out}"
        );
    }

    /// The object's bytes, or `None`.
    pub fn get(&self, bucket: &str, object: &str) -> Option<Vec<u8>> {
        let url = self.url(&format!(
            "/storage/v1/b/{bucket}/o/{}?alt=media",
            encode(object)
        ));
        let out = Command::new("curl")
            .args(["-s", "-f", "--max-time", "10", &url])
            .output()
            .expect("curl");
        out.status.success().then_some(out.stdout)
    }

    /// The names of the objects under `prefix`.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = self.url(&format!(
            "/storage/v1/b/{bucket}/o?prefix={}",
            encode(prefix)
        ));
        let (out, ok) = self.curl(&[&url]);
        assert!(ok, "listing {bucket}/{prefix}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What the metadata stand-in answers a token request with.
#[derive(Clone, Copy, PartialEq, Debug)]
#[repr(u8)]
pub enum Token {
    Grant = 0,
    /// 500: the token endpoint failing.
    Fail = 1,
    /// 403: the token denied.
    Deny = 2,
}

/// The GCE metadata server's token endpoint, for `GCE_METADATA_HOST`.
pub struct Metadata {
    /// `127.0.0.1:port`.
    pub host: String,
    mode: Arc<AtomicU8>,
    tokens: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Metadata {
    pub fn start(mode: Token) -> Metadata {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let m = Metadata {
            host,
            mode: Arc::new(AtomicU8::new(mode as u8)),
            tokens: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, tokens, stop) = (m.mode.clone(), m.tokens.clone(), m.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (mode, tokens) = (mode.clone(), tokens.clone());
                        std::thread::spawn(move || serve(s, &mode, &tokens));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        m
    }

    pub fn set(&self, mode: Token) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Token requests answered so far (whatever the answer).
    pub fn token_requests(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }
}

impl Drop for Metadata {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers requests on one connection until it closes.
fn serve(stream: TcpStream, mode: &AtomicU8, tokens: &AtomicUsize) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut flavor = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            flavor |= h
                .to_ascii_lowercase()
                .starts_with("metadata-flavor: google");
        }
        let (status, body) = answer(&path, flavor, mode, tokens);
        let resp = format!(
            "HTTP/1.1 {status}\r\nMetadata-Flavor: Google\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(
    path: &str,
    flavor: bool,
    mode: &AtomicU8,
    tokens: &AtomicUsize,
) -> (&'static str, String) {
    if !flavor {
        return ("403 Forbidden", "missing Metadata-Flavor header".into());
    }
    let path = path.split('?').next().unwrap_or("");
    match path {
        "/computeMetadata/v1/instance/service-accounts/default/token" => {
            tokens.fetch_add(1, Ordering::SeqCst);
            match mode.load(Ordering::SeqCst) {
                0 => (
                    "200 OK",
                    r#"{"access_token":"test-token","expires_in":3600,"token_type":"Bearer"}"#
                        .into(),
                ),
                1 => (
                    "500 Internal Server Error",
                    "metadata server failing".into(),
                ),
                _ => (
                    "403 Forbidden",
                    "the service account may not get tokens".into(),
                ),
            }
        }
        "/computeMetadata/v1/universe/universe-domain" => ("200 OK", "googleapis.com".into()),
        "/computeMetadata/v1/instance/service-accounts/default/email" => {
            ("200 OK", "loadtest@test.iam.gserviceaccount.com".into())
        }
        "/computeMetadata/v1/project/project-id" => ("200 OK", "test-project".into()),
        "/" | "/computeMetadata/v1/" => ("200 OK", String::new()),
        _ => ("404 Not Found", String::new()),
    }
}
