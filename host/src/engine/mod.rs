//! The one engine: turns a Bundle into load. Standalone runs call it with
//! the whole of every scenario; a cluster node will call it with its segment.

mod segment;
mod vu;

pub use segment::Segment;

use crate::client::{Client, ClientOptions};
use crate::config::{Bundle, Executor};
use crate::metrics::{Metrics, Sink};
use crate::plugin::{Limits, Plugin, Runtime};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the operator asked for while the run is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    No,
    /// Start no new iterations; let running ones finish within gracefulStop.
    Graceful,
    /// Interrupt everything now.
    Now,
}

/// One scenario, resolved and ready to run.
struct Prepared {
    name: Arc<str>,
    plugin: Arc<Plugin>,
    params: Arc<str>,
    executor: Executor,
    graceful_stop: Duration,
    vus: u32,
    /// Global 1-based id of this node's first VU in the scenario.
    first_vu: u32,
}

/// Everything a finished (or stopped) run produced.
pub struct Outcome {
    pub metrics: Metrics,
    pub elapsed: Duration,
    pub stopped_early: bool,
}

/// Compiles every plugin of the bundle, then runs all scenarios together.
/// Plugin problems are reported before any load is sent.
pub async fn run(
    bundle: &Bundle,
    runtime: Arc<Runtime>,
    segment: Segment,
    stop: watch::Receiver<Stop>,
    live: Option<Sink>,
) -> anyhow::Result<Outcome> {
    let config = &bundle.config;
    let client = Client::new(&ClientOptions {
        base: config.target.clone(),
        timeout: config.http.timeout.0,
        connect_timeout: config.http.connect_timeout.0,
        http2_prior_knowledge: config.http.http2_prior_knowledge,
    })?;
    let limits = Limits::new(config.sandbox.memory_mb, config.sandbox.cpu_per_call.0);
    let prepared = prepare(bundle, &runtime, segment)?;

    let sink: Sink = live.unwrap_or_else(|| Arc::new(Mutex::new(Metrics::default())));
    let start = Instant::now();
    let mut vus = JoinSet::new();
    for p in &prepared {
        for i in 0..p.vus {
            let spec = vu::VuSpec {
                id: p.first_vu + i,
                scenario: p.name.clone(),
                plugin: p.plugin.clone(),
                params: p.params.clone(),
                plan: vu::Plan::from_executor(&p.executor, start),
                graceful_stop: p.graceful_stop,
            };
            let deps = vu::VuDeps {
                runtime: runtime.clone(),
                client: client.clone(),
                sink: sink.clone(),
                limits,
                stop: stop.clone(),
                epoch: start,
            };
            vus.spawn(vu::run(spec, deps));
        }
    }
    while let Some(r) = vus.join_next().await {
        if let Err(e) = r {
            tracing::error!("a VU task failed: {e}");
        }
    }
    let elapsed = start.elapsed();
    let metrics = std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Outcome {
        metrics,
        elapsed,
        stopped_early: *stop.borrow() != Stop::No,
    })
}

fn prepare(bundle: &Bundle, runtime: &Runtime, segment: Segment) -> anyhow::Result<Vec<Prepared>> {
    let mut out = Vec::new();
    for (name, scenario) in &bundle.config.scenarios {
        let bytes = bundle.plugins.get(&scenario.plugin).ok_or_else(|| {
            anyhow::anyhow!(
                "scenario `{name}`: plugin `{}` was not loaded",
                scenario.plugin
            )
        })?;
        let plugin = runtime.load(&scenario.plugin, bytes)?;
        let total = scenario.executor.vus();
        out.push(Prepared {
            name: name.as_str().into(),
            plugin,
            params: serde_json::to_string(&scenario.params)?.into(),
            executor: segment.apply(&scenario.executor),
            graceful_stop: scenario.graceful_stop,
            vus: segment.share(total.into()) as u32,
            first_vu: segment.offset(total.into()) as u32 + 1,
        });
    }
    Ok(out)
}
