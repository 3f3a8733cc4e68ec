//! `GET /health/cluster` (the JSON SPEC.md fixes, for Consul checks and
//! operators) and `GET /cluster/state` (more detail, for tests and status).

use super::node::NodeCtx;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, Serialize, PartialEq)]
pub struct Health {
    pub state: &'static str,
    pub node_id: String,
    pub leader_id: Option<String>,
    pub term: u64,
    pub peers: usize,
    pub cluster_ready: bool,
}

pub async fn serve(
    addr: SocketAddr,
    ctx: Arc<NodeCtx>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("CLUSTER_HEALTH_ADDR={addr}: cannot listen: {e}"))?;
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, std::convert::Infallible>(respond(req.uri().path(), &ctx)) }
                    },
                );
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }))
}

fn respond(path: &str, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let body = match path {
        "/health/cluster" => serde_json::to_vec(&ctx.health()),
        "/cluster/state" => serde_json::to_vec(&ctx.detail()),
        _ => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"try /health/cluster\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
