//! The gRPC services a node serves: Raft's incoming RPCs, the hello peers
//! find each other with, and the coordinator (operators' operations,
//! blobs, runs, metrics, status).

use crate::blobs::{self, BlobRef};
use crate::coordinator::{self, Submission};
use crate::node::NodeCtx;
use crate::transport::Transport;
use loadtest_wire::command::{Applied, Command, Op, TypeConfig};
use loadtest_wire::plan::{self, Ack, Batch, Plan};
use loadtest_wire::rpc::{decode, encode, format_ok, pb};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct RaftService(pub Arc<NodeCtx>);
pub struct PeerService(pub Arc<NodeCtx>);
pub struct CoordinatorService(pub Arc<NodeCtx>);

fn not_ready() -> Status {
    Status::unavailable("this node has not started Raft yet")
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn vote(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        self.0.require_node(&req)?;
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let r = raft.vote(decode(req.get_ref())?).await;
        Ok(Response::new(encode(&r)?))
    }

    async fn append_entries(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        self.0.require_node(&req)?;
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let r = raft.append_entries(decode(req.get_ref())?).await;
        Ok(Response::new(encode(&r)?))
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        self.0.require_node(&req)?;
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let mut chunk: InstallSnapshotRequest<TypeConfig> = decode(req.get_ref())?;
        if chunk.data.is_empty() {
            chunk.data = req.into_inner().data;
        }
        let (vote, done) = (chunk.vote, chunk.done);
        let r = raft.install_snapshot(chunk).await;
        if r.is_ok() && !done {
            // openraft 0.9 refreshes a follower's election timer only with
            // the last chunk, so a transfer longer than the election timeout
            // would have the follower campaign in the middle of it. An empty
            // append carrying the leader's vote is a heartbeat and changes
            // nothing else.
            let _ = raft
                .append_entries(AppendEntriesRequest {
                    vote,
                    prev_log_id: None,
                    leader_commit: None,
                    entries: Vec::new(),
                })
                .await;
        }
        Ok(Response::new(encode(&r)?))
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    /// Answered without the token: the proof in the reply is what lets
    /// the caller trust this node with it.
    async fn hello(
        &self,
        req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloReply>, Status> {
        format_ok("this hello", req.get_ref().format)?;
        let ctx = &self.0;
        let addr = ctx.addr().unwrap_or_default();
        let proof = match &ctx.settings.token {
            Some(t) if !addr.is_empty() && !req.get_ref().challenge.is_empty() => {
                loadtest_wire::auth::proof(t, &req.get_ref().challenge, &addr)
            }
            _ => Vec::new(),
        };
        Ok(Response::new(pb::HelloReply {
            format: loadtest_wire::FORMAT,
            node_id: ctx.node_id.clone(),
            nonce: ctx.nonce.clone(),
            initialized: ctx.is_member(),
            leader_addr: ctx.leader_addr().unwrap_or_default(),
            addr,
            proof,
        }))
    }
}

/// Runs a coordinator call on the node's main runtime. The gRPC server
/// lives on Raft's own runtime so heartbeats are never queued behind
/// VUs; a submission's `setup`, compiling plugins or hashing blobs must
/// not hold that runtime's one thread in turn.
async fn on_main<F>(ctx: &Arc<NodeCtx>, work: F) -> Result<Response<pb::Payload>, Status>
where
    F: Future<Output = Result<pb::Payload, Status>> + Send + 'static,
{
    ctx.main
        .spawn(work)
        .await
        .map_err(|e| Status::internal(format!("this call failed on the node: {e}")))?
        .map(Response::new)
}

type Reply = Result<Response<pb::Payload>, Status>;

#[tonic::async_trait]
impl pb::coordinator_server::Coordinator for CoordinatorService {
    async fn write(&self, req: Request<pb::Payload>) -> Reply {
        let ctx = self.0.clone();
        on_main(&self.0, async move {
            let op: Op = decode(req.get_ref())?;
            encode(&write_op(&ctx, op).await)
        })
        .await
    }

    async fn missing_blobs(&self, req: Request<pb::Payload>) -> Reply {
        let refs: Vec<BlobRef> = decode(req.get_ref())?;
        encode(&self.0.local.blobs.announce(&refs)).map(Response::new)
    }

    async fn put_blobs(&self, req: Request<tonic::Streaming<pb::BlobChunk>>) -> Reply {
        let ctx = self.0.clone();
        on_main(&self.0, async move {
            encode(&ctx.local.blobs.receive(req.into_inner()).await?)
        })
        .await
    }

    async fn submit(&self, req: Request<pb::Payload>) -> Reply {
        let ctx = self.0.clone();
        on_main(&self.0, async move {
            let sub: Submission = decode(req.get_ref())?;
            encode(&submit(&ctx, sub).await)
        })
        .await
    }

    async fn prepare(&self, req: Request<pb::Payload>) -> Reply {
        self.0.require_node(&req)?;
        let ctx = self.0.clone();
        on_main(&self.0, async move {
            let plan: Plan = decode(req.get_ref())?;
            let result = ctx.local.prepare(&plan).await.map(|_| ());
            if let Err(e) = &result {
                tracing::error!(run = %plan.run_id, "cannot take the run's config: {e}");
            }
            encode(&result)
        })
        .await
    }

    async fn report_metrics(&self, req: Request<pb::Payload>) -> Reply {
        self.0.require_node(&req)?;
        let ctx = self.0.clone();
        on_main(&self.0, async move {
            let batch: Batch = decode(req.get_ref())?;
            encode(&report_metrics(&ctx, batch))
        })
        .await
    }

    async fn status(&self, req: Request<pb::Payload>) -> Reply {
        let ask: StatusRequest = decode(req.get_ref())?;
        encode(&status(&self.0, &ask)).map(Response::new)
    }
}

/// A submission reaches the leader with its blobs: a follower first
/// sends the leader whatever it lacks, then forwards the submission.
async fn submit(ctx: &Arc<NodeCtx>, sub: Submission) -> Result<String, String> {
    let missing = ctx.local.blobs.missing(&sub.digests());
    if !missing.is_empty() {
        return Err(format!(
            "send the blobs first: {} of them have not arrived",
            missing.len()
        ));
    }
    if ctx.is_leader() {
        return coordinator::submit(ctx, sub, "submit").await;
    }
    let leader = ctx
        .leader_addr()
        .ok_or("no leader is known yet; try again in a moment")?;
    let blobs: BTreeMap<String, Arc<[u8]>> = sub
        .digests()
        .into_iter()
        .filter_map(|d| ctx.local.blobs.get(&d).map(|b| (d, b)))
        .collect();
    blobs::push(&leader, &ctx.transport, &blobs)
        .await
        .map_err(|e| format!("forwarding to the leader {leader}: {e:#}"))?;
    let mut client = ctx
        .transport
        .coordinator(&leader, true)
        .await
        .map_err(|e| format!("forwarding to the leader {leader}: {e:#}"))?;
    let reply = client
        .submit(encode(&sub).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| format!("forwarding to the leader {leader}: {}", e.message()))?;
    decode::<Result<String, String>>(reply.get_ref()).map_err(|e| e.message().to_owned())?
}

/// The leader takes a node's metric batch into its intake, to be
/// committed with every other node's at the next flush, and answers with
/// what is committed and what it holds. An empty batch is a heartbeat: it
/// only refreshes when the node was last heard from.
fn report_metrics(ctx: &NodeCtx, batch: Batch) -> Result<Ack, String> {
    if !ctx.is_leader() {
        return Err("this node is not the leader".into());
    }
    ctx.local.seen(&batch.run_id, batch.assignment);
    let Some(plan) = ctx.sm().plan() else {
        // A new leader that has not applied the plan yet: ask again later.
        return Err("this leader has not caught up with the plan yet".into());
    };
    let counted = (plan.run_id == batch.run_id && !plan.status.is_over())
        .then(|| {
            plan.assignments
                .iter()
                .find(|a| a.id == batch.assignment && !a.lost)
        })
        .flatten();
    // A newer run replaced this one, or the share was handed on: nobody
    // counts it any more, so a node that comes back adds nothing twice.
    let Some(a) = counted else {
        return Ok(Ack::OVER);
    };
    let committed = coordinator::progress_of(ctx, &plan.run_id, a);
    Ok(ctx.intake.receive(batch, &committed))
}

#[derive(Debug, Serialize, Deserialize, Default)]
pub struct StatusRequest {
    /// Include the merged result when the run has finished.
    #[serde(default)]
    pub with_result: bool,
    /// Include the merged series from this second on, as far as every
    /// share has reported it (an operator's dashboard and outputs).
    #[serde(default)]
    pub live_since: Option<u64>,
}

/// What `loadtest status` shows, and what `submit` waits on.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReply {
    pub node_id: String,
    pub state: String,
    pub leader: Option<String>,
    /// The leader's address, so a caller can ask it directly.
    #[serde(default)]
    pub leader_addr: Option<String>,
    pub term: u64,
    pub members: Vec<String>,
    pub plan: Option<Plan>,
    pub progress: Vec<(plan::Assignment, plan::Progress)>,
    pub result: Option<plan::RunResult>,
    #[serde(default)]
    pub live: Option<coordinator::LiveView>,
}

fn status(ctx: &NodeCtx, ask: &StatusRequest) -> StatusReply {
    let health = ctx.health();
    let plan = coordinator::current_plan(ctx);
    let progress = plan.as_ref().map_or_else(Vec::new, |p| {
        p.assignments
            .iter()
            .map(|a| (a.clone(), coordinator::progress_of(ctx, &p.run_id, a)))
            .collect()
    });
    let result = plan
        .as_ref()
        .filter(|p| ask.with_result && p.status == plan::Status::Finished)
        .and_then(|p| ctx.sm().get(&plan::result_key(&p.run_id)))
        .and_then(|v| serde_json::from_str(&v).ok());
    let live = ask
        .live_since
        .zip(plan.as_ref())
        .map(|(since, p)| coordinator::live_view(ctx, &p.run_id, &progress, since));
    StatusReply {
        node_id: health.node_id,
        state: health.state.to_owned(),
        leader: health.leader_id,
        leader_addr: ctx.leader_addr(),
        term: health.term,
        members: ctx.members(),
        plan,
        progress,
        result,
        live,
    }
}

/// Applies the coordinator's own write through Raft. Only the leader
/// writes its state: a node that lost leadership mid-way gets an error,
/// and the new leader's coordinator takes over.
pub async fn write(ctx: &Arc<NodeCtx>, cmd: Command) -> Result<Applied, String> {
    let raft = ctx.raft().ok_or("this node has not started Raft yet")?;
    raft.client_write(cmd)
        .await
        .map(|r| r.data)
        .map_err(|e| e.to_string())
}

/// Applies an operator's operation; a follower forwards it to the leader.
pub(crate) async fn write_op(ctx: &Arc<NodeCtx>, op: Op) -> Result<Applied, String> {
    let raft = ctx.raft().ok_or("this node has not started Raft yet")?;
    if let Op::Steer { change } = op {
        if ctx.is_leader() {
            return crate::steering::steer(ctx, change).await;
        }
        let leader = ctx
            .leader_addr()
            .ok_or("no leader is known yet; try again")?;
        return forward(&leader, &ctx.transport, Op::Steer { change }).await;
    }
    let cmd = op.clone().command()?;
    match raft.client_write(cmd).await {
        Ok(r) => Ok(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            let addr = f
                .leader_node
                .map(|n| n.addr)
                .ok_or("no leader is known yet; try again")?;
            forward(&addr, &ctx.transport, op).await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Sends an operation to the node at `addr` (for the CLI); that node
/// forwards it to the leader if it is not the leader itself.
pub async fn write_remote(addr: &str, op: Op) -> anyhow::Result<Applied> {
    let transport = Transport::from_env()?;
    forward(addr, &transport, op)
        .await
        .map_err(|e| anyhow::anyhow!("write via {addr}: {e}"))
}

async fn forward(addr: &str, transport: &Transport, op: Op) -> Result<Applied, String> {
    let mut client = transport
        .coordinator(addr, false)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let reply = client
        .write(encode(&op).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.message().to_owned())?;
    decode::<Result<Applied, String>>(reply.get_ref()).map_err(|e| e.message().to_owned())?
}
