//! The node as a Consul service: registered through the local agent with
//! a tag that follows its Raft state and an HTTP check on its health
//! endpoint, and the passing instances of the service as its peers.

use super::Client;
use serde::Deserialize;
use serde_json::json;

/// What a node registers.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Unique per node: `<name>-<node id>`.
    pub id: String,
    pub node_id: String,
    /// The Raft/gRPC address peers reach this node at.
    pub host: String,
    pub port: u16,
    /// `http://host:port/health/cluster`, checked by the agent.
    pub health_url: String,
}

impl Client {
    /// Registers (or re-registers, replacing the tags) the service.
    pub async fn register(&self, s: &Service, tag: &str) -> anyhow::Result<()> {
        let body = json!({
            "ID": s.id,
            "Name": s.name,
            "Tags": [tag],
            "Address": s.host,
            "Port": s.port,
            "Meta": { "node_id": s.node_id },
            "Check": {
                "HTTP": s.health_url,
                "Interval": "5s",
                "Timeout": "2s",
                // Start passing: the endpoint answers from the start, and
                // peers should not wait 5 s to see a fresh node.
                "Status": "passing",
                "DeregisterCriticalServiceAfter": "1m",
            },
        });
        let what = format!("registering service `{}`", s.id);
        let r = self
            .call(
                hyper::Method::PUT,
                "/v1/agent/service/register",
                Some(serde_json::to_vec(&body)?),
                &what,
            )
            .await?;
        r.ok_or_error(self, &what)
    }

    pub async fn deregister(&self, id: &str) -> anyhow::Result<()> {
        let what = format!("deregistering service `{id}`");
        let r = self
            .call(
                hyper::Method::PUT,
                &format!("/v1/agent/service/deregister/{id}"),
                None,
                &what,
            )
            .await?;
        r.ok_or_error(self, &what)
    }

    /// The Raft addresses (`host:port`) of the service's passing instances.
    pub async fn passing(&self, service: &str) -> anyhow::Result<Vec<String>> {
        let what = format!("listing service `{service}`");
        let r = self
            .call(
                hyper::Method::GET,
                &format!("/v1/health/service/{service}?passing=true"),
                None,
                &what,
            )
            .await?;
        if r.status != 200 {
            return Err(r.error(self, &what));
        }
        let entries: Vec<HealthEntry> = serde_json::from_slice(&r.body)?;
        let mut addrs: Vec<String> = entries
            .into_iter()
            .map(|e| format!("{}:{}", e.service.address, e.service.port))
            .collect();
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }
}

#[derive(Deserialize)]
struct HealthEntry {
    #[serde(rename = "Service")]
    service: HealthService,
}

#[derive(Deserialize)]
struct HealthService {
    #[serde(rename = "Address")]
    address: String,
    #[serde(rename = "Port")]
    port: u16,
}
