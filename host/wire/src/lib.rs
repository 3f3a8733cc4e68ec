//! What crosses between nodes and into Raft: the gRPC protocol ([`rpc`]),
//! the replicated state machine's commands and Raft types ([`command`]),
//! and the record of a distributed run it holds ([`plan`]). Everything here
//! carries [`FORMAT`], so a node that meets a message or a stored state
//! written by a newer loadtest says so instead of misreading it.

pub mod auth;
pub mod command;
pub mod plan;
pub mod raw;
pub mod rpc;
mod version;

pub use version::{FORMAT, Versioned, check_format};
