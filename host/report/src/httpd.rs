//! The small read-only HTTP endpoints (cluster health, Prometheus): bind,
//! then answer each GET from a function of the path.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What an endpoint answers: content type and body, or `None` for 404.
pub type Answer = Option<(&'static str, Vec<u8>)>;

/// Binds `addr` (an error names `what`, the setting it came from) and
/// serves until the returned task is aborted.
pub async fn serve(
    what: &str,
    addr: SocketAddr,
    answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{what} {addr}: cannot listen: {e}"))?;
    let answer = Arc::new(answer);
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let reply = respond(answer(req.uri().path()));
                        async move { Ok::<_, std::convert::Infallible>(reply) }
                    },
                );
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }))
}

fn respond(answer: Answer) -> Response<Full<Bytes>> {
    match answer {
        Some((content_type, body)) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            r
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}
