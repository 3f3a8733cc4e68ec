//! Cluster mode: the same binary as a node of a self-organising cluster.
//! Raft (openraft) over tonic gRPC, static discovery, durable state in
//! redb, and a health endpoint.

mod health;
mod network;
mod node;
mod rpc;
mod service;
mod settings;
mod store;
mod types;

pub use node::run;
pub use service::write_remote;
pub use settings::Settings;
pub use types::Command;
