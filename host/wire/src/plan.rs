//! The replicated record of a distributed run: the Plan (what runs,
//! where, from when), each assignment's progress, the merged per-second
//! metrics, and the final result. It lives in the Raft state machine, so
//! a new leader finds everything the old one knew, and the state machine
//! itself merges metric batches, so a replayed batch is never counted twice.

use loadtest_engine::metrics::{Closed, Metrics, Row};
use loadtest_engine::workload::Segment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The state-machine key of the current plan.
pub const PLAN: &str = "plan";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The leader is shipping the Bundle; nodes compile and acknowledge.
    Distributing,
    /// Every node acknowledged; load starts at `start_at_ms`.
    Running,
    /// An operator asked for a graceful stop.
    Stopping,
    Finished,
    Aborted,
}

impl Status {
    pub fn is_over(self) -> bool {
        matches!(self, Status::Finished | Status::Aborted)
    }
}

/// A share of the load given to one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assignment {
    pub id: u32,
    /// The node's Raft address.
    pub node: String,
    pub node_id: String,
    pub index: u32,
    pub count: u32,
    /// Offset into the schedule this assignment starts at (non-zero when
    /// it took over a lost node's share mid-run).
    pub resume_from_ms: u64,
    /// The assignment whose share this one took over.
    pub takeover_of: Option<u32>,
    /// The node stopped reporting; its share is no longer produced here.
    pub lost: bool,
    /// When this share's clock starts (Unix ms), if not the plan's start:
    /// shares of a config switched in mid-run start at the switch.
    #[serde(default)]
    pub start_at_ms: Option<u64>,
    /// When this share stops gracefully (Unix ms): a config switch ends
    /// the old config's shares at the moment the new ones start.
    #[serde(default)]
    pub stop_at_ms: Option<u64>,
    /// The config version this share runs.
    #[serde(default)]
    pub version: String,
}

impl Assignment {
    pub fn segment(&self) -> Segment {
        Segment {
            index: self.index,
            count: self.count,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub run_id: String,
    /// The config's name, as reports show it.
    pub name: String,
    /// Short SHA-256 of the YAML: which version of the config runs.
    pub version: String,
    pub yaml: String,
    /// Plugin bytes shipped with the config, by plugin name (builtin
    /// plugins travel inside every binary and are not listed).
    pub plugins: BTreeMap<String, String>,
    /// Data files by name, as digests.
    pub files: BTreeMap<String, String>,
    pub status: Status,
    /// Wall-clock start (Unix ms), common to every node.
    pub start_at_ms: u64,
    pub assignments: Vec<Assignment>,
    /// What happened during the run, for the report.
    pub events: Vec<String>,
    pub error: Option<String>,
    /// Bumped by every change: a write based on an older copy is refused,
    /// so a stale writer (an old leader, a slow distribution) cannot undo
    /// a stop, a loss or a newer run.
    #[serde(default)]
    pub revision: u64,
    /// Where the config came from: `submit`, or `consul-kv:<key>` (whose
    /// updates may then switch the run's config).
    #[serde(default)]
    pub origin: String,
    /// An `abortOnFail` threshold stopped the run.
    #[serde(default)]
    pub aborted_by_threshold: bool,
    /// What the scenarios' `setup` returned, run once on the leader
    /// before the plan went out; every node's VUs see it.
    #[serde(default)]
    pub setup: loadtest_engine::workload::SetupData,
    /// Set once `teardown` has run, so a new leader does not run it again.
    #[serde(default)]
    pub teardown_done: bool,
    /// Why teardown failed, if it did.
    #[serde(default)]
    pub teardown_error: Option<String>,
}

impl Plan {
    pub fn mine<'a>(&'a self, addr: &'a str) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.assignments.iter().filter(move |a| a.node == addr)
    }
}

/// A node's report of closed intervals for one assignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub run_id: String,
    pub assignment: u32,
    /// Consecutive intervals from the oldest one not yet acknowledged.
    pub intervals: Vec<Closed>,
    /// When the node's clock started its first iteration (Unix ms).
    pub started_at_ms: Option<u64>,
    /// Set on the last batch: the assignment's engine has finished.
    pub finished: Option<Finished>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Finished {
    pub elapsed_ms: u64,
    pub stopped_early: bool,
    pub init_failed: u64,
}

/// What the state machine knows of one assignment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// The next interval index expected: everything below is merged.
    pub next: u64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub started_at_ms: Option<u64>,
    pub finished: Option<Finished>,
}

/// The merged result of a run, written once by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub metrics: Metrics,
    pub rows: Vec<Row>,
    pub elapsed_ms: u64,
    pub stopped_early: bool,
    pub nodes: Vec<NodeReport>,
    pub events: Vec<String>,
    #[serde(default)]
    pub aborted_by_threshold: bool,
    #[serde(default)]
    pub teardown_error: Option<String>,
}

/// One node's share of a finished run, as the replicated result keeps it.
/// The report's `NodeSummary` is built from it: editing the report must
/// never change what the Raft log and the store on disk hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeReport {
    pub node_id: String,
    pub addr: String,
    /// Which equal part of the load, as `i/n`.
    pub segment: String,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// When the node's first iteration began (Unix ms).
    pub started_at_ms: Option<u64>,
    /// finished, stopped, lost or running.
    pub status: String,
    /// The node whose share this one took over mid-run.
    pub took_over_from: Option<String>,
}

pub fn progress_key(run: &str, assignment: u32) -> String {
    format!("run/{run}/a/{assignment:04}")
}

pub fn interval_key(run: &str, idx: u64) -> String {
    format!("run/{run}/i/{idx:08}")
}

pub fn interval_prefix(run: &str) -> String {
    format!("run/{run}/i/")
}

pub fn result_key(run: &str) -> String {
    format!("run/{run}/result")
}

/// Applies a batch to the state-machine map: intervals at or after the
/// assignment's `next` are merged in order; earlier ones (a replay after
/// a lost acknowledgement) are skipped. Returns the new `next`, the
/// acknowledgement the node gets back.
pub fn apply_batch(data: &mut BTreeMap<String, String>, b: &Batch) -> u64 {
    let plan = data
        .get(PLAN)
        .and_then(|p| serde_json::from_str::<Plan>(p).ok());
    let current = plan.as_ref().is_some_and(|p| {
        p.run_id == b.run_id
            && !p.status.is_over()
            && p.assignments
                .iter()
                .any(|a| a.id == b.assignment && !a.lost)
    });
    if !current {
        // Nobody counts this share any more (its run is over, or it was
        // declared lost and handed on): acknowledge and drop it, so a
        // node that comes back after its share moved adds nothing twice.
        return u64::MAX;
    }
    let key = progress_key(&b.run_id, b.assignment);
    let mut p: Progress = data
        .get(&key)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let mut complete = true;
    for c in &b.intervals {
        if c.idx < p.next {
            continue;
        }
        if c.idx > p.next {
            complete = false;
            break;
        }
        merge_interval(data, &b.run_id, c);
        let m = &c.metrics;
        p.requests += m.total_requests();
        p.failed += m.total_failed();
        p.iterations += m.scenarios.values().map(|s| s.iterations).sum::<u64>();
        p.dropped += m.scenarios.values().map(|s| s.dropped).sum::<u64>();
        p.next += 1;
    }
    if p.started_at_ms.is_none() {
        p.started_at_ms = b.started_at_ms;
    }
    if complete && b.finished.is_some() {
        p.finished = b.finished;
    }
    let next = p.next;
    data.insert(key, serde_json::to_string(&p).unwrap_or_default());
    next
}

fn merge_interval(data: &mut BTreeMap<String, String>, run: &str, c: &Closed) {
    let key = interval_key(run, c.idx);
    let mut merged: Closed = data
        .get(&key)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Closed {
            idx: c.idx,
            vus: 0,
            metrics: Metrics::default(),
        });
    merged.vus += c.vus;
    merged.metrics.merge(&c.metrics);
    data.insert(key, serde_json::to_string(&merged).unwrap_or_default());
}

/// Every key a run keeps (intervals, progress, result).
pub fn run_prefix(run: &str) -> String {
    format!("run/{run}/")
}

/// The keys of the run a new plan would replace, if it replaces one.
pub fn replaced_keys(data: &BTreeMap<String, String>, plan: &Plan) -> Vec<String> {
    let Some(old) = data
        .get(PLAN)
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
        .filter(|old| old.run_id != plan.run_id)
    else {
        return Vec::new();
    };
    let prefix = run_prefix(&old.run_id);
    data.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Takes a plan if it follows the current one: the next revision of the
/// same run, or a new run once the current one is over. A new run drops
/// everything the old one kept, so the state does not grow run by run.
/// Returns whether the plan was taken.
pub fn apply_plan(data: &mut BTreeMap<String, String>, plan: &Plan) -> bool {
    let current = data
        .get(PLAN)
        .and_then(|p| serde_json::from_str::<Plan>(p).ok());
    let follows = match &current {
        None => true,
        Some(c) if c.run_id == plan.run_id => plan.revision == c.revision + 1,
        Some(c) => c.status.is_over() && plan.revision == 0,
    };
    if !follows {
        return false;
    }
    for k in replaced_keys(data, plan) {
        data.remove(&k);
    }
    data.insert(
        PLAN.to_owned(),
        serde_json::to_string(plan).unwrap_or_default(),
    );
    true
}

/// An operator's stop: a running plan stops gracefully, one still being
/// distributed is aborted. Returns whether anything changed.
pub fn apply_stop(data: &mut BTreeMap<String, String>, run_id: &str) -> bool {
    let Some(mut plan) = data
        .get(PLAN)
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
    else {
        return false;
    };
    if plan.run_id != run_id && !run_id.is_empty() {
        return false;
    }
    match plan.status {
        Status::Running => plan.status = Status::Stopping,
        Status::Distributing => {
            plan.status = Status::Aborted;
            plan.error = Some("stopped by an operator before the load started".into());
        }
        _ => return false,
    }
    plan.events.push("stop requested by an operator".into());
    plan.revision += 1;
    data.insert(
        PLAN.to_owned(),
        serde_json::to_string(&plan).unwrap_or_default(),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_engine::metrics::Event;

    fn plan(run: &str) -> Plan {
        Plan {
            run_id: run.into(),
            name: "t".into(),
            version: "v".into(),
            yaml: String::new(),
            plugins: BTreeMap::new(),
            files: BTreeMap::new(),
            status: Status::Running,
            start_at_ms: 0,
            assignments: vec![Assignment {
                id: 0,
                node: "n".into(),
                node_id: "n".into(),
                index: 0,
                count: 1,
                resume_from_ms: 0,
                takeover_of: None,
                lost: false,
                start_at_ms: None,
                stop_at_ms: None,
                version: "v".into(),
            }],
            events: vec![],
            error: None,
            revision: 0,
            origin: String::new(),
            aborted_by_threshold: false,
            setup: Default::default(),
            teardown_done: false,
            teardown_error: None,
        }
    }

    fn interval(idx: u64, requests: u64) -> Closed {
        let mut m = Metrics::default();
        for _ in 0..requests {
            m.apply(
                "s",
                Event::Request {
                    name: "r".into(),
                    status: Some(200),
                    error: None,
                    micros: 100,
                    bytes: 1,
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

    fn batch(intervals: Vec<Closed>) -> Batch {
        Batch {
            run_id: "r1".into(),
            assignment: 0,
            intervals,
            started_at_ms: Some(5),
            finished: None,
        }
    }

    #[test]
    fn replayed_intervals_are_counted_once() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert_eq!(
            apply_batch(&mut data, &batch(vec![interval(0, 3), interval(1, 4)])),
            2
        );
        // The acknowledgement was lost: the node sends 1 again, then 2.
        assert_eq!(
            apply_batch(&mut data, &batch(vec![interval(1, 4), interval(2, 5)])),
            3
        );
        let p: Progress = serde_json::from_str(&data[&progress_key("r1", 0)]).unwrap();
        assert_eq!(p.requests, 12);
        let i1: Closed = serde_json::from_str(&data[&interval_key("r1", 1)]).unwrap();
        assert_eq!(i1.metrics.total_requests(), 4);
    }

    #[test]
    fn a_gap_stops_the_merge_and_finish_waits_for_it() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        let mut b = batch(vec![interval(1, 1)]);
        b.finished = Some(Finished {
            elapsed_ms: 1,
            stopped_early: false,
            init_failed: 0,
        });
        assert_eq!(apply_batch(&mut data, &b), 0);
        let p: Progress = serde_json::from_str(&data[&progress_key("r1", 0)]).unwrap();
        assert!(p.finished.is_none());
    }

    #[test]
    fn batches_of_another_run_are_acknowledged_and_dropped() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r2"));
        assert_eq!(
            apply_batch(&mut data, &batch(vec![interval(0, 1)])),
            u64::MAX
        );
        assert!(!data.contains_key(&progress_key("r1", 0)));
    }

    #[test]
    fn a_new_run_replaces_a_finished_one_and_drops_its_keys() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        apply_batch(&mut data, &batch(vec![interval(0, 1)]));
        assert!(!apply_plan(&mut data, &plan("r2")), "r1 is still running");
        let mut done = plan("r1");
        done.status = Status::Finished;
        done.revision = 1;
        assert!(apply_plan(&mut data, &done));
        assert!(apply_plan(&mut data, &plan("r2")));
        assert!(!data.keys().any(|k| k.starts_with("run/r1/")));
    }

    #[test]
    fn a_stale_revision_cannot_undo_a_stop() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_stop(&mut data, "r1"));
        // A writer still holding revision 0 tries to write revision 1.
        let mut stale = plan("r1");
        stale.revision = 1;
        stale.events.push("late".into());
        assert!(!apply_plan(&mut data, &stale));
        let now: Plan = serde_json::from_str(&data[PLAN]).unwrap();
        assert_eq!(now.status, Status::Stopping);
    }

    #[test]
    fn a_lost_share_is_acknowledged_and_not_counted() {
        let mut data = BTreeMap::new();
        let mut p = plan("r1");
        p.assignments[0].lost = true;
        apply_plan(&mut data, &p);
        assert_eq!(
            apply_batch(&mut data, &batch(vec![interval(0, 5)])),
            u64::MAX
        );
        assert!(!data.contains_key(&interval_key("r1", 0)));
    }
}
