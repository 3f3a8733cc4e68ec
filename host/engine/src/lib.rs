//! The scenario engine: everything a standalone run needs, and nothing a
//! cluster adds. A config becomes a [`config::Bundle`]; [`workload::run`]
//! drives its scenarios' VUs (each a [`plugin`] instance) through the
//! per-VU HTTP [`client`], and [`metrics`] cuts what happened into
//! per-second intervals that [`threshold`]s judge.

pub mod bugs;
pub mod client;
pub mod config;
pub mod metrics;
pub mod plugin;
pub mod script;
pub mod threshold;
pub mod workload;
