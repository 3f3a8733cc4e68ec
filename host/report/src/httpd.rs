//! The small read-only HTTP endpoints (cluster health, Prometheus): bind,
//! then answer each GET from a function of the path and the request's
//! `Authorization` header.
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

/// What an endpoint answers.
pub enum Reply {
    /// Content type and body.
    Found(&'static str, Vec<u8>),
    /// The path needs credentials the request lacks; the text says which.
    Unauthorized(&'static str),
    NotFound,
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
    answer: impl Fn(&str, Option<&str>) -> Reply + Send + Sync + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{what} {addr}: cannot listen: {e}"))?;
    let answer = Arc::new(answer);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let auth = req
                            .headers()
                            .get(hyper::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        let reply = respond(answer(req.uri().path(), auth));
                        async move { Ok::<_, std::convert::Infallible>(reply) }
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
    }))
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match reply {
        Reply::Found(content_type, body) => (StatusCode::OK, content_type, Bytes::from(body)),
        Reply::Unauthorized(why) => (
            StatusCode::UNAUTHORIZED,
            "text/plain",
            Bytes::from(format!("{why}\n")),
        ),
        Reply::NotFound => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
