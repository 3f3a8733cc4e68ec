//! The leader's part of a distributed run: turn a submission into a
//! Plan, ship the Bundle to every node and wait for their
//! acknowledgements, set the common start, watch the nodes' reports
//! (a silent node is lost and its share handed on), and write the merged
//! result. Everything it decides goes through Raft, so a new leader
//! carries on from the Plan.

use crate::blobs;
use crate::node::NodeCtx;
use crate::service;
use loadtest_engine::config::Executor;
use loadtest_engine::metrics::{Closed, Metrics, row};
use loadtest_engine::workload::{self, Live};
use loadtest_wire::command::Command;
use loadtest_wire::plan::{self, Assignment, NodeReport, Plan, Progress, RunResult, Status};
use loadtest_wire::rpc::{decode, encode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Delivery attempts per follower before the run is aborted.
const ATTEMPTS: u32 = 3;

/// What an operator sends: the YAML and the digests of what travels with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub name: String,
    pub yaml: String,
    pub plugins: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
}

impl Submission {
    /// What travels as YAML and digests; the bytes go separately.
    pub fn of(shipped: &loadtest_backends::shipped::Shipped) -> Submission {
        Submission {
            name: shipped.name.clone(),
            yaml: shipped.yaml.clone(),
            plugins: shipped.plugins.clone(),
            files: shipped.files.clone(),
        }
    }

    pub fn digests(&self) -> Vec<String> {
        self.plugins
            .values()
            .chain(self.files.values())
            .cloned()
            .collect()
    }
}

/// A config's version: the short SHA-256 of its YAML.
pub fn version_of(yaml: &str) -> String {
    blobs::digest(yaml.as_bytes())[..12].to_owned()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn current_plan(ctx: &NodeCtx) -> Option<Plan> {
    ctx.sm().plan().map(|p| (*p).clone())
}

/// Writes a new run's plan; refused while another run is going.
async fn create_plan(ctx: &Arc<NodeCtx>, plan: &Plan) -> Result<(), String> {
    let applied = service::write(ctx, Command::Plan(Box::new(plan.clone()))).await?;
    if applied.changed {
        Ok(())
    } else {
        Err("another run was started meanwhile; stop it first with `loadtest stop`".into())
    }
}

/// Writes the next revision of a plan read from the state; refused (and
/// to be re-read) when the plan changed since.
pub(crate) async fn update_plan(ctx: &Arc<NodeCtx>, plan: &mut Plan) -> Result<(), String> {
    plan.revision += 1;
    let applied = service::write(ctx, Command::Plan(Box::new(plan.clone()))).await?;
    if applied.changed {
        Ok(())
    } else {
        Err("the plan changed meanwhile".into())
    }
}

/// The leader accepts a submission: checks it as a run would (parse,
/// compile), writes the Plan, and starts distributing. Returns the run id.
/// How a refusal says that the script's setup called `exec.test.abort()`:
/// `submit` then exits as k6 does (108) rather than with an error.
pub const SETUP_ABORTED: &str = "the script aborted the test during setup: ";

pub async fn submit(ctx: &Arc<NodeCtx>, sub: Submission, origin: &str) -> Result<String, String> {
    if let Some(p) = current_plan(ctx).filter(|p| !p.status.is_over()) {
        return Err(format!(
            "run {} ({}) is still {:?}; stop it first with `loadtest stop`",
            p.run_id, p.name, p.status
        ));
    }
    let run_id = format!(
        "{:08x}",
        rand::RngCore::next_u32(&mut <rand::rngs::SmallRng as rand::SeedableRng>::from_os_rng())
    );
    let mut plan = Plan {
        run_id: run_id.clone(),
        name: sub.name,
        version: version_of(&sub.yaml),
        yaml: sub.yaml,
        plugins: sub.plugins,
        files: sub.files,
        status: Status::Distributing,
        start_at_ms: 0,
        assignments: Vec::new(),
        events: Vec::new(),
        error: None,
        revision: 0,
        origin: origin.to_owned(),
        aborted_by_threshold: false,
        aborted_by_script: None,
        failed_by_script: None,
        setup: Default::default(),
        teardown_done: false,
        teardown_error: None,
        changes: Vec::new(),
        report_every_ms: 0,
    };
    let bundle = ctx.local.prepare(&plan).await?;
    // Setup runs here, once for the whole cluster, before any load; its
    // data goes to every node in the plan. A failing setup refuses the run.
    let runtime = ctx.local.runtime().map_err(|e| format!("{e:#}"))?;
    let live = Live::new();
    plan.setup = workload::setup(&bundle, &runtime, &live)
        .await
        .map_err(|e| match live.abort.reason() {
            Some(reason) => format!("{SETUP_ABORTED}{reason}"),
            None => format!("{e:#}"),
        })?;
    plan.failed_by_script = live.failed.reason();
    plan.assignments = assign(ctx).await;
    plan.report_every_ms =
        report_cadence(plan.assignments.len(), ctx.settings.node_lost_after).as_millis() as u64;
    for a in &mut plan.assignments {
        a.version = plan.version.clone();
    }
    ctx.local.set_distributing(Some(run_id.clone()));
    if let Err(e) = create_plan(ctx, &plan).await {
        ctx.local.set_distributing(None);
        return Err(e);
    }
    tracing::info!(
        run = %run_id,
        "accepted `{}` (config {}); distributing to {} node(s)",
        plan.name,
        plan.version,
        plan.assignments.len()
    );
    let ctx = ctx.clone();
    tokio::spawn(async move {
        distribute(&ctx, plan).await;
        ctx.local.set_distributing(None);
    });
    Ok(run_id)
}

/// Shares per second of report cadence: up to this many, every node
/// reports each second.
const SHARES_PER_SECOND: usize = 40;

/// How often nodes report and the leader commits, for `shares` shares: a
/// second up to 40 shares, a second more per 40, at most 5 s, and at most
/// a third of the time after which a silent node counts as lost. At 100
/// nodes each report and each entry replicated to a member is a gRPC call
/// the leader pays for, and those calls are most of its CPU; reporting
/// every few seconds keeps that flat per second as the fleet grows
/// (Locust's workers report every 3 s). The series keeps one interval a
/// second either way; what waits is the live view and `abortOnFail`.
pub(crate) fn report_cadence(shares: usize, lost_after: Duration) -> Duration {
    let by_fleet = shares.div_ceil(SHARES_PER_SECOND).clamp(1, 5) as u64;
    let by_loss = (lost_after.as_secs() / 3).max(1);
    Duration::from_secs(by_fleet.min(by_loss))
}

/// Every member but the leader runs an equal share. The leader
/// coordinates and merges: a leader that also ran load would take its
/// last unreported seconds with it when it dies. Alone, it runs it all.
/// A member silent for CLUSTER_NODE_LOST_SECS (a dead node still in
/// the membership) gets no share: it would only fail the distribution.
async fn assign(ctx: &NodeCtx) -> Vec<Assignment> {
    let me = ctx.addr().unwrap_or_default();
    let lost = ctx.settings.node_lost_after;
    let mut nodes: Vec<String> = ctx
        .members()
        .into_iter()
        .filter(|a| *a != me && !ctx.local.liveness.silent(a, lost))
        .collect();
    if nodes.is_empty() {
        nodes.push(me);
    }
    nodes.sort();
    learn_names(ctx, &nodes).await;
    let count = nodes.len() as u32;
    nodes
        .into_iter()
        .enumerate()
        .map(|(i, node)| Assignment {
            id: i as u32,
            node_id: ctx.name_of(&node),
            node,
            index: i as u32,
            count,
            resume_from_ms: 0,
            takeover_of: None,
            lost: false,
            start_at_ms: None,
            stop_at_ms: None,
            version: String::new(),
        })
        .collect()
}

/// Asks members this leader has not heard from yet (one that joined a
/// moment ago) for their names, so the plan and the report name them
/// rather than showing their addresses.
async fn learn_names(ctx: &NodeCtx, nodes: &[String]) {
    let unknown: Vec<String> = nodes
        .iter()
        .filter(|a| !ctx.knows_name_of(a))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        crate::node::hello_all(&unknown, ctx).await;
    }
}

/// Ships the Bundle to every assigned follower in parallel; when all
/// have compiled it, sets the start. One that cannot take it aborts the run.
async fn distribute(ctx: &Arc<NodeCtx>, plan: Plan) {
    let started = Instant::now();
    let me = ctx.addr().unwrap_or_default();
    let mut nodes: Vec<(String, String)> = plan
        .assignments
        .iter()
        .filter(|a| a.node != me)
        .map(|a| (a.node.clone(), a.node_id.clone()))
        .collect();
    nodes.dedup();
    let deliveries = nodes.iter().map(|(addr, name)| {
        let (ctx, plan) = (ctx.clone(), plan.clone());
        async move { deliver_with_retries(&ctx, &plan, addr, name).await }
    });
    let results = futures_util::future::join_all(deliveries).await;
    // Re-read: an operator may have stopped the run meanwhile.
    let Some(mut plan) =
        current_plan(ctx).filter(|p| p.run_id == plan.run_id && p.status == Status::Distributing)
    else {
        tracing::warn!(run = %plan.run_id, "the run was stopped or replaced while its config was being distributed");
        return;
    };
    if let Some(err) = results.into_iter().find_map(Result::err) {
        tracing::error!(run = %plan.run_id, "aborting the run: {err}");
        plan.status = Status::Aborted;
        plan.error = Some(err);
    } else {
        let took = started.elapsed();
        tracing::info!(
            run = %plan.run_id,
            "config distributed to {} node(s) and compiled in {took:.0?}",
            nodes.len()
        );
        plan.events.push(format!(
            "config {} distributed to {} node(s) in {} ms",
            plan.version,
            nodes.len(),
            took.as_millis()
        ));
        plan.status = Status::Running;
        plan.start_at_ms = now_ms() + ctx.settings.start_delay.as_millis() as u64;
    }
    if let Err(e) = update_plan(ctx, &mut plan).await {
        tracing::error!(run = %plan.run_id, "could not record the end of distribution: {e}");
    }
}

async fn deliver_with_retries(
    ctx: &Arc<NodeCtx>,
    plan: &Plan,
    addr: &str,
    name: &str,
) -> Result<(), String> {
    let limit = ctx.settings.config_timeout;
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(limit, deliver(ctx, plan, addr)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Delivery::Refused(why))) => {
                return Err(format!("node {name} ({addr}) refused the config: {why}"));
            }
            Ok(Err(Delivery::Failed(why))) => tracing::warn!(
                "node {name} ({addr}) could not take the config (attempt {attempt} of {ATTEMPTS}): {why}"
            ),
            Err(_) => tracing::warn!(
                "node {name} ({addr}) has not acknowledged the config within {}s (attempt {attempt} of {ATTEMPTS})",
                limit.as_secs()
            ),
        }
    }
    Err(format!(
        "node {name} ({addr}) did not acknowledge the config after {ATTEMPTS} attempts of {}s each; \
         check that it runs and that its port is reachable (CLUSTER_CONFIG_TIMEOUT_SECS sets the wait)",
        limit.as_secs()
    ))
}

enum Delivery {
    /// The node answered no: bad input, retrying will not help.
    Refused(String),
    Failed(String),
}

async fn deliver(ctx: &Arc<NodeCtx>, plan: &Plan, addr: &str) -> Result<(), Delivery> {
    let failed = |e: &dyn std::fmt::Display| Delivery::Failed(e.to_string());
    let blobs: BTreeMap<String, Arc<[u8]>> = plan
        .plugins
        .values()
        .chain(plan.files.values())
        .filter_map(|d| ctx.local.blobs.get(d).map(|b| (d.clone(), b)))
        .collect();
    blobs::push(addr, &ctx.transport, &blobs)
        .await
        .map_err(|e| failed(&format!("{e:#}")))?;
    let mut client = ctx
        .transport
        .coordinator(addr, true)
        .await
        .map_err(|e| failed(&format!("{e:#}")))?;
    let reply = client
        .prepare(encode(plan).map_err(|e| failed(&e))?)
        .await
        .map_err(|s| failed(&s.message()))?;
    let answer: Result<(), String> = decode(reply.get_ref()).map_err(|e| failed(&e))?;
    answer.map_err(Delivery::Refused)
}

/// Switches a running plan to a new config at a common moment: the new
/// config is compiled here and on every node first (a bad one is refused
/// and the run goes on untouched); then the old shares stop gracefully
/// and the new ones start at the same instant, on the run's clock, so
/// the report covers both and its events mark the switch.
pub async fn switch(ctx: &Arc<NodeCtx>, sub: Submission, origin: &str) -> Result<String, String> {
    let Some(current) = current_plan(ctx).filter(|p| p.status == Status::Running) else {
        return Err("no run is going to switch".into());
    };
    let mut candidate = current.clone();
    candidate.version = version_of(&sub.yaml);
    candidate.name = sub.name;
    candidate.yaml = sub.yaml;
    candidate.plugins = sub.plugins;
    candidate.files = sub.files;
    ctx.local.prepare(&candidate).await?;
    let me = ctx.addr().unwrap_or_default();
    let mut nodes: Vec<(String, String)> = live_nodes(&current)
        .into_iter()
        .filter(|(n, _)| *n != me)
        .collect();
    nodes.dedup();
    let deliveries = nodes
        .iter()
        .map(|(addr, name)| deliver_with_retries(ctx, &candidate, addr, name));
    if let Some(e) = futures_util::future::join_all(deliveries)
        .await
        .into_iter()
        .find_map(Result::err)
    {
        return Err(e);
    }
    let Some(mut plan) =
        current_plan(ctx).filter(|p| p.run_id == current.run_id && p.status == Status::Running)
    else {
        return Err("the run ended while the new config was being distributed".into());
    };
    let at = now_ms() + ctx.settings.start_delay.as_millis() as u64;
    let mut id = plan.assignments.iter().map(|a| a.id).max().unwrap_or(0);
    let mut fresh = Vec::new();
    for a in plan
        .assignments
        .iter_mut()
        .filter(|a| !a.lost && a.stop_at_ms.is_none())
    {
        a.stop_at_ms = Some(at);
        if a.takeover_of.is_none() {
            id += 1;
            fresh.push(Assignment {
                id,
                start_at_ms: Some(at),
                stop_at_ms: None,
                resume_from_ms: 0,
                takeover_of: None,
                version: candidate.version.clone(),
                ..a.clone()
            });
        }
    }
    plan.assignments.extend(fresh);
    let event = format!(
        "config switched from {} to {} at {:.1}s ({origin})",
        plan.version,
        candidate.version,
        at.saturating_sub(plan.start_at_ms) as f64 / 1000.0
    );
    plan.version = candidate.version;
    plan.name = candidate.name;
    plan.yaml = candidate.yaml;
    plan.plugins = candidate.plugins;
    plan.files = candidate.files;
    plan.events.push(event.clone());
    update_plan(ctx, &mut plan).await?;
    tracing::info!(run = %plan.run_id, "{event}");
    Ok(event)
}

/// Records a refused switch in the run's events.
pub async fn note(ctx: &Arc<NodeCtx>, event: String) {
    if let Some(mut plan) = current_plan(ctx).filter(|p| !p.status.is_over()) {
        plan.events.push(event);
        let _ = update_plan(ctx, &mut plan).await;
    }
}

/// The nodes running shares now, with their names.
fn live_nodes(plan: &Plan) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = plan
        .assignments
        .iter()
        .filter(|a| !a.lost && a.stop_at_ms.is_none())
        .map(|a| (a.node.clone(), a.node_id.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The leader's watch over a running plan: lost nodes, the end of the
/// run, and plans a previous leader left half distributed.
pub async fn drive(ctx: Arc<NodeCtx>) {
    let mut changes = ctx.sm().changes();
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let leader = ctx.is_leader();
        if leader && !was_leader {
            // Nodes get a full grace period to report to a new leader.
            ctx.local
                .last_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        was_leader = leader;
        if !leader {
            continue;
        }
        let Some(plan) = current_plan(&ctx).filter(|p| !p.status.is_over()) else {
            continue;
        };
        let next = match plan.status {
            Status::Distributing if !ctx.local.is_distributing(&plan.run_id) => Some(abort(
                plan,
                "the leader changed while the config was being distributed; submit it again",
            )),
            Status::Running | Status::Stopping => watch_nodes(&ctx, plan).await,
            _ => None,
        };
        if let Some(mut next) = next
            && let Err(e) = update_plan(&ctx, &mut next).await
        {
            tracing::debug!("plan not updated, will look again: {e}");
        }
    }
}

fn abort(mut plan: Plan, why: &str) -> Plan {
    tracing::error!(run = %plan.run_id, "aborting the run: {why}");
    plan.status = Status::Aborted;
    plan.error = Some(why.to_owned());
    plan
}

pub fn progress_of(ctx: &NodeCtx, run: &str, a: &Assignment) -> Progress {
    ctx.sm()
        .get(&plan::progress_key(run, a.id))
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

/// Marks silent nodes lost (handing their share on) and finishes the run
/// once every share is done. Returns the plan to write, if it changed.
async fn watch_nodes(ctx: &Arc<NodeCtx>, mut plan: Plan) -> Option<Plan> {
    let started = now_ms() >= plan.start_at_ms;
    let mut changed = false;
    let open: Vec<Assignment> = plan
        .assignments
        .iter()
        .filter(|a| !a.lost && progress_of(ctx, &plan.run_id, a).finished.is_none())
        .cloned()
        .collect();
    if open.is_empty() {
        if !plan.teardown_done {
            teardown(ctx, &mut plan).await;
            // Recorded before the result, so a leader taking over from
            // here does not run it again.
            if let Err(e) = update_plan(ctx, &mut plan).await {
                tracing::warn!(run = %plan.run_id, "could not record teardown: {e}");
                return None;
            }
        }
        finish(ctx, &mut plan).await;
        return Some(plan);
    }
    if plan.status == Status::Running
        && ctx.local.threshold_check_due()
        && abort_threshold_failed(ctx, &mut plan)
    {
        return Some(plan);
    }
    for a in &open {
        let seen = ctx.local.last_seen(&plan.run_id, a.id);
        let Some(seen) = seen else {
            // First look at this assignment: its clock starts now.
            ctx.local.seen(&plan.run_id, a.id);
            continue;
        };
        if !started || seen.elapsed() < ctx.settings.node_lost_after {
            continue;
        }
        lose(ctx, &mut plan, a);
        changed = true;
    }
    changed.then_some(plan)
}

/// Everything merged so far for the run: the total and the series, its
/// folded minutes first.
fn merged(ctx: &NodeCtx, run: &str) -> (Metrics, Vec<loadtest_engine::metrics::Row>) {
    let mut rows = Vec::new();
    let decode = |v: &str| serde_json::from_str::<Closed>(v).ok();
    for c in ctx
        .sm()
        .with_prefix(&plan::coarse_prefix(run))
        .iter()
        .filter_map(|(_, v)| decode(v))
    {
        let secs = plan::COARSE_SECS;
        let mut r = row(c.idx * secs + secs - 1, &c.metrics, c.vus);
        r.secs = secs;
        rows.push(r);
    }
    for c in ctx
        .sm()
        .with_prefix(&plan::interval_prefix(run))
        .iter()
        .filter_map(|(_, v)| decode(v))
    {
        rows.push(row(c.idx, &c.metrics, c.vus));
    }
    (total(ctx, run), rows)
}

/// The merged series as far as it is whole, for an operator who mirrors
/// the run: a second is whole once every share still counted has
/// reported past it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LiveView {
    /// Folded minutes (only when asked from second 0: a late start).
    pub minutes: Vec<Closed>,
    /// Whole seconds from the one asked for, in order.
    pub seconds: Vec<Closed>,
    /// The second to ask from next time.
    pub next: u64,
    /// More whole seconds are there than one answer carries.
    #[serde(default)]
    pub more: bool,
}

impl LiveView {
    /// Feeds these minutes and seconds into a mirrored live view; returns
    /// the second to ask from next.
    pub fn absorb_into(self, live: &Live) -> u64 {
        let mut c = live.sink.lock().unwrap_or_else(|p| p.into_inner());
        for m in self.minutes {
            c.absorb_minute(m, plan::COARSE_SECS);
        }
        for s in self.seconds {
            c.absorb(s);
        }
        self.next
    }
}

/// Seconds per answer: an operator that starts late catches up over a
/// few polls rather than in one large reply.
const LIVE_SECONDS: usize = 120;

pub fn live_view(
    ctx: &NodeCtx,
    run: &str,
    progress: &[(Assignment, Progress)],
    since: u64,
) -> LiveView {
    let now = now_ms();
    let whole = progress
        .iter()
        .filter(|(a, p)| !a.lost && p.finished.is_none() && a.start_at_ms.is_none_or(|s| s <= now))
        .map(|(_, p)| p.next)
        .min()
        .unwrap_or(u64::MAX);
    let decode = |v: &str| serde_json::from_str::<Closed>(v).ok();
    let minutes = if since == 0 {
        let coarse = ctx.sm().with_prefix(&plan::coarse_prefix(run));
        coarse.iter().filter_map(|(_, v)| decode(v)).collect()
    } else {
        Vec::new()
    };
    let fine = ctx.sm().range(
        &plan::interval_prefix(run),
        &plan::interval_key(run, since),
        LIVE_SECONDS,
    );
    let seconds: Vec<Closed> = fine
        .iter()
        .filter_map(|(_, v)| decode(v))
        .take_while(|c| c.idx < whole)
        .collect();
    let last = seconds.last().map_or(since, |c| c.idx + 1);
    let more = seconds.len() == LIVE_SECONDS;
    let next = if whole == u64::MAX || more {
        last
    } else {
        whole.max(since)
    };
    LiveView {
        minutes,
        seconds,
        next,
        more,
    }
}

/// The run's metrics over every interval merged so far.
fn total(ctx: &NodeCtx, run: &str) -> Metrics {
    ctx.sm()
        .get(&plan::total_key(run))
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

/// `abortOnFail` thresholds on the merged metrics, as a standalone run
/// checks them: the first that fails (past its `delayAbortEval`) stops
/// the run gracefully. Returns whether it did.
fn abort_threshold_failed(ctx: &NodeCtx, plan: &mut Plan) -> bool {
    let Ok(config) = loadtest_engine::config::parse_with_env(
        std::path::Path::new(&plan.name),
        &plan.yaml,
        |_| None,
    ) else {
        return false;
    };
    let elapsed = Duration::from_millis(now_ms().saturating_sub(plan.start_at_ms));
    let due: Vec<_> = config
        .thresholds
        .0
        .iter()
        .filter(|t| t.abort_on_fail && elapsed > t.delay_abort_eval)
        .collect();
    if due.is_empty() {
        return false;
    }
    let metrics = total(ctx, &plan.run_id);
    let Some(v) = due
        .iter()
        .map(|t| t.evaluate(&metrics, elapsed))
        .find(|v| !v.passed && v.observed.is_some())
    else {
        return false;
    };
    let event = format!(
        "threshold {} {} failed with abortOnFail at {:.1}s: stopping the run",
        v.metric,
        v.threshold,
        elapsed.as_secs_f64()
    );
    tracing::warn!(run = %plan.run_id, "{event}");
    plan.events.push(event);
    plan.status = Status::Stopping;
    plan.aborted_by_threshold = true;
    true
}

/// Records a lost assignment and, when allowed and possible, gives its
/// share to the surviving node with the fewest shares.
fn lose(ctx: &NodeCtx, plan: &mut Plan, lost: &Assignment) {
    let at = now_ms().saturating_sub(plan.start_at_ms);
    // Where the lost share's own schedule is now (a share of a config
    // switched in mid-run started later than the run).
    let share_at = now_ms().saturating_sub(lost.start_at_ms.unwrap_or(plan.start_at_ms));
    let silent = ctx.settings.node_lost_after.as_secs();
    tracing::warn!(
        run = %plan.run_id,
        "node {} ({}) has not reported for {silent}s: counting it as lost",
        lost.node_id,
        lost.node
    );
    let mut event = format!(
        "node {} lost at {:.1}s (no report for {silent}s)",
        lost.node_id,
        at as f64 / 1000.0
    );
    if let Some(a) = plan.assignments.iter_mut().find(|a| a.id == lost.id) {
        a.lost = true;
    }
    let survivor = survivors(plan, &lost.node).into_iter().next();
    match survivor {
        _ if plan.status != Status::Running => event.push_str("; the run is stopping"),
        _ if !ctx.settings.redistribute => event.push_str("; redistribution is off"),
        _ if !time_based(plan) => event.push_str(
            "; its share is not redistributed (iteration-count scenarios would repeat work)",
        ),
        None => event.push_str("; no node is left to take its share"),
        Some((node, node_id)) => {
            let id = plan.assignments.iter().map(|a| a.id).max().unwrap_or(0) + 1;
            event.push_str(&format!(
                "; its share {}/{} moved to {node_id}",
                lost.index + 1,
                lost.count
            ));
            // The heir needs a moment to set up its VUs; starting its part
            // of the schedule then avoids a burst of overdue arrivals.
            let resume = share_at + ctx.settings.start_delay.as_millis() as u64;
            plan.assignments.push(Assignment {
                id,
                node,
                node_id,
                index: lost.index,
                count: lost.count,
                resume_from_ms: resume,
                takeover_of: Some(lost.id),
                lost: false,
                start_at_ms: lost.start_at_ms,
                stop_at_ms: lost.stop_at_ms,
                version: lost.version.clone(),
            });
        }
    }
    tracing::warn!(run = %plan.run_id, "{event}");
    plan.events.push(event);
}

/// Nodes still running shares (other than `gone`), fewest shares first.
fn survivors(plan: &Plan, gone: &str) -> Vec<(String, String)> {
    let mut load: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in plan
        .assignments
        .iter()
        .filter(|a| !a.lost && a.node != gone)
    {
        *load.entry((a.node.clone(), a.node_id.clone())).or_default() += 1;
    }
    let mut v: Vec<_> = load.into_iter().collect();
    v.sort_by_key(|(_, n)| *n);
    v.into_iter().map(|(k, _)| k).collect()
}

/// Whether every scenario's load is defined by time (so a share can be
/// resumed mid-way) rather than by a count of iterations.
fn time_based(plan: &Plan) -> bool {
    let Ok(config) = loadtest_engine::config::parse_with_env(
        std::path::Path::new(&plan.name),
        &plan.yaml,
        |_| None,
    ) else {
        return false;
    };
    config.scenarios.values().all(|s| {
        !matches!(
            s.executor,
            Executor::PerVuIterations { .. } | Executor::SharedIterations { .. }
        )
    })
}

/// Runs the scenarios' `teardown` on this node (the leader when every
/// share is done, whichever node that is by then) with setup's data.
async fn teardown(ctx: &Arc<NodeCtx>, plan: &mut Plan) {
    plan.teardown_done = true;
    if plan.setup.0.is_empty() {
        return;
    }
    let live = Live::new();
    let outcome = async {
        let bundle = ctx.local.prepare(plan).await?;
        let runtime = ctx.local.runtime().map_err(|e| format!("{e:#}"))?;
        workload::teardown(&bundle, &runtime, &live, &plan.setup)
            .await
            .map_err(|e| format!("{e:#}"))
    }
    .await;
    if plan.failed_by_script.is_none() {
        plan.failed_by_script = live.failed.reason();
    }
    let me = ctx.name_of(&ctx.addr().unwrap_or_default());
    match outcome {
        Ok(()) => plan.events.push(format!("teardown ran on {me}")),
        Err(e) => {
            tracing::error!(run = %plan.run_id, "teardown failed: {e}");
            plan.events.push(format!("teardown failed on {me}: {e}"));
            plan.teardown_error = Some(e);
        }
    }
}

/// Merges every interval into the result and marks the run finished.
async fn finish(ctx: &Arc<NodeCtx>, plan: &mut Plan) {
    let run = plan.run_id.clone();
    let (total, rows) = merged(ctx, &run);
    let mut elapsed_ms = 0;
    let mut stopped_early = plan.status == Status::Stopping;
    let mut script_abort = None;
    let mut script_fail = plan.failed_by_script.clone();
    let nodes: Vec<NodeReport> = plan
        .assignments
        .iter()
        .map(|a| {
            let p = progress_of(ctx, &run, a);
            if let Some(f) = &p.finished {
                script_abort = script_abort.take().or(f.aborted_by_script.clone());
                script_fail = script_fail.take().or(f.failed_by_script.clone());
                elapsed_ms = elapsed_ms.max(f.elapsed_ms);
                // A share ended by a config switch stopped on schedule.
                stopped_early |= f.stopped_early && a.stop_at_ms.is_none();
            }
            node_report(plan, a, &p)
        })
        .collect();
    // A share whose script aborted the test asked the leader to stop the
    // run; if every share finished before that stop landed, the reason is
    // still in the share's end.
    if plan.aborted_by_script.is_none()
        && let Some(reason) = script_abort
    {
        plan.events
            .push(format!("the script aborted the test: {reason}"));
        plan.aborted_by_script = Some(reason);
        stopped_early = true;
    }
    let result = RunResult {
        metrics: total,
        rows,
        elapsed_ms,
        stopped_early,
        nodes,
        events: plan.events.clone(),
        aborted_by_threshold: plan.aborted_by_threshold,
        aborted_by_script: plan.aborted_by_script.clone(),
        failed_by_script: script_fail,
        teardown_error: plan.teardown_error.clone(),
    };
    let write = Command::Set {
        key: plan::result_key(&run),
        value: serde_json::to_string(&result).unwrap_or_default(),
    };
    if let Err(e) = service::write(ctx, write).await {
        tracing::error!(run = %run, "could not record the result: {e}");
        return;
    }
    tracing::info!(
        run = %run,
        "run finished: {} requests ({} failed), {} iterations over {} node share(s)",
        result.metrics.total_requests(),
        result.metrics.total_failed(),
        result.nodes.iter().map(|n| n.iterations).sum::<u64>(),
        result.nodes.len()
    );
    plan.status = Status::Finished;
}

pub fn node_report(plan: &Plan, a: &Assignment, p: &Progress) -> NodeReport {
    let took_over_from = a.takeover_of.and_then(|id| {
        plan.assignments
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.node_id.clone())
    });
    NodeReport {
        node_id: a.node_id.clone(),
        addr: a.node.clone(),
        segment: format!("{}/{}", a.index + 1, a.count),
        requests: p.requests,
        failed: p.failed,
        iterations: p.iterations,
        dropped_iterations: p.dropped,
        started_at_ms: p.started_at_ms,
        status: match (a.lost, &p.finished) {
            (true, _) => "lost".into(),
            (false, Some(f)) if f.stopped_early => "stopped".into(),
            (false, Some(_)) => "finished".into(),
            (false, None) => "running".into(),
        },
        took_over_from,
    }
}

#[cfg(test)]
mod tests {
    use super::report_cadence;
    use std::time::Duration;

    #[test]
    fn reports_slow_down_with_the_fleet_but_not_past_a_third_of_the_loss_time() {
        let lost = Duration::from_secs(10);
        let secs = |shares| report_cadence(shares, lost).as_secs();
        assert_eq!((secs(0), secs(1), secs(40)), (1, 1, 1));
        assert_eq!((secs(41), secs(99), secs(1000)), (2, 3, 3));
        assert_eq!(report_cadence(1000, Duration::from_secs(60)).as_secs(), 5);
        assert_eq!(report_cadence(99, Duration::from_secs(2)).as_secs(), 1);
    }
}
