//! Config sources the leader reads by itself: `CLUSTER_CONFIG_SOURCE=consul-kv`
//! (a key watched with Consul's blocking queries) or `gcs` (an object
//! polled for a new generation). When no run is going, a config it has
//! not started yet is run through the same path as `loadtest submit`;
//! while a run from this source is going, a changed config is checked and
//! switched in at a common moment (or refused, and the run goes on).
//!
//! The replicated state remembers the last version acted on, so a new
//! leader neither reruns it nor retries a bad one in a loop. A source
//! that cannot be read for a reason only an operator can fix (the key or
//! object missing, credentials refused) counts as a version too: the
//! leader logs it once, records it under `source/failed`, starts nothing,
//! and keeps looking quietly until the value or the error changes.

use crate::coordinator::{self, Submission, current_plan};
use crate::node::NodeCtx;
use crate::service;
use crate::settings::ConfigSource;
use loadtest_backends::consul::kv::Kv;
use loadtest_backends::gcs::{Gcs, Problem};
use loadtest_backends::shipped::Shipped;
use loadtest_wire::command::Command;
use loadtest_wire::plan::{Plan, Status};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state-machine key recording the last source version acted on.
const STARTED: &str = "source/started";

/// The state-machine key holding the source's last unfixable error.
const FAILED: &str = "source/failed";

/// How long one blocking query waits for a change.
const WAIT: Duration = Duration::from_secs(10);

/// Queries at most this often, whatever Consul answers.
const MIN_GAP: Duration = Duration::from_secs(1);

/// Where configs come from, opened, with the names runs and messages use.
struct Store {
    /// `consul-kv:<key>` or `gcs:<bucket>/<object>`: runs from this source.
    origin: String,
    /// Where it is, for messages.
    place: String,
    reader: Reader,
}

enum Reader {
    Consul {
        kv: Box<Kv>,
        addr: String,
        key: String,
    },
    /// GCS has no blocking reads: the object is read every `poll` (the
    /// envelope is small; plugins are separate objects).
    Gcs {
        gcs: Gcs,
        bucket: String,
        object: String,
        poll: Duration,
    },
}

/// One look at the source.
enum Look {
    /// The value and the number that identifies this write (Consul's
    /// modify index, the object's generation).
    Value(String, u64),
    /// It cannot run until an operator acts: abort once, say how to fix
    /// it. The number is where to wait from.
    Unfixable(String, u64),
    /// It may pass: log once, look again.
    Passing(String),
}

impl Look {
    fn summary(&self) -> String {
        match self {
            Look::Value(text, stamp) => format!("{} bytes at {stamp}", text.len()),
            Look::Unfixable(why, _) | Look::Passing(why) => why.clone(),
        }
    }
}

impl Store {
    async fn open(source: &ConfigSource) -> Result<Store, String> {
        let (origin, place) = source.names();
        let reader = match source.clone() {
            ConfigSource::ConsulKv { addr, key } => Reader::Consul {
                kv: Box::new(Kv::new(&addr)),
                addr,
                key,
            },
            ConfigSource::Gcs {
                bucket,
                object,
                poll,
            } => Reader::Gcs {
                gcs: Gcs::new().await.map_err(|e| e.to_string())?,
                bucket,
                object,
                poll,
            },
        };
        Ok(Store {
            origin,
            place,
            reader,
        })
    }

    /// What identifies one write, for messages.
    fn stamp_name(&self) -> &'static str {
        match self.reader {
            Reader::Consul { .. } => "modify index",
            Reader::Gcs { .. } => "generation",
        }
    }

    /// Reads the value; with `after`, a Consul read blocks until the
    /// index passes it, a GCS read waits out the poll interval first.
    async fn look(&self, after: Option<u64>) -> Look {
        match &self.reader {
            Reader::Consul { kv, addr, key } => {
                match kv.watch(key, after.unwrap_or(0), WAIT).await {
                    Ok((Some(text), index)) => Look::Value(text, index),
                    Ok((None, index)) => Look::Unfixable(
                        format!(
                            "Consul KV has no config at `{key}` (CONSUL_CONFIG_KEY; agent {addr}); put one there: \
                     consul kv put {key} @config.yaml (builtin plugins), or loadtest push config.yaml --consul {addr} --key {key}"
                        ),
                        index,
                    ),
                    Err(e) => {
                        Look::Passing(format!("reading the config from Consul: {e:#}; retrying"))
                    }
                }
            }
            Reader::Gcs {
                gcs,
                bucket,
                object,
                poll,
            } => {
                if after.is_some() {
                    tokio::time::sleep(*poll).await;
                }
                match gcs.read(bucket, object).await {
                    Ok(Some((bytes, generation))) => match String::from_utf8(bytes) {
                        Ok(text) => Look::Value(text, generation as u64),
                        Err(_) => Look::Unfixable(
                            format!(
                                "gs://{bucket}/{object} is not UTF-8 text; upload a YAML config (loadtest push config.yaml --gcs gs://{bucket}/{object})"
                            ),
                            0,
                        ),
                    },
                    Ok(None) => Look::Unfixable(
                        format!(
                            "gs://{bucket}/{object} does not exist (GCS_CONFIG_BUCKET, GCS_CONFIG_OBJECT); upload it: \
                         loadtest push config.yaml --gcs gs://{bucket}/{object}"
                        ),
                        0,
                    ),
                    Err(p) if p.is_permanent() => Look::Unfixable(p.to_string(), 0),
                    Err(p) => Look::Passing(format!("reading the config from GCS: {p}; retrying")),
                }
            }
        }
    }

    /// The config a value names, with every byte it references.
    async fn bundle_of(&self, text: String) -> Result<Shipped, String> {
        match &self.reader {
            Reader::Consul { kv, key, .. } => {
                kv.bundle_of(key, text).await.map_err(|e| format!("{e:#}"))
            }
            Reader::Gcs {
                gcs,
                bucket,
                object,
                ..
            } => gcs
                .bundle_of(bucket, object, text)
                .await
                .map_err(|e: Problem| e.to_string()),
        }
    }
}

pub async fn watch(ctx: Arc<NodeCtx>) {
    let Some(source) = ctx.settings.config_source.clone() else {
        return;
    };
    // Only a leader reads; opening waits for the first leadership so a
    // follower never asks for credentials it does not need.
    while !ctx.is_leader() {
        tokio::time::sleep(MIN_GAP).await;
    }
    let store = match Store::open(&source).await {
        Ok(s) => s,
        Err(e) => {
            // Only a restart with other settings can fix this.
            let (origin, place) = source.names();
            let problem = fail(&ctx, &origin, &place, e, "settings").await;
            report(&mut String::new(), problem);
            return;
        }
    };
    let mut index = 0u64;
    let mut last_problem = String::new();
    let mut last_query = Instant::now() - MIN_GAP;
    let mut failing_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(MIN_GAP.saturating_sub(last_query.elapsed())).await;
        if !ctx.is_leader() {
            index = 0;
            last_query = Instant::now();
            continue;
        }
        last_query = Instant::now();
        // Waiting for a change only while a run from this source goes or
        // the source is known bad; otherwise read now, so a finished run
        // is followed at once.
        let waiting = current_plan(&ctx).is_some_and(|p| !p.status.is_over())
            || ctx.sm().get(FAILED).is_some();
        let after = waiting.then_some(index);
        let look = store.look(after).await;
        tracing::debug!("looked at {}: {}", store.place, look.summary());
        let (problem, handled, new_index) = match look {
            Look::Passing(problem) => {
                // The agent may come back restarted, its indexes counting
                // from the start again: read afresh rather than block on
                // an index it will not reach for a while.
                index = 0;
                let since = *failing_since.get_or_insert_with(Instant::now);
                let limit = ctx.settings.config_timeout;
                if since.elapsed() >= limit {
                    // Not a blip: abort once, keep looking quietly.
                    let why = format!(
                        "{problem} (still failing after CLUSTER_CONFIG_TIMEOUT_SECS={}s)",
                        limit.as_secs()
                    );
                    let logged = fail(&ctx, &store.origin, &store.place, why, "unavailable").await;
                    report(&mut last_problem, logged);
                } else {
                    report(&mut last_problem, problem);
                }
                continue;
            }
            Look::Unfixable(why, stamp) => {
                failing_since = None;
                let digest = crate::blobs::digest(why.as_bytes());
                let logged = fail(&ctx, &store.origin, &store.place, why, &digest[..12]).await;
                (logged, true, stamp)
            }
            Look::Value(text, stamp) => {
                failing_since = None;
                match act(&ctx, &store, text, stamp).await {
                    Ok(handled) => (String::new(), handled, stamp),
                    Err(e) => (e, true, stamp),
                }
            }
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

/// An unfixable source: recorded and logged once per distinct error
/// (`kind`; a new leader finds it recorded and stays quiet). Returns
/// what is left to log.
async fn fail(ctx: &Arc<NodeCtx>, origin: &str, place: &str, why: String, kind: &str) -> String {
    let version = format!("{origin}#error:{kind}");
    if ctx.sm().get(STARTED).as_deref() == Some(version.as_str()) {
        return String::new();
    }
    let message = format!("the run from {place} is aborted: {why}");
    let record = Command::Set {
        key: FAILED.into(),
        value: message.clone(),
    };
    if let Err(e) = service::write(ctx, record).await {
        return format!("cannot record the source error: {e}");
    }
    if remember(ctx, version).await.is_err() {
        return message;
    }
    tracing::error!("{message}");
    String::new()
}

/// Logs a problem once, not on every query.
fn report(last: &mut String, problem: String) {
    if !problem.is_empty() && problem != *last {
        tracing::error!("{problem}");
    }
    *last = problem;
}

/// A version of the config: where, which write, and what it says (an
/// agent that lost its data counts indexes from the start again).
fn version_of(store: &Store, stamp: u64, text: &str) -> String {
    let digest = crate::blobs::digest(text.as_bytes());
    format!("{}@{stamp}#{}", store.origin, &digest[..12])
}

/// Acts on the value read; `Ok(false)` when it must wait (a run from
/// elsewhere, or one still being set up or stopped).
async fn act(ctx: &Arc<NodeCtx>, store: &Store, text: String, stamp: u64) -> Result<bool, String> {
    let plan = current_plan(ctx);
    let running = plan.as_ref().filter(|p| !p.status.is_over());
    let version = version_of(store, stamp, &text);
    if ctx.sm().get(STARTED).as_deref() == Some(version.as_str()) {
        return Ok(true);
    }
    if ctx.sm().get(FAILED).is_some() {
        let _ = service::write(ctx, Command::Delete { key: FAILED.into() }).await;
    }
    match running {
        Some(p) if p.origin != store.origin || p.status != Status::Running => Ok(false),
        Some(p) => reload(ctx, store, text, stamp, version, p)
            .await
            .map(|()| true),
        None => start(ctx, store, text, stamp, version).await.map(|()| true),
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

/// `gs://b/o (generation 17)`: one write of the source, for messages.
fn written(store: &Store, stamp: u64) -> String {
    format!("{} ({} {stamp})", store.place, store.stamp_name())
}

/// Starts a run; the version is recorded once the outcome is known, so a
/// bad config is reported once and a leader that dies midway leaves it
/// to the next one.
async fn start(
    ctx: &Arc<NodeCtx>,
    store: &Store,
    text: String,
    stamp: u64,
    version: String,
) -> Result<(), String> {
    let cannot = |e: String| format!("the config at {} cannot run: {e}", written(store, stamp));
    let outcome = match store.bundle_of(text).await {
        Ok(shipped) => coordinator::submit(ctx, submission(ctx, shipped), &store.origin)
            .await
            .map_err(cannot),
        Err(e) => Err(cannot(e)),
    };
    remember(ctx, version).await?;
    let run = outcome?;
    tracing::info!(run = %run, "started the config at {}", written(store, stamp));
    Ok(())
}

/// A changed config while its run goes: switch to it, or refuse it and
/// keep running. An unchanged value (Consul bumps the index on every
/// write, a re-upload makes a new generation) is ignored.
async fn reload(
    ctx: &Arc<NodeCtx>,
    store: &Store,
    text: String,
    stamp: u64,
    version: String,
    plan: &Plan,
) -> Result<(), String> {
    let shipped = match store.bundle_of(text).await {
        Ok(s) => s,
        Err(e) => return refuse(ctx, store, stamp, version, &e).await,
    };
    let same = coordinator::version_of(&shipped.yaml) == plan.version
        && shipped.plugins == plan.plugins
        && shipped.files == plan.files;
    if same {
        return remember(ctx, version).await;
    }
    match coordinator::switch(ctx, submission(ctx, shipped), &written(store, stamp)).await {
        Ok(_) => remember(ctx, version).await,
        Err(e) => refuse(ctx, store, stamp, version, &e).await,
    }
}

async fn refuse(
    ctx: &Arc<NodeCtx>,
    store: &Store,
    stamp: u64,
    version: String,
    why: &str,
) -> Result<(), String> {
    let _ = remember(ctx, version).await;
    let event = format!(
        "config update at {} refused, the run goes on: {why}",
        written(store, stamp)
    );
    coordinator::note(ctx, event.clone()).await;
    Err(event)
}
