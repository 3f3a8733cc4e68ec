//! A hostile HTTP/1.1 server on raw sockets: it reads each request's
//! head (and, if asked, its body), then writes whatever its case says,
//! breaking the protocol's rules on purpose. It counts requests and
//! connections, so a test can tell a resent request or a reused
//! connection from a fresh one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a case writes for one request; `Ok(true)` keeps the connection
/// for the next request.
pub type Reply = fn(&mut TcpStream, &Stop) -> std::io::Result<bool>;

/// Set when the server is dropped: endless replies end.
pub type Stop = AtomicBool;

/// The most any endless reply writes, so a client that never gives up
/// still ends the test.
const ENDLESS_BYTES: u64 = 8 << 30;

pub struct RawServer {
    pub url: String,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    stop: Arc<Stop>,
    addr: std::net::SocketAddr,
}

impl RawServer {
    /// Serves `reply` on loopback; `read_body` reads each request's
    /// Content-Length body before replying (otherwise it is left unread).
    pub fn start(reply: Reply, read_body: bool) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, st) = (requests.clone(), connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::Relaxed);
                let (r, st) = (r.clone(), st.clone());
                std::thread::spawn(move || serve(conn, reply, read_body, &r, &st));
            }
        });
        RawServer {
            url: format!("http://{addr}"),
            requests,
            connections,
            stop,
            addr,
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, reply: Reply, read_body: bool, requests: &AtomicU64, stop: &Stop) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn);
    while let Some(length) = read_head(&mut reader) {
        requests.fetch_add(1, Ordering::Relaxed);
        if read_body
            && std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).is_err()
        {
            return;
        }
        match reply(reader.get_mut(), stop) {
            Ok(true) => continue,
            _ => return,
        }
    }
}

/// Reads a request head; returns its Content-Length, or `None` at close.
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<u64> {
    let mut length = 0;
    let mut lines = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        lines += 1;
        let line = line.trim_end();
        if line.is_empty() {
            return (lines > 1).then_some(length);
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
}

/// Writes `head`, then `unit` over and over until the client gives up
/// (the write fails), the server stops, or a bound is reached.
pub fn endless(s: &mut TcpStream, stop: &Stop, head: &[u8], unit: &[u8]) -> std::io::Result<bool> {
    s.write_all(head)?;
    endless_pace(s, stop, unit, Duration::ZERO)
}

/// Writes `unit` every `pause` until the client gives up.
pub fn endless_pace(
    s: &mut TcpStream,
    stop: &Stop,
    unit: &[u8],
    pause: Duration,
) -> std::io::Result<bool> {
    let mut written = 0u64;
    while written < ENDLESS_BYTES && !stop.load(Ordering::Relaxed) {
        s.write_all(unit)?;
        written += unit.len() as u64;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    Ok(false)
}

/// Keeps the socket open without reading from it (as a server that has
/// answered and stopped reading does) until the server stops or `limit`
/// passes.
pub fn hold_open(stop: &Stop, limit: Duration) -> std::io::Result<bool> {
    let until = Instant::now() + limit;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(false)
}
