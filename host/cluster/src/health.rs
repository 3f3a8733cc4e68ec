//! `GET /health/cluster` (the JSON SPEC.md fixes, for Consul checks and
//! anyone) and `GET /cluster/state` (more detail, for the cluster's
//! operators: it needs the token when the cluster has credentials).

use crate::node::NodeCtx;
use loadtest_report::httpd::Reply;
use loadtest_wire::auth::CheckToken;
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
    let check = CheckToken::new(ctx.settings.token.as_deref());
    let open = ctx.settings.token.is_none() && ctx.settings.tls.is_none();
    loadtest_report::httpd::serve("CLUSTER_HEALTH_ADDR", addr, move |asked| {
        let auth = asked.auth;
        let body = match asked.path {
            "/health/cluster" => serde_json::to_vec(&ctx.health()),
            "/cluster/state" if open || (ctx.settings.token.is_some() && check.accepts(auth)) => {
                serde_json::to_vec(&ctx.detail())
            }
            "/cluster/state" => return Reply::Unauthorized(DETAIL_NEEDS),
            // Like Prometheus's own exporters, open to scrapers.
            "/metrics" => return crate::publish::scrape(&ctx),
            _ => return Reply::NotFound,
        };
        Reply::Found("application/json", body.unwrap_or_default())
    })
    .await
}

/// Membership, addresses and replicated keys are for the cluster's
/// operators: the health port is plain HTTP, so a certificate cannot be
/// shown there, and a TLS-only cluster serves the detail through
/// `loadtest status --json` instead.
const DETAIL_NEEDS: &str = "/cluster/state needs `Authorization: Bearer <CLUSTER_TOKEN>`; \
     on a cluster with mutual TLS and no token, use `loadtest status --json` with an operator certificate";
