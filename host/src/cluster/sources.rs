//! Config sources the leader reads by itself. With
//! `CLUSTER_CONFIG_SOURCE=consul-kv` the leader watches the key with
//! Consul's blocking queries: when no run is going, a config it has not
//! started yet is run through the same path as `loadtest submit`; while a
//! run from this source is going, a changed config is checked and
//! switched in at a common moment (or refused, and the run goes on). The
//! replicated state remembers the last version acted on, so a new leader
//! neither reruns it nor retries a bad one in a loop.

use super::coordinator::{self, Submission, current_plan};
use super::node::NodeCtx;
use super::plan::{Plan, Status};
use super::service;
use super::settings::ConfigSource;
use super::types::Command;
use crate::consul::kv::Kv;
use crate::source::Shipped;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state-machine key recording the last source version acted on.
const STARTED: &str = "source/started";

/// How long one blocking query waits for a change.
const WAIT: Duration = Duration::from_secs(10);

/// Queries at most this often, whatever Consul answers.
const MIN_GAP: Duration = Duration::from_secs(1);

pub async fn watch(ctx: Arc<NodeCtx>) {
    let Some(ConfigSource::ConsulKv { addr, key }) = ctx.settings.config_source.clone() else {
        return;
    };
    let kv = Kv::new(&addr);
    let mut index = 0u64;
    let mut last_problem = String::new();
    let mut last_query = Instant::now() - MIN_GAP;
    loop {
        tokio::time::sleep(MIN_GAP.saturating_sub(last_query.elapsed())).await;
        if !ctx.is_leader() {
            index = 0;
            last_query = Instant::now();
            continue;
        }
        last_query = Instant::now();
        // Blocking only while waiting for a change to a run from this
        // source; otherwise read now, so a finished run is followed at once.
        let blocking = current_plan(&ctx).is_some_and(|p| !p.status.is_over());
        let asked = if blocking { index } else { 0 };
        let (value, new_index) = match kv.watch(&key, asked, WAIT).await {
            Ok(r) => r,
            Err(e) => {
                report(
                    &mut last_problem,
                    format!("reading the config from Consul: {e:#}; retrying"),
                );
                continue;
            }
        };
        // Consul's rule: an index that goes backwards means start over.
        index = if new_index < index { 0 } else { new_index };
        let problem = match value {
            None => format!(
                "Consul KV has no config at `{key}` (CONSUL_CONFIG_KEY; agent {addr}); put one there: \
                 consul kv put {key} @config.yaml (builtin plugins), or loadtest push config.yaml --consul {addr} --key {key}"
            ),
            Some(text) => match act(&ctx, &kv, &key, text, new_index).await {
                Ok(()) => String::new(),
                Err(e) => e,
            },
        };
        report(&mut last_problem, problem);
    }
}

/// Logs a problem once, not on every query.
fn report(last: &mut String, problem: String) {
    if !problem.is_empty() && problem != *last {
        tracing::error!("{problem}");
    }
    *last = problem;
}

fn origin_of(key: &str) -> String {
    format!("consul-kv:{key}")
}

fn version_of(key: &str, index: u64) -> String {
    format!("consul-kv:{key}@{index}")
}

async fn act(
    ctx: &Arc<NodeCtx>,
    kv: &Kv,
    key: &str,
    text: String,
    index: u64,
) -> Result<(), String> {
    let plan = current_plan(ctx);
    let running = plan.as_ref().filter(|p| !p.status.is_over());
    let acted = ctx.sm().get(STARTED);
    match running {
        // A run from elsewhere (submit) is going: this config waits.
        Some(p) if p.origin != origin_of(key) => Ok(()),
        Some(p) if p.status == Status::Running => reload(ctx, kv, key, text, index, p).await,
        Some(_) => Ok(()),
        None if acted.as_deref() == Some(version_of(key, index).as_str()) => Ok(()),
        None => start(ctx, kv, key, text, index).await,
    }
}

async fn remember(ctx: &Arc<NodeCtx>, version: String) -> Result<(), String> {
    let mark = Command::Set {
        key: STARTED.into(),
        value: version,
    };
    service::write(ctx, mark)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot record the config version: {e}"))
}

fn submission(ctx: &NodeCtx, shipped: Shipped) -> Submission {
    for bytes in shipped.blobs.values() {
        ctx.local.blobs.insert(bytes.clone());
    }
    Submission {
        name: shipped.name,
        yaml: shipped.yaml,
        plugins: shipped.plugins,
        files: shipped.files,
    }
}

async fn start(
    ctx: &Arc<NodeCtx>,
    kv: &Kv,
    key: &str,
    text: String,
    index: u64,
) -> Result<(), String> {
    // Recorded first: a config that cannot run is reported once.
    remember(ctx, version_of(key, index)).await?;
    let shipped = kv.bundle_of(key, text).await.map_err(|e| {
        format!("the config at Consul KV `{key}` (modify index {index}) cannot run: {e:#}")
    })?;
    let run = coordinator::submit(ctx, submission(ctx, shipped), &origin_of(key))
        .await
        .map_err(|e| {
            format!("the config at Consul KV `{key}` (modify index {index}) cannot run: {e}")
        })?;
    tracing::info!(run = %run, "started the config at Consul KV `{key}` (modify index {index})");
    Ok(())
}

/// A changed config while its run goes: switch to it, or refuse it and
/// keep running. An unchanged value (Consul bumps the index on every
/// write) is ignored.
async fn reload(
    ctx: &Arc<NodeCtx>,
    kv: &Kv,
    key: &str,
    text: String,
    index: u64,
    plan: &Plan,
) -> Result<(), String> {
    let version = version_of(key, index);
    if ctx.sm().get(STARTED).as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    let shipped = match kv.bundle_of(key, text).await {
        Ok(s) => s,
        Err(e) => return refuse(ctx, key, index, &format!("{e:#}")).await,
    };
    let same = super::blobs::digest(shipped.yaml.as_bytes())[..12] == plan.version
        && shipped.plugins == plan.plugins
        && shipped.files == plan.files;
    remember(ctx, version).await?;
    if same {
        return Ok(());
    }
    let origin = format!("Consul KV `{key}` modify index {index}");
    match coordinator::switch(ctx, submission(ctx, shipped), &origin).await {
        Ok(_) => Ok(()),
        Err(e) => refuse(ctx, key, index, &e).await,
    }
}

async fn refuse(ctx: &Arc<NodeCtx>, key: &str, index: u64, why: &str) -> Result<(), String> {
    let _ = remember(ctx, version_of(key, index)).await;
    let event = format!(
        "config update at Consul KV `{key}` (modify index {index}) refused, the run goes on: {why}"
    );
    coordinator::note(ctx, event.clone()).await;
    Err(event)
}
