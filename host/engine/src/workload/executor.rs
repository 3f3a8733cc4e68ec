//! The executors: how a scenario turns VUs into iterations over time.
//! Closed models (VU loops) run one task per VU; open models (arrival
//! rates) run a clock that hands each scheduled start to an idle VU, or
//! counts it as dropped when none is free.

use super::schedule::{Arrivals, Ramp};
use super::steer::Knob;
use super::vu::{Flow, Vu};
use super::{ScenarioCtx, Stop};
use crate::config::Executor;
use crate::metrics::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

/// The VUs a scenario needs before its clock starts (k6's init phase).
pub fn initial_vus(ctx: &ScenarioCtx) -> u32 {
    match &ctx.executor {
        Executor::ConstantVus { vus, .. }
        | Executor::PerVuIterations { vus, .. }
        | Executor::SharedIterations { vus, .. } => *vus,
        Executor::RampingVus { .. } | Executor::ExternallyControlled { .. } => {
            ctx.segment.share(ctx.executor.max_vus().into()) as u32
        }
        Executor::ConstantArrivalRate {
            pre_allocated_vus, ..
        }
        | Executor::RampingArrivalRate {
            pre_allocated_vus, ..
        } => *pre_allocated_vus,
    }
}

/// Creates and initialises `n` VUs concurrently. VUs whose init fails are
/// recorded and left out.
pub async fn init_vus(ctx: &Arc<ScenarioCtx>, n: u32) -> Vec<Vu> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let mut vu = Vu::new(ctx.clone(), ctx.next_vu_id());
        set.spawn(async move { (vu.ready().await, vu) });
    }
    let mut ready = Vec::with_capacity(n as usize);
    while let Some(r) = set.join_next().await {
        match r {
            Ok((Flow::Continue, vu)) => ready.push(vu),
            Ok((_, vu)) => vu.finish(),
            Err(e) => tracing::error!("a VU failed to start: {e}"),
        }
    }
    ready.sort_by_key(|v| v.id);
    ready
}

/// Runs the scenario from `start` (its startTime is added here).
pub async fn run(ctx: Arc<ScenarioCtx>, vus: Vec<Vu>, start: Instant) {
    let begin = start + ctx.start_time;
    let mut stop = ctx.stop.clone();
    let waited = tokio::select! {
        _ = tokio::time::sleep_until(TokioInstant::from_std(begin)) => true,
        _ = stop.wait_for(|s| *s != Stop::No) => false,
    };
    if !waited {
        vus.into_iter().for_each(Vu::finish);
        return;
    }
    ctx.progress.begin(start);
    let end = begin + ctx.executor.max_duration();
    let hard_end = TokioInstant::from_std(end + ctx.graceful_stop);
    match ctx.executor.clone() {
        Executor::ConstantVus { .. } => looping(&ctx, vus, end, hard_end, |_| true).await,
        Executor::PerVuIterations { iterations, .. } => {
            looping(&ctx, vus, end, hard_end, move |n| n < iterations).await
        }
        Executor::SharedIterations { iterations, .. } => {
            let taken = Arc::new(AtomicU64::new(0));
            let share = ctx.segment.share(iterations);
            looping(&ctx, vus, end, hard_end, move |_| {
                taken.fetch_add(1, Ordering::Relaxed) < share
            })
            .await
        }
        Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => {
            let ramp = Ramp::new(start_vus.into(), &stages);
            let segment = ctx.segment;
            let target =
                move || segment.share(ramp.at(begin.elapsed().as_secs_f64()).floor() as u64);
            ramping_vus(&ctx, vus, target, end, hard_end, Some(graceful_ramp_down)).await
        }
        Executor::ExternallyControlled { .. } => {
            let Knob::Vus(wanted) = ctx.knob.clone() else {
                unreachable!("an externally-controlled scenario is registered with a VU knob")
            };
            let segment = ctx.segment;
            let target = move || segment.share(*wanted.borrow());
            ramping_vus(&ctx, vus, target, end, hard_end, None).await
        }
        Executor::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            max_vus,
            ..
        } => {
            let per_second = rate as f64 / time_unit.as_secs_f64();
            let arrivals = Arrivals::constant(
                per_second,
                duration,
                ctx.segment.index.into(),
                ctx.segment.count.into(),
            );
            arrival_rate(&ctx, vus, arrivals, begin, hard_end, max_vus).await
        }
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            max_vus,
            ..
        } => {
            let ramp = Ramp::new(start_rate, &stages).scaled(1.0 / time_unit.as_secs_f64());
            let arrivals = Arrivals::new(&ramp, ctx.segment.index.into(), ctx.segment.count.into());
            arrival_rate(&ctx, vus, arrivals, begin, hard_end, max_vus).await
        }
    }
}

/// Closed model: every VU loops while `end` is ahead, no stop is asked
/// for, and `more(iterations done by this VU)` allows.
async fn looping(
    ctx: &Arc<ScenarioCtx>,
    vus: Vec<Vu>,
    end: Instant,
    hard_end: TokioInstant,
    more: impl Fn(u64) -> bool + Clone + Send + Sync + 'static,
) {
    let mut set = JoinSet::new();
    for mut vu in vus {
        let ctx = ctx.clone();
        let more = more.clone();
        let lane = ctx.lane.clone();
        set.spawn(lane.run(async move {
            let mut done = 0u64;
            while *ctx.stop.borrow() == Stop::No && Instant::now() < end && more(done) {
                if !unpaused(&ctx, end).await {
                    break;
                }
                if vu.iterate(None, hard_end, std::future::pending()).await != Flow::Continue {
                    break;
                }
                done += 1;
                // An iteration that never waits (one that fails at once)
                // would otherwise keep its worker from every other task.
                super::fair::breathe().await;
            }
            vu.finish();
        }));
    }
    while set.join_next().await.is_some() {}
}

/// Waits while the run is paused. False when the scenario's end or a
/// stop came first.
async fn unpaused(ctx: &ScenarioCtx, end: Instant) -> bool {
    let mut paused = ctx.paused.clone();
    if !*paused.borrow() {
        return true;
    }
    let mut stop = ctx.stop.clone();
    let stopped = async {
        // A stop channel already closed answers at once: then only the
        // end counts.
        if stop.wait_for(|s| *s != Stop::No).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = paused.wait_for(|p| !*p) => r.is_ok(),
        _ = tokio::time::sleep_until(TokioInstant::from_std(end)) => false,
        _ = stopped => false,
    }
}

/// Closed model whose local VU count follows `target()` (a ramp, or the
/// operator), read every 20 ms; a pause counts as zero. VU `j` (0-based,
/// local) iterates while the target is above `j`; when it goes below,
/// its running iteration gets `cut_after` to finish (or all it needs).
async fn ramping_vus(
    ctx: &Arc<ScenarioCtx>,
    vus: Vec<Vu>,
    target: impl Fn() -> u64 + Send + 'static,
    end: Instant,
    hard_end: TokioInstant,
    cut_after: Option<Duration>,
) {
    let paused = ctx.paused.clone();
    let local_target = move || if *paused.borrow() { 0 } else { target() };
    let (tx, rx) = watch::channel(local_target());
    let controller = {
        let stop = ctx.stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while Instant::now() < end && *stop.borrow() == Stop::No {
                tick.tick().await;
                tx.send_if_modified(|v| {
                    let n = local_target();
                    std::mem::replace(v, n) != n
                });
            }
            tx.send_replace(0);
        })
    };
    let mut set = JoinSet::new();
    for (j, mut vu) in vus.into_iter().enumerate() {
        let (ctx, mut target) = (ctx.clone(), rx.clone());
        let j = j as u64;
        let lane = ctx.lane.clone();
        set.spawn(lane.run(async move {
            loop {
                let mut stop = ctx.stop.clone();
                tokio::select! {
                    _ = target.wait_for(|t| *t > j) => {}
                    _ = tokio::time::sleep_until(TokioInstant::from_std(end)) => {}
                    _ = stop.wait_for(|s| *s != Stop::No) => {}
                }
                if Instant::now() >= end || *ctx.stop.borrow() != Stop::No {
                    break;
                }
                let mut below = target.clone();
                let cut = async move {
                    let Some(grace) = cut_after else {
                        return std::future::pending().await;
                    };
                    let _ = below.wait_for(|t| *t <= j).await;
                    tokio::time::sleep(grace).await;
                };
                if matches!(
                    vu.iterate(None, hard_end, cut).await,
                    Flow::Dead | Flow::Aborted
                ) {
                    break;
                }
                super::fair::breathe().await;
            }
            vu.finish();
        }));
    }
    while set.join_next().await.is_some() {}
    controller.abort();
}

/// A start handed out this late means the clock itself was kept from
/// running: the generator, not a lack of VUs, dropped it.
const LATE: Duration = Duration::from_millis(10);

/// How often idle VUs hand over their metrics: well inside the two
/// seconds after which an interval is closed.
const SWEEP: Duration = Duration::from_millis(500);

/// Flushes the metrics of the VUs waiting in the pool, when one is due.
fn sweep_idle(idle: &Mutex<Vec<Vu>>, next: &mut Instant) {
    let now = Instant::now();
    if now < *next {
        return;
    }
    *next = now + SWEEP;
    for vu in idle.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
        vu.flush_due(now);
    }
}

/// Open model: each start of `arrivals` goes to an idle VU; a new VU is
/// made while fewer than `max_vus` exist; otherwise the start is dropped
/// and counted. Latency is measured from the scheduled start.
async fn arrival_rate(
    ctx: &Arc<ScenarioCtx>,
    vus: Vec<Vu>,
    arrivals: Arrivals,
    begin: Instant,
    hard_end: TokioInstant,
    max_vus: u32,
) {
    let mut pool = Pool {
        max_vus: ctx.segment.share(max_vus.into()).max(1) as usize,
        existing: vus.len(),
        idle: Arc::new(Mutex::new(vus)),
        running: JoinSet::new(),
        hard_end,
    };
    let idle = pool.idle.clone();
    let mut recorder = ctx.recorder();
    let mut next_sweep = Instant::now();
    let factor = match &ctx.knob {
        Knob::Rate(f) => Some(f.clone()),
        _ => None,
    };
    // Starts owed: each arrival adds the rate factor, each start takes one.
    let mut credit = 0.0_f64;
    for (offset, _k) in arrivals {
        if offset < ctx.resume_from {
            continue;
        }
        let at = begin + offset;
        loop {
            let running_on = *ctx.stop.borrow() == Stop::No;
            if at <= Instant::now() || !running_on {
                break;
            }
            let mut stop = ctx.stop.clone();
            let wake = at.min(next_sweep);
            let wake = TokioInstant::from_std(wake);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                // A stop channel already closed answers at once: just wait.
                r = async { stop.wait_for(|s| *s != Stop::No).await.is_err() } => if r {
                    tokio::time::sleep_until(wake).await;
                }
            }
            sweep_idle(&idle, &mut next_sweep);
        }
        if *ctx.stop.borrow() != Stop::No {
            break;
        }
        sweep_idle(&idle, &mut next_sweep);
        // A pause skips arrivals (they are not dropped: nobody asked for them).
        if *ctx.paused.borrow() {
            credit = 0.0;
            continue;
        }
        credit += factor.as_ref().map_or(1.0, |f| *f.borrow());
        while credit >= 1.0 {
            credit -= 1.0;
            pool.start(ctx, at, &mut recorder);
        }
    }
    recorder.flush();
    while pool.running.join_next().await.is_some() {}
    let rest = std::mem::take(&mut *idle.lock().unwrap_or_else(|p| p.into_inner()));
    rest.into_iter().for_each(Vu::finish);
}

/// An arrival-rate scenario's VUs and the iterations they are running.
struct Pool {
    idle: Arc<Mutex<Vec<Vu>>>,
    /// VUs made so far, idle or not.
    existing: usize,
    max_vus: usize,
    running: JoinSet<()>,
    hard_end: TokioInstant,
}

impl Pool {
    /// Hands the start scheduled `at` to an idle VU (or a new one while
    /// fewer than `max_vus` exist), or counts it as dropped.
    fn start(
        &mut self,
        ctx: &Arc<ScenarioCtx>,
        at: Instant,
        recorder: &mut crate::metrics::Recorder,
    ) {
        // Reap finished iterations so the set does not grow without bound.
        while self.running.try_join_next().is_some() {}
        let vu = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let vu = match vu {
            Some(vu) => vu,
            None if self.existing < self.max_vus => {
                self.existing += 1;
                Vu::new(ctx.clone(), ctx.next_vu_id())
            }
            None => {
                let late = Instant::now().saturating_duration_since(at);
                let saturated = late >= LATE || ctx.pressure.saturated();
                recorder.record(Event::Dropped { saturated });
                recorder.maybe_flush(Instant::now());
                return;
            }
        };
        let (idle, hard_end) = (self.idle.clone(), self.hard_end);
        self.running.spawn(ctx.lane.run(async move {
            let mut vu = vu;
            match vu.iterate(Some(at), hard_end, std::future::pending()).await {
                Flow::Dead => vu.finish(),
                // An aborted VU goes back idle: the arrivals until the stop
                // lands take it and return at once, with no new VU made
                // and none counted dropped.
                _ => idle.lock().unwrap_or_else(|p| p.into_inner()).push(vu),
            }
        }));
    }
}
