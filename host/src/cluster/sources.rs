//! Config sources the leader reads by itself: after an election it reads
//! the configured source and runs what it finds through the same path as
//! `loadtest submit`. Each version is started once (the replicated state
//! remembers which), so a new leader does not rerun it and a bad config
//! is reported once, not retried in a loop.

use super::coordinator::{self, Submission, current_plan};
use super::node::NodeCtx;
use super::service;
use super::settings::ConfigSource;
use super::types::Command;
use crate::consul::kv::Kv;
use std::sync::Arc;
use std::time::Duration;

/// The state-machine key recording the last source version started.
const STARTED: &str = "source/started";

pub async fn watch(ctx: Arc<NodeCtx>) {
    let Some(ConfigSource::ConsulKv { addr, key }) = ctx.settings.config_source.clone() else {
        return;
    };
    let kv = Kv::new(&addr);
    let mut last_problem = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !ctx.is_leader() || current_plan(&ctx).is_some_and(|p| !p.status.is_over()) {
            continue;
        }
        let problem = match kv.fetch(&key).await {
            Err(e) => format!("reading the config from Consul: {e:#}"),
            Ok(None) => format!(
                "Consul KV has no config at `{key}` (CONSUL_CONFIG_KEY; agent {addr}); put one there: \
                 consul kv put {key} @config.yaml (builtin plugins), or loadtest push config.yaml --consul {addr} --key {key}"
            ),
            Ok(Some((shipped, index))) => {
                start(&ctx, &key, shipped, index).await;
                String::new()
            }
        };
        if !problem.is_empty() && problem != last_problem {
            tracing::error!("{problem}");
        }
        last_problem = problem;
    }
}

async fn start(ctx: &Arc<NodeCtx>, key: &str, shipped: crate::source::Shipped, index: u64) {
    let version = format!("consul-kv:{key}@{index}");
    if ctx.sm().get(STARTED).as_deref() == Some(version.as_str()) {
        return;
    }
    let mark = Command::Set {
        key: STARTED.into(),
        value: version.clone(),
    };
    if let Err(e) = service::write(ctx, mark).await {
        tracing::warn!("cannot record the config version: {e}");
        return;
    }
    for bytes in shipped.blobs.values() {
        ctx.local.blobs.insert(bytes.clone());
    }
    let sub = Submission {
        name: shipped.name,
        yaml: shipped.yaml,
        plugins: shipped.plugins,
        files: shipped.files,
    };
    match coordinator::submit(ctx, sub).await {
        Ok(run) => {
            tracing::info!(run = %run, "started the config at Consul KV `{key}` (modify index {index})")
        }
        Err(e) => tracing::error!(
            "the config at Consul KV `{key}` (modify index {index}) cannot run: {e}"
        ),
    }
}
