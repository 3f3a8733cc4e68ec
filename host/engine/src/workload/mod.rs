//! The one engine: turns a Bundle into load. Standalone runs call it with
//! the whole of every scenario; a cluster node calls it with its segment.

pub mod abort;
mod executor;
mod fair;
mod lifecycle;
mod pressure;
mod progress;
pub(crate) mod schedule;
mod segment;
pub mod steer;
mod vu;

pub use lifecycle::{LifecycleError, SetupData, setup, teardown};
pub use segment::Segment;
pub use steer::{Change, Steering, check as check_change};

use crate::client::{Client, ClientOptions};
use crate::config::{Bundle, Executor};
use crate::metrics::{Collector, Filters, Metrics, Recorder, Row, Sink};
use crate::plugin::{Limits, Plugin, Runtime};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// When a run's clock starts. Standalone runs start as soon as their VUs
/// are ready; cluster nodes start on the plan's common `start_at`, and a
/// node taking over a lost node's segment joins a clock already running.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// The shared start; `None` starts right after init.
    pub start_at: Option<Instant>,
    /// Skip this much of the schedule (load before it was someone else's).
    pub resume_from: Duration,
}

/// Everything a VU of one scenario shares with the others.
pub struct ScenarioCtx {
    pub name: Arc<str>,
    pub executor: Executor,
    pub segment: Segment,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub exec: Vec<(String, u32)>,
    /// Arrivals scheduled before this offset are not this run's to make.
    pub resume_from: Duration,
    plugin: Arc<Plugin>,
    params: Arc<str>,
    runtime: Arc<Runtime>,
    client: Client,
    files: crate::plugin::Files,
    shared_arrays: crate::plugin::SharedArrays,
    sink: Sink,
    limits: Limits,
    stop: watch::Receiver<Stop>,
    epoch: Instant,
    vu_ids: Arc<AtomicU32>,
    /// VUs in an iteration right now, for progress and reports.
    pub active: Arc<AtomicU32>,
    /// What `k6/execution` reads of the run: counts and how far it is.
    pub progress: Arc<progress::ScenarioProgress>,
    /// Iterations begun on this node, every VU's (k6's
    /// `scenario.iterationInInstance` is the count before each).
    iterations_begun: std::sync::atomic::AtomicU64,
    /// What the scenario's setup returned.
    setup_data: Option<Arc<str>>,
    abort: abort::TestAbort,
    failed: abort::TestFail,
    log_budget: Arc<crate::plugin::LogBudget>,
    /// The scenario's share of the generator beside the others.
    lane: fair::Lane,
    /// Whether the generator is short of CPU right now.
    pressure: Arc<pressure::Pressure>,
    /// Whether the operator paused the run.
    paused: watch::Receiver<bool>,
    /// What the operator can change in this scenario.
    knob: steer::Knob,
}

impl ScenarioCtx {
    fn recorder(&self) -> Recorder {
        Recorder::new(self.name.clone(), self.sink.clone())
    }

    /// The number of the iteration a VU begins, among this node's.
    fn begin_iteration(&self) -> u64 {
        self.iterations_begun.fetch_add(1, Ordering::Relaxed)
    }

    fn next_vu_id(&self) -> u32 {
        self.vu_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Everything a finished (or stopped) run produced.
pub struct Outcome {
    pub metrics: Metrics,
    /// Per-second time series.
    pub rows: Vec<Row>,
    pub elapsed: Duration,
    pub stopped_early: bool,
}

/// A running scenario as progress and the exporter see it: its name, its
/// (segmented) executor, and how many VUs are in an iteration now.
pub type LiveScenario = (Arc<str>, Executor, Arc<AtomicU32>);

/// Live view of a running test, for progress and the Prometheus endpoint.
#[derive(Clone)]
pub struct Live {
    pub sink: Sink,
    pub scenarios: Arc<Mutex<Vec<LiveScenario>>>,
    pub started: Arc<Mutex<Option<Instant>>>,
    /// When the clock actually began here (after waiting for a shared
    /// start): what start skew across nodes is measured with.
    pub began: Arc<Mutex<Option<Instant>>>,
    /// The run's live controls.
    pub steering: Steering,
    /// Signalled each time seconds close: a cluster node sends them on
    /// at once instead of on its own tick, so the merged series trails
    /// the clock by as little as it can.
    pub closed: Arc<tokio::sync::Notify>,
    /// Set when a script ends the whole test (k6's `exec.test.abort()`).
    pub abort: abort::TestAbort,
    /// Set when a script marks the test failed (k6's `exec.test.fail()`).
    pub failed: abort::TestFail,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Live {
        Self::with_collector(Collector::new(Instant::now()))
    }

    /// A live view that keeps a series for each of the thresholds' tag
    /// filters (see [`crate::threshold::filters`]).
    pub fn with_filters(filters: Filters) -> Live {
        Self::with_collector(Collector::new(Instant::now()).with_filters(filters))
    }

    /// A live view whose intervals count from `epoch` and are kept for a
    /// cluster node's metric stream.
    pub fn streaming(epoch: Instant, filters: Filters) -> Live {
        Self::with_collector(Collector::new(epoch).streaming().with_filters(filters))
    }

    /// The live view of a run whose load goes elsewhere (an operator's
    /// copy of a cluster run): its seconds come in through
    /// [`Collector::absorb`], counted from `epoch`, the run's start.
    pub fn mirror(epoch: Instant, filters: Filters) -> Live {
        let live = Self::with_collector(Collector::new(epoch).with_filters(filters));
        *live.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(epoch);
        live
    }

    fn with_collector(c: Collector) -> Live {
        Live {
            sink: Arc::new(Mutex::new(c)),
            scenarios: Arc::default(),
            started: Arc::default(),
            began: Arc::default(),
            steering: Steering::new(),
            closed: Arc::default(),
            abort: Default::default(),
            failed: Default::default(),
        }
    }

    /// VUs in an iteration right now, over all scenarios.
    pub fn busy_vus(&self) -> u64 {
        let s = self.scenarios.lock().unwrap_or_else(|p| p.into_inner());
        s.iter()
            .map(|(_, _, a)| u64::from(a.load(Ordering::Relaxed)))
            .sum()
    }

    /// Everything measured so far.
    pub fn cumulative(&self) -> Metrics {
        self.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cumulative()
    }

    /// Time since the scenarios' clock started (zero during init).
    pub fn elapsed(&self) -> Duration {
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// One context per scenario: its plugin compiled, its share of the load
/// cut, and what its VUs share.
fn contexts(
    bundle: &Bundle,
    runtime: &Arc<Runtime>,
    segment: Segment,
    stop: &watch::Receiver<Stop>,
    live: &Live,
    resume_from: Duration,
    setup: &SetupData,
) -> anyhow::Result<Vec<Arc<ScenarioCtx>>> {
    let config = &bundle.config;
    let client = client_of(config, segment)?;
    let limits = Limits::of(&config.sandbox);
    let epoch = Instant::now();
    let vu_ids = Arc::new(AtomicU32::new(0));
    let instance = Arc::new(progress::Instance::default());
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let pressure = pressure::Pressure::new();
    let lanes = fair::Lanes::new(config.scenarios.len(), workers, pressure.clone());
    let mut ctxs = Vec::new();
    for (i, (name, scenario)) in config.scenarios.iter().enumerate() {
        let bytes = bundle.plugins.get(&scenario.plugin).ok_or_else(|| {
            anyhow::anyhow!(
                "scenario `{name}`: plugin `{}` was not loaded",
                scenario.plugin
            )
        })?;
        let executor = segment.apply(&scenario.executor);
        let progress = Arc::new(progress::ScenarioProgress::new(
            instance.clone(),
            vu_ids.clone(),
            &executor,
            |n| segment.share(n),
        ));
        let ctx = Arc::new(ScenarioCtx {
            name: name.as_str().into(),
            executor,
            progress,
            segment,
            start_time: scenario.start_time,
            graceful_stop: scenario.graceful_stop,
            exec: scenario.exec.clone(),
            resume_from,
            plugin: runtime.load(&scenario.plugin, bytes)?,
            params: serde_json::to_string(&scenario.params)?.into(),
            runtime: runtime.clone(),
            client: client.clone(),
            files: bundle.files.clone(),
            shared_arrays: bundle.shared_arrays.clone(),
            sink: live.sink.clone(),
            limits,
            stop: stop.clone(),
            epoch,
            vu_ids: vu_ids.clone(),
            active: Arc::new(AtomicU32::new(0)),
            iterations_begun: Default::default(),
            setup_data: setup.of(name),
            abort: live.abort.clone(),
            failed: live.failed.clone(),
            log_budget: Arc::new(crate::plugin::LogBudget::new(
                config.sandbox.logs_per_second,
            )),
            lane: lanes.lane(i),
            pressure: pressure.clone(),
            paused: live.steering.paused(),
            knob: live
                .steering
                .register(&name.as_str().into(), &scenario.executor),
        });
        let entry = (ctx.name.clone(), ctx.executor.clone(), ctx.active.clone());
        live.scenarios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        ctxs.push(ctx);
    }
    Ok(ctxs)
}

/// The HTTP client every VU of a run (or of this node's `segment` of it)
/// shares, from the config's `http`.
fn client_of(config: &crate::config::Config, segment: Segment) -> anyhow::Result<Client> {
    Client::new(&ClientOptions {
        base: config.target.clone(),
        timeout: config.http.timeout.0,
        connect_timeout: config.http.connect_timeout.0,
        http2_prior_knowledge: config.http.http2_prior_knowledge,
        insecure_skip_tls_verify: config.http.insecure_skip_tls_verify,
        egress: config.sandbox.egress().map_err(anyhow::Error::msg)?,
        hosts: config.http.hosts().map_err(anyhow::Error::msg)?,
        reuse: config.http.reuse(),
        rps: f64::from(config.http.rps) / f64::from(segment.count.max(1)),
        debug: config.http.http_debug,
        max_body: config.http.max_body_bytes,
        max_redirects: config.http.max_redirects,
        reset_cookies: !config.http.no_cookies_reset,
        batch: crate::client::Batching {
            total: config.http.batch,
            per_host: config.http.batch_per_host,
        },
    })
}

/// Starts one VU of every scenario (instantiate and `init` with its
/// params) without sending load, for `loadtest validate`: a plugin's own
/// checks of its params surface before a run. Returns why any failed.
pub async fn check_inits(
    bundle: &Bundle,
    runtime: Arc<Runtime>,
) -> anyhow::Result<Vec<(String, String)>> {
    let (_tx, stop) = watch::channel(Stop::No);
    let live = Live::new();
    let mut failures = Vec::new();
    for ctx in contexts(
        bundle,
        &runtime,
        Segment { index: 0, count: 1 },
        &stop,
        &live,
        Duration::ZERO,
        &SetupData::default(),
    )? {
        let mut vu = vu::Vu::new(ctx.clone(), 1);
        let flow = vu.ready().await;
        vu.finish();
        if flow != vu::Flow::Continue {
            let m = live
                .sink
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cumulative();
            let why = m
                .scenarios
                .get(&*ctx.name)
                .and_then(|s| s.init_messages.keys().next().cloned());
            failures.push((
                ctx.name.to_string(),
                why.unwrap_or_else(|| "init failed".into()),
            ));
        }
    }
    Ok(failures)
}

/// Samples the busy-VU gauge and closes finished one-second intervals
/// while the run goes.
fn spawn_interval_closer(live: Live) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::metrics::INTERVAL / 4);
        loop {
            tick.tick().await;
            let vus = live.busy_vus();
            let closed = {
                let mut c = live.sink.lock().unwrap_or_else(|p| p.into_inner());
                c.observe_vus(Instant::now(), vus);
                c.close_due(Instant::now())
            };
            if !closed.is_empty() {
                live.closed.notify_one();
            }
        }
    })
}

/// Waits for the shared start; a start already past is kept (the
/// schedule stays aligned with the other nodes) and logged.
async fn wait_for_start(start_at: Option<Instant>, resume_from: Duration) -> Instant {
    let Some(at) = start_at else {
        return Instant::now();
    };
    let now = Instant::now();
    if at > now {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    } else if now - at > resume_from + Duration::from_millis(50) {
        tracing::warn!(
            "the run's start was {:.0?} ago when the VUs were ready; joining its schedule late",
            now - at
        );
    }
    at
}

/// Compiles every plugin, initialises every scenario's first VUs, then
/// starts all scenarios on one clock. Plugin problems surface before any
/// load is sent.
pub async fn run(
    bundle: &Bundle,
    runtime: Arc<Runtime>,
    segment: Segment,
    stop: watch::Receiver<Stop>,
    live: Live,
    timing: Timing,
    setup: &SetupData,
) -> anyhow::Result<Outcome> {
    let ctxs = contexts(
        bundle,
        &runtime,
        segment,
        &stop,
        &live,
        timing.resume_from,
        setup,
    )?;
    // One reading shared by every scenario of the run.
    let pressure = ctxs
        .first()
        .map_or_else(pressure::Pressure::new, |c| c.pressure.clone());

    let mut inits = JoinSet::new();
    for (i, ctx) in ctxs.iter().enumerate() {
        let ctx = ctx.clone();
        inits.spawn(async move {
            (
                i,
                executor::init_vus(&ctx, executor::initial_vus(&ctx)).await,
            )
        });
    }
    let init_started = Instant::now();
    // A stop while VUs start (Ctrl-C, SIGTERM) ends the run before any
    // load: the inits are dropped, and with them their instances.
    let mut asked = stop.clone();
    let mut ready: Vec<_> = tokio::select! {
        ready = inits.join_all() => ready,
        _ = asked.wait_for(|s| *s != Stop::No) => {
            tracing::warn!("stopped while the VUs were starting; no load was sent");
            let mut collector = live.sink.lock().unwrap_or_else(|p| p.into_inner());
            collector.close_all();
            return Ok(Outcome {
                metrics: collector.total().clone(),
                rows: collector.rows().to_vec(),
                elapsed: Duration::ZERO,
                stopped_early: true,
            });
        }
    };
    ready.sort_by_key(|(i, _)| *i);
    let vus: usize = ready.iter().map(|(_, v)| v.len()).sum();
    tracing::info!("initialised {vus} VUs in {:.0?}", init_started.elapsed());

    let start = wait_for_start(timing.start_at, timing.resume_from).await;
    *live.began.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    *live.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(start);
    let closer = spawn_interval_closer(live.clone());
    let probe = pressure::spawn_probe(pressure, live.sink.clone());
    let mut runs = JoinSet::new();
    let budgets: Vec<_> = ctxs
        .iter()
        .map(|c| (c.name.clone(), c.log_budget.clone()))
        .collect();
    for (ctx, (_, vus)) in ctxs.into_iter().zip(ready) {
        runs.spawn(executor::run(ctx, vus, start));
    }
    while let Some(r) = runs.join_next().await {
        if let Err(e) = r {
            tracing::error!("a scenario task failed: {e}");
        }
    }
    for (scenario, budget) in budgets {
        let n = budget.dropped_total.load(Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(
                scenario = &*scenario,
                "{n} plugin log lines were dropped over the budget (sandbox.logsPerSecond)"
            );
        }
    }
    let elapsed = start.elapsed();
    closer.abort();
    probe.abort();
    let mut collector = live.sink.lock().unwrap_or_else(|p| p.into_inner());
    collector.close_all();
    Ok(Outcome {
        metrics: collector.total().clone(),
        rows: collector.rows().to_vec(),
        elapsed,
        stopped_early: *stop.borrow() != Stop::No,
    })
}
