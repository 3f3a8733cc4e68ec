//! Cluster mode: the same binary as a node of a self-organising cluster.
//! Raft (openraft) over tonic gRPC, discovery (static, Consul, bucket
//! heartbeats), durable state in redb, and a health endpoint; distributed
//! runs (plan, distribution, common start, metric streaming, failover) on
//! top; and the operator's commands that drive a cluster from outside.

mod blobs;
pub mod certs;
mod config_watch;
mod coordinator;
mod dns;
mod health;
mod heartbeats;
mod intake;
mod liveness;
mod local;
mod log_cache;
mod mirror;
mod network;
mod node;
mod operator;
mod publish;
mod registry;
mod service;
mod settings;
mod snapshots;
mod steering;
mod store;
mod transport;
mod worker;

pub use loadtest_wire::command::Op;
pub use node::run;
pub use operator::{report, status, steer, stop, submit};
pub use service::write_remote;
pub use settings::Settings;
