//! The Raft type configuration and the replicated state machine's
//! commands. The state machine is small on purpose: it holds what every
//! node must agree on (a key-value map the coordinator builds plans in).

use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A write to the replicated state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Command {
    Set { key: String, value: String },
    Delete { key: String },
}

/// What a write returns: the previous value of the key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Applied {
    pub previous: Option<String>,
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
