//! Every node's part of a distributed run: follow the Plan in the
//! replicated state, run this node's shares on the common clock, stop
//! when asked, and stream each closed second of metrics to whoever leads,
//! keeping it until the committed state covers it.

use crate::coordinator::{self, current_plan, now_ms};
use crate::node::NodeCtx;
use loadtest_engine::metrics::Closed;
use loadtest_engine::workload::{self, Live, Steering, Stop, Timing};
use loadtest_wire::plan::{Ack, Assignment, Batch, Finished, Plan, Sealed, Status};
use loadtest_wire::rpc::{decode, encode};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::watch;

/// Intervals per metric batch: a node that was cut off for a while
/// catches up in several calls rather than one huge one.
pub const BATCH: usize = 20;

/// How long after the last close the closes, not the tick, time reports.
const CLOSES_DRIVE: Duration = Duration::from_millis(1500);

/// A share's stop switch, by (run, assignment).
type Stops = HashMap<(String, u32), Arc<watch::Sender<Stop>>>;

/// A running share's live controls and how many of the plan's changes
/// it has been given, by (run, assignment).
type Steered = HashMap<(String, u32), (Steering, usize)>;

/// Follows the plan for as long as the node runs.
pub async fn follow(ctx: Arc<NodeCtx>) {
    let mut changes = ctx.sm().changes();
    let mut started: HashSet<(String, u32)> = HashSet::new();
    let mut stops: Stops = HashMap::new();
    let mut timed: HashSet<(String, u32)> = HashSet::new();
    let mut steered: Steered = HashMap::new();
    loop {
        if let Some(plan) = current_plan(&ctx) {
            timed.retain(|(run, _)| *run == plan.run_id);
            act(
                &ctx,
                &plan,
                &mut started,
                &mut stops,
                &mut timed,
                &mut steered,
            )
            .await;
            hand_on_changes(&plan, &stops, &mut steered);
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn act(
    ctx: &Arc<NodeCtx>,
    plan: &Plan,
    started: &mut HashSet<(String, u32)>,
    stops: &mut Stops,
    timed: &mut HashSet<(String, u32)>,
    steered: &mut Steered,
) {
    // Shares of an older run, or declared lost here, stop now: their load
    // is no longer counted (or is someone else's).
    stops.retain(|(run, id), stop| {
        let keep = *run == plan.run_id && plan.assignments.iter().any(|a| a.id == *id && !a.lost);
        if !keep {
            stop.send_if_modified(|s| upgrade(s, Stop::Now));
        }
        keep
    });
    let wanted = match plan.status {
        Status::Stopping => Some(Stop::Graceful),
        Status::Aborted => Some(Stop::Now),
        _ => None,
    };
    if let Some(w) = wanted {
        for stop in stops.values() {
            stop.send_if_modified(|s| upgrade(s, w));
        }
    }
    schedule_stops(plan, stops, timed);
    // A stopping run still starts its shares: they end at once and report,
    // which is how the leader learns they are done.
    if !matches!(plan.status, Status::Running | Status::Stopping) {
        return;
    }
    let Some(me) = ctx.addr() else { return };
    for a in plan.mine(&me) {
        if a.lost || !started.insert((plan.run_id.clone(), a.id)) {
            continue;
        }
        if coordinator::progress_of(ctx, &plan.run_id, a)
            .started_at_ms
            .is_some()
        {
            // This node restarted mid-run: replaying the share from the
            // start would repeat load; the leader hands it on instead.
            tracing::warn!(run = %plan.run_id, "share {}/{} was started before this node restarted; leaving it to be handed over", a.index + 1, a.count);
            continue;
        }
        let stop = Arc::new(watch::channel(wanted.unwrap_or(Stop::No)).0);
        stops.insert((plan.run_id.clone(), a.id), stop.clone());
        match ctx.local.prepare_share(plan, a).await {
            Ok(bundle) => {
                let filters = loadtest_engine::threshold::filters(&bundle.config.thresholds.0);
                let live = Live::streaming(instant_of(plan.start_at_ms), filters);
                steered.insert((plan.run_id.clone(), a.id), (live.steering.clone(), 0));
                tokio::spawn(run_share(
                    ctx.clone(),
                    plan.clone(),
                    a.clone(),
                    bundle,
                    live,
                    stop,
                ));
            }
            Err(e) => {
                let what = format!(
                    "node {} cannot run share {}/{}: {e}",
                    a.node_id,
                    a.index + 1,
                    a.count
                );
                tracing::error!(run = %plan.run_id, "{what}");
                // The operator sees why in the report, not only in this log.
                let ctx = ctx.clone();
                tokio::spawn(async move { coordinator::note(&ctx, what).await });
            }
        }
    }
}

/// Gives each running share the plan's changes it has not had yet.
fn hand_on_changes(plan: &Plan, stops: &Stops, steered: &mut Steered) {
    steered.retain(|key, _| stops.contains_key(key));
    for (key, (steering, given)) in steered.iter_mut() {
        if key.0 != plan.run_id || *given >= plan.changes.len() {
            continue;
        }
        let new = plan.changes[*given..].to_vec();
        *given = plan.changes.len();
        tokio::spawn(crate::steering::apply(
            steering.clone(),
            new,
            plan.run_id.clone(),
        ));
    }
}

/// Shares with a stop time (the old config's, at a switch) get a timer
/// that stops them gracefully then.
fn schedule_stops(plan: &Plan, stops: &Stops, timed: &mut HashSet<(String, u32)>) {
    for a in &plan.assignments {
        let key = (plan.run_id.clone(), a.id);
        let (Some(at), Some(stop)) = (a.stop_at_ms, stops.get(&key)) else {
            continue;
        };
        if !timed.insert(key) {
            continue;
        }
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(instant_of(at))).await;
            stop.send_if_modified(|s| upgrade(s, Stop::Graceful));
        });
    }
}

fn upgrade(s: &mut Stop, to: Stop) -> bool {
    let stronger = matches!((*s, to), (Stop::No, _) | (Stop::Graceful, Stop::Now));
    if stronger {
        *s = to;
    }
    stronger
}

/// The Instant of a wall-clock time in Unix ms (in the past if it has passed).
pub(crate) fn instant_of(unix_ms: u64) -> Instant {
    let now = now_ms();
    let now_i = Instant::now();
    if unix_ms >= now {
        now_i + Duration::from_millis(unix_ms - now)
    } else {
        now_i
            .checked_sub(Duration::from_millis(now - unix_ms))
            .unwrap_or(now_i)
    }
}

async fn run_share(
    ctx: Arc<NodeCtx>,
    plan: Plan,
    a: Assignment,
    bundle: Arc<loadtest_engine::config::Bundle>,
    live: Live,
    stop: Arc<watch::Sender<Stop>>,
) {
    let runtime = match ctx.local.runtime() {
        Ok(r) => r,
        Err(e) => return tracing::error!("{e:#}"),
    };
    // Intervals count from the run's start on every share, so a share that
    // starts later (a config switch) lines up with the others.
    let start = instant_of(a.start_at_ms.unwrap_or(plan.start_at_ms));
    let timing = Timing {
        start_at: Some(start),
        resume_from: Duration::from_millis(a.resume_from_ms),
    };
    tracing::info!(
        run = %plan.run_id,
        "running share {}/{}{} from {}",
        a.index + 1,
        a.count,
        a.takeover_of.map_or(String::new(), |_| " (taken over)".into()),
        plan.start_at_ms
    );
    let mut engine = {
        let (live, stop_rx, segment) = (live.clone(), stop.subscribe(), a.segment());
        let setup = plan.setup.clone();
        tokio::spawn(async move {
            workload::run(&bundle, runtime, segment, stop_rx, live, timing, &setup).await
        })
    };
    let aborter = tokio::spawn(stop_on_script_abort(
        ctx.clone(),
        plan.run_id.clone(),
        live.abort.clone(),
        stop.clone(),
    ));
    stream_metrics(&ctx, &plan, &a, live, &mut engine).await;
    aborter.abort();
    if !engine.is_finished() {
        // Nobody counts this share any more: stop its load too.
        stop.send_if_modified(|s| upgrade(s, Stop::Now));
        let _ = engine.await;
    }
}

/// A script of this share ended the test (k6's `exec.test.abort()`):
/// this share stops now, and the cluster's run is stopped through the
/// leader as `loadtest stop` stops it: the other shares start no new
/// iteration and finish running ones within gracefulStop.
async fn stop_on_script_abort(
    ctx: Arc<NodeCtx>,
    run_id: String,
    abort: workload::abort::TestAbort,
    stop: Arc<watch::Sender<Stop>>,
) {
    let reason = abort.asked().await;
    tracing::warn!(run = %run_id, "the script aborted the test ({reason}): stopping the cluster's run");
    stop.send_if_modified(|s| upgrade(s, Stop::Now));
    // On its own task: this one is cancelled when the share ends, which
    // may be before the leader has taken the stop.
    tokio::spawn(async move {
        let op = loadtest_wire::command::Op::Stop {
            run_id,
            reason: Some(reason),
        };
        if let Err(e) = crate::service::write_op(&ctx, op).await {
            tracing::error!(
                "the script aborted the test, but the cluster's run could not be stopped: {e}"
            );
        }
    });
}

/// Sends closed intervals to the leader every report interval until the engine is
/// done and its end is committed. Everything is kept until the committed
/// state covers it; what the same leader already holds is not sent again,
/// and a new leader gets everything not committed.
async fn stream_metrics(
    ctx: &Arc<NodeCtx>,
    plan: &Plan,
    a: &Assignment,
    live: Live,
    engine: &mut tokio::task::JoinHandle<anyhow::Result<workload::Outcome>>,
) {
    let run = plan.run_id.as_str();
    let mut outbox: VecDeque<Sealed> = VecDeque::new();
    let mut finished: Option<Finished> = None;
    // One past the last second closed so far.
    let mut end = 0;
    let mut engine_done = false;
    let mut logged_start = false;
    // (leader, the first interval it does not hold)
    let mut held: Option<(String, u64)> = None;
    // Sent every report interval (each second in a small fleet), as soon
    // as a second closes; at once when the share has ended; every second
    // while the leader does not take them.
    let mut reported: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let closing = live.closed.clone();
    let mut last_close: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // While the engine closes a second every second, the closes
                // time the reports; a tick in between would take the slot.
                if !engine_done && last_close.is_some_and(|t| t.elapsed() < CLOSES_DRIVE) {
                    continue;
                }
            }
            _ = closing.notified() => last_close = Some(Instant::now()),
            r = &mut *engine, if !engine_done => {
                engine_done = true;
                let mut f = finish_of(r, a);
                // Elapsed on the run's clock, whenever this share started.
                f.elapsed_ms = now_ms().saturating_sub(plan.start_at_ms);
                f.aborted_by_script = live.abort.reason();
                f.failed_by_script = live.failed.reason();
                finished = Some(f);
            }
        }
        let closed = live
            .sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take_closed();
        outbox.extend(closed.iter().filter_map(seal));
        end = closed.iter().map(|c| c.idx + 1).fold(end, u64::max);
        if let Some(f) = &mut finished {
            // The engine closed its last second before it returned.
            f.end = Some(end);
        }
        let started_at_ms = started_at(&live);
        if let Some(ms) = started_at_ms.filter(|_| !logged_start) {
            tracing::info!(run = %run, "first iteration began at {ms} (unix ms)");
            logged_start = true;
        }
        let due = finished.is_some() || plan.report_due(reported);
        if !due {
            continue;
        }
        let began = Instant::now();
        match report(
            ctx,
            run,
            a,
            &outbox,
            &mut held,
            started_at_ms,
            finished.clone(),
        )
        .await
        {
            Ok(ack) => {
                reported = Some(began);
                while outbox.front().is_some_and(|c| c.idx < ack.committed) {
                    outbox.pop_front();
                }
                if ack.committed == u64::MAX || (ack.done && outbox.is_empty()) {
                    return;
                }
            }
            Err(e) => tracing::debug!(run = %run, "metrics not delivered yet: {e}"),
        }
        if engine_done && plan_is_over(ctx, run) {
            tracing::warn!(run = %run, "the run ended before all metrics were acknowledged");
            return;
        }
    }
}

/// One batch to the leader: the intervals it does not hold yet (a new
/// leader holds none), and the end once the batch reaches the last one.
async fn report(
    ctx: &NodeCtx,
    run: &str,
    a: &Assignment,
    outbox: &VecDeque<Sealed>,
    held: &mut Option<(String, u64)>,
    started_at_ms: Option<u64>,
    finished: Option<Finished>,
) -> anyhow::Result<Ack> {
    let leader = ctx
        .leader_addr()
        .ok_or_else(|| anyhow::anyhow!("no leader known"))?;
    let from = match held {
        Some((l, received)) if *l == leader => *received,
        _ => 0,
    };
    let unsent = outbox.iter().filter(|c| c.idx >= from);
    let batch = Batch {
        run_id: run.to_owned(),
        assignment: a.id,
        intervals: unsent.clone().take(BATCH).cloned().collect(),
        started_at_ms,
        finished: finished.filter(|_| unsent.count() <= BATCH),
    };
    let mut client = ctx.transport.coordinator(&leader, false).await?;
    let reply = client.report_metrics(encode(&batch)?).await?;
    let ack: Result<Ack, String> = decode(reply.get_ref())?;
    let ack = ack.map_err(|e| anyhow::anyhow!(e))?;
    *held = Some((leader, ack.received));
    Ok(ack)
}

/// A second as it is kept until committed and sent. Our own metrics
/// always encode; were one not to, an empty second in its place keeps the
/// share's sequence whole so the run can end, and the error says so.
fn seal(c: &Closed) -> Option<Sealed> {
    Sealed::seal(c)
        .or_else(|e| {
            tracing::error!(
                "second {} of this share's metrics does not encode ({e}); sent as empty",
                c.idx
            );
            Sealed::seal(&Closed {
                idx: c.idx,
                vus: c.vus,
                metrics: Default::default(),
            })
        })
        .ok()
}

fn plan_is_over(ctx: &NodeCtx, run: &str) -> bool {
    current_plan(ctx).is_none_or(|p| p.run_id != run || p.status.is_over())
}

fn started_at(live: &Live) -> Option<u64> {
    let started = (*live.began.lock().unwrap_or_else(|p| p.into_inner()))?;
    let since = Instant::now().saturating_duration_since(started);
    let wall = std::time::SystemTime::now().checked_sub(since)?;
    wall.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

fn finish_of(
    r: Result<anyhow::Result<workload::Outcome>, tokio::task::JoinError>,
    a: &Assignment,
) -> Finished {
    match r {
        Ok(Ok(o)) => Finished {
            elapsed_ms: o.elapsed.as_millis() as u64,
            stopped_early: o.stopped_early,
            init_failed: o.metrics.scenarios.values().map(|s| s.init_failed).sum(),
            end: None,
            aborted_by_script: None,
            failed_by_script: None,
        },
        Ok(Err(e)) => {
            tracing::error!("share {}/{} failed: {e:#}", a.index + 1, a.count);
            Finished {
                elapsed_ms: 0,
                stopped_early: true,
                init_failed: 0,
                end: None,
                aborted_by_script: None,
                failed_by_script: None,
            }
        }
        Err(e) => {
            tracing::error!("share {}/{} panicked: {e}", a.index + 1, a.count);
            Finished {
                elapsed_ms: 0,
                stopped_early: true,
                init_failed: 0,
                end: None,
                aborted_by_script: None,
                failed_by_script: None,
            }
        }
    }
}
