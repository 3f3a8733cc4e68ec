//! The Raft type configuration and the replicated state machine's
//! commands. The state machine is small on purpose: it holds what every
//! node must agree on (a key-value map the coordinator builds plans in).

use crate::plan::{Merged, Plan};
use crate::raw::Raw;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A write to the replicated state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    Set {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Replace the current plan (a new run, or a new status).
    Plan(Box<Plan>),
    /// The leader's merged metrics of every share since its last flush,
    /// kept encoded until it is applied (see [`Raw`]).
    Merged(Raw<Merged>),
    /// An operator's graceful stop of the run (empty id: whatever runs),
    /// or a script's (`exec.test.abort()`), with its reason.
    Stop {
        run_id: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// What the Write RPC accepts: the operations an operator may ask for.
/// Plans, metric batches and results are written only by the leader's
/// own coordinator, so a caller holding the token still cannot forge a
/// plan (and aim load somewhere) or a result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// A graceful stop of the run (empty id: whatever runs); `reason` is
    /// a script's, when one aborted the test.
    Stop {
        run_id: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// A user key in the replicated state (`loadtest cluster-write`).
    Put { key: String, value: String },
    /// A live change to the running test (`loadtest pause`, `resume`,
    /// `scale`): the leader checks it and puts it in the plan with the
    /// moment every node applies it.
    Steer {
        change: loadtest_engine::workload::Change,
    },
}

/// Key prefixes the cluster itself keeps; `Op::Put` may not touch them.
const RESERVED: [&str; 3] = ["plan", "run/", "source/"];

impl Op {
    /// The state machine's command for this operation, or why it is
    /// refused.
    pub fn command(self) -> Result<Command, String> {
        match self {
            Op::Stop { run_id, reason } => Ok(Command::Stop { run_id, reason }),
            Op::Steer { .. } => Err("a live change is the leader's to schedule".into()),
            Op::Put { key, value } => {
                if key.is_empty() || RESERVED.iter().any(|r| key.starts_with(r)) {
                    return Err(format!(
                        "`{key}` is not a key operators may write: keys starting with {} belong to the cluster; pick another name",
                        RESERVED.join(", ")
                    ));
                }
                Ok(Command::Set { key, value })
            }
        }
    }
}

/// What a write returns: the previous value of a key, or whether a plan,
/// stop or merged entry was taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Applied {
    pub previous: Option<String>,
    #[serde(default)]
    pub changed: bool,
    /// What a live change does and when (`Op::Steer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<String>,
}

openraft::declare_raft_types!(
    /// Raft over the cluster's gRPC, with a redb log and state machine.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;

/// The Raft id of the node reachable at `addr`. Ids come from addresses
/// so that every node computes the same initial membership from the same
/// peer list, without having met the others first.
pub fn raft_id(addr: &str) -> NodeId {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(addr.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1
}

#[cfg(test)]
mod op_tests {
    use super::*;

    #[test]
    fn operators_cannot_write_the_clusters_own_keys() {
        let put = |k: &str| {
            Op::Put {
                key: k.into(),
                value: "x".into(),
            }
            .command()
        };
        assert!(matches!(put("setting"), Ok(Command::Set { .. })));
        for reserved in ["plan", "run/r1/result", "source/started", ""] {
            let e = put(reserved).unwrap_err();
            assert!(e.contains("not a key operators may write"), "{e}");
        }
    }
}
