//! Cluster mode: the same binary as a node of a self-organising cluster.
//! Raft (openraft) over tonic gRPC, static discovery, durable state in
//! redb, and a health endpoint; distributed runs (plan, distribution,
//! common start, metric streaming, failover) on top.

mod blobs;
mod client;
mod coordinator;
mod health;
mod heartbeats;
mod local;
mod network;
mod node;
mod plan;
mod registry;
mod rpc;
mod service;
mod settings;
mod sources;
mod store;
mod types;
mod worker;

pub use client::{report, status, stop, submit};
pub use node::run;
pub use service::write_remote;
pub use settings::Settings;
pub use types::Command;
