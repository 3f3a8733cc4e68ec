//! The leader's intake of metrics. Nodes stream each closed second here,
//! outside the Raft log; the leader holds what arrived in memory and, once
//! per flush, commits everything new as one merged entry with each share's
//! watermark. The log then grows with time, not with the number of nodes,
//! and every voter and learner applies one metrics entry per flush instead
//! of one per node per second.
//!
//! Nothing here is the only copy: a node keeps every interval until the
//! committed state covers it, and sends it again to a new leader.

use crate::coordinator::{current_plan, progress_of};
use crate::node::NodeCtx;
use loadtest_engine::metrics::Closed;
use loadtest_wire::command::Command;
use loadtest_wire::plan::{Ack, Batch, Finished, Merged, Part, Plan, Progress, Sealed};
use loadtest_wire::raw::Raw;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the leader looks at what it received. It commits once per
/// the plan's report interval (a second in a small fleet, a few in a
/// large one): the merged series' resolution in the log is still one
/// interval per second; the interval only sets how many seconds one
/// entry carries.
const FLUSH: Duration = Duration::from_secs(1);

/// A share that reported its end is committed sooner than the next
/// flush, so a run's result does not wait for the tick; the pause lets
/// shares that end together go in one entry.
const FINISH_PAUSE: Duration = Duration::from_millis(100);

/// Intervals of one share the leader holds past what is committed. They
/// are held sealed (a few KiB a second each), but with commits stalled (no
/// quorum, leaders changing) 100 shares sending every second would still
/// grow a leader without end. What is refused stays on the node, which
/// sends it again once the committed state moves on; a node catching up
/// sends as many at once.
pub const HELD_AHEAD: u64 = crate::worker::BATCH as u64;

#[derive(Default)]
pub struct Intake {
    pending: Mutex<Pending>,
    finished: tokio::sync::Notify,
    /// A batch brought new seconds: the flush commits as soon as every
    /// running share's next second is in, not on its own tick.
    arrived: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    run: String,
    shares: BTreeMap<u32, Share>,
}

/// What one share sent that the log does not hold yet.
#[derive(Default)]
struct Share {
    intervals: BTreeMap<u64, Sealed>,
    started_at_ms: Option<u64>,
    finished: Option<Finished>,
}

/// What one share adds to the next entry, copied out of the intake.
struct Fresh {
    id: u32,
    from: u64,
    sealed: Vec<Sealed>,
    started_at_ms: Option<u64>,
    finished: Option<Finished>,
}

impl Share {
    /// Forgets what the committed state covers; returns where the
    /// intervals this leader holds stop being consecutive from there.
    fn trim(&mut self, committed: u64) -> u64 {
        self.intervals = self.intervals.split_off(&committed);
        let mut next = committed;
        while self.intervals.contains_key(&next) {
            next += 1;
        }
        next
    }
}

impl Intake {
    /// Takes a node's batch for a share the current plan counts, given
    /// what the state has committed of it.
    pub fn receive(&self, batch: Batch, committed: &Progress) -> Ack {
        let finished = batch.finished.is_some();
        let received = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.run != batch.run_id {
                pending.run = batch.run_id.clone();
                pending.shares.clear();
            }
            let share = pending.shares.entry(batch.assignment).or_default();
            let window = committed.next..committed.next.saturating_add(HELD_AHEAD);
            for c in batch.intervals {
                if window.contains(&c.idx) {
                    share.intervals.entry(c.idx).or_insert(c);
                }
            }
            share.started_at_ms = share.started_at_ms.or(batch.started_at_ms);
            share.finished = share.finished.take().or(batch.finished);
            share.trim(committed.next)
        };
        if finished && committed.finished.is_none() {
            self.finished.notify_one();
        }
        if received > committed.next {
            self.arrived.notify_one();
        }
        Ack {
            committed: committed.next,
            received,
            done: committed.finished.is_some(),
        }
    }

    /// The entry that commits everything new, built on the committed
    /// progress of each share; `None` when nothing is new. A share the
    /// plan no longer counts is dropped. Seconds are decoded outside the
    /// intake's lock, so nodes' batches keep arriving meanwhile.
    pub fn build(&self, plan: &Plan, committed: impl Fn(u32) -> Progress) -> Option<Merged> {
        let mut parts = Vec::new();
        let mut by_idx: BTreeMap<u64, Closed> = BTreeMap::new();
        for f in self.fresh(plan, committed)? {
            let Some(closed) = self.open(&f) else {
                continue;
            };
            let refs: Vec<&Closed> = closed.iter().collect();
            let mut part = Part::of(f.id, f.from, &refs);
            part.started_at_ms = f.started_at_ms;
            part.finished = f.finished;
            if closed.is_empty() && part.started_at_ms.is_none() && part.finished.is_none() {
                continue;
            }
            for c in closed {
                match by_idx.get_mut(&c.idx) {
                    Some(m) => {
                        m.vus += c.vus;
                        m.metrics.merge(&c.metrics);
                    }
                    None => {
                        by_idx.insert(c.idx, c);
                    }
                }
            }
            parts.push(part);
        }
        (!parts.is_empty()).then(|| Merged {
            run_id: plan.run_id.clone(),
            parts,
            intervals: by_idx.into_values().collect(),
        })
    }

    /// Under the lock, what each counted share adds: its seconds past the
    /// committed watermark, its start if the state lacks it, and its end
    /// once every second before the end is in (held here or committed).
    fn fresh(&self, plan: &Plan, committed: impl Fn(u32) -> Progress) -> Option<Vec<Fresh>> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.run != plan.run_id {
            return None;
        }
        pending
            .shares
            .retain(|id, _| plan.assignments.iter().any(|a| a.id == *id && !a.lost));
        let fresh = pending.shares.iter_mut().map(|(&id, share)| {
            let p = committed(id);
            let to = share.trim(p.next);
            let sealed: Vec<Sealed> = share
                .intervals
                .range(p.next..to)
                .map(|(_, s)| s.clone())
                .collect();
            let complete = share.intervals.len() == sealed.len();
            let whole = |f: &Finished| complete && f.end.is_none_or(|end| to >= end);
            Fresh {
                id,
                from: p.next,
                sealed,
                started_at_ms: share.started_at_ms.filter(|_| p.started_at_ms.is_none()),
                finished: share
                    .finished
                    .clone()
                    .filter(|f| whole(f) && p.finished.is_none()),
            }
        });
        Some(fresh.collect())
    }

    /// A share's fresh seconds, decoded. One that does not decode is
    /// dropped from the intake, and the share waits for the node to send
    /// it again.
    fn open(&self, f: &Fresh) -> Option<Vec<Closed>> {
        let mut out = Vec::with_capacity(f.sealed.len());
        for sealed in &f.sealed {
            match sealed.open() {
                Ok(c) => out.push(c),
                Err(e) => {
                    tracing::warn!(
                        "share {}: second {} does not decode ({e}); waiting for it again",
                        f.id,
                        sealed.idx
                    );
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(share) = pending.shares.get_mut(&f.id) {
                        share.intervals.remove(&sealed.idx);
                    }
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Whether every share the plan runs now has its next second here,
    /// so one entry moves the whole series on.
    fn all_ahead(&self, plan: &Plan, committed: impl Fn(u32) -> Progress) -> bool {
        let now = crate::coordinator::now_ms();
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.run != plan.run_id {
            return false;
        }
        let mut running = plan
            .assignments
            .iter()
            .filter(|a| !a.lost && a.start_at_ms.is_none_or(|s| s <= now));
        running.all(|a| {
            let p = committed(a.id);
            p.finished.is_some()
                || pending
                    .shares
                    .get(&a.id)
                    .is_some_and(|s| s.intervals.contains_key(&p.next))
        })
    }

    /// Drops everything: this node no longer leads, and what it held is
    /// still on the nodes that sent it.
    pub fn clear(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.shares.clear();
    }
}

/// The leader's flush loop, for as long as the node runs.
pub async fn flush(ctx: Arc<NodeCtx>) {
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut committed_at: Option<Instant> = None;
    loop {
        let (finishing, arrived) = tokio::select! {
            _ = tick.tick() => (false, false),
            _ = ctx.intake.finished.notified() => {
                tokio::time::sleep(FINISH_PAUSE).await;
                (true, false)
            }
            _ = ctx.intake.arrived.notified() => (false, true),
        };
        if !ctx.is_leader() {
            ctx.intake.clear();
            continue;
        }
        let Some(plan) = current_plan(&ctx) else {
            continue;
        };
        let due = plan.report_due(committed_at);
        if !finishing && !due {
            continue;
        }
        // A share still to come gets until the tick.
        if arrived && !ctx.intake.all_ahead(&plan, |id| committed(&ctx, &plan, id)) {
            continue;
        }
        let began = Instant::now();
        let Some(entry) = ctx.intake.build(&plan, |id| committed(&ctx, &plan, id)) else {
            continue;
        };
        let shares = entry.parts.len();
        let entry = match Raw::encode(&entry) {
            Ok(raw) => Command::Merged(raw),
            Err(e) => {
                tracing::error!(run = %plan.run_id, "merged metrics do not encode: {e}");
                continue;
            }
        };
        match crate::service::write(&ctx, entry).await {
            Ok(a) if a.changed => committed_at = Some(began),
            // Built on a state this leader had not applied yet, or the plan
            // moved on: the next flush builds again from what is committed.
            Ok(_) => {
                tracing::debug!(run = %plan.run_id, "merged metrics of {shares} share(s) were stale; building again")
            }
            Err(e) => tracing::debug!(run = %plan.run_id, "merged metrics not committed yet: {e}"),
        }
    }
}

fn committed(ctx: &NodeCtx, plan: &Plan, id: u32) -> Progress {
    plan.assignments
        .iter()
        .find(|a| a.id == id)
        .map(|a| progress_of(ctx, &plan.run_id, a))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_engine::metrics::{Event, Metrics};
    use loadtest_wire::plan::{Assignment, apply_merged, apply_plan, progress_key};

    fn interval(idx: u64, requests: u64) -> Closed {
        let mut m = Metrics::default();
        for _ in 0..requests {
            m.apply(
                "s",
                Event::Request {
                    name: "r".into(),
                    status: Some(200),
                    error: None,
                    expected: Some(true),
                    micros: 100,
                    bytes: 1,
                    sent: 0,
                    method: "GET",
                    timings: Default::default(),
                    ctx: Default::default(),
                },
            );
        }
        Closed {
            idx,
            vus: 1,
            metrics: m,
        }
    }

    fn plan(shares: u32) -> Plan {
        let text = serde_json::json!({
            "run_id": "r1", "name": "t", "version": "v", "yaml": "", "plugins": {},
            "files": {}, "status": "running", "start_at_ms": 0, "assignments": [],
            "events": [],
        });
        let mut plan: Plan = serde_json::from_value(text).expect("a plan");
        plan.assignments = (0..shares)
            .map(|id| {
                serde_json::from_value::<Assignment>(serde_json::json!({
                    "id": id, "node": format!("n{id}"), "node_id": format!("n{id}"),
                    "index": id, "count": shares, "resume_from_ms": 0, "lost": false,
                }))
                .expect("an assignment")
            })
            .collect();
        plan
    }

    fn batch(assignment: u32, intervals: Vec<Closed>) -> Batch {
        Batch {
            run_id: "r1".into(),
            assignment,
            intervals: intervals.iter().map(|c| Sealed::seal(c).unwrap()).collect(),
            started_at_ms: Some(1),
            finished: None,
        }
    }

    fn progress(data: &BTreeMap<String, String>, id: u32) -> Progress {
        data.get(&progress_key("r1", id))
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    /// Many shares' seconds become one entry, and what a node sends again
    /// (an acknowledgement lost, or a new leader) is counted once.
    #[test]
    fn one_entry_per_flush_counts_every_interval_once() {
        let plan = plan(50);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        for id in 0..50 {
            let ack = intake.receive(
                batch(id, vec![interval(0, 2), interval(1, 3)]),
                &progress(&data, id),
            );
            assert_eq!((ack.committed, ack.received, ack.done), (0, 2, false));
        }
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("new metrics");
        assert_eq!((entry.parts.len(), entry.intervals.len()), (50, 2));
        assert!(apply_merged(&mut data, &entry));
        // Share 7 did not hear back and sends both again, plus one more.
        intake.receive(
            batch(7, vec![interval(0, 2), interval(1, 3), interval(2, 4)]),
            &progress(&data, 7),
        );
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("one new second");
        assert_eq!(entry.parts.len(), 1);
        assert!(apply_merged(&mut data, &entry));
        let requests: u64 = (0..50).map(|id| progress(&data, id).requests).sum();
        assert_eq!(requests, 50 * 5 + 4);
        assert!(intake.build(&plan, |id| progress(&data, id)).is_none());
    }

    #[test]
    fn a_share_ends_only_after_its_last_interval() {
        let plan = plan(1);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        let end = Finished {
            elapsed_ms: 9,
            stopped_early: false,
            init_failed: 0,
            end: Some(2),
            aborted_by_script: None,
            failed_by_script: None,
        };
        // Interval 0 never arrived (sent to the old leader): 1 waits.
        let mut b = batch(0, vec![interval(1, 1)]);
        b.finished = Some(end.clone());
        let ack = intake.receive(b, &progress(&data, 0));
        assert_eq!(ack.received, 0);
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("the start");
        assert!(entry.intervals.is_empty() && entry.parts[0].finished.is_none());
        apply_merged(&mut data, &entry);
        intake.receive(
            batch(0, vec![interval(0, 1), interval(1, 1)]),
            &progress(&data, 0),
        );
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("both and the end");
        assert_eq!(entry.parts[0].finished, Some(end.clone()));
        assert!(apply_merged(&mut data, &entry));
        let p = progress(&data, 0);
        assert_eq!((p.next, p.requests, p.finished), (2, 2, Some(end)));
    }

    /// A leader that lost its leadership dropped what it held; elected
    /// again, it gets only the end from a node that believes it still holds
    /// the seconds before. The end waits for them: committed alone, it
    /// would finish the share without them (counts short of the target's
    /// after leaders changed often in a 100-node run).
    #[test]
    fn an_end_sent_alone_waits_for_the_seconds_before_it() {
        let plan = plan(1);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        intake.receive(
            batch(0, vec![interval(0, 1), interval(1, 1)]),
            &progress(&data, 0),
        );
        intake.clear();
        let mut b = batch(0, Vec::new());
        b.finished = Some(Finished {
            elapsed_ms: 9,
            stopped_early: false,
            init_failed: 0,
            end: Some(2),
            aborted_by_script: None,
            failed_by_script: None,
        });
        let ack = intake.receive(b.clone(), &progress(&data, 0));
        assert_eq!(
            (ack.received, ack.done),
            (0, false),
            "the node sends again from 0"
        );
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("the start");
        assert!(entry.parts[0].finished.is_none());
        assert!(apply_merged(&mut data, &entry));
        b.intervals = batch(0, vec![interval(0, 1), interval(1, 1)]).intervals;
        intake.receive(b, &progress(&data, 0));
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("all of it");
        assert!(entry.parts[0].finished.is_some());
        assert!(apply_merged(&mut data, &entry));
        let p = progress(&data, 0);
        assert_eq!((p.next, p.requests, p.finished.is_some()), (2, 2, true));
    }

    /// With nothing committed, a share's backlog is held only up to the
    /// window; the rest is taken once the state moves on.
    #[test]
    fn a_leader_that_cannot_commit_holds_a_bounded_backlog() {
        let plan = plan(1);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        let backlog = |from: u64| batch(0, (from..from + 50).map(|i| interval(i, 1)).collect());
        let ack = intake.receive(backlog(0), &progress(&data, 0));
        assert_eq!(ack.received, HELD_AHEAD);
        let held = |intake: &Intake| intake.pending.lock().unwrap().shares[&0].intervals.len();
        assert_eq!(held(&intake) as u64, HELD_AHEAD);
        let entry = intake.build(&plan, |id| progress(&data, id)).expect("new");
        assert!(apply_merged(&mut data, &entry));
        let ack = intake.receive(backlog(HELD_AHEAD), &progress(&data, 0));
        assert_eq!((ack.committed, ack.received), (HELD_AHEAD, 2 * HELD_AHEAD));
        assert_eq!(held(&intake) as u64, HELD_AHEAD);
    }

    /// A hostile or broken node's second is not merged, nor does it stop
    /// the flush: the share waits until a good copy comes.
    #[test]
    fn a_second_that_does_not_decode_is_waited_for_again() {
        let plan = plan(1);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        let mut bad = batch(0, Vec::new());
        bad.intervals = vec![serde_json::from_str(r#"{"idx":0,"vus":"many"}"#).unwrap()];
        assert_eq!(intake.receive(bad, &progress(&data, 0)).received, 1);
        assert!(intake.build(&plan, |id| progress(&data, id)).is_none());
        let ack = intake.receive(batch(0, vec![interval(0, 2)]), &progress(&data, 0));
        assert_eq!(ack.received, 1);
        let entry = intake.build(&plan, |id| progress(&data, id)).expect("new");
        assert!(apply_merged(&mut data, &entry));
        assert_eq!(progress(&data, 0).requests, 2);
    }

    #[test]
    fn a_share_declared_lost_is_dropped() {
        let mut plan = plan(2);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        intake.receive(batch(0, vec![interval(0, 1)]), &Progress::default());
        intake.receive(batch(1, vec![interval(0, 1)]), &Progress::default());
        plan.assignments[1].lost = true;
        let entry = intake
            .build(&plan, |id| progress(&data, id))
            .expect("share 0");
        assert_eq!(
            entry.parts.iter().map(|p| p.assignment).collect::<Vec<_>>(),
            vec![0]
        );
    }

    /// A batch wakes the flush, which commits at once only when every
    /// running share's next second is in; a lost share is not waited for.
    #[test]
    fn the_flush_on_arrival_waits_for_every_running_share() {
        let mut plan = plan(2);
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan);
        let intake = Intake::default();
        intake.receive(batch(0, vec![interval(0, 1)]), &progress(&data, 0));
        assert!(!intake.all_ahead(&plan, |id| progress(&data, id)));
        intake.receive(batch(1, vec![interval(0, 1)]), &progress(&data, 1));
        assert!(intake.all_ahead(&plan, |id| progress(&data, id)));
        let entry = intake.build(&plan, |id| progress(&data, id)).expect("both");
        assert!(apply_merged(&mut data, &entry));
        assert!(!intake.all_ahead(&plan, |id| progress(&data, id)));
        intake.receive(batch(0, vec![interval(1, 1)]), &progress(&data, 0));
        assert!(!intake.all_ahead(&plan, |id| progress(&data, id)));
        plan.assignments[1].lost = true;
        assert!(intake.all_ahead(&plan, |id| progress(&data, id)));
    }
}
