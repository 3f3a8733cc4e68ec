//! The gRPC services a node serves: Raft's incoming RPCs, and the
//! coordinator (hello, forwarded writes).

use super::node::NodeCtx;
use super::rpc::{AddToken, decode, encode, pb};
use super::types::{Applied, Command};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct RaftService(pub Arc<NodeCtx>);
pub struct CoordinatorService(pub Arc<NodeCtx>);

fn not_ready() -> Status {
    Status::unavailable("this node has not started Raft yet")
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn vote(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let r = raft.vote(decode(req.get_ref())?).await;
        Ok(Response::new(encode(&r)?))
    }

    async fn append_entries(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let r = raft.append_entries(decode(req.get_ref())?).await;
        Ok(Response::new(encode(&r)?))
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        let raft = self.0.raft().ok_or_else(not_ready)?;
        let r = raft.install_snapshot(decode(req.get_ref())?).await;
        Ok(Response::new(encode(&r)?))
    }
}

#[tonic::async_trait]
impl pb::coordinator_server::Coordinator for CoordinatorService {
    async fn hello(
        &self,
        req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloReply>, Status> {
        let _ = req;
        let ctx = &self.0;
        Ok(Response::new(pb::HelloReply {
            node_id: ctx.node_id.clone(),
            nonce: ctx.nonce.clone(),
            initialized: ctx.is_member(),
            leader_addr: ctx.leader_addr().unwrap_or_default(),
        }))
    }

    async fn write(&self, req: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        let cmd: Command = decode(req.get_ref())?;
        let result = write(&self.0, cmd).await;
        Ok(Response::new(encode(&result)?))
    }
}

/// Applies a write through Raft; a follower forwards it to the leader.
pub async fn write(ctx: &Arc<NodeCtx>, cmd: Command) -> Result<Applied, String> {
    let raft = ctx.raft().ok_or("this node has not started Raft yet")?;
    match raft.client_write(cmd.clone()).await {
        Ok(r) => Ok(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            let addr = f
                .leader_node
                .map(|n| n.addr)
                .ok_or("no leader is known yet; try again")?;
            forward(&addr, &ctx.token, cmd).await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Sends a write to the node at `addr` (for the CLI); that node forwards
/// it to the leader if it is not the leader itself.
pub async fn write_remote(
    addr: &str,
    token: Option<&str>,
    cmd: Command,
) -> anyhow::Result<Applied> {
    let token = AddToken::new(token)?;
    forward(addr, &token, cmd)
        .await
        .map_err(|e| anyhow::anyhow!("write via {addr}: {e}"))
}

async fn forward(addr: &str, token: &AddToken, cmd: Command) -> Result<Applied, String> {
    let channel = super::network::channel(addr).map_err(|e| e.to_string())?;
    let mut client =
        pb::coordinator_client::CoordinatorClient::with_interceptor(channel, token.clone());
    let reply = client
        .write(encode(&cmd).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.message().to_owned())?;
    decode::<Result<Applied, String>>(reply.get_ref()).map_err(|e| e.message().to_owned())?
}
