//! With `DISCOVERY_MODE=consul`: the node registers itself as a service
//! of the local Consul agent, keeps its tag equal to its Raft state
//! (`forming`, `follower`, `leader`), re-registers if the agent forgot it
//! (an agent restarted in dev mode does), and deregisters on shutdown.
//! Its peers are the passing instances of the service.

use crate::node::NodeCtx;
use crate::settings::{Discovery, Settings};
use loadtest_backends::consul::Client;
use loadtest_backends::consul::agent::Service;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the registration is renewed even when nothing changed.
const RENEW: Duration = Duration::from_secs(10);

pub struct Registry {
    pub client: Client,
    pub service: Service,
    /// The last error listing peers, so each is logged once.
    last_error: std::sync::Mutex<String>,
}

impl Registry {
    pub fn new(settings: &Settings, me: &str) -> anyhow::Result<Option<Registry>> {
        let Discovery::Consul { addr, service, .. } = &settings.discovery else {
            return Ok(None);
        };
        let (host, port) = me
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("`{me}` is not host:port"))?;
        let health_host = if settings.health.ip().is_unspecified() {
            host.clone()
        } else {
            settings.health.ip().to_string()
        };
        Ok(Some(Registry {
            client: Client::new(addr),
            service: Service {
                name: service.clone(),
                id: format!("{service}-{}", settings.node_id),
                node_id: settings.node_id.clone(),
                host,
                port,
                health_url: format!(
                    "http://{health_host}:{}/health/cluster",
                    settings.health.port()
                ),
            },
            last_error: std::sync::Mutex::new(String::new()),
        }))
    }

    /// This node and the passing instances of the service, sorted.
    pub async fn peers(&self, me: &str) -> Vec<String> {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut peers = match self.client.passing(&self.service.name).await {
            Ok(p) => {
                last.clear();
                p
            }
            Err(e) => {
                let msg = format!("finding peers: {e:#}");
                if msg != last {
                    tracing::warn!("{msg}");
                }
                last = msg;
                Vec::new()
            }
        };
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = last;
        peers.push(me.to_owned());
        peers.sort();
        peers.dedup();
        peers
    }
}

/// Keeps the registration's tag equal to the node's state.
pub async fn keep_registered(ctx: Arc<NodeCtx>) {
    let Some(reg) = ctx.registry() else { return };
    let mut last: Option<(&'static str, Instant)> = None;
    let mut last_error = String::new();
    // One receiver for the whole loop: a new one made from `Raft` each
    // turn has not seen the latest metrics, so waiting on it returned at
    // once and this loop never slept. The server metrics change only with
    // the role, the leader or the membership, which is what the tag says.
    let mut changes = None;
    loop {
        if changes.is_none() {
            changes = ctx.raft().map(|r| r.server_metrics());
        }
        if let Some(rx) = changes.as_mut() {
            rx.borrow_and_update();
        }
        let tag = ctx.health().state;
        let due = last.is_none_or(|(t, at)| t != tag || at.elapsed() >= RENEW);
        if due {
            match reg.client.register(&reg.service, tag).await {
                Ok(()) => {
                    if last.is_none_or(|(t, _)| t != tag) {
                        tracing::info!("Consul: registered `{}` with tag {tag}", reg.service.id);
                    }
                    last = Some((tag, Instant::now()));
                    last_error.clear();
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    if msg != last_error {
                        tracing::warn!("{msg}; retrying");
                    }
                    last_error = msg;
                }
            }
        }
        let wait = async {
            match changes.as_mut() {
                Some(rx) => {
                    let _ = rx.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Removes the registration (graceful shutdown), bounded in time.
pub async fn deregister(ctx: &NodeCtx) {
    let Some(reg) = ctx.registry() else { return };
    let call = reg.client.deregister(&reg.service.id);
    match tokio::time::timeout(Duration::from_secs(3), call).await {
        Ok(Ok(())) => tracing::info!("Consul: deregistered `{}`", reg.service.id),
        Ok(Err(e)) => tracing::warn!("{e:#}"),
        Err(_) => tracing::warn!("Consul did not answer the deregistration within 3s"),
    }
}
