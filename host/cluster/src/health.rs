//! `GET /health/cluster` (the JSON SPEC.md fixes, for Consul checks and
//! operators) and `GET /cluster/state` (more detail, for tests and status).

use crate::node::NodeCtx;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

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
    loadtest_report::httpd::serve("CLUSTER_HEALTH_ADDR", addr, move |path| {
        let body = match path {
            "/health/cluster" => serde_json::to_vec(&ctx.health()),
            "/cluster/state" => serde_json::to_vec(&ctx.detail()),
            _ => return None,
        };
        Some(("application/json", body.unwrap_or_default()))
    })
    .await
}
