//! Raft's outgoing transport: openraft's RPCs as gRPC calls, over the
//! node's [`Transport`] (TLS, and the token only to proven peers).
//!
//! openraft sends every follower a heartbeat each `heartbeat_interval`,
//! learners included: with 97 learners at the default 100 ms that was
//! about 1,000 RPCs a second and most of an idle leader's CPU. A learner
//! has no election timer and no vote, so a heartbeat only tells it the
//! leader's commit index. One that would tell it nothing it needs soon is
//! answered here from what the learner last accepted: nothing new (the
//! same vote, log position and commit index), or only that metrics
//! entries it holds are committed (nothing waits on a learner applying
//! those; a plan or membership entry's commit goes out at once). During a
//! run that held back the heartbeat after each second's entry, one of
//! every two RPCs to each learner. A learner hears from the leader at
//! least every [`LEARNER_KEEPALIVE`], with the newest commit index; voters
//! get every heartbeat. The keepalive is also how the leader knows a
//! learner is alive (every answer counts, see `liveness.rs`), and at
//! 3 s it is as long as a large fleet's report interval, so a learner
//! gets about one call per metrics entry and none in between.

use crate::liveness::Liveness;
use crate::transport::{RaftClient, Transport};
use loadtest_wire::command::Raft;
use loadtest_wire::command::{Command, NodeId, TypeConfig};
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
use openraft::{Entry, EntryPayload, LogId, Vote};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a learner may go without a message from the leader.
pub const LEARNER_KEEPALIVE: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct Network {
    pub transport: Transport,
    /// This node's Raft, once started: who votes, for [`Peer::is_voter`].
    pub raft: Arc<OnceLock<Raft>>,
    /// Every answer is a sign of life the leader need not ask for again.
    pub liveness: Arc<Liveness>,
}

pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<RaftClient>,
    transport: Transport,
    raft: Arc<OnceLock<Raft>>,
    liveness: Arc<Liveness>,
    /// What this peer accepted last.
    known: Option<Known>,
}

/// What a heartbeat tells a follower.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Heartbeat {
    vote: Vote<NodeId>,
    prev_log_id: Option<LogId<NodeId>>,
    leader_commit: Option<LogId<NodeId>>,
}

/// What a peer knows after accepting an AppendEntries: the heartbeat that
/// would now tell it nothing new, when it was sent, and the entries it
/// holds, not yet known committed, whose commit it should hear at once.
#[derive(Clone, Debug)]
struct Known {
    beat: Heartbeat,
    at: Instant,
    /// Indexes, ascending; few (what is in flight past the commit).
    urgent: Vec<u64>,
}

/// The most entries of unknown kind counted as urgent after a reset: a
/// learner is never that far past the commit in practice, and one whose
/// commit waits anyway hears it within the keepalive.
const UNKNOWN_AT_MOST: u64 = 4096;

impl Known {
    /// What `rpc`, once accepted, leaves the peer knowing.
    fn after(rpc: &AppendEntriesRequest<TypeConfig>, at: Instant, before: Option<&Known>) -> Known {
        let committed = rpc.leader_commit.map_or(0, |c| c.index + 1);
        let mut urgent: Vec<u64> = match before.filter(|k| k.beat.vote == rpc.vote) {
            Some(k) => k.urgent.clone(),
            // Without what it accepted before in this term, anything the
            // peer holds past the commit may be a plan entry.
            None => {
                let held = rpc.prev_log_id.map_or(0, |p| p.index + 1);
                (committed..held).take(UNKNOWN_AT_MOST as usize).collect()
            }
        };
        let fresh = rpc.entries.iter().filter(|e| !is_metrics(e));
        urgent.extend(fresh.map(|e| e.log_id.index));
        urgent.retain(|&i| i >= committed);
        urgent.sort_unstable();
        urgent.dedup();
        Known {
            beat: Heartbeat {
                vote: rpc.vote,
                prev_log_id: rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id),
                leader_commit: rpc.leader_commit,
            },
            at,
            urgent,
        }
    }

    /// Whether `beat`, sent at `now`, tells the peer only what can wait:
    /// the keepalive has not run out, it is at the same place in the same
    /// term, and the commit it adds covers no urgent entry.
    fn can_wait(&self, beat: &Heartbeat, now: Instant) -> bool {
        let in_time = now.saturating_duration_since(self.at) < LEARNER_KEEPALIVE;
        let same_place = beat.vote == self.beat.vote && beat.prev_log_id == self.beat.prev_log_id;
        let commit_can_wait = match (self.urgent.first(), beat.leader_commit) {
            (Some(&first), Some(c)) => c.index < first,
            _ => true,
        };
        in_time && same_place && commit_can_wait
    }
}

/// An entry of merged metrics: nothing on a learner waits for it.
fn is_metrics(e: &Entry<TypeConfig>) -> bool {
    matches!(&e.payload, EntryPayload::Normal(Command::Merged(_)))
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
            liveness: self.liveness.clone(),
            known: None,
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
        // Called for every heartbeat to every learner: `voter_ids` would
        // build a set each time.
        m.membership_config
            .membership()
            .get_joint_config()
            .iter()
            .any(|voters| voters.contains(&self.target))
    }

    /// A heartbeat to a learner that tells it nothing it needs before the
    /// keepalive runs out.
    fn can_wait(&self, beat: Option<Heartbeat>) -> bool {
        match (beat, &self.known) {
            (Some(beat), Some(known)) => known.can_wait(&beat, Instant::now()) && !self.is_voter(),
            _ => false,
        }
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
    /// connection, not one that may be stuck in TCP's backoff (which also
    /// drops what that connection still holds, such as a forwarded write
    /// that would otherwise land after a partition heals).
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
            Ok(Ok(reply)) => {
                self.liveness.answered(&self.addr);
                reply
            }
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
        if self.can_wait(Heartbeat::of(&rpc)) {
            return Ok(AppendEntriesResponse::Success);
        }
        let sent = Instant::now();
        let r = self
            .call(&option, &rpc, async |mut c, p| c.append_entries(p).await)
            .await;
        self.known = match &r {
            Ok(AppendEntriesResponse::Success) => {
                Some(Known::after(&rpc, sent, self.known.as_ref()))
            }
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
    use loadtest_wire::raw::Raw;
    use openraft::CommittedLeaderId;

    fn id(i: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(1, 1), i))
    }

    /// An AppendEntries after entry `prev` with the commit at `commit`,
    /// carrying entries whose kinds `kinds` gives ('m' metrics, 'p' other).
    fn rpc(prev: u64, commit: u64, kinds: &str) -> AppendEntriesRequest<TypeConfig> {
        // The kind is what matters here, not the text.
        let metrics = || {
            let raw: Raw<loadtest_wire::plan::Merged> = serde_json::from_str("{}").unwrap();
            EntryPayload::Normal(Command::Merged(raw))
        };
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: id(prev),
            leader_commit: id(commit),
            entries: kinds
                .chars()
                .enumerate()
                .map(|(i, k)| Entry {
                    log_id: id(prev + 1 + i as u64).unwrap(),
                    payload: if k == 'm' {
                        metrics()
                    } else {
                        EntryPayload::Blank
                    },
                })
                .collect(),
        }
    }

    fn beat(prev: u64, commit: u64) -> Heartbeat {
        Heartbeat::of(&rpc(prev, commit, "")).unwrap()
    }

    #[test]
    fn a_repeat_within_the_keepalive_waits_and_news_of_a_new_place_does_not() {
        let t = Instant::now();
        let soon = t + Duration::from_millis(200);
        let known = Known::after(&rpc(9, 9, ""), t, None);
        assert!(known.can_wait(&beat(9, 9), soon));
        // A new log position is news; entries are never held back.
        assert!(!known.can_wait(&beat(10, 9), soon));
        assert!(Heartbeat::of(&rpc(9, 9, "m")).is_none());
        // Past the keepalive, the learner hears from the leader again.
        assert!(!known.can_wait(&beat(9, 9), t + LEARNER_KEEPALIVE));
        // A new term is news.
        let mut other = beat(9, 9);
        other.vote = Vote::new_committed(2, 2);
        assert!(!known.can_wait(&other, soon));
    }

    #[test]
    fn the_commit_of_metrics_entries_waits_and_the_commit_of_a_plan_entry_goes_out() {
        let t = Instant::now();
        let soon = t + Duration::from_millis(200);
        let settled = Known::after(&rpc(8, 8, ""), t, None);
        // Entries 9 and 10, metrics, sent with the commit at 8.
        let k = Known::after(&rpc(8, 8, "mm"), t, Some(&settled));
        assert!(
            k.can_wait(&beat(10, 10), soon),
            "only metrics became committed"
        );
        // Entry 11 is a plan entry.
        let k = Known::after(&rpc(10, 10, "p"), t, Some(&k));
        assert!(
            !k.can_wait(&beat(11, 11), soon),
            "a plan entry's commit is news"
        );
        // Once told, later metrics commits wait again.
        let k = Known::after(&rpc(11, 11, ""), t, Some(&k));
        let k = Known::after(&rpc(11, 11, "m"), t, Some(&k));
        assert!(k.can_wait(&beat(12, 12), soon));
        // A plan entry behind metrics entries: a commit short of it waits.
        let k = Known::after(&rpc(12, 12, "mpm"), t, Some(&k));
        assert!(k.can_wait(&beat(15, 13), soon));
        assert!(!k.can_wait(&beat(15, 14), soon));
    }

    #[test]
    fn without_history_every_commit_up_to_the_peers_log_end_goes_out() {
        let t = Instant::now();
        let soon = t + Duration::from_millis(200);
        // After a failed call the leader knows nothing of what entries 1-20 were.
        let k = Known::after(&rpc(20, 15, ""), t, None);
        assert!(!k.can_wait(&beat(20, 18), soon));
        let k = Known::after(&rpc(20, 18, ""), t, Some(&k));
        assert!(!k.can_wait(&beat(20, 19), soon));
        let k = Known::after(&rpc(20, 20, ""), t, Some(&k));
        let k = Known::after(&rpc(20, 20, "m"), t, Some(&k));
        assert!(k.can_wait(&beat(21, 21), soon));
    }
}
