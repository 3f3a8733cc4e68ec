//! Raft's outgoing transport: openraft's RPCs as gRPC calls, over the
//! node's [`Transport`] (TLS, and the token only to proven peers).
//!
//! openraft sends every follower a heartbeat each `heartbeat_interval`,
//! learners included: with 97 learners at the default 100 ms that was
//! about 1,000 RPCs a second and most of an idle leader's CPU. A learner
//! has no election timer and no vote, so a heartbeat only tells it the
//! leader's commit index; one that would tell it nothing new (the same
//! vote, log position and commit index it last accepted) is answered here
//! from that acceptance, and the learner hears from the leader at least
//! every [`LEARNER_KEEPALIVE`]. Commits still reach it at the heartbeat
//! rate; voters get every heartbeat.

use crate::transport::{RaftClient, Transport};
use loadtest_wire::command::Raft;
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
use openraft::{LogId, Vote};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a learner may go without a message from the leader.
pub const LEARNER_KEEPALIVE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Network {
    pub transport: Transport,
    /// This node's Raft, once started: who votes, for [`Peer::is_voter`].
    pub raft: Arc<OnceLock<Raft>>,
}

pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<RaftClient>,
    transport: Transport,
    raft: Arc<OnceLock<Raft>>,
    /// The last heartbeat this peer accepted, and when it was sent.
    accepted: Option<(Heartbeat, Instant)>,
}

/// What a heartbeat tells a follower.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Heartbeat {
    vote: Vote<NodeId>,
    prev_log_id: Option<LogId<NodeId>>,
    leader_commit: Option<LogId<NodeId>>,
}

/// Whether `beat` is the heartbeat accepted last, within the keepalive.
fn repeats(beat: Option<Heartbeat>, accepted: Option<(Heartbeat, Instant)>, now: Instant) -> bool {
    match (beat, accepted) {
        (Some(beat), Some((last, at))) => {
            beat == last && now.saturating_duration_since(at) < LEARNER_KEEPALIVE
        }
        _ => false,
    }
}

impl Heartbeat {
    fn of(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<Heartbeat> {
        rpc.entries.is_empty().then_some(Heartbeat {
            vote: rpc.vote,
            prev_log_id: rpc.prev_log_id,
            leader_commit: rpc.leader_commit,
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            client: None,
            transport: self.transport.clone(),
            raft: self.raft.clone(),
            accepted: None,
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl Peer {
    /// Whether the target votes in the current membership (while unknown,
    /// it is treated as a voter: every heartbeat goes out).
    fn is_voter(&self) -> bool {
        let Some(raft) = self.raft.get() else {
            return true;
        };
        let m = raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.target)
    }

    /// A heartbeat a learner would accept exactly as it accepted the last
    /// one, sent within [`LEARNER_KEEPALIVE`] of it.
    fn says_nothing_new(&self, beat: Option<Heartbeat>) -> bool {
        repeats(beat, self.accepted, Instant::now()) && !self.is_voter()
    }

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

    /// After a call that got no answer: the next one goes over a new
    /// connection, not one that may be stuck in TCP's backoff.
    fn reconnect(&mut self) {
        self.client = None;
        self.transport.forget(&self.addr);
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
        let reply = tokio::time::timeout(option.hard_ttl(), call(client, payload)).await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(status)) => {
                // An unreachable peer backs off; anything else is retried as usual.
                let unreachable = matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                );
                if !unreachable {
                    return Err(RPCError::Network(NetworkError::new(&status)));
                }
                self.reconnect();
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Err(_) => {
                self.reconnect();
                return Err(RPCError::Network(NetworkError::new(&std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer from {} within {:?}",
                        self.addr,
                        option.hard_ttl()
                    ),
                ))));
            }
        };
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
        let beat = Heartbeat::of(&rpc);
        if self.says_nothing_new(beat) {
            return Ok(AppendEntriesResponse::Success);
        }
        let sent = Instant::now();
        let r = self
            .call(&option, &rpc, async |mut c, p| c.append_entries(p).await)
            .await;
        self.accepted = match (&r, beat) {
            (Ok(AppendEntriesResponse::Success), Some(beat)) => Some((beat, sent)),
            _ => None,
        };
        r
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

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    fn rpc(commit: u64, entries: usize) -> AppendEntriesRequest<TypeConfig> {
        let id = |i| Some(LogId::new(CommittedLeaderId::new(1, 1), i));
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: id(9),
            leader_commit: id(commit),
            entries: (0..entries)
                .map(|i| Entry {
                    log_id: id(10 + i as u64).unwrap(),
                    payload: EntryPayload::Blank,
                })
                .collect(),
        }
    }

    #[test]
    fn only_a_repeat_of_the_last_accepted_heartbeat_within_the_keepalive_is_held_back() {
        let t = Instant::now();
        let accepted = Heartbeat::of(&rpc(8, 0)).map(|b| (b, t));
        let soon = t + Duration::from_millis(200);
        assert!(repeats(Heartbeat::of(&rpc(8, 0)), accepted, soon));
        // A new commit index is news; entries are never held back.
        assert!(!repeats(Heartbeat::of(&rpc(9, 0)), accepted, soon));
        assert!(Heartbeat::of(&rpc(8, 1)).is_none());
        assert!(!repeats(Heartbeat::of(&rpc(8, 1)), accepted, soon));
        // Past the keepalive, the learner hears from the leader again.
        let late = t + LEARNER_KEEPALIVE;
        assert!(!repeats(Heartbeat::of(&rpc(8, 0)), accepted, late));
        assert!(!repeats(Heartbeat::of(&rpc(8, 0)), None, soon));
    }
}
