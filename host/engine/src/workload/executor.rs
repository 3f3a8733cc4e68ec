//! The executors: how a scenario turns VUs into iterations over time.
//! Closed models (VU loops) run one task per VU; open models (arrival
//! rates) run a clock that hands each scheduled start to an idle VU, or
//! counts it as dropped when none is free.

use super::schedule::{Arrivals, Ramp};
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
        Executor::RampingVus { .. } => ctx.segment.share(ctx.executor.max_vus().into()) as u32,
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
            ramping_vus(&ctx, vus, ramp, begin, end, hard_end, graceful_ramp_down).await
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

/// Closed model whose VU count follows a ramp. VU `j` (0-based, local)
/// iterates while the local target is above `j`; when the ramp goes below
/// it, its running iteration gets `graceful_ramp_down` to finish.
async fn ramping_vus(
    ctx: &Arc<ScenarioCtx>,
    vus: Vec<Vu>,
    ramp: Ramp,
    begin: Instant,
    end: Instant,
    hard_end: TokioInstant,
    graceful_ramp_down: Duration,
) {
    let segment = ctx.segment;
    let local_target = move |t: f64| segment.share(ramp.at(t).floor() as u64);
    let (tx, rx) = watch::channel(local_target(0.0));
    let controller = {
        let stop = ctx.stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while Instant::now() < end && *stop.borrow() == Stop::No {
                tick.tick().await;
                tx.send_if_modified(|v| {
                    let n = local_target(begin.elapsed().as_secs_f64());
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
                    let _ = below.wait_for(|t| *t <= j).await;
                    tokio::time::sleep(graceful_ramp_down).await;
                };
                if vu.iterate(None, hard_end, cut).await == Flow::Dead {
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
    let max_vus = ctx.segment.share(max_vus.into()).max(1) as usize;
    let mut existing = vus.len();
    let idle = Arc::new(Mutex::new(vus));
    let mut running = JoinSet::new();
    let mut recorder = ctx.recorder();
    let mut next_sweep = Instant::now();
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
        // Reap finished iterations so the set does not grow without bound.
        while running.try_join_next().is_some() {}
        let vu = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let vu = match vu {
            Some(vu) => vu,
            None if existing < max_vus => {
                existing += 1;
                Vu::new(ctx.clone(), ctx.next_vu_id())
            }
            None => {
                let late = Instant::now().saturating_duration_since(at);
                let saturated = late >= LATE || ctx.pressure.saturated();
                recorder.record(Event::Dropped { saturated });
                recorder.maybe_flush(Instant::now());
                continue;
            }
        };
        let idle = idle.clone();
        running.spawn(ctx.lane.run(async move {
            let mut vu = vu;
            match vu.iterate(Some(at), hard_end, std::future::pending()).await {
                Flow::Dead => vu.finish(),
                _ => idle.lock().unwrap_or_else(|p| p.into_inner()).push(vu),
            }
        }));
    }
    recorder.flush();
    while running.join_next().await.is_some() {}
    let rest = std::mem::take(&mut *idle.lock().unwrap_or_else(|p| p.into_inner()));
    rest.into_iter().for_each(Vu::finish);
}
