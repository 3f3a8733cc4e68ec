//! A cluster node's life: identify itself among the peers, start Raft,
//! bootstrap the cluster once a quorum is reachable, keep membership in
//! shape while leading, and report health.

use crate::dns::DnsPeers;
use crate::health::{self, Health};
use crate::heartbeats::{Claimed, Heartbeats};
use crate::local::Local;
use crate::network::Network;
use crate::registry::Registry;
use crate::service::{CoordinatorService, PeerService, RaftService};
use crate::settings::{Discovery, Settings};
use crate::store::{self, LogStore, StateMachine};
use crate::transport::{Tls, Transport, is_node_certificate};
use loadtest_wire::auth::CheckToken;
use loadtest_wire::command::{NodeId, Raft, raft_id};
use loadtest_wire::plan::Status;
use loadtest_wire::rpc::pb;
use openraft::metrics::RaftServerMetrics;
use openraft::{BasicNode, Membership, ServerState};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What the services and health endpoint see of the node.
pub struct NodeCtx {
    pub node_id: String,
    pub nonce: String,
    pub transport: Transport,
    /// The main runtime, where coordinator calls do their work (the gRPC
    /// server itself runs on Raft's runtime).
    pub main: tokio::runtime::Handle,
    /// The node name certificates are checked for, under mutual TLS.
    tls_name: Option<String>,
    /// Shared with Raft's network, which asks it who votes.
    raft: Arc<OnceLock<Raft>>,
    sm: StateMachine,
    addr: OnceLock<String>,
    /// Human node ids of peers, by address, learned from hellos.
    names: Mutex<HashMap<String, String>>,
    /// Peers already reported for a wrong proof.
    distrusted: Mutex<BTreeSet<String>>,
    pub settings: Settings,
    pub local: Local,
    /// Leader only: the metrics nodes sent that the log does not hold yet.
    pub intake: crate::intake::Intake,
    registry: OnceLock<Registry>,
    heartbeats: OnceLock<Heartbeats>,
    dns: OnceLock<DnsPeers>,
}

impl NodeCtx {
    pub fn raft(&self) -> Option<&Raft> {
        self.raft.get()
    }

    pub fn registry(&self) -> Option<&Registry> {
        self.registry.get()
    }

    pub fn heartbeats(&self) -> Option<&Heartbeats> {
        self.heartbeats.get()
    }

    /// Everyone this node should know: the static list, the passing
    /// instances of the Consul service, the fresh heartbeats in the
    /// bucket, or what the DNS name answers (this node included).
    pub async fn peers(&self) -> Vec<String> {
        match (
            self.registry(),
            self.heartbeats(),
            self.dns.get(),
            self.addr(),
        ) {
            (Some(reg), _, _, Some(me)) => reg.peers(&me).await,
            (_, Some(hb), _, Some(me)) => hb.peers(&me).await,
            (_, _, Some(dns), Some(me)) => dns.peers(&me).await,
            _ => self.settings.peers.clone(),
        }
    }

    /// Refuses a call only nodes make (Raft, a plan's delivery, metric
    /// batches) from an operator's certificate. Without TLS the token is
    /// the only credential, and it is checked already.
    pub fn require_node<T>(&self, req: &tonic::Request<T>) -> Result<(), tonic::Status> {
        let Some(name) = &self.tls_name else {
            return Ok(());
        };
        let certs = req.peer_certs().ok_or_else(|| {
            tonic::Status::unauthenticated("this call needs a node's client certificate")
        })?;
        match certs.first() {
            Some(c) if is_node_certificate(c, name) => Ok(()),
            _ => Err(tonic::Status::permission_denied(format!(
                "only cluster nodes make this call: the client certificate is not issued for `{name}`"
            ))),
        }
    }

    pub fn sm(&self) -> &StateMachine {
        &self.sm
    }

    /// This node's Raft address, once known.
    pub fn addr(&self) -> Option<String> {
        self.addr.get().cloned()
    }

    pub fn is_leader(&self) -> bool {
        self.raft()
            .is_some_and(|r| r.metrics().borrow().state == ServerState::Leader)
    }

    /// Every member's address (voters and learners).
    pub fn members(&self) -> Vec<String> {
        let Some(raft) = self.raft() else {
            return Vec::new();
        };
        let m = raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.addr.clone())
            .collect()
    }

    /// Whether this node belongs to a cluster's membership.
    pub fn is_member(&self) -> bool {
        self.raft().is_some_and(|r| {
            let m = r.metrics().borrow().clone();
            m.membership_config.membership().get_node(&m.id).is_some()
        })
    }

    pub fn leader_addr(&self) -> Option<String> {
        let raft = self.raft()?;
        let m = raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Logs, once per address, a peer that answered hello with a wrong
    /// proof of the token.
    fn distrust(&self, addr: &str, reply: &pb::HelloReply) {
        let mut seen = self.distrusted.lock().unwrap_or_else(|p| p.into_inner());
        if seen.insert(addr.to_owned()) {
            tracing::warn!(
                "{addr} (calling itself `{}` at `{}`) answered without a valid proof of the cluster token: \
                 not treating it as a peer, and sending it nothing. Another CLUSTER_TOKEN, or not a loadtest node of this cluster.",
                reply.node_id,
                reply.addr
            );
        }
    }

    fn known_names(&self) -> BTreeMap<String, String> {
        let mut names: BTreeMap<String, String> = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(a, n)| (a.clone(), n.clone()))
            .collect();
        if let Some(a) = self.addr.get() {
            names.insert(a.clone(), self.node_id.clone());
        }
        names
    }

    /// Whether `name_of` would give a name rather than the address back.
    pub fn knows_name_of(&self, addr: &str) -> bool {
        self.addr.get().is_some_and(|a| a == addr)
            || self
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(addr)
    }

    pub fn name_of(&self, addr: &str) -> String {
        if self.addr.get().is_some_and(|a| a == addr) {
            return self.node_id.clone();
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
            .cloned()
            .unwrap_or_else(|| addr.to_owned())
    }

    pub fn health(&self) -> Health {
        let forming = Health {
            state: "forming",
            node_id: self.node_id.clone(),
            leader_id: None,
            term: 0,
            peers: 0,
            cluster_ready: false,
        };
        let Some(raft) = self.raft() else {
            return forming;
        };
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let member = membership.get_node(&m.id).is_some();
        let state = match (m.state, m.current_leader) {
            (ServerState::Leader, _) => "leader",
            (_, Some(_)) if member => "follower",
            _ => "forming",
        };
        let leader_id = m
            .current_leader
            .and_then(|l| membership.get_node(&l))
            .map(|n| self.name_of(&n.addr));
        Health {
            state,
            node_id: self.node_id.clone(),
            leader_id,
            term: m.current_term,
            peers: membership.nodes().count(),
            cluster_ready: self.config_acknowledged(),
        }
    }

    /// Whether every node has acknowledged the current run's config.
    fn config_acknowledged(&self) -> bool {
        crate::coordinator::current_plan(self).is_some_and(|p| {
            matches!(
                p.status,
                Status::Running | Status::Stopping | Status::Finished
            )
        })
    }

    pub fn detail(&self) -> Detail {
        let raft = self.raft();
        let m = raft.map(|r| r.metrics().borrow().clone());
        let (voters, learners) = m.as_ref().map_or((vec![], vec![]), |m| {
            let ms = m.membership_config.membership();
            let addr = |id: NodeId| ms.get_node(&id).map_or(id.to_string(), |n| n.addr.clone());
            (
                ms.voter_ids().map(addr).collect(),
                ms.learner_ids().map(addr).collect(),
            )
        });
        let state = self.sm.view();
        Detail {
            health: self.health(),
            addr: self.addr.get().cloned(),
            voters,
            learners,
            names: self.known_names(),
            last_log_index: m.as_ref().and_then(|m| m.last_log_index),
            last_applied_index: m.as_ref().and_then(|m| m.last_applied.map(|l| l.index)),
            snapshot_index: m.as_ref().and_then(|m| m.snapshot.map(|l| l.index)),
            purged_index: m.as_ref().and_then(|m| m.purged.map(|l| l.index)),
            log_bytes: crate::store::LOG_BYTES.load(std::sync::atomic::Ordering::Relaxed),
            state_bytes: state
                .data
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
            data: state
                .data
                .into_iter()
                .filter(|(k, _)| !k.starts_with("run/") && k != loadtest_wire::plan::PLAN)
                .collect(),
        }
    }
}

/// `/cluster/state`: the health plus Raft's view.
#[derive(Debug, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub health: Health,
    pub addr: Option<String>,
    pub voters: Vec<String>,
    pub learners: Vec<String>,
    /// The names this node knows its peers by, by address: a member not
    /// in it has not answered a hello yet.
    pub names: BTreeMap<String, String>,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Bytes appended to this node's Raft log since it started.
    pub log_bytes: u64,
    /// Keys and values of the replicated state, in bytes.
    pub state_bytes: u64,
    pub data: BTreeMap<String, String>,
}

/// Election timeout range and heartbeat interval from
/// `CLUSTER_ELECTION_TIMEOUT_MS`, in milliseconds.
///
/// openraft 0.9 has a follower wait for the leader's lease (the range's
/// maximum) and then a random timeout in the range before it campaigns,
/// so a dead leader is replaced after about `max + min..max` (plus up to
/// a tick, 1.5 heartbeats). A narrow range keeps that short; the
/// heartbeat is also openraft's deadline for an AppendEntries, so it stays
/// at 100 ms or more for a batch of entries to make it in time.
fn timeouts(election: std::time::Duration) -> (u64, u64, u64) {
    let min = election.as_millis() as u64;
    let max = min + (min / 3).max(100);
    let heartbeat = (min / 3).max(100).min(min / 2);
    (min, max, heartbeat)
}

/// Bytes of snapshot per InstallSnapshot call.
const SNAPSHOT_CHUNK: u64 = 1 << 20;

/// The largest Raft message a node accepts: a snapshot chunk as JSON, or
/// a batch of entries carrying large user values.
pub const RAFT_MESSAGE_LIMIT: usize = 64 << 20;

fn raft_config(s: &Settings) -> anyhow::Result<Arc<openraft::Config>> {
    let (min, max, heartbeat) = timeouts(s.election_timeout);
    let config = openraft::Config {
        cluster_name: "loadtest".into(),
        heartbeat_interval: heartbeat,
        election_timeout_min: min,
        election_timeout_max: max,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(s.snapshot_every),
        max_in_snapshot_log_to_keep: (s.snapshot_every / 10).min(100),
        purge_batch_size: 1,
        // A snapshot travels in chunks that stay well inside the gRPC
        // message limit once JSON has written each byte as up to four.
        snapshot_max_chunk_size: SNAPSHOT_CHUNK,
        // A follower catching up gets entries in batches that fit the
        // message limit and arrive within the heartbeat deadline even
        // when entries are large (plans, results, user values).
        max_payload_entries: 16,
        ..Default::default()
    };
    Ok(Arc::new(
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("raft config: {e}"))?,
    ))
}

/// Raft's core, its network and the cluster's gRPC server run on a
/// runtime of their own: VUs on the main runtime may keep its workers busy
/// for a while, and a heartbeat or vote that waits behind them makes
/// followers call an election the cluster does not need. With short
/// election timeouts (fast failover), that isolation is what keeps a busy
/// cluster stable.
struct RaftRuntime(Option<tokio::runtime::Runtime>);

impl RaftRuntime {
    fn new() -> anyhow::Result<RaftRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("loadtest-raft")
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("starting Raft's runtime: {e}"))?;
        Ok(RaftRuntime(Some(rt)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for RaftRuntime {
    /// Dropped from async code, so it must not wait for its tasks.
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs the node until SIGINT or SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let tls = settings.tls.as_ref().map(Tls::load).transpose()?;
    if settings.insecure && tls.is_none() && settings.token.is_none() {
        tracing::warn!(
            "CLUSTER_INSECURE=true: this node takes runs from anyone who reaches {}",
            settings.bind
        );
    }
    let db = store::open(&settings.data_dir)?;
    let initialized = store::is_initialized(&db)?;
    let ctx = Arc::new(NodeCtx {
        node_id: settings.node_id.clone(),
        nonce: format!(
            "{:016x}",
            rand::RngCore::next_u64(
                &mut <rand::rngs::SmallRng as rand::SeedableRng>::from_os_rng()
            )
        ),
        transport: Transport::new(tls.as_ref(), settings.token.as_deref())?,
        main: tokio::runtime::Handle::current(),
        tls_name: tls.as_ref().map(|t| t.server_name.clone()),
        raft: Arc::default(),
        sm: StateMachine::open(db.clone(), &settings.data_dir)?,
        addr: OnceLock::new(),
        names: Mutex::new(HashMap::new()),
        distrusted: Mutex::new(BTreeSet::new()),
        settings: settings.clone(),
        local: Local::with_blobs(settings.data_dir.join("blobs"), settings.max_blob_bytes)?,
        registry: OnceLock::new(),
        heartbeats: OnceLock::new(),
        dns: OnceLock::new(),
        intake: Default::default(),
    });

    let raft_rt = RaftRuntime::new()?;
    let listener = std::net::TcpListener::bind(settings.bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| anyhow::anyhow!("CLUSTER_BIND_ADDR={}: cannot listen: {e}", settings.bind))?;
    let check = CheckToken::new(settings.token.as_deref());
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder
            .tls_config(tls.server())
            .map_err(|e| anyhow::anyhow!("CLUSTER_TLS_*: {e}"))?;
    }
    let server = builder
        .add_service(pb::peer_server::PeerServer::new(PeerService(ctx.clone())))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            pb::raft_server::RaftServer::new(RaftService(ctx.clone()))
                .max_decoding_message_size(RAFT_MESSAGE_LIMIT),
            check.clone(),
        ))
        .add_service(pb::coordinator_server::CoordinatorServer::with_interceptor(
            CoordinatorService(ctx.clone()),
            check,
        ));
    raft_rt.handle().spawn(async move {
        let served = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => server
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = served {
            tracing::error!("the cluster gRPC server stopped: {e}");
        }
    });
    let _health = health::serve(settings.health, ctx.clone()).await?;

    let me = identify(&settings, &ctx).await?;
    if let Some(reg) = Registry::new(&settings, &me)? {
        let _ = ctx.registry.set(reg);
    }
    if let Some(hb) = Heartbeats::new(&settings).await? {
        let _ = ctx.heartbeats.set(hb);
    }
    if let Discovery::Dns(d) = &settings.discovery {
        let own_port = me
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(settings.bind.port());
        let _ = ctx.dns.set(DnsPeers::new(d, own_port)?);
    }
    tracing::info!(node = %settings.node_id, addr = %me, "starting Raft");
    let starting = Raft::new(
        raft_id(&me),
        raft_config(&settings)?,
        Network {
            transport: ctx.transport.clone(),
            raft: ctx.raft.clone(),
            liveness: ctx.local.liveness.clone(),
        },
        LogStore::new(db),
        ctx.sm.clone(),
    );
    let raft = raft_rt
        .handle()
        .spawn(starting)
        .await
        .map_err(|e| anyhow::anyhow!("starting Raft: {e}"))?
        .map_err(|e| anyhow::anyhow!("starting Raft: {e}"))?;
    let _ = ctx.raft.set(raft.clone());
    let _ = ctx.addr.set(me.clone());
    let registration = tokio::spawn(crate::registry::keep_registered(ctx.clone()));
    let beating = tokio::spawn(crate::heartbeats::keep_beating(ctx.clone()));

    tokio::spawn(log_leadership(ctx.clone()));
    if !initialized {
        tokio::spawn(bootstrap(settings.clone(), ctx.clone(), me.clone()));
    } else {
        tracing::info!(
            "found Raft state in {}: rejoining the cluster",
            settings.data_dir.display()
        );
    }
    tokio::spawn(maintain(ctx.clone(), me));
    supervise("the coordinator", ctx.clone(), crate::coordinator::drive);
    supervise("the worker", ctx.clone(), crate::worker::follow);
    supervise("the metrics intake", ctx.clone(), crate::intake::flush);
    supervise("the live outputs", ctx.clone(), crate::publish::publish);
    supervise(
        "the config watcher",
        ctx.clone(),
        crate::config_watch::watch,
    );

    shutdown_signal().await;
    tracing::info!("shutting down");
    // No renewal may re-register the node after it has left.
    registration.abort();
    beating.abort();
    crate::registry::deregister(&ctx).await;
    crate::heartbeats::remove(&ctx).await;
    let _ = raft.shutdown().await;
    Ok(())
}

/// Runs one of the node's long-lived tasks, and starts it again if it
/// panics: a bug met on one input (a config, a peer's message) must not
/// silently end the coordinator, the worker or config watching.
fn supervise<F, Fut>(what: &'static str, ctx: Arc<NodeCtx>, task: F)
where
    F: Fn(Arc<NodeCtx>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(task(ctx.clone())).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    tracing::error!("{what} panicked (a bug; please report it): restarting it");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(_) => return,
            }
        }
    });
}

async fn shutdown_signal() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Asks every listed peer for hello; returns the replies by address of
/// the peers that proved they hold the token (and this node's own reply,
/// which identifies it). Nothing else of the cluster's reaches a peer
/// that has not proved itself.
pub(crate) async fn hello_all(peers: &[String], ctx: &NodeCtx) -> BTreeMap<String, pb::HelloReply> {
    let calls = peers.iter().map(|addr| async move {
        let hello = match ctx.transport.hello(addr, &ctx.nonce).await {
            Ok(h) => h,
            Err(e) => {
                if let Some(s) = e.downcast_ref::<tonic::Status>()
                    && s.code() == tonic::Code::FailedPrecondition
                {
                    tracing::error!("peer {addr} refused this node: {}", s.message());
                }
                return None;
            }
        };
        let reply = hello.reply;
        if let Err(why) = loadtest_wire::check_format(&format!("peer {addr}"), reply.format) {
            tracing::error!("{why}");
            return None;
        }
        // This node's own hello coming back identifies it, but only while
        // it looks for its address: later, a peer relaying it is a rogue.
        let own = reply.nonce == ctx.nonce && ctx.addr().is_none();
        if !hello.proven && !own {
            // A peer that has not learnt its own address yet sends no
            // proof; one that sends a wrong one is not of this cluster.
            if !reply.proof.is_empty() {
                ctx.distrust(addr, &reply);
            }
            return None;
        }
        Some((addr.clone(), reply))
    });
    let replies: BTreeMap<_, _> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut names = ctx.names.lock().unwrap_or_else(|p| p.into_inner());
    for (addr, r) in &replies {
        names.insert(addr.clone(), r.node_id.clone());
    }
    replies
}

/// Finds this node's own entry in the peer list: the one whose hello
/// comes back with this process's nonce.
async fn identify(settings: &Settings, ctx: &NodeCtx) -> anyhow::Result<String> {
    if settings.discovery != Discovery::Static {
        // Checked by Settings: an advertised address or a specific bind.
        return Ok(settings
            .advertise
            .clone()
            .unwrap_or_else(|| settings.bind.to_string()));
    }
    if let Some(a) = &settings.advertise {
        if !settings.peers.contains(a) {
            anyhow::bail!("CLUSTER_ADVERTISE_ADDR={a} is not in CLUSTER_NODES; list it there too");
        }
        return Ok(a.clone());
    }
    for _ in 0..20 {
        let replies = hello_all(&settings.peers, ctx).await;
        if let Some((addr, _)) = replies.iter().find(|(_, r)| r.nonce == ctx.nonce) {
            return Ok(addr.clone());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!(
        "none of CLUSTER_NODES ({}) reaches this node (listening on {}); list this node's address there, \
         or set CLUSTER_ADVERTISE_ADDR to it",
        settings.peers.join(","),
        settings.bind
    )
}

/// The deterministic initial voters: the first `max_voters` addresses in
/// sorted order. Every node computes the same set, which is what makes
/// concurrent bootstraps safe.
pub fn initial_voters(peers: &[String], max_voters: usize) -> BTreeMap<NodeId, BasicNode> {
    let mut sorted: Vec<&String> = peers.iter().collect();
    sorted.sort();
    sorted
        .into_iter()
        .take(max_voters)
        .map(|a| (raft_id(a), BasicNode::new(a.clone())))
        .collect()
}

/// Initialises the cluster once a majority of the initial voters answers.
async fn bootstrap(settings: Settings, ctx: Arc<NodeCtx>, me: String) {
    match &settings.discovery {
        Discovery::Consul { expect, .. } => {
            return bootstrap_discovered(&settings, &ctx, &me, *expect).await;
        }
        Discovery::Bucket(b) => return bootstrap_discovered(&settings, &ctx, &me, b.expect).await,
        Discovery::Dns(d) => return bootstrap_discovered(&settings, &ctx, &me, d.expect).await,
        Discovery::Static => {}
    }
    let voters = initial_voters(&settings.peers, settings.max_voters);
    if !voters.contains_key(&raft_id(&me)) {
        tracing::info!(
            "forming: this node joins as a learner once the voters have formed the cluster"
        );
        return;
    }
    let majority = voters.len() / 2 + 1;
    let mut last_report = None;
    loop {
        if ctx.is_member() {
            return;
        }
        let replies = hello_all(&settings.peers, &ctx).await;
        if replies
            .values()
            .any(|r| r.initialized && r.nonce != ctx.nonce)
        {
            tracing::info!(
                "forming: a cluster already exists; waiting for its leader to reach this node"
            );
            return;
        }
        let reachable = voters
            .values()
            .filter(|n| replies.contains_key(&n.addr))
            .count();
        if reachable >= majority {
            tracing::info!(
                "forming: {reachable} of {} voters reachable; initialising the cluster",
                voters.len()
            );
            match ctx
                .raft()
                .expect("raft started")
                .initialize(voters.clone())
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("initialise: {e} (another node formed the cluster first)");
                    return;
                }
            }
        }
        if last_report != Some(reachable) {
            let missing: Vec<&str> = voters
                .values()
                .map(|n| n.addr.as_str())
                .filter(|a| !replies.contains_key(*a))
                .collect();
            tracing::info!(
                "forming: {reachable} of {} voters reachable, need {majority}; waiting for {}",
                voters.len(),
                missing.join(", ")
            );
            last_report = Some(reachable);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A node that does not lead greets only the voters (the leader among
/// them) it does not know by name yet, so its health and logs name them.
async fn learn_voters_names(ctx: &NodeCtx, me: &str) {
    let Some(raft) = ctx.raft() else { return };
    let voters: Vec<String> = {
        let m = raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone()))
            .filter(|a| a != me && !ctx.knows_name_of(a))
            .collect()
    };
    if !voters.is_empty() {
        hello_all(&voters, ctx).await;
    }
}

/// Bootstrapping from discovered peers: nodes may see different sets
/// while instances register, so only one node initialises, once it sees
/// `expect` instances that all answer: with Consul the lowest address
/// (looked at twice), with a bucket whoever creates the claim object.
/// The others are members of that first membership or join as learners.
async fn bootstrap_discovered(settings: &Settings, ctx: &NodeCtx, me: &str, expect: usize) {
    let mut last_report = String::new();
    loop {
        if ctx.is_member() {
            return;
        }
        let peers = ctx.peers().await;
        let replies = hello_all(&peers, ctx).await;
        if replies
            .values()
            .any(|r| r.initialized && r.nonce != ctx.nonce)
        {
            tracing::info!(
                "forming: a cluster already exists; waiting for its leader to add this node"
            );
            return;
        }
        let answering: Vec<String> = peers
            .iter()
            .filter(|p| replies.contains_key(*p))
            .cloned()
            .collect();
        let via = if ctx.heartbeats().is_some() {
            "heartbeats in the bucket"
        } else if ctx.dns.get().is_some() {
            "DNS"
        } else {
            "Consul"
        };
        let report = if answering.len() < expect {
            format!(
                "forming: {} of {expect} expected nodes found through {via} (CLUSTER_BOOTSTRAP_EXPECT); waiting",
                answering.len()
            )
        } else if let Some(hb) = ctx.heartbeats() {
            match hb.claim(me, &answering).await {
                Ok(Claimed::Won) => {
                    let voters = initial_voters(&answering, settings.max_voters);
                    tracing::info!(
                        "forming: {} nodes found through {via}; this node claimed the bootstrap and initialises the cluster",
                        answering.len()
                    );
                    if let Err(e) = ctx.raft().expect("raft started").initialize(voters).await {
                        tracing::debug!("initialise: {e}");
                    }
                    return;
                }
                Ok(Claimed::Held { by }) => {
                    format!(
                        "forming: {by} claimed the bootstrap; waiting for its cluster to add this node"
                    )
                }
                Ok(Claimed::Cleared { by }) => {
                    format!("forming: cleared the stale claim of {by}; trying again")
                }
                Err(e) => format!("forming: cannot claim the bootstrap: {e}"),
            }
        } else if answering.first().map(String::as_str) != Some(me) {
            format!(
                "forming: {} nodes found; {} forms the cluster",
                answering.len(),
                answering[0]
            )
        } else if !still_lowest(ctx, me, &answering).await {
            "forming: another node appeared or formed the cluster; looking again".to_owned()
        } else {
            let voters = initial_voters(&answering, settings.max_voters);
            tracing::info!(
                "forming: {} nodes found through {via}; initialising the cluster",
                answering.len()
            );
            if let Err(e) = ctx.raft().expect("raft started").initialize(voters).await {
                tracing::debug!("initialise: {e}");
            }
            return;
        };
        if report != last_report {
            tracing::info!("{report}");
            last_report = report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A second look after a pause before initialising: nodes registering
/// at the same moment settle, so a lower address that just appeared (or
/// a cluster another node just formed) is seen. CLUSTER_BOOTSTRAP_EXPECT
/// should be the number of nodes started together.
async fn still_lowest(ctx: &NodeCtx, me: &str, seen: &[String]) -> bool {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let peers = ctx.peers().await;
    let replies = hello_all(&peers, ctx).await;
    let formed = replies
        .values()
        .any(|r| r.initialized && r.nonce != ctx.nonce);
    let lowest = peers.iter().filter(|p| replies.contains_key(*p)).min();
    !formed
        && lowest.map(String::as_str) == Some(me)
        && seen.first().map(String::as_str) == Some(me)
}

/// How long a member may go unheard before the leader greets it (and
/// counts it unreachable if it does not answer): a voter gets a heartbeat
/// every 100 ms or so, a learner a call at least every keepalive; both
/// with room for a busy machine.
fn greet_after(membership: &Membership<NodeId, BasicNode>, id: &NodeId) -> Duration {
    if membership.voter_ids().any(|v| v == *id) {
        Duration::from_secs(1)
    } else {
        crate::network::LEARNER_KEEPALIVE + Duration::from_secs(1)
    }
}

/// The leader checks each peer every second: it greets the ones it has not
/// heard from lately ([`greet_after`]; Raft's own calls answered count),
/// learns their names, adds listed nodes that are not members as
/// learners, and replaces a voter that has been unheard for a while with
/// a learner it hears. Other nodes make no rounds (they greet only voters
/// whose names they lack): at 100 nodes, every node greeting every peer
/// every 5 s was about 2,000 RPCs a second on the machine, which starved
/// the voters' heartbeats into elections, and the leader greeting every
/// member each second was a third of its calls. A node that becomes
/// leader starts its liveness record afresh, as if every peer had just
/// answered: nothing it heard long ago makes a live peer look gone, and a
/// dead one counts as silent CLUSTER_NODE_LOST_SECS later.
async fn maintain(ctx: Arc<NodeCtx>, me: String) {
    let mut misses: HashMap<NodeId, u32> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut was_leading = false;
    loop {
        tick.tick().await;
        let leading = ctx
            .raft()
            .is_some_and(|r| r.metrics().borrow().state == ServerState::Leader);
        let newly = leading && !was_leading;
        was_leading = leading;
        if !leading {
            misses.clear();
            learn_voters_names(&ctx, &me).await;
            continue;
        }
        let others: Vec<String> = ctx.peers().await.into_iter().filter(|p| *p != me).collect();
        let liveness = &ctx.local.liveness;
        if newly {
            liveness.start_afresh(&others);
        }
        let Some(raft) = ctx.raft() else { continue };
        let members = raft.metrics().borrow().membership_config.clone();
        let members = members.membership();
        let unheard: Vec<String> = others
            .iter()
            .filter(|a| {
                let id = raft_id(a);
                members.get_node(&id).is_none()
                    || !ctx.knows_name_of(a)
                    || !liveness.heard_within(a, greet_after(members, &id))
            })
            .cloned()
            .collect();
        let replies = hello_all(&unheard, &ctx).await;
        liveness.answered_all(replies.keys());
        let (state, my_id, membership) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.state, m.id, m.membership_config.membership().clone())
        };
        if state != ServerState::Leader {
            misses.clear();
            continue;
        }
        for addr in &others {
            let id = raft_id(addr);
            if membership.get_node(&id).is_none() && replies.contains_key(addr) {
                tracing::info!("adding {addr} as a learner");
                if let Err(e) = raft
                    .add_learner(id, BasicNode::new(addr.clone()), false)
                    .await
                {
                    tracing::warn!("adding learner {addr}: {e}");
                }
            }
        }
        let heard = |id: &NodeId| {
            membership
                .get_node(id)
                .is_some_and(|n| liveness.heard_within(&n.addr, greet_after(&membership, id)))
        };
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        for id in &voters {
            let reachable = *id == my_id || heard(id);
            let miss = misses.entry(*id).or_default();
            *miss = if reachable { 0 } else { *miss + 1 };
        }
        let dead: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|id| misses.get(id).copied().unwrap_or(0) >= 3)
            .collect();
        let spare: Vec<NodeId> = membership.learner_ids().filter(|id| heard(id)).collect();
        if let (Some(gone), Some(promote)) = (dead.first(), spare.first()) {
            let mut next = voters.clone();
            next.remove(gone);
            next.insert(*promote);
            let name = |id: &NodeId| {
                membership
                    .get_node(id)
                    .map_or(id.to_string(), |n| ctx.name_of(&n.addr))
            };
            tracing::info!(
                "voter {} is unreachable; promoting learner {}",
                name(gone),
                name(promote)
            );
            match raft.change_membership(next, true).await {
                Ok(_) => {
                    misses.remove(gone);
                }
                Err(e) => tracing::warn!("promoting a learner: {e}"),
            }
        }
    }
}

/// Logs every change of leadership with the term and what happened.
///
/// It watches openraft's server metrics, which change only with the vote,
/// the role, the leader or the membership: the full metrics are published
/// on every turn of Raft's loop, changed or not, and hold every member.
async fn log_leadership(ctx: Arc<NodeCtx>) {
    let Some(raft) = ctx.raft() else { return };
    let mut rx = raft.server_metrics();
    let look = |m: &RaftServerMetrics<NodeId, BasicNode>| {
        (m.state, m.current_leader, m.vote.leader_id().get_term())
    };
    let mut last = look(&rx.borrow_and_update());
    tracing::info!(term = last.2, "Raft started as {:?}", last.0);
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let (now, leader_addr) = {
            let m = rx.borrow_and_update();
            let addr = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l))
                .map(|n| n.addr.clone());
            (look(&m), addr)
        };
        if now != last {
            let leader = leader_addr.map(|a| ctx.name_of(&a));
            match (last.0, now.0) {
                (_, ServerState::Leader) if last.0 != ServerState::Leader => {
                    tracing::info!(term = now.2, "became leader: won the election")
                }
                (ServerState::Leader, s) => {
                    tracing::info!(
                        term = now.2,
                        "stepped down ({s:?}): a newer term or leader appeared; leader now {leader:?}"
                    )
                }
                _ if now.1 != last.1 => tracing::info!(term = now.2, "leader is now {leader:?}"),
                _ if now.2 != last.2 => {
                    tracing::info!(term = now.2, "election in term {} ({:?})", now.2, now.0)
                }
                _ => {}
            }
            last = now;
        }
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::timeouts;
    use std::time::Duration;

    #[test]
    fn the_default_election_timeout_replaces_a_dead_leader_within_a_second() {
        let (min, max, heartbeat) = timeouts(Duration::from_millis(300));
        assert!(heartbeat >= 100 && heartbeat < min, "{heartbeat}");
        // Lease, the longest random timeout, and one tick (1.5 heartbeats).
        let worst = max + max + heartbeat * 3 / 2;
        assert!(
            worst < 1000,
            "{min}..{max}, heartbeat {heartbeat}: {worst} ms"
        );
        let (min, max, heartbeat) = timeouts(Duration::from_millis(100));
        assert!(min < max && heartbeat < min, "{min} {max} {heartbeat}");
    }
}
