//! The small HTTP endpoints (cluster health, Prometheus, the dashboard):
//! bind, then answer each request from a function of what it asked
//! ([`Asked`]). Requests carry no body: what a control call needs fits in
//! its query.
//!
//! These ports face whatever network the node is on, so a client cannot
//! hold them: headers must arrive within a few seconds, a connection
//! lives at most half a minute, and past a cap new connections are
//! closed at once rather than queued.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What a request asked, as far as these endpoints care.
pub struct Asked<'a> {
    pub method: &'a hyper::Method,
    pub path: &'a str,
    pub query: &'a str,
    /// The `Authorization` header, if any.
    pub auth: Option<&'a str>,
    /// Whether the request carries [`CONTROL_HEADER`]: a browser sends a
    /// custom header across origins only after a preflight these
    /// endpoints never grant, so another site's page cannot steer a run.
    pub control: bool,
}

/// The header a request that changes something must carry.
pub const CONTROL_HEADER: &str = "x-loadtest-control";

/// What an endpoint answers.
pub enum Reply {
    /// Content type and body.
    Found(&'static str, Vec<u8>),
    /// The path needs credentials the request lacks; the text says which.
    Unauthorized(&'static str),
    /// The request cannot be carried out; the text says why.
    Refused(String),
    NotFound,
    /// The answer once this is done (a live change sent to a cluster).
    Later(std::pin::Pin<Box<dyn Future<Output = Reply> + Send>>),
}

/// How long a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, idle or not.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Connections served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 128;

/// Binds `addr` (an error names `what`, the setting it came from) and
/// serves until the returned task is aborted.
pub async fn serve(
    what: &str,
    addr: SocketAddr,
    answer: impl Fn(&Asked) -> Reply + Send + Sync + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{what} {addr}: cannot listen: {e}"))?;
    Ok(serve_on(listener, answer))
}

/// Serves on a bound listener until the returned task is aborted.
pub fn serve_on(
    listener: TcpListener,
    answer: impl Fn(&Asked) -> Reply + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let answer = Arc::new(answer);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let headers = req.headers();
                        let asked = Asked {
                            method: req.method(),
                            path: req.uri().path(),
                            query: req.uri().query().unwrap_or(""),
                            auth: headers
                                .get(hyper::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok()),
                            control: headers.contains_key(CONTROL_HEADER),
                        };
                        let reply = answer(&asked);
                        async move {
                            let reply = match reply {
                                Reply::Later(later) => later.await,
                                now => now,
                            };
                            Ok::<_, std::convert::Infallible>(respond(reply))
                        }
                    },
                );
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
                drop(slot);
            });
        }
    })
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match reply {
        Reply::Found(content_type, body) => (StatusCode::OK, content_type, Bytes::from(body)),
        Reply::Unauthorized(why) => (
            StatusCode::UNAUTHORIZED,
            "text/plain",
            Bytes::from(format!("{why}\n")),
        ),
        Reply::Refused(why) => (
            StatusCode::CONFLICT,
            "text/plain",
            Bytes::from(format!("{why}\n")),
        ),
        Reply::NotFound | Reply::Later(_) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    // Live views: a cached answer is a wrong one.
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}
