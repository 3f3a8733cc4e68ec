//! How a node or an operator reaches a node: gRPC channels, with mutual
//! TLS when certificates are configured, and the token sent only to
//! peers that proved they hold it.
//!
//! Without TLS the token travels in the clear, so the one thing that
//! keeps it from a stranger is not sending it to one: every call that
//! carries the token first makes sure the peer answered a hello
//! challenge with a proof only a token holder can make (loadtest-wire's
//! `auth`). Under mutual TLS the handshake proves the peer instead: its
//! certificate is signed by the cluster CA and issued for the node name.

use crate::settings::TlsFiles;
use loadtest_wire::auth::{self, AddToken};
use loadtest_wire::rpc::pb;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub type CoordinatorClient =
    pb::coordinator_client::CoordinatorClient<InterceptedService<Channel, AddToken>>;
pub type RaftClient = pb::raft_client::RaftClient<InterceptedService<Channel, AddToken>>;

/// How long a peer's proof is trusted before it is asked again.
const PROVEN_FOR: Duration = Duration::from_secs(300);

/// Loaded and checked TLS material.
#[derive(Clone)]
pub struct Tls {
    identity: Identity,
    ca: Certificate,
    pub server_name: String,
}

impl Tls {
    /// Reads the files and checks they hold what they should, so a wrong
    /// path or a swapped file is reported now by the variable's name
    /// rather than as a handshake failure later.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Tls> {
        let cert = read("CLUSTER_TLS_CERT", &files.cert)?;
        let key = read("CLUSTER_TLS_KEY", &files.key)?;
        let ca = read("CLUSTER_TLS_CA", &files.ca)?;
        let first_cert = |name: &str, path: &Path, pem: &[u8]| {
            CertificateDer::from_pem_slice(pem).map_err(|e| {
                anyhow::anyhow!("{name}={}: holds no PEM certificate ({e})", path.display())
            })
        };
        first_cert("CLUSTER_TLS_CERT", &files.cert, &cert)?;
        first_cert("CLUSTER_TLS_CA", &files.ca, &ca)?;
        PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
            anyhow::anyhow!(
                "CLUSTER_TLS_KEY={}: holds no PEM private key ({e})",
                files.key.display()
            )
        })?;
        ServerName::try_from(files.server_name.clone()).map_err(|_| {
            anyhow::anyhow!(
                "CLUSTER_TLS_SERVER_NAME=`{}` is not a DNS name",
                files.server_name
            )
        })?;
        Ok(Tls {
            identity: Identity::from_pem(cert, key),
            ca: Certificate::from_pem(ca),
            server_name: files.server_name.clone(),
        })
    }

    /// A node's server side: only clients with a CA-signed certificate
    /// complete the handshake.
    pub fn server(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .timeout(Duration::from_secs(5))
    }

    fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(self.server_name.clone())
            .timeout(Duration::from_secs(5))
    }
}

fn read(name: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{name}={}: cannot read: {e}", path.display()))
}

/// Whether `der`, a certificate the TLS handshake already checked
/// against the CA, is a node's: issued for the node name, which
/// operator certificates are not.
pub fn is_node_certificate(der: &CertificateDer<'_>, server_name: &str) -> bool {
    let Ok(name) = ServerName::try_from(server_name) else {
        return false;
    };
    webpki::EndEntityCert::try_from(der)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// Channels and clients to nodes, shared by a node's tasks or by one
/// operator command.
#[derive(Clone)]
pub struct Transport {
    tls: Option<ClientTlsConfig>,
    token: AddToken,
    secret: Option<Arc<str>>,
    /// Addresses whose proof of the token was checked, and when.
    proven: Arc<Mutex<HashMap<String, Instant>>>,
    /// An operator's command rather than a node.
    operator: bool,
    /// One short-deadline channel per address, kept: a node says hello
    /// to its peers and reports metrics every second, and a connection
    /// (a TLS handshake under mTLS) per call would cost a fleet more
    /// than the calls do. A channel reconnects by itself after a peer
    /// restarts.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

/// Channels kept at most; past it the cache starts again (addresses of
/// nodes long gone do not pile up).
const MAX_CHANNELS: usize = 4096;

impl Transport {
    pub fn new(tls: Option<&Tls>, token: Option<&str>) -> anyhow::Result<Transport> {
        Ok(Transport {
            tls: tls.map(Tls::client),
            token: AddToken::new(token)?,
            secret: token.map(Arc::from),
            proven: Arc::default(),
            operator: false,
            channels: Arc::default(),
        })
    }

    /// An operator's transport: `CLUSTER_TOKEN` and the `CLUSTER_TLS_*`
    /// files (an operator certificate) from the environment.
    pub fn from_env() -> anyhow::Result<Transport> {
        let tls = TlsFiles::from_env()?.map(|f| Tls::load(&f)).transpose()?;
        let token = std::env::var("CLUSTER_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let mut t = Transport::new(tls.as_ref(), token.as_deref())?;
        t.operator = true;
        Ok(t)
    }

    fn endpoint(&self, addr: &str) -> Result<Endpoint, tonic::transport::Error> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let e = Endpoint::from_shared(format!("{scheme}://{addr}"))?.tcp_nodelay(true);
        match &self.tls {
            Some(t) => e.tls_config(t.clone()),
            None => Ok(e),
        }
    }

    /// A lazily connecting channel with a short per-call deadline.
    pub fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let c = self
            .endpoint(addr)?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        if channels.len() >= MAX_CHANNELS {
            channels.clear();
        }
        channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    /// Drops the cached channel to `addr`, so the next call connects
    /// anew. A connection whose packets were lost for a while (a
    /// partition) waits out TCP's retransmission backoff, tens of seconds
    /// after a long one; a new connection does not.
    pub fn forget(&self, addr: &str) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr);
    }

    /// A channel without a per-call deadline, for calls whose time
    /// depends on their size (blobs, compiling a plugin); callers bound
    /// them.
    pub fn long_channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        Ok(self
            .endpoint(addr)?
            .connect_timeout(Duration::from_millis(1000))
            .connect_lazy())
    }

    /// The hello client: it never carries the token.
    pub fn peer(
        &self,
        addr: &str,
    ) -> Result<pb::peer_client::PeerClient<Channel>, tonic::transport::Error> {
        Ok(pb::peer_client::PeerClient::new(self.channel(addr)?))
    }

    /// A coordinator client that carries the token, once the node at
    /// `addr` proved it holds it.
    pub async fn coordinator(&self, addr: &str, long: bool) -> anyhow::Result<CoordinatorClient> {
        let token = self.token_for(addr).await?;
        let ch = if long {
            self.long_channel(addr)?
        } else {
            self.channel(addr)?
        };
        Ok(pb::coordinator_client::CoordinatorClient::with_interceptor(
            ch, token,
        ))
    }

    /// A Raft client, on the same terms as [`Transport::coordinator`].
    pub async fn raft(&self, addr: &str) -> anyhow::Result<RaftClient> {
        let token = self.token_for(addr).await?;
        Ok(pb::raft_client::RaftClient::with_interceptor(
            self.channel(addr)?,
            token,
        ))
    }

    /// The token interceptor for `addr`: with TLS the handshake vouches
    /// for the peer; without, the peer must answer a challenge first.
    async fn token_for(&self, addr: &str) -> anyhow::Result<AddToken> {
        if self.secret.is_none() || self.tls.is_some() || self.is_proven(addr) {
            return Ok(self.token.clone());
        }
        let hello = self.hello(addr, "").await?;
        anyhow::ensure!(
            hello.proven,
            "{addr} did not prove it holds the cluster token, so the token was not sent to it: \
             it is not a node of this cluster, or its CLUSTER_TOKEN differs"
        );
        Ok(self.token.clone())
    }

    fn is_proven(&self, addr: &str) -> bool {
        self.proven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
            .is_some_and(|t| t.elapsed() < PROVEN_FOR)
    }

    /// Says hello to `addr` with a fresh challenge and checks the proof.
    /// A node checks it against the address it dialled, so a peer that
    /// relays another node's answer proves nothing; an operator, who may
    /// name a node by any of its addresses, against the address the node
    /// reports for itself.
    pub async fn hello(&self, addr: &str, nonce: &str) -> anyhow::Result<Hello> {
        let challenge = auth::challenge();
        let req = pb::HelloRequest {
            nonce: nonce.to_owned(),
            format: loadtest_wire::FORMAT,
            challenge: challenge.clone(),
        };
        let mut client = self.peer(addr)?;
        let reply = tokio::time::timeout(Duration::from_millis(800), client.hello(req))
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no answer to hello within 800ms"))??
            .into_inner();
        let claimed = if self.operator {
            reply.addr.as_str()
        } else {
            addr
        };
        let proven = match &self.secret {
            None => true,
            Some(t) => auth::proof_ok(t, &challenge, claimed, &reply.proof),
        };
        if proven {
            self.proven
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(addr.to_owned(), Instant::now());
        }
        Ok(Hello { reply, proven })
    }
}

/// A hello's reply and whether the peer proved it holds the token (true
/// when there is no token to prove).
pub struct Hello {
    pub reply: pb::HelloReply,
    pub proven: bool,
}
