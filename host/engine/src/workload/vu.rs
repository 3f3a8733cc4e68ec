//! A virtual user: one instance of the scenario's plugin, driven one
//! iteration at a time by an executor, replaced when it traps.

use super::{ScenarioCtx, Stop};
use crate::metrics::{Event, FailureKind};
use crate::plugin::{CallFailure, VuHost, VuInstance};
use futures_util::FutureExt;
use rand::Rng;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::{Instant as TokioInstant, Sleep};

/// What the executor should do with a VU after an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Instantiation or `init` failed (recorded); the VU is of no further use.
    Dead,
    /// Its iteration was cut off by gracefulStop, ramp-down or stop-now.
    Interrupted,
    /// A script asked to end the test: the VU starts no more iterations,
    /// so none is begun (and cut off) in the moment before the stop lands.
    Aborted,
}

pub struct Vu {
    ctx: Arc<ScenarioCtx>,
    pub id: u32,
    host: Option<VuHost>,
    instance: Option<VuInstance>,
    iterations: u64,
    /// Made in the VU's task, on its first iteration.
    guard: Option<Guard>,
}

impl Vu {
    pub fn new(ctx: Arc<ScenarioCtx>, id: u32) -> Vu {
        Vu {
            host: Some(new_host(&ctx, id)),
            ctx,
            id,
            instance: None,
            iterations: 0,
            guard: None,
        }
    }

    /// Instantiates and initialises the plugin if there is no live
    /// instance. A panic on the way (a bug) is recorded as a failed start.
    pub async fn ready(&mut self) -> Flow {
        match AssertUnwindSafe(self.instantiate()).catch_unwind().await {
            Ok(flow) => flow,
            Err(payload) => {
                let message = panic_message(&*payload, "the VU was not started");
                self.renew();
                if let Some(h) = self.host.as_mut() {
                    h.recorder.record(Event::InitFailed { message });
                    h.recorder.flush();
                }
                Flow::Dead
            }
        }
    }

    async fn instantiate(&mut self) -> Flow {
        #[cfg(debug_assertions)]
        crate::bugs::failpoint::init();
        if self.instance.is_some() {
            return Flow::Continue;
        }
        let Some(host) = self.host.take() else {
            return Flow::Dead;
        };
        let started = Instant::now();
        let limit = self.ctx.limits.start_timeout;
        let deadline = tokio::time::Instant::from_std(started + limit);
        let inst = match VuInstance::new(&self.ctx.runtime, &self.ctx.plugin, host, self.ctx.limits)
            .await
        {
            Ok(i) => i,
            Err((mut h, msg)) => {
                h.recorder.record(Event::InitFailed {
                    message: format!("instantiate: {msg}"),
                });
                h.recorder.flush();
                return Flow::Dead;
            }
        };
        let mut inst = inst;
        let instantiated = started.elapsed();
        let init = tokio::time::timeout_at(deadline, inst.init(&self.ctx.params)).await;
        let init = init.unwrap_or_else(|_| {
            Err(CallFailure::Guest(format!(
                "init did not return within {limit:?} (sandbox.initTimeout)"
            )))
        });
        match init {
            Ok(()) => {
                let init = started.elapsed() - instantiated;
                let (scenario, vu) = (&*self.ctx.name, self.id);
                tracing::debug!(
                    scenario,
                    vu,
                    "instantiated in {instantiated:?}, init took {init:?}"
                );
                self.instance = Some(inst);
                Flow::Continue
            }
            Err(CallFailure::Guest(msg) | CallFailure::Fault(_, msg)) => {
                tracing::warn!(
                    scenario = &*self.ctx.name,
                    vu = self.id,
                    "init failed: {msg}"
                );
                let mut h = inst.into_host();
                h.recorder.record(Event::InitFailed { message: msg });
                h.recorder.flush();
                Flow::Dead
            }
        }
    }

    /// Runs one iteration. `scheduled` is the intended start in open models:
    /// latency is then measured from it. `cut` resolves when the iteration
    /// must be abandoned early (besides gracefulStop and stop-now).
    pub async fn iterate(
        &mut self,
        scheduled: Option<Instant>,
        hard_end: TokioInstant,
        cut: impl Future<Output = ()>,
    ) -> Flow {
        if self.ctx.abort.is_asked() {
            return Flow::Aborted;
        }
        let mut guard = self
            .guard
            .take()
            .unwrap_or_else(|| Guard::new(self.ctx.stop.clone(), hard_end, self.ctx.graceful_stop));
        let started = scheduled.unwrap_or_else(Instant::now);
        let iteration = self.guarded_iteration(&mut guard, scheduled, hard_end, cut);
        let flow = match AssertUnwindSafe(iteration).catch_unwind().await {
            Ok(flow) => flow,
            Err(payload) => self.after_panic(&*payload, started),
        };
        self.guard = Some(guard);
        flow
    }

    /// A panic in the host during an iteration is a bug of ours, not the
    /// scenario's: the iteration counts as failed with kind `panic`, and
    /// the VU goes on with a new instance and host, since the old ones may
    /// have been left half-way through a change. Dropping them hands over
    /// the metrics they had buffered.
    fn after_panic(&mut self, payload: &(dyn std::any::Any + Send), started: Instant) -> Flow {
        let message = panic_message(payload, "the VU goes on in a new instance");
        tracing::debug!(scenario = &*self.ctx.name, vu = self.id, "{message}");
        self.renew();
        self.iterations += 1;
        let micros = started.elapsed().as_micros() as u64;
        if let Some(h) = self.host.as_mut() {
            let failure = Some((FailureKind::Panic, message));
            h.recorder.record(Event::Iteration { micros, failure });
            h.recorder.maybe_flush(Instant::now());
        }
        Flow::Continue
    }

    /// Drops the instance and host (flushing their metrics) for new ones.
    fn renew(&mut self) {
        self.instance = None;
        self.host = Some(new_host(&self.ctx, self.id));
    }

    async fn guarded_iteration(
        &mut self,
        guard: &mut Guard,
        scheduled: Option<Instant>,
        hard_end: TokioInstant,
        cut: impl Future<Output = ()>,
    ) -> Flow {
        if self.instance.is_none() {
            match guard
                .run(hard_end, self.ready(), std::future::pending())
                .await
            {
                Some(Flow::Continue) => {}
                Some(flow) => return flow,
                None => return Flow::Interrupted,
            }
        }
        let inst = self.instance.as_mut().expect("ready leaves an instance");
        let host = inst.host();
        host.iteration = self.iterations;
        host.new_iteration();
        host.scheduled = scheduled;
        host.exec = pick_exec(&self.ctx.exec, host);
        host.execution.iteration_in_instance = self.ctx.begin_iteration();
        let started = scheduled.unwrap_or_else(Instant::now);
        let busy = BusyVu::enter(&self.ctx.active);
        let busy_here = BusyVu::enter(&self.ctx.progress.instance().vus_active);
        #[cfg(debug_assertions)]
        crate::bugs::failpoint::iteration(self.iterations);
        let outcome = guard.run(hard_end, inst.iteration(), cut).await;
        drop((busy, busy_here));
        let micros = started.elapsed().as_micros() as u64;
        self.iterations += 1;
        let (failure, flow) = match outcome {
            Some(Ok(())) => (None, Flow::Continue),
            Some(Err(CallFailure::Guest(msg))) => (Some((FailureKind::Error, msg)), Flow::Continue),
            Some(Err(CallFailure::Fault(kind, msg))) => {
                tracing::debug!(scenario = &*self.ctx.name, vu = self.id, "{msg}");
                (Some((kind, msg)), Flow::Continue)
            }
            None => (
                Some((
                    FailureKind::Interrupted,
                    "cut off by gracefulStop, ramp-down or stop".into(),
                )),
                Flow::Interrupted,
            ),
        };
        self.ctx.progress.iteration_ended(failure.is_none());
        // Success and guest errors leave a healthy instance.
        let keep = matches!(failure, Some((FailureKind::Error, _)) | None);
        let host = inst.host();
        host.close_groups();
        host.recorder.record(Event::Iteration { micros, failure });
        host.recorder.maybe_flush(Instant::now());
        if !keep {
            // A trapped or interrupted instance is unusable; the VU goes on in a new one.
            let inst = self.instance.take().expect("instance present");
            self.host = Some(inst.into_host());
        }
        flow
    }

    /// Hands over buffered metrics whose second has ended. A VU waiting
    /// idle in an open model's pool would otherwise hold them until its
    /// next iteration, possibly past the interval's close, and they would
    /// be counted in a later second.
    pub fn flush_due(&mut self, now: Instant) {
        self.recorders(|r| r.maybe_flush(now));
    }

    /// The VU's metric buffers: its live instance's, or the one it keeps
    /// between instances.
    fn recorders(&mut self, mut f: impl FnMut(&mut crate::metrics::Recorder)) {
        if let Some(i) = self.instance.as_mut() {
            f(&mut i.host().recorder);
        }
        if let Some(h) = self.host.as_mut() {
            f(&mut h.recorder);
        }
    }

    /// Hands buffered metrics over; called when the VU leaves.
    pub fn finish(mut self) {
        self.recorders(|r| r.flush());
    }
}

fn new_host(ctx: &ScenarioCtx, id: u32) -> VuHost {
    let mut host = VuHost::new(
        id,
        ctx.name.clone(),
        ctx.client.clone(),
        ctx.files.clone(),
        ctx.recorder(),
        ctx.epoch,
    );
    host.setup_data = ctx.setup_data.clone();
    host.log_budget = Some(ctx.log_budget.clone());
    host.abort = ctx.abort.clone();
    host.failed = ctx.failed.clone();
    host.shared_arrays = ctx.shared_arrays.clone();
    host.execution.share = (ctx.segment.index, ctx.segment.count);
    host.execution.executor = ctx.executor.name();
    host.execution.live = Some(ctx.progress.clone());
    host
}

fn panic_message(payload: &(dyn std::any::Any + Send), then: &str) -> String {
    format!(
        "a bug in loadtest, not in the scenario (a panic: {}); {then}",
        crate::bugs::message(payload)
    )
}

/// Counts a VU as busy (for the busy-VU gauge) while it lives, so a
/// panic cannot leave it counted.
struct BusyVu<'a>(&'a std::sync::atomic::AtomicU32);

impl<'a> BusyVu<'a> {
    fn enter(n: &'a std::sync::atomic::AtomicU32) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        BusyVu(n)
    }
}

impl Drop for BusyVu<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn pick_exec(exec: &[(String, u32)], host: &mut VuHost) -> String {
    let total: u32 = exec.iter().map(|e| e.1).sum();
    if total == 0 {
        return String::new();
    }
    let mut roll = host.rng().random_range(0..total);
    for (name, w) in exec {
        if roll < *w {
            return name.clone();
        }
        roll -= w;
    }
    String::new()
}

/// What cuts an iteration short besides the executor's own `cut`: the
/// hard end of the run and a stop-now. Kept for the VU's life: a timer and
/// a watch registration made afresh for every iteration cost more than
/// the rest of the engine's work per request.
struct Guard {
    end: Pin<Box<Sleep>>,
    stop_now: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Resolves when a graceful stop is asked for (a first Ctrl-C or
    /// SIGTERM, `loadtest stop`, an `abortOnFail` threshold).
    stopping: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Once stopping: running iterations get `graceful_stop` from then,
    /// not from the scenario's scheduled end.
    stopping_by: Option<TokioInstant>,
    graceful_stop: Duration,
    stopped: bool,
}

/// Resolves once `stop` satisfies `wanted` (never, if its sender is gone).
fn stop_when(
    mut stop: watch::Receiver<Stop>,
    wanted: fn(&Stop) -> bool,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if stop.wait_for(wanted).await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

impl Guard {
    fn new(stop: watch::Receiver<Stop>, hard_end: TokioInstant, graceful_stop: Duration) -> Guard {
        Guard {
            end: Box::pin(tokio::time::sleep_until(hard_end)),
            stop_now: stop_when(stop.clone(), |s| *s == Stop::Now),
            stopping: stop_when(stop, |s| *s != Stop::No),
            stopping_by: None,
            graceful_stop,
            stopped: false,
        }
    }

    /// Runs `fut` unless the hard deadline, a stop-now, gracefulStop after
    /// a graceful stop, or `cut` comes first.
    async fn run<T>(
        &mut self,
        hard_end: TokioInstant,
        fut: impl Future<Output = T>,
        cut: impl Future<Output = ()>,
    ) -> Option<T> {
        if self.stopped {
            return None;
        }
        let deadline = self.stopping_by.map_or(hard_end, |by| by.min(hard_end));
        if self.end.deadline() != deadline {
            self.end.as_mut().reset(deadline);
        }
        tokio::pin!(fut);
        tokio::pin!(cut);
        loop {
            tokio::select! {
                biased;
                v = &mut fut => return Some(v),
                _ = self.end.as_mut() => return None,
                _ = self.stop_now.as_mut() => {
                    self.stopped = true;
                    return None;
                }
                _ = self.stopping.as_mut(), if self.stopping_by.is_none() => {
                    let by = TokioInstant::now() + self.graceful_stop;
                    self.stopping_by = Some(by);
                    if by < self.end.deadline() {
                        self.end.as_mut().reset(by);
                    }
                }
                _ = &mut cut => return None,
            }
        }
    }
}
