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
                // The agent may come back restarted, its indexes counting
                // from the start again: read afresh rather than block on an
                // index it will not reach for a while.
                index = 0;
                continue;
            }
        };
        let (problem, handled) = match value {
            None => (
                format!(
                    "Consul KV has no config at `{key}` (CONSUL_CONFIG_KEY; agent {addr}); put one there: \
                     consul kv put {key} @config.yaml (builtin plugins), or loadtest push config.yaml --consul {addr} --key {key}"
                ),
                true,
            ),
            Some(text) => match act(&ctx, &kv, &key, text, new_index).await {
                Ok(handled) => (String::new(), handled),
                Err(e) => (e, true),
            },
        };
        // A value left for later (a run still being set up) is read again
        // rather than waited past. Consul's rule: an index that goes
        // backwards means start over.
        if handled {
            index = if new_index < index { 0 } else { new_index };
        }
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

/// A version of the config: where, which write, and what it says (an
/// agent that lost its data counts indexes from the start again).
fn version_of(key: &str, index: u64, text: &str) -> String {
    let digest = super::blobs::digest(text.as_bytes());
    format!("consul-kv:{key}@{index}#{}", &digest[..12])
}

/// Acts on the value read; `Ok(false)` when it must wait (a run from
/// elsewhere, or one still being set up or stopped).
async fn act(
    ctx: &Arc<NodeCtx>,
    kv: &Kv,
    key: &str,
    text: String,
    index: u64,
) -> Result<bool, String> {
    let plan = current_plan(ctx);
    let running = plan.as_ref().filter(|p| !p.status.is_over());
    let version = version_of(key, index, &text);
    if ctx.sm().get(STARTED).as_deref() == Some(version.as_str()) {
        return Ok(true);
    }
    match running {
        Some(p) if p.origin != origin_of(key) || p.status != Status::Running => Ok(false),
        Some(p) => reload(ctx, kv, key, text, index, version, p)
            .await
            .map(|()| true),
        None => start(ctx, kv, key, text, index, version)
            .await
            .map(|()| true),
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
    Submission::of(&shipped)
}

/// Starts a run; the version is recorded once the outcome is known, so a
/// bad config is reported once and a leader that dies midway leaves it
/// to the next one.
async fn start(
    ctx: &Arc<NodeCtx>,
    kv: &Kv,
    key: &str,
    text: String,
    index: u64,
    version: String,
) -> Result<(), String> {
    let cannot = |e: String| {
        format!("the config at Consul KV `{key}` (modify index {index}) cannot run: {e}")
    };
    let outcome = match kv.bundle_of(key, text).await {
        Ok(shipped) => coordinator::submit(ctx, submission(ctx, shipped), &origin_of(key))
            .await
            .map_err(cannot),
        Err(e) => Err(cannot(format!("{e:#}"))),
    };
    remember(ctx, version).await?;
    let run = outcome?;
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
    version: String,
    plan: &Plan,
) -> Result<(), String> {
    let shipped = match kv.bundle_of(key, text).await {
        Ok(s) => s,
        Err(e) => return refuse(ctx, key, index, version, &format!("{e:#}")).await,
    };
    let same = coordinator::version_of(&shipped.yaml) == plan.version
        && shipped.plugins == plan.plugins
        && shipped.files == plan.files;
    if same {
        return remember(ctx, version).await;
    }
    let origin = format!("Consul KV `{key}` modify index {index}");
    match coordinator::switch(ctx, submission(ctx, shipped), &origin).await {
        Ok(_) => remember(ctx, version).await,
        Err(e) => refuse(ctx, key, index, version, &e).await,
    }
}

async fn refuse(
    ctx: &Arc<NodeCtx>,
    key: &str,
    index: u64,
    version: String,
    why: &str,
) -> Result<(), String> {
    let _ = remember(ctx, version).await;
    let event = format!(
        "config update at Consul KV `{key}` (modify index {index}) refused, the run goes on: {why}"
    );
    coordinator::note(ctx, event.clone()).await;
    Err(event)
}
