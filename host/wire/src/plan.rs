//! The replicated record of a distributed run: the Plan (what runs,
//! where, from when), each assignment's progress, the merged per-second
//! metrics, and the final result. It lives in the Raft state machine, so
//! a new leader finds everything the old one knew. Metrics reach it as one
//! merged entry per flush from the leader, with per-share watermarks, so
//! a batch replayed to a new leader is never counted twice.

use crate::raw::Raw;
use loadtest_engine::metrics::{Closed, Metrics, Row};
use loadtest_engine::workload::Segment;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// A script stopped the run (`exec.test.abort()`), for this reason.
    #[serde(default)]
    pub aborted_by_script: Option<String>,
    /// Setup or teardown, run on the leader, marked the test failed
    /// (`exec.test.fail()`), for this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_by_script: Option<String>,
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
    /// Live changes (pause, resume, VUs, rate factor), oldest first:
    /// every node applies each at its moment, and a share that starts
    /// later (a takeover) applies those already past at once.
    #[serde(default)]
    pub changes: Vec<Steer>,
    /// How often each node sends its closed seconds and the leader commits
    /// them, in ms (0, from older leaders, is read as a second). The
    /// leader sets it from the fleet's size when it plans the run.
    #[serde(default)]
    pub report_every_ms: u64,
}

/// A live change and the moment (Unix ms) every node applies it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Steer {
    pub at_ms: u64,
    pub change: loadtest_engine::workload::Change,
    /// What the change does, as the leader checked it against the config.
    pub said: String,
}

impl Plan {
    /// The cadence of metrics reports and merged commits for this run.
    pub fn report_every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.report_every_ms.max(1000))
    }

    /// Whether a report (or commit) made at `last` is an interval old,
    /// give or take the jitter of the one-second tick that asks.
    pub fn report_due(&self, last: Option<std::time::Instant>) -> bool {
        const TICK_SLACK: std::time::Duration = std::time::Duration::from_millis(200);
        last.is_none_or(|t| t.elapsed() + TICK_SLACK >= self.report_every())
    }

    pub fn mine<'a>(&'a self, addr: &'a str) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.assignments.iter().filter(move |a| a.node == addr)
    }
}

/// A node's report of closed intervals for one assignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub run_id: String,
    pub assignment: u32,
    /// Consecutive intervals from the oldest one this leader does not
    /// hold yet.
    pub intervals: Vec<Sealed>,
    /// When the node's clock started its first iteration (Unix ms).
    pub started_at_ms: Option<u64>,
    /// Set on the last batch: the assignment's engine has finished.
    pub finished: Option<Finished>,
}

/// A closed interval kept as the JSON the node encoded it to, with its
/// index read off. Decoded, one second of one scenario is about 350 KiB of
/// full-size histograms, encoded a few KiB; the node keeps every second
/// not yet committed (all of them while no leader commits) and the leader
/// holds what it has not merged, so both keep them sealed, and the leader
/// decodes each once, where it merges it. On the wire it is the interval
/// itself, as before.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub idx: u64,
    raw: Raw<Closed>,
}

impl Sealed {
    pub fn seal(c: &Closed) -> serde_json::Result<Sealed> {
        Ok(Sealed {
            idx: c.idx,
            raw: Raw::encode(c)?,
        })
    }

    /// The interval, checked to be the one its index said.
    pub fn open(&self) -> Result<Closed, String> {
        let c = self.raw.decode().map_err(|e| e.to_string())?;
        if c.idx != self.idx {
            return Err(format!("interval {} says it is {}", self.idx, c.idx));
        }
        Ok(c)
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Idx {
            idx: u64,
        }
        let raw = Raw::<Closed>::deserialize(d)?;
        let Idx { idx } = serde_json::from_str(raw.json()).map_err(serde::de::Error::custom)?;
        Ok(Sealed { idx, raw })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Finished {
    pub elapsed_ms: u64,
    pub stopped_early: bool,
    pub init_failed: u64,
    /// One past the share's last second. The leader commits the end only
    /// once it holds every second before it: a node that believes the
    /// leader holds its seconds (the same leader, elected again after
    /// dropping what it held) sends the end alone. Absent from nodes of
    /// an earlier version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// Why a script of this share ended the test (k6's
    /// `exec.test.abort()`), if one did. The share also asks the leader
    /// to stop the run, but when it was the last share running the run
    /// can finish before that stop lands: the leader then takes the
    /// reason from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by_script: Option<String>,
    /// Why a script of this share marked the test failed (k6's
    /// `exec.test.fail()`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_by_script: Option<String>,
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
    pub aborted_by_script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_by_script: Option<String>,
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

/// The leader's one write per flush: whatever is new from every share,
/// its intervals merged across shares by index, and each share's
/// watermark before and after. Its size grows with the number of shares
/// only by a [`Part`] each; the metrics in it are one merged interval per
/// second whatever the fleet size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    pub run_id: String,
    pub parts: Vec<Part>,
    /// The parts' intervals, merged across shares: one per index.
    pub intervals: Vec<Closed>,
}

/// One share's contribution to a [`Merged`] entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Part {
    pub assignment: u32,
    /// The share's `next` the entry was built on. The entry applies only
    /// if the state still has it, so intervals replayed to a new leader
    /// are counted once.
    pub from: u64,
    /// The share's `next` after the entry: intervals `from..to` are in it.
    pub to: u64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub started_at_ms: Option<u64>,
    pub finished: Option<Finished>,
}

impl Part {
    /// The share's counts over `intervals`, which run from `from` on.
    pub fn of(assignment: u32, from: u64, intervals: &[&Closed]) -> Part {
        let mut part = Part {
            assignment,
            from,
            to: from + intervals.len() as u64,
            requests: 0,
            failed: 0,
            iterations: 0,
            dropped: 0,
            started_at_ms: None,
            finished: None,
        };
        for c in intervals {
            let m = &c.metrics;
            part.requests += m.total_requests();
            part.failed += m.total_failed();
            part.iterations += m.scenarios.values().map(|s| s.iterations).sum::<u64>();
            part.dropped += m.scenarios.values().map(|s| s.dropped).sum::<u64>();
        }
        part
    }
}

/// The leader's answer to a node's batch.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ack {
    /// Everything below is committed: the node may forget it. `u64::MAX`:
    /// nobody counts this share any more (its run is over, or it was
    /// declared lost and handed on).
    pub committed: u64,
    /// Everything below is held by this leader on its way to the log: the
    /// node sends from here while the same leader leads, and keeps the
    /// rest until it is committed.
    pub received: u64,
    /// The share's end is committed: the node is done reporting.
    pub done: bool,
}

impl Ack {
    pub const OVER: Ack = Ack {
        committed: u64::MAX,
        received: u64::MAX,
        done: true,
    };
}

/// Applies a merged entry to the state-machine map, all or nothing: if
/// any part's share is no longer counted or has moved past the part's
/// `from` (an entry built on a state the leader had not caught up with),
/// nothing is applied and the leader builds again. Returns whether it
/// applied.
pub fn apply_merged(data: &mut BTreeMap<String, String>, m: &Merged) -> bool {
    let Some(plan) = data
        .get(PLAN)
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
        .filter(|p| p.run_id == m.run_id && !p.status.is_over())
    else {
        return false;
    };
    let mut progress = Vec::with_capacity(m.parts.len());
    for part in &m.parts {
        let counted = plan
            .assignments
            .iter()
            .any(|a| a.id == part.assignment && !a.lost);
        let p: Progress = data
            .get(&progress_key(&m.run_id, part.assignment))
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        if !counted || p.next != part.from || part.to < part.from {
            return false;
        }
        progress.push(p);
    }
    for c in &m.intervals {
        merge_interval(data, &m.run_id, c);
    }
    for (part, mut p) in m.parts.iter().zip(progress) {
        p.next = part.to;
        p.requests += part.requests;
        p.failed += part.failed;
        p.iterations += part.iterations;
        p.dropped += part.dropped;
        p.started_at_ms = p.started_at_ms.or(part.started_at_ms);
        p.finished = p.finished.or_else(|| part.finished.clone());
        data.insert(
            progress_key(&m.run_id, part.assignment),
            serde_json::to_string(&p).unwrap_or_default(),
        );
    }
    true
}

/// Seconds of the merged series kept one by one; older seconds are
/// folded into minutes. A day-long run then keeps about 2,000 intervals
/// in the replicated state (and its snapshots) rather than 86,400.
pub const FINE_SECS: u64 = 600;
/// The seconds one coarse interval covers.
pub const COARSE_SECS: u64 = 60;

pub fn coarse_key(run: &str, minute: u64) -> String {
    format!("run/{run}/m/{minute:06}")
}

pub fn coarse_prefix(run: &str) -> String {
    format!("run/{run}/m/")
}

/// The run's metrics merged over every interval so far, kept as
/// intervals are merged so thresholds read one key, not the series.
pub fn total_key(run: &str) -> String {
    format!("run/{run}/total")
}

fn decode_closed(v: Option<&String>, idx: u64) -> Closed {
    v.and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Closed {
            idx,
            vus: 0,
            metrics: Metrics::default(),
        })
}

/// The newest second kept one by one, if any.
fn newest_second(data: &BTreeMap<String, String>, run: &str) -> Option<u64> {
    let prefix = interval_prefix(run);
    // Keys of one prefix sort together; the prefix with its last byte
    // bumped is the first key after them.
    let end = format!("run/{run}/i0");
    let (k, _) = data.range(prefix.clone()..end).next_back()?;
    k[prefix.len()..].parse().ok()
}

/// Seconds older than `newest` by more than [`FINE_SECS`], oldest first.
fn foldable(data: &BTreeMap<String, String>, run: &str, newest: u64) -> Vec<u64> {
    let prefix = interval_prefix(run);
    data.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map_while(|(k, _)| k[prefix.len()..].parse::<u64>().ok())
        .take_while(|idx| idx + FINE_SECS < newest)
        .collect()
}

/// The keys a merged entry may change, known before it is applied.
pub fn merged_keys(data: &BTreeMap<String, String>, m: &Merged) -> Vec<String> {
    let run = &m.run_id;
    let newest = m
        .intervals
        .iter()
        .map(|c| c.idx)
        .chain(newest_second(data, run))
        .max()
        .unwrap_or(0);
    let seconds = m
        .intervals
        .iter()
        .map(|c| c.idx)
        .chain(foldable(data, run, newest));
    let mut keys: Vec<String> = m
        .parts
        .iter()
        .map(|p| progress_key(run, p.assignment))
        .chain([total_key(run)])
        .collect();
    for idx in seconds {
        keys.push(interval_key(run, idx));
        keys.push(coarse_key(run, idx / COARSE_SECS));
    }
    keys
}

fn merge_interval(data: &mut BTreeMap<String, String>, run: &str, c: &Closed) {
    let newest = newest_second(data, run).unwrap_or(0).max(c.idx);
    if c.idx + FINE_SECS < newest {
        // A late second of a share that fell behind: its minute is folded.
        fold_into_minute(data, run, c);
    } else {
        let key = interval_key(run, c.idx);
        let mut merged = decode_closed(data.get(&key), c.idx);
        merged.vus += c.vus;
        merged.metrics.merge(&c.metrics);
        data.insert(key, serde_json::to_string(&merged).unwrap_or_default());
    }
    let key = total_key(run);
    let mut total: Metrics = data
        .get(&key)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    total.merge(&c.metrics);
    data.insert(key, serde_json::to_string(&total).unwrap_or_default());
    for idx in foldable(data, run, newest) {
        if let Some(v) = data.remove(&interval_key(run, idx)) {
            fold_into_minute(data, run, &decode_closed(Some(&v), idx));
        }
    }
}

/// Adds a second to its minute; the minute's VUs are the busiest second's.
fn fold_into_minute(data: &mut BTreeMap<String, String>, run: &str, c: &Closed) {
    let minute = c.idx / COARSE_SECS;
    let key = coarse_key(run, minute);
    let mut merged = decode_closed(data.get(&key), minute);
    merged.vus = merged.vus.max(c.vus);
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

/// A stop, an operator's or a script's (`reason`): a running plan stops
/// gracefully, one still being distributed is aborted. A script's reason
/// is kept on a plan already stopping, since it decides the exit code.
/// Returns whether anything changed.
pub fn apply_stop(data: &mut BTreeMap<String, String>, run_id: &str, reason: Option<&str>) -> bool {
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
            plan.error = Some(match reason {
                Some(r) => format!("the script aborted the test before the load started: {r}"),
                None => "stopped by an operator before the load started".into(),
            });
        }
        Status::Stopping if reason.is_some() && plan.aborted_by_script.is_none() => {}
        _ => return false,
    }
    plan.events.push(match reason {
        Some(r) => format!("the script aborted the test: {r}"),
        None => "stop requested by an operator".into(),
    });
    plan.aborted_by_script = reason.map(str::to_owned);
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
            aborted_by_script: None,
            failed_by_script: None,
            setup: Default::default(),
            teardown_done: false,
            teardown_error: None,
            changes: Vec::new(),
            report_every_ms: 0,
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

    fn merged(run: &str, from: u64, intervals: Vec<Closed>) -> Merged {
        let refs: Vec<&Closed> = intervals.iter().collect();
        let mut part = Part::of(0, from, &refs);
        part.started_at_ms = Some(5);
        Merged {
            run_id: run.into(),
            parts: vec![part],
            intervals,
        }
    }

    fn progress(data: &BTreeMap<String, String>) -> Progress {
        serde_json::from_str(&data[&progress_key("r1", 0)]).unwrap()
    }

    #[test]
    fn an_entry_built_on_an_old_watermark_is_not_applied() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_merged(
            &mut data,
            &merged("r1", 0, vec![interval(0, 3), interval(1, 4)])
        ));
        // A new leader that had not applied that entry yet builds on 0
        // again: the whole entry is refused, nothing counts twice.
        assert!(!apply_merged(
            &mut data,
            &merged(
                "r1",
                0,
                vec![interval(0, 3), interval(1, 4), interval(2, 5)]
            )
        ));
        assert!(apply_merged(
            &mut data,
            &merged("r1", 2, vec![interval(2, 5)])
        ));
        let p = progress(&data);
        assert_eq!((p.next, p.requests, p.started_at_ms), (3, 12, Some(5)));
        let i1: Closed = serde_json::from_str(&data[&interval_key("r1", 1)]).unwrap();
        assert_eq!(i1.metrics.total_requests(), 4);
    }

    #[test]
    fn a_merged_entry_reaches_a_follower_as_the_text_the_leader_encoded() {
        use crate::command::{Command, TypeConfig};
        use crate::raw::Raw;
        use openraft::raft::AppendEntriesRequest;
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
        let m = merged("r1", 0, vec![interval(0, 3), interval(1, 4)]);
        let cmd = Command::Merged(Raw::encode(&m).unwrap());
        // The same bytes as the decoded entry of earlier builds.
        assert_eq!(
            serde_json::to_value(&cmd).unwrap(),
            serde_json::json!({ "Merged": m })
        );
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), 7),
                payload: EntryPayload::Normal(cmd),
            }],
        };
        let back: AppendEntriesRequest<TypeConfig> =
            crate::rpc::decode(&crate::rpc::encode(&req).unwrap()).unwrap();
        let EntryPayload::Normal(Command::Merged(raw)) = &back.entries[0].payload else {
            panic!("not a merged entry: {:?}", back.entries[0].payload);
        };
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_merged(&mut data, &raw.decode().unwrap()));
        assert_eq!((progress(&data).next, progress(&data).requests), (2, 7));
    }

    #[test]
    fn shares_of_one_second_merge_into_one_interval() {
        let mut data = BTreeMap::new();
        let mut p = plan("r1");
        let mut second = p.assignments[0].clone();
        second.id = 1;
        p.assignments.push(second);
        apply_plan(&mut data, &p);
        let mut one = interval(0, 3);
        one.metrics.merge(&interval(0, 4).metrics);
        one.vus = 2;
        let m = Merged {
            run_id: "r1".into(),
            parts: vec![
                Part::of(0, 0, &[&interval(0, 3)]),
                Part::of(1, 0, &[&interval(0, 4)]),
            ],
            intervals: vec![one],
        };
        assert!(apply_merged(&mut data, &m));
        let i0: Closed = serde_json::from_str(&data[&interval_key("r1", 0)]).unwrap();
        assert_eq!((i0.metrics.total_requests(), i0.vus), (7, 2));
        let p1: Progress = serde_json::from_str(&data[&progress_key("r1", 1)]).unwrap();
        assert_eq!((p1.next, p1.requests), (1, 4));
    }

    #[test]
    fn entries_for_another_run_or_a_lost_share_are_dropped() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r2"));
        assert!(!apply_merged(
            &mut data,
            &merged("r1", 0, vec![interval(0, 1)])
        ));
        assert!(!data.contains_key(&progress_key("r1", 0)));
        let mut data = BTreeMap::new();
        let mut p = plan("r1");
        p.assignments[0].lost = true;
        apply_plan(&mut data, &p);
        assert!(!apply_merged(
            &mut data,
            &merged("r1", 0, vec![interval(0, 5)])
        ));
        assert!(!data.contains_key(&interval_key("r1", 0)));
    }

    #[test]
    fn a_new_run_replaces_a_finished_one_and_drops_its_keys() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_merged(
            &mut data,
            &merged("r1", 0, vec![interval(0, 1)])
        ));
        assert!(!apply_plan(&mut data, &plan("r2")), "r1 is still running");
        let mut done = plan("r1");
        done.status = Status::Finished;
        done.revision = 1;
        assert!(apply_plan(&mut data, &done));
        assert!(apply_plan(&mut data, &plan("r2")));
        assert!(!data.keys().any(|k| k.starts_with("run/r1/")));
    }

    /// A run of 40 minutes keeps ten minutes of seconds and the rest as
    /// minutes; nothing is lost from the total, and a late second of a
    /// folded minute lands in its minute.
    #[test]
    fn a_long_run_keeps_its_series_bounded() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        let secs = 2400;
        // A request in each minute's first second: histograms are what
        // makes an interval cost (in a debug build), and every second
        // still folds.
        for idx in 0..secs {
            let requests = u64::from(idx % 60 == 0);
            assert!(apply_merged(
                &mut data,
                &merged("r1", idx, vec![interval(idx, requests)])
            ));
        }
        let count = |data: &BTreeMap<String, String>, prefix: String| {
            data.keys().filter(|k| k.starts_with(&prefix)).count() as u64
        };
        assert_eq!(count(&data, interval_prefix("r1")), FINE_SECS + 1);
        let minutes = count(&data, coarse_prefix("r1"));
        assert_eq!(minutes, (secs - FINE_SECS - 1).div_ceil(COARSE_SECS));
        let total: Metrics = serde_json::from_str(&data[&total_key("r1")]).unwrap();
        assert_eq!(total.total_requests(), secs / 60);
        let m0: Closed = serde_json::from_str(&data[&coarse_key("r1", 0)]).unwrap();
        assert_eq!((m0.metrics.total_requests(), m0.idx), (1, 0));
        // A second share, far behind, reports its second 10.
        let mut late = merged("r1", 0, vec![interval(10, 3)]);
        late.parts[0].assignment = 0;
        late.parts[0].from = secs;
        late.parts[0].to = secs + 1;
        assert!(apply_merged(&mut data, &late));
        let m0: Closed = serde_json::from_str(&data[&coarse_key("r1", 0)]).unwrap();
        assert_eq!(m0.metrics.total_requests(), 4);
        assert_eq!(count(&data, interval_prefix("r1")), FINE_SECS + 1);
    }

    #[test]
    fn a_stale_revision_cannot_undo_a_stop() {
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_stop(&mut data, "r1", None));
        // A writer still holding revision 0 tries to write revision 1.
        let mut stale = plan("r1");
        stale.revision = 1;
        stale.events.push("late".into());
        assert!(!apply_plan(&mut data, &stale));
        let now: Plan = serde_json::from_str(&data[PLAN]).unwrap();
        assert_eq!(now.status, Status::Stopping);
    }

    #[test]
    fn a_scripts_stop_keeps_its_reason_and_a_second_stop_changes_nothing() {
        // On a plan an operator is already stopping, the reason still lands.
        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_stop(&mut data, "r1", None));
        assert!(apply_stop(&mut data, "r1", Some("late")));
        let now: Plan = serde_json::from_str(&data[PLAN]).unwrap();
        assert_eq!(now.aborted_by_script.as_deref(), Some("late"));

        let mut data = BTreeMap::new();
        apply_plan(&mut data, &plan("r1"));
        assert!(apply_stop(&mut data, "r1", Some("login failed")));
        assert!(!apply_stop(&mut data, "r1", None));
        assert!(!apply_stop(&mut data, "r1", Some("a second reason")));
        let now: Plan = serde_json::from_str(&data[PLAN]).unwrap();
        assert_eq!(now.status, Status::Stopping);
        assert_eq!(now.aborted_by_script.as_deref(), Some("login failed"));
        assert!(
            now.events
                .iter()
                .any(|e| e == "the script aborted the test: login failed")
        );
    }
}
