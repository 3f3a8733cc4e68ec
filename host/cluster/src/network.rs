//! Raft's outgoing transport: openraft's RPCs as gRPC calls, over the
//! node's [`Transport`] (TLS, and the token only to proven peers).

use crate::transport::{RaftClient, Transport};
use loadtest_wire::command::{NodeId, TypeConfig};
use loadtest_wire::rpc::{decode, encode, pb};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

#[derive(Clone)]
pub struct Network {
    pub transport: Transport,
}

pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<RaftClient>,
    transport: Transport,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            client: None,
            transport: self.transport.clone(),
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl Peer {
    /// Connects on first use, once the peer proved it holds the token.
    async fn client(&mut self) -> Result<RaftClient, Unreachable> {
        if self.client.is_none() {
            let c = self
                .transport
                .raft(&self.addr)
                .await
                .map_err(|e| Unreachable::new(&std::io::Error::other(format!("{e:#}"))))?;
            self.client = Some(c);
        }
        Ok(self.client.clone().expect("just set"))
    }

    /// Sends one RPC; the reply carries the remote Raft's own result.
    async fn call<Req, Resp, E>(
        &mut self,
        option: &RPCOption,
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
        self.send(option, payload, call).await
    }

    /// Sends an encoded RPC.
    async fn send<Resp, E>(
        &mut self,
        option: &RPCOption,
        payload: pb::Payload,
        call: impl AsyncFnOnce(
            RaftClient,
            pb::Payload,
        ) -> Result<tonic::Response<pb::Payload>, tonic::Status>,
    ) -> RpcResult<Resp, E>
    where
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let client = self.client().await.map_err(RPCError::Unreachable)?;
        // openraft's deadline for this RPC, so a peer that stopped
        // answering holds no heartbeat or vote past it.
        let reply = tokio::time::timeout(option.hard_ttl(), call(client, payload))
            .await
            .map_err(|_| {
                RPCError::Network(NetworkError::new(&std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer from {} within {:?}",
                        self.addr,
                        option.hard_ttl()
                    ),
                )))
            })?
            .map_err(|status| {
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
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(&option, &rpc, async |mut c, p| c.append_entries(p).await)
            .await
    }

    /// The chunk's bytes travel raw beside the JSON of the rest.
    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let data = std::mem::take(&mut rpc.data);
        let mut payload = encode(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        payload.data = data;
        self.send(&option, payload, async |mut c, p| {
            c.install_snapshot(p).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(&option, &rpc, async |mut c, p| c.vote(p).await)
            .await
    }
}
