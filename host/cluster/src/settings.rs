//! A node's settings, from the environment variables SPEC.md fixes. Every
//! problem is reported with the variable's name and what a good value
//! looks like.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone)]
pub struct Settings {
    pub node_id: String,
    pub bind: SocketAddr,
    pub health: SocketAddr,
    /// Every node's Raft/gRPC address, this one's included (static
    /// discovery; empty with Consul discovery).
    pub peers: Vec<String>,
    pub discovery: Discovery,
    /// This node's address as the others reach it, when it cannot be
    /// found by asking the peers (`CLUSTER_ADVERTISE_ADDR`).
    pub advertise: Option<String>,
    pub data_dir: PathBuf,
    pub token: Option<String>,
    /// Mutual TLS on every cluster RPC (`CLUSTER_TLS_CERT`, `_KEY`, `_CA`).
    pub tls: Option<TlsFiles>,
    /// `CLUSTER_INSECURE=true`: a lab may bind beyond loopback with no
    /// authentication at all.
    pub insecure: bool,
    /// The largest blob (plugin, data file) a node accepts.
    pub max_blob_bytes: u64,
    /// How many voters at most; further nodes are learners.
    pub max_voters: usize,
    pub election_timeout: Duration,
    /// Log entries between snapshots; older entries are then purged.
    pub snapshot_every: u64,
    /// How long a follower has to acknowledge a run's config (per attempt).
    pub config_timeout: Duration,
    /// How far ahead of the acknowledgements the common start is set.
    pub start_delay: Duration,
    /// Silence after which a node running load counts as lost.
    pub node_lost_after: Duration,
    /// Whether a lost node's share is handed to the remaining nodes.
    pub redistribute: bool,
    /// Where the leader reads a config to run by itself, if anywhere.
    pub config_source: Option<ConfigSource>,
}

/// Where a node's (or an operator's) certificate, key and the cluster CA
/// are, and the name every node's certificate is issued for.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// The DNS name peers check a node's certificate for
    /// (`CLUSTER_TLS_SERVER_NAME`); it also marks a certificate as a
    /// node's rather than an operator's.
    pub server_name: String,
}

/// The name `loadtest cluster certs` issues node certificates for.
pub const NODE_NAME: &str = "loadtest-node";

impl TlsFiles {
    /// All three of `CLUSTER_TLS_CERT`, `CLUSTER_TLS_KEY` and
    /// `CLUSTER_TLS_CA`, or none.
    pub fn from_vars(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<TlsFiles>> {
        let names = ["CLUSTER_TLS_CERT", "CLUSTER_TLS_KEY", "CLUSTER_TLS_CA"];
        let got: Vec<Option<String>> = names.iter().map(|n| var(vars, n)).collect();
        if got.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(&got)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "mutual TLS needs CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA together; {} is not set \
             (`loadtest cluster certs --out DIR --nodes ...` makes all three)",
            missing.join(" and ")
        );
        let path = |i: usize| PathBuf::from(got[i].clone().unwrap_or_default());
        Ok(Some(TlsFiles {
            cert: path(0),
            key: path(1),
            ca: path(2),
            server_name: var(vars, "CLUSTER_TLS_SERVER_NAME").unwrap_or_else(|| NODE_NAME.into()),
        }))
    }

    pub fn from_env() -> anyhow::Result<Option<TlsFiles>> {
        Self::from_vars(&|k| std::env::var(k).ok())
    }
}

/// Everything but the token, which is never printed.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("node_id", &self.node_id)
            .field("bind", &self.bind)
            .field("health", &self.health)
            .field("peers", &self.peers)
            .field("discovery", &self.discovery)
            .field("advertise", &self.advertise)
            .field("data_dir", &self.data_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// `CLUSTER_NODES` lists everyone.
    Static,
    /// Peers are the passing instances of a Consul service; the cluster
    /// forms once `expect` of them are seen.
    Consul {
        addr: String,
        service: String,
        expect: usize,
    },
    /// Peers are the fresh heartbeat objects under a bucket prefix; the
    /// node that creates the bootstrap object first forms the cluster.
    Bucket(Bucket),
    /// Peers are what a DNS name answers (SRV, else A/AAAA); the lowest
    /// address forms the cluster once `expect` answer, as with Consul.
    Dns(Dns),
}

/// `DISCOVERY_MODE=dns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    /// `CLUSTER_DNS_NAME`: a headless Service's name, or Consul's
    /// `<service>.service.consul`.
    pub name: String,
    /// `CLUSTER_DNS_SERVER`: the server to ask; else the system's.
    pub server: Option<SocketAddr>,
    /// `CLUSTER_DNS_PORT`: the peers' port when the name has no SRV
    /// records; else this node's own.
    pub port: Option<u16>,
    pub expect: usize,
}

/// `DISCOVERY_MODE=gcs`: heartbeats at `gs://<bucket>/<prefix>/nodes/<node-id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub bucket: String,
    pub prefix: String,
    /// How often each node rewrites its heartbeat.
    pub every: Duration,
    /// A heartbeat older than this is stale: not a peer, and purged.
    pub ttl: Duration,
    pub expect: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    ConsulKv {
        addr: String,
        key: String,
    },
    /// Read every `poll` for a new generation (`GCS_POLL_SECS`).
    Gcs {
        bucket: String,
        object: String,
        poll: Duration,
    },
}

impl ConfigSource {
    /// What runs from this source are marked with (`consul-kv:<key>`,
    /// `gcs:<bucket>/<object>`), and where it is, for messages.
    pub fn names(&self) -> (String, String) {
        match self {
            ConfigSource::ConsulKv { key, .. } => {
                (format!("consul-kv:{key}"), format!("Consul KV `{key}`"))
            }
            ConfigSource::Gcs { bucket, object, .. } => (
                format!("gcs:{bucket}/{object}"),
                format!("gs://{bucket}/{object}"),
            ),
        }
    }
}

fn bucket_discovery(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Discovery> {
    let bucket = var(vars, "GCS_DISCOVERY_BUCKET")
        .or_else(|| var(vars, "GCS_CONFIG_BUCKET"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "DISCOVERY_MODE=gcs needs a bucket for the heartbeats: set GCS_DISCOVERY_BUCKET (or GCS_CONFIG_BUCKET)"
            )
        })?;
    let every = number(vars, "GCS_HEARTBEAT_SECS", 5, 1, "seconds")?;
    let ttl = number(
        vars,
        "GCS_HEARTBEAT_TTL_SECS",
        every * 3,
        every + 1,
        "seconds",
    )?;
    Ok(Discovery::Bucket(Bucket {
        bucket,
        prefix: var(vars, "GCS_DISCOVERY_PREFIX")
            .unwrap_or_else(|| "loadtest-cluster".into())
            .trim_matches('/')
            .to_owned(),
        every: Duration::from_secs(every),
        ttl: Duration::from_secs(ttl),
        expect: number(vars, "CLUSTER_BOOTSTRAP_EXPECT", 3, 1, "nodes")? as usize,
    }))
}

fn gcs_source(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<ConfigSource> {
    let need = |name: &str, example: &str| {
        var(vars, name).ok_or_else(|| {
            anyhow::anyhow!("CLUSTER_CONFIG_SOURCE=gcs needs {name} (like {name}={example})")
        })
    };
    let bucket = need("GCS_CONFIG_BUCKET", "my-load-tests")?;
    let object = need("GCS_CONFIG_OBJECT", "checkout/test.yaml")?;
    anyhow::ensure!(
        !bucket.starts_with("gs://") && !bucket.contains('/'),
        "GCS_CONFIG_BUCKET=`{bucket}` must be a bare bucket name, like my-load-tests (the object goes in GCS_CONFIG_OBJECT)"
    );
    let poll = Duration::from_secs(number(vars, "GCS_POLL_SECS", 5, 1, "seconds")?);
    Ok(ConfigSource::Gcs {
        bucket,
        object,
        poll,
    })
}

fn dns_discovery(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Discovery> {
    let name = var(vars, "CLUSTER_DNS_NAME").ok_or_else(|| {
        anyhow::anyhow!(
            "DISCOVERY_MODE=dns needs the name to look up: set CLUSTER_DNS_NAME (like loadtest.default.svc.cluster.local, or loadtest.service.consul)"
        )
    })?;
    let server = var(vars, "CLUSTER_DNS_SERVER")
        .map(|v| {
            v.parse::<SocketAddr>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "CLUSTER_DNS_SERVER=`{v}` is not an address; write it like 10.0.0.2 or 127.0.0.1:8600"
                    )
                })
        })
        .transpose()?;
    let port = var(vars, "CLUSTER_DNS_PORT")
        .map(|v| {
            v.parse::<u16>().map_err(|_| {
                anyhow::anyhow!("CLUSTER_DNS_PORT=`{v}` must be a port number like 7000")
            })
        })
        .transpose()?;
    Ok(Discovery::Dns(Dns {
        name,
        server,
        port,
        expect: number(vars, "CLUSTER_BOOTSTRAP_EXPECT", 3, 1, "nodes")? as usize,
    }))
}

fn consul_discovery(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Discovery> {
    let explicit = var(vars, "CONSUL_ADDR").or_else(|| var(vars, "CONSUL_HTTP_ADDR"));
    Ok(Discovery::Consul {
        addr: loadtest_backends::consul::address(explicit.as_deref()),
        service: var(vars, "CONSUL_SERVICE_NAME").unwrap_or_else(|| "loadtest-cluster".into()),
        expect: number(vars, "CLUSTER_BOOTSTRAP_EXPECT", 3, 1, "nodes")? as usize,
    })
}

fn config_source(vars: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<ConfigSource>> {
    match var(vars, "CLUSTER_CONFIG_SOURCE").as_deref() {
        None | Some("none") => Ok(None),
        Some("consul-kv") => {
            let explicit = var(vars, "CONSUL_ADDR").or_else(|| var(vars, "CONSUL_HTTP_ADDR"));
            Ok(Some(ConfigSource::ConsulKv {
                addr: loadtest_backends::consul::address(explicit.as_deref()),
                key: var(vars, "CONSUL_CONFIG_KEY").unwrap_or_else(|| "loadtest/config".into()),
            }))
        }
        Some("gcs") => Ok(Some(gcs_source(vars)?)),
        Some(other) => anyhow::bail!(
            "CLUSTER_CONFIG_SOURCE=`{other}` is not a config source; use consul-kv or gcs (or leave it unset and use loadtest submit)"
        ),
    }
}

fn number(
    vars: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    min: u64,
    unit: &str,
) -> anyhow::Result<u64> {
    match var(vars, name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| *n >= min).ok_or_else(|| {
            anyhow::anyhow!("{name}=`{v}` must be a whole number of {unit}, at least {min}")
        }),
    }
}

fn flag(vars: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> anyhow::Result<bool> {
    match var(vars, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => anyhow::bail!("{name}=`{v}` must be true or false"),
    }
}

fn var(vars: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    vars(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn addr(
    vars: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> anyhow::Result<SocketAddr> {
    let v = var(vars, name).unwrap_or_else(|| default.to_owned());
    v.parse().map_err(|_| {
        anyhow::anyhow!("{name}=`{v}` is not an address; write it like 127.0.0.1:7000")
    })
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let bind = addr(&vars, "CLUSTER_BIND_ADDR", "0.0.0.0:7000")?;
        let health = addr(&vars, "CLUSTER_HEALTH_ADDR", "0.0.0.0:8080")?;
        let mode = var(&vars, "DISCOVERY_MODE").unwrap_or_else(|| "static".into());
        let (discovery, peers) = match mode.as_str() {
            "static" => (
                Discovery::Static,
                parse_peers(var(&vars, "CLUSTER_NODES").as_deref())?,
            ),
            "consul" => (consul_discovery(&vars)?, Vec::new()),
            "gcs" | "bucket" => (bucket_discovery(&vars)?, Vec::new()),
            "dns" => (dns_discovery(&vars)?, Vec::new()),
            _ => anyhow::bail!(
                "DISCOVERY_MODE=`{mode}` is not a discovery mode; use static (with CLUSTER_NODES), consul, dns or gcs"
            ),
        };
        let advertise = var(&vars, "CLUSTER_ADVERTISE_ADDR");
        if discovery != Discovery::Static && advertise.is_none() && bind.ip().is_unspecified() {
            anyhow::bail!(
                "DISCOVERY_MODE={mode} needs this node's reachable address: set CLUSTER_ADVERTISE_ADDR (like 10.0.0.5:7000) or bind CLUSTER_BIND_ADDR to a specific address"
            );
        }
        let node_id = var(&vars, "CLUSTER_NODE_ID").unwrap_or_else(|| default_node_id(&vars));
        let data_dir = var(&vars, "CLUSTER_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("loadtest-data").join(&node_id));
        let max_voters = match var(&vars, "CLUSTER_MAX_VOTERS") {
            None => 5,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 && n % 2 == 1 => n,
                _ => anyhow::bail!("CLUSTER_MAX_VOTERS=`{v}` must be an odd number like 3 or 5"),
            },
        };
        let election_ms = match var(&vars, "CLUSTER_ELECTION_TIMEOUT_MS") {
            None => 300,
            Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 100).ok_or_else(|| {
                anyhow::anyhow!("CLUSTER_ELECTION_TIMEOUT_MS=`{v}` must be a whole number of milliseconds, at least 100")
            })?,
        };
        let snapshot_every = match var(&vars, "CLUSTER_SNAPSHOT_LOGS") {
            None => 1000,
            Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 2).ok_or_else(|| {
                anyhow::anyhow!(
                    "CLUSTER_SNAPSHOT_LOGS=`{v}` must be a whole number of log entries, at least 2"
                )
            })?,
        };
        let config_timeout = number(&vars, "CLUSTER_CONFIG_TIMEOUT_SECS", 30, 1, "seconds")?;
        let start_delay = number(&vars, "CLUSTER_START_DELAY_MS", 2000, 100, "milliseconds")?;
        let node_lost = number(&vars, "CLUSTER_NODE_LOST_SECS", 10, 2, "seconds")?;
        let config_source = config_source(&vars)?;
        let token = var(&vars, "CLUSTER_TOKEN");
        let tls = TlsFiles::from_vars(&vars)?;
        let insecure = flag(&vars, "CLUSTER_INSECURE", false)?;
        if token.is_none() && tls.is_none() && !insecure && !bind.ip().is_loopback() {
            anyhow::bail!(
                "CLUSTER_BIND_ADDR={bind} is reachable from other machines, and this node has no authentication: \
                 anyone who reaches the port could aim load anywhere. Set CLUSTER_TOKEN (the same secret on every node \
                 and for the operator), or mutual TLS with CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA \
                 (`loadtest cluster certs` makes them); bind to 127.0.0.1 for a one-machine cluster; or, in a lab \
                 network nobody else reaches, set CLUSTER_INSECURE=true"
            );
        }
        let max_blob_mb = number(&vars, "CLUSTER_MAX_BLOB_MB", 256, 1, "MiB")?;
        Ok(Settings {
            token,
            tls,
            insecure,
            max_blob_bytes: max_blob_mb << 20,
            config_timeout: Duration::from_secs(config_timeout),
            start_delay: Duration::from_millis(start_delay),
            node_lost_after: Duration::from_secs(node_lost),
            redistribute: flag(&vars, "CLUSTER_REDISTRIBUTE", true)?,
            config_source,
            snapshot_every,
            node_id,
            bind,
            health,
            peers,
            advertise,
            discovery,
            data_dir,
            max_voters,
            election_timeout: Duration::from_millis(election_ms),
        })
    }
}

/// `CLUSTER_NODES=host1:7000,host2:7000`: non-empty, each entry a
/// host:port, no duplicates.
fn parse_peers(raw: Option<&str>) -> anyhow::Result<Vec<String>> {
    let raw = raw.ok_or_else(|| {
        anyhow::anyhow!("CLUSTER_NODES is not set; list every node's Raft address, e.g. CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000")
    })?;
    let mut peers = Vec::new();
    for entry in raw.split(',').map(str::trim) {
        if entry.is_empty() {
            anyhow::bail!(
                "CLUSTER_NODES=`{raw}` has an empty entry; separate addresses with single commas"
            );
        }
        let (host, port) = entry.rsplit_once(':').ok_or_else(|| {
            anyhow::anyhow!("CLUSTER_NODES entry `{entry}` has no port; write it like {entry}:7000")
        })?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            anyhow::bail!("CLUSTER_NODES entry `{entry}` is not host:port");
        }
        if peers.iter().any(|p| p == entry) {
            anyhow::bail!("CLUSTER_NODES lists `{entry}` twice");
        }
        peers.push(entry.to_owned());
    }
    Ok(peers)
}

/// Hostname plus region tag: stable across restarts of the same machine.
fn default_node_id(vars: &impl Fn(&str) -> Option<String>) -> String {
    let host = var(vars, "HOSTNAME")
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let region = var(vars, "CLUSTER_REGION").unwrap_or_else(|| "local".into());
    format!("{host}-{region}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = settings(&[
            ("CLUSTER_NODES", "a:7000,b:7000,c:7000"),
            ("HOSTNAME", "h1"),
            ("CLUSTER_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(s.bind.to_string(), "0.0.0.0:7000");
        assert_eq!(s.health.to_string(), "0.0.0.0:8080");
        assert_eq!(s.node_id, "h1-local");
        assert_eq!(s.peers.len(), 3);
        assert_eq!(s.max_voters, 5);
    }

    #[test]
    fn bad_peer_lists_say_what_is_wrong() {
        let err = |v: &str| settings(&[("CLUSTER_NODES", v)]).unwrap_err().to_string();
        assert!(err("").contains("not set"));
        assert!(err("a:7000,,b:7000").contains("empty entry"));
        assert!(err("a:7000,b").contains("no port"));
        assert!(err("a:7000,a:7000").contains("twice"));
        assert!(err("a:http").contains("not host:port"));
        assert!(
            settings(&[])
                .unwrap_err()
                .to_string()
                .contains("CLUSTER_NODES is not set")
        );
    }

    #[test]
    fn a_node_reachable_from_other_machines_needs_authentication() {
        let open = [("CLUSTER_NODES", "a:7000")];
        let e = settings(&open).unwrap_err().to_string();
        assert!(
            e.contains("CLUSTER_TOKEN") && e.contains("CLUSTER_INSECURE=true"),
            "{e}"
        );
        assert!(settings(&[open[0], ("CLUSTER_BIND_ADDR", "127.0.0.1:7000")]).is_ok());
        assert!(settings(&[open[0], ("CLUSTER_INSECURE", "true")]).is_ok());
        let e = settings(&[
            open[0],
            ("CLUSTER_TLS_CERT", "n.pem"),
            ("CLUSTER_TLS_CA", "ca.pem"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("CLUSTER_TLS_KEY is not set"), "{e}");
        let s = settings(&[
            open[0],
            ("CLUSTER_TLS_CERT", "n.pem"),
            ("CLUSTER_TLS_KEY", "n.key"),
            ("CLUSTER_TLS_CA", "ca.pem"),
        ])
        .unwrap();
        assert_eq!(s.tls.unwrap().server_name, NODE_NAME);
    }

    #[test]
    fn bad_addresses_name_the_variable() {
        let e = settings(&[
            ("CLUSTER_NODES", "a:1"),
            ("CLUSTER_BIND_ADDR", "everywhere"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("CLUSTER_BIND_ADDR=`everywhere`"));
    }

    #[test]
    fn gcs_settings_name_what_is_missing() {
        let base = [("CLUSTER_NODES", "a:1"), ("CLUSTER_CONFIG_SOURCE", "gcs")];
        let e = settings(&base).unwrap_err().to_string();
        assert!(e.contains("GCS_CONFIG_BUCKET"), "{e}");
        let e = settings(&[base[0], base[1], ("GCS_CONFIG_BUCKET", "gs://b/x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GCS_CONFIG_OBJECT"), "{e}");
        let s = settings(&[
            base[0],
            base[1],
            ("GCS_CONFIG_BUCKET", "b"),
            ("GCS_CONFIG_OBJECT", "t.yaml"),
            ("CLUSTER_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(
            s.config_source,
            Some(ConfigSource::Gcs {
                bucket: "b".into(),
                object: "t.yaml".into(),
                poll: Duration::from_secs(5),
            })
        );
        let d = settings(&[
            ("DISCOVERY_MODE", "gcs"),
            ("CLUSTER_BIND_ADDR", "127.0.0.1:7000"),
            ("GCS_DISCOVERY_BUCKET", "b"),
            ("GCS_HEARTBEAT_SECS", "2"),
        ])
        .unwrap()
        .discovery;
        let Discovery::Bucket(b) = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            (b.prefix.as_str(), b.ttl.as_secs()),
            ("loadtest-cluster", 6)
        );
    }
}
