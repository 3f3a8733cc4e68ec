//! `DISCOVERY_MODE=dns`: the peers are what a DNS name answers, the way a
//! Kubernetes headless Service or Consul's DNS interface publishes the
//! members of a set. SRV records give each peer's host and port; a name
//! with only A/AAAA records gives addresses, and every peer listens on the
//! same port (`CLUSTER_DNS_PORT`, else this node's own).

use crate::settings::Dns;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use std::sync::Mutex;

pub struct DnsPeers {
    resolver: TokioResolver,
    name: String,
    port: u16,
    /// The last lookup error, so a lasting one is logged once.
    last_error: Mutex<String>,
}

impl DnsPeers {
    /// `own_port`: the port A/AAAA answers are taken to listen on unless
    /// `CLUSTER_DNS_PORT` says otherwise.
    pub fn new(dns: &Dns, own_port: u16) -> anyhow::Result<DnsPeers> {
        let mut builder = match dns.server {
            Some(server) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => Resolver::builder_tokio().map_err(|e| {
                anyhow::anyhow!(
                    "DISCOVERY_MODE=dns: cannot read the system's DNS configuration ({e}); set CLUSTER_DNS_SERVER=host:port"
                )
            })?,
        };
        // Membership changes must be seen at once, whatever TTL the
        // records carry.
        builder.options_mut().cache_size = 0;
        let resolver = builder
            .build()
            .map_err(|e| anyhow::anyhow!("DISCOVERY_MODE=dns: {e}"))?;
        Ok(DnsPeers {
            resolver,
            name: fqdn(&dns.name),
            port: dns.port.unwrap_or(own_port),
            last_error: Mutex::new(String::new()),
        })
    }

    /// This node and every peer the name answers, sorted.
    pub async fn peers(&self, me: &str) -> Vec<String> {
        let found = match self.lookup().await {
            Ok(found) => {
                self.note(String::new());
                found
            }
            Err(e) => {
                self.note(format!("finding peers through DNS `{}`: {e:#}", self.name));
                Vec::new()
            }
        };
        let mut peers = found;
        peers.push(me.to_owned());
        peers.sort();
        peers.dedup();
        peers
    }

    fn note(&self, msg: String) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if !msg.is_empty() && *last != msg {
            tracing::warn!("{msg}");
        }
        *last = msg;
    }

    /// SRV records first; a name without them is looked up as A/AAAA.
    async fn lookup(&self) -> anyhow::Result<Vec<String>> {
        let srv: Vec<(String, u16)> = match self.resolver.srv_lookup(self.name.as_str()).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some((s.target.to_string(), s.port)),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if srv.is_empty() {
            return self.addresses(&self.name, self.port).await;
        }
        let mut out = Vec::new();
        for (target, port) in srv {
            out.extend(self.addresses(&target, port).await?);
        }
        Ok(out)
    }

    async fn addresses(&self, name: &str, port: u16) -> anyhow::Result<Vec<String>> {
        let ips = self.resolver.lookup_ip(name).await?;
        Ok(ips
            .iter()
            .map(|ip| std::net::SocketAddr::new(ip, port).to_string())
            .collect())
    }
}

/// Looked up as written: no search domains appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}
