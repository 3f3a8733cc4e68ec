//! The embedded HTTP target: a small fast server so the quickstart and the
//! tests need nothing else installed. It counts what it receives so a test
//! can compare the generator's numbers with the server's.
//!
//! Routes: `/` (a short fixed body), `/bytes/{n}`, `/delay/{ms}`,
//! `/status/{code}`, `/gzip/{n}` (n zero bytes, gzip-encoded), `/echo` (the
//! request body back), `/json`, `/close`
//! (answers, then closes the connection); `/__stats`
//! reports `{"requests": N, "connections": M, ...}` (M: connections that
//! carried a counted request) and `/__reset` zeroes it (neither is
//! counted).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    /// Connections that carried at least one counted request: what a
    /// test reads to tell connections reused from opened anew.
    connections: AtomicU64,
    /// Requests being answered now, and the most there were at once: what
    /// a test reads to tell requests sent in parallel from one by one.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// One request being answered, counted in [`Stats::in_flight`] until
/// dropped (answered, or its connection gone).
struct Answering<'a>(&'a Stats);

impl<'a> Answering<'a> {
    fn new(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        Answering(stats)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves until the process ends. Prints the bound address on stdout
/// first, so a caller that asked for port 0 learns the real port. With
/// `tls`, serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with a fresh
/// self-signed certificate for `localhost` and `127.0.0.1`.
pub async fn serve(addr: SocketAddr, tls: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let acceptor = if tls { Some(tls_acceptor()?) } else { None };
    println!(
        "listening on {}://{local}",
        if tls { "https" } else { "http" }
    );
    let stats = Arc::new(Stats::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stats = stats.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let counted = Arc::new(AtomicBool::new(false));
            let svc =
                hyper::service::service_fn(move |req| handle(req, stats.clone(), counted.clone()));
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(a) => {
                    if let Ok(tls) = a.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                    }
                }
            }
        });
    }
}

fn tls_acceptor() -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

type Reply = Response<Full<Bytes>>;

/// `counted`: whether this request's connection is counted already.
async fn handle(
    req: Request<Incoming>,
    stats: Arc<Stats>,
    counted: Arc<AtomicBool>,
) -> Result<Reply, hyper::Error> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/__stats" => {
            let body = format!(
                r#"{{"requests":{},"connections":{},"peak_in_flight":{}}}"#,
                stats.requests.load(Ordering::Relaxed),
                stats.connections.load(Ordering::Relaxed),
                stats.peak_in_flight.load(Ordering::Relaxed)
            );
            return Ok(reply(StatusCode::OK, "application/json", body));
        }
        "/__reset" => {
            stats.requests.store(0, Ordering::Relaxed);
            stats.connections.store(0, Ordering::Relaxed);
            stats.peak_in_flight.store(0, Ordering::Relaxed);
            return Ok(reply(StatusCode::OK, "text/plain", "reset\n"));
        }
        _ => {}
    }
    stats.requests.fetch_add(1, Ordering::Relaxed);
    if !counted.swap(true, Ordering::Relaxed) {
        stats.connections.fetch_add(1, Ordering::Relaxed);
    }
    let _answering = Answering::new(&stats);
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (head, arg) = (parts.next().unwrap_or(""), parts.next());
    Ok(match (head, arg) {
        ("", None) => reply(
            StatusCode::OK,
            "text/plain",
            "hello from the loadtest target\n",
        ),
        ("echo", None) => {
            let ctype = req
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let body = req.into_body().collect().await?.to_bytes();
            reply(StatusCode::OK, &ctype, body)
        }
        // A stand-in login: any JSON body with a `user` gets a token.
        ("login", None) => {
            let body = req.into_body().collect().await?.to_bytes();
            let user = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["user"].as_str().map(str::to_owned));
            match user {
                Some(u) if !u.is_empty() => reply(
                    StatusCode::OK,
                    "application/json",
                    serde_json::json!({ "token": format!("token-{u}") }).to_string(),
                ),
                _ => reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    "post {\"user\": \"...\"} to log in\n",
                ),
            }
        }
        ("close", None) => {
            let mut r = reply(StatusCode::OK, "text/plain", "closing\n");
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            r
        }
        ("json", None) => reply(
            StatusCode::OK,
            "application/json",
            r#"{"id":42,"name":"widget","tags":["a","b"],"price":{"amount":9.99,"currency":"EUR"}}"#,
        ),
        ("bytes", Some(n)) => match n.parse::<usize>() {
            Ok(n) if n <= 64 << 20 => {
                reply(StatusCode::OK, "application/octet-stream", vec![b'x'; n])
            }
            _ => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "bytes/{n}: n must be 0..=67108864\n",
            ),
        },
        // `n` zero bytes, gzip-encoded: a compression bomb for clients'
        // decoded-size caps (1 GiB packs into about 1 MiB).
        ("gzip", Some(n)) => match n.parse::<usize>() {
            Ok(n) if n <= 1 << 30 => {
                let mut r = reply(StatusCode::OK, "application/octet-stream", gzip_zeros(n));
                r.headers_mut().insert(
                    hyper::header::CONTENT_ENCODING,
                    hyper::header::HeaderValue::from_static("gzip"),
                );
                r
            }
            _ => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "gzip/{n}: n must be 0..=1073741824\n",
            ),
        },
        ("delay", Some(ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms <= 600_000 => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply(StatusCode::OK, "text/plain", format!("waited {ms}ms\n"))
            }
            _ => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "delay/{ms}: ms must be 0..=600000\n",
            ),
        },
        ("status", Some(code)) => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(code) => reply(code, "text/plain", format!("{code}\n")),
            None => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "status/{code}: not a status code\n",
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "no such route\n"),
    })
}

fn gzip_zeros(n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = [0u8; 64 << 10];
    let mut left = n;
    while left > 0 {
        let step = left.min(zeros.len());
        e.write_all(&zeros[..step]).expect("writing to memory");
        left -= step;
    }
    e.finish().expect("writing to memory")
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
