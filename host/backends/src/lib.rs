//! Where configs live when they are not a local file, and where nodes find
//! each other: a [`shipped::Shipped`] config (the YAML and every byte it
//! references) and the clients of the services that hold it. Each service
//! is a cargo feature, on by default: `consul` (KV bundles, the agent's
//! service API) and `gcs` (bucket objects, listing, conditional writes).

#[cfg(feature = "consul")]
pub mod consul;
#[cfg(feature = "gcs")]
pub mod gcs;
pub mod shipped;
