//! Raft's outgoing transport: openraft's RPCs as gRPC calls, with the
//! cluster token on each.

use loadtest_wire::command::{NodeId, TypeConfig};
use loadtest_wire::rpc::{AddToken, decode, encode, pb};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub type RaftClient = pb::raft_client::RaftClient<InterceptedService<Channel, AddToken>>;

/// A lazily connecting channel to `addr`.
pub fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// A channel without a per-call deadline, for calls whose time depends
/// on their size (blobs, compiling a plugin); callers bound them.
pub fn long_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(1000))
        .tcp_nodelay(true)
        .connect_lazy())
}

#[derive(Clone)]
pub struct Network {
    pub token: AddToken,
}

pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<RaftClient>,
    token: AddToken,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            client: None,
            token: self.token.clone(),
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl Peer {
    fn client(&mut self) -> Result<RaftClient, NetworkError> {
        if self.client.is_none() {
            let ch = channel(&self.addr).map_err(|e| NetworkError::new(&e))?;
            self.client = Some(pb::raft_client::RaftClient::with_interceptor(
                ch,
                self.token.clone(),
            ));
        }
        Ok(self.client.clone().expect("just set"))
    }

    /// Sends one RPC; the reply carries the remote Raft's own result.
    async fn call<Req, Resp, E>(
        &mut self,
        req: &Req,
        call: impl AsyncFnOnce(
            RaftClient,
            pb::Payload,
        ) -> Result<tonic::Response<pb::Payload>, tonic::Status>,
    ) -> RpcResult<Resp, E>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let client = self.client().map_err(RPCError::Network)?;
        let reply = call(client, payload).await.map_err(|status| {
            // An unreachable peer backs off; anything else is retried as usual.
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) {
                RPCError::Unreachable(Unreachable::new(&status))
            } else {
                RPCError::Network(NetworkError::new(&status))
            }
        })?;
        let result: Result<Resp, E> =
            decode(reply.get_ref()).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(&rpc, async |mut c, p| c.append_entries(p).await)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(&rpc, async |mut c, p| c.install_snapshot(p).await)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(&rpc, async |mut c, p| c.vote(p).await).await
    }
}
