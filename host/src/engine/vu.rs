//! A virtual user: one instance of the scenario's plugin, driven through
//! iterations until its plan says stop, replaced when it traps.

use super::Stop;
use crate::client::Client;
use crate::config::Executor;
use crate::metrics::{Event, FailureKind, Recorder, Sink};
use crate::plugin::{CallFailure, Limits, Plugin, Runtime, VuHost, VuInstance};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;

/// When this VU starts iterations and when it must stop.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// No iteration starts at or after this instant.
    pub end: Instant,
    /// At most this many iterations (per-vu-iterations).
    pub iterations: Option<u64>,
}

impl Plan {
    pub fn from_executor(e: &Executor, start: Instant) -> Plan {
        match *e {
            Executor::ConstantVus { duration, .. } => Plan {
                end: start + duration,
                iterations: None,
            },
            Executor::PerVuIterations {
                iterations,
                max_duration,
                ..
            } => Plan {
                end: start + max_duration,
                iterations: Some(iterations),
            },
        }
    }
}

pub struct VuSpec {
    pub id: u32,
    pub scenario: Arc<str>,
    pub plugin: Arc<Plugin>,
    pub params: Arc<str>,
    pub plan: Plan,
    pub graceful_stop: Duration,
}

pub struct VuDeps {
    pub runtime: Arc<Runtime>,
    pub client: Client,
    pub sink: Sink,
    pub limits: Limits,
    pub stop: watch::Receiver<Stop>,
    pub epoch: Instant,
}

/// What ended a step of the VU's life.
enum Step<T> {
    Done(T),
    /// The hard deadline (end + gracefulStop) or a stop-now arrived first.
    Interrupted,
}

pub async fn run(spec: VuSpec, deps: VuDeps) {
    let recorder = Recorder::new(spec.scenario.clone(), deps.sink.clone());
    let mut host = Some(VuHost::new(
        spec.id,
        spec.scenario.clone(),
        deps.client.clone(),
        recorder,
        deps.epoch,
    ));
    let mut instance: Option<VuInstance> = None;
    let hard_end = TokioInstant::from_std(spec.plan.end + spec.graceful_stop);
    let mut stop = deps.stop.clone();
    let mut iteration: u64 = 0;

    loop {
        if *stop.borrow() != Stop::No
            || Instant::now() >= spec.plan.end
            || spec.plan.iterations.is_some_and(|n| iteration >= n)
        {
            break;
        }
        let mut inst = match instance.take() {
            Some(i) => i,
            None => {
                let h = host.take().expect("host is present when no instance is");
                match guarded(start_instance(&spec, &deps, h), hard_end, &mut stop).await {
                    Step::Done(Ok(i)) => i,
                    // Init failed (already recorded): this VU is done.
                    Step::Done(Err(_host)) => break,
                    Step::Interrupted => return,
                }
            }
        };
        inst.host().iteration = iteration;
        let started = Instant::now();
        let outcome = guarded(inst.iteration(), hard_end, &mut stop).await;
        let micros = started.elapsed().as_micros() as u64;
        let (failure, keep) = match outcome {
            Step::Done(Ok(())) => (None, true),
            Step::Done(Err(CallFailure::Guest(msg))) => (Some((FailureKind::Error, msg)), true),
            Step::Done(Err(CallFailure::Fault(kind, msg))) => {
                tracing::debug!(
                    scenario = &*spec.scenario,
                    vu = spec.id,
                    "iteration {iteration}: {msg}"
                );
                (Some((kind, msg)), false)
            }
            Step::Interrupted => (
                Some((
                    FailureKind::Interrupted,
                    "stopped by gracefulStop or stop request".into(),
                )),
                false,
            ),
        };
        let interrupted = matches!(failure, Some((FailureKind::Interrupted, _)));
        let h = inst.host();
        h.recorder.record(Event::Iteration { micros, failure });
        h.recorder.maybe_flush(Instant::now());
        iteration += 1;
        if interrupted {
            return;
        }
        if keep {
            instance = Some(inst);
        } else {
            // A trapped instance is unusable; its VU carries on in a new one.
            host = Some(inst.into_host());
        }
    }
}

/// Instantiates the plugin and runs `init`; on failure records why and
/// hands the VU state back.
async fn start_instance(spec: &VuSpec, deps: &VuDeps, host: VuHost) -> Result<VuInstance, VuHost> {
    let mut inst = match VuInstance::new(&deps.runtime, &spec.plugin, host, deps.limits).await {
        Ok(i) => i,
        Err((mut h, msg)) => {
            h.recorder.record(Event::InitFailed {
                message: format!("instantiate: {msg}"),
            });
            return Err(h);
        }
    };
    match inst.init(&spec.params).await {
        Ok(()) => Ok(inst),
        Err(CallFailure::Guest(msg) | CallFailure::Fault(_, msg)) => {
            let mut h = inst.into_host();
            tracing::warn!(
                scenario = &*spec.scenario,
                vu = spec.id,
                "init failed: {msg}"
            );
            h.recorder.record(Event::InitFailed { message: msg });
            Err(h)
        }
    }
}

/// Runs `fut` unless the hard deadline passes or a stop-now arrives first.
async fn guarded<T>(
    fut: impl Future<Output = T>,
    hard_end: TokioInstant,
    stop: &mut watch::Receiver<Stop>,
) -> Step<T> {
    let stop_now = async {
        loop {
            if *stop.borrow_and_update() == Stop::Now {
                return;
            }
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        v = fut => Step::Done(v),
        _ = tokio::time::sleep_until(hard_end) => Step::Interrupted,
        _ = stop_now => Step::Interrupted,
    }
}
