//! The operator's side: `submit` sends a config with its plugins and data
//! to any node and waits for the merged report; `status` and `stop` talk
//! to any node. Each takes a list of nodes and moves on to the next when
//! one does not answer, so a dead leader does not strand the operator.

use crate::blobs;
use crate::coordinator::Submission;
use crate::mirror::{self, Mirror};
use crate::service::{StatusReply, StatusRequest};
use crate::transport::{CoordinatorClient, Transport};
use loadtest_backends::shipped::Shipped;
use loadtest_engine::config::Bundle;
use loadtest_engine::plugin::Runtime;
use loadtest_engine::workload::Change;
use loadtest_report::outputs::Outputs;
use loadtest_report::{self as report, ClusterSummary, RunFacts, Summary};
use loadtest_wire::command::Op;
use loadtest_wire::plan::{Plan, RunResult, Status};
use loadtest_wire::rpc::{decode, encode};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operator's credentials, loaded once per command so a node's
/// proof is checked once rather than on every poll.
fn transport() -> anyhow::Result<&'static Transport> {
    static ONCE: std::sync::OnceLock<Transport> = std::sync::OnceLock::new();
    if let Some(t) = ONCE.get() {
        return Ok(t);
    }
    let t = Transport::from_env()?;
    Ok(ONCE.get_or_init(|| t))
}

/// A coordinator client for `addr` with the operator's credentials.
async fn client(addr: &str) -> anyhow::Result<CoordinatorClient> {
    Ok(transport()?
        .coordinator(addr, true)
        .await?
        .max_decoding_message_size(256 << 20))
}

/// Splits `--node a:7000,b:7000`.
pub fn node_list(nodes: &str) -> Vec<String> {
    nodes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sends the config to the first node that takes it, then waits for the
/// run to end and reports it as a standalone run would.
pub async fn submit(path: &Path, nodes: &str, out: Outputs, detach: bool) -> anyhow::Result<u8> {
    let nodes = node_list(nodes);
    let (shipped, bundle) = Shipped::from_path(path).await?;
    let sub = Submission::of(&shipped);
    let run_id = match send_submission(&nodes, &sub, &shipped.blobs).await {
        Ok(id) => id,
        Err(e) => {
            let said = e.to_string();
            let Some(at) = said.find(crate::coordinator::SETUP_ABORTED) else {
                return Err(e);
            };
            eprintln!("{}; no load was sent", &said[at..]);
            return Ok(loadtest_report::exit::SCRIPT_ABORTED);
        }
    };
    eprintln!("submitted `{}` as run {run_id}", bundle.name);
    if detach {
        println!("{run_id}");
        return Ok(loadtest_report::exit::OK);
    }
    report_run(&nodes, &run_id, out, Some(&bundle)).await
}

/// `loadtest report`: waits for the cluster's current (or last) run to
/// end and reports it, for runs started from a config source.
pub async fn report(nodes: &str, out: Outputs) -> anyhow::Result<u8> {
    let nodes = node_list(nodes);
    let until = Instant::now() + Duration::from_secs(120);
    let run_id = loop {
        match ask(&nodes, false, None).await {
            Ok(StatusReply { plan: Some(p), .. }) => break p.run_id,
            Err(e) if Instant::now() > until => return Err(e),
            _ => {}
        }
        anyhow::ensure!(
            Instant::now() < until,
            "no run has started on the cluster within 120s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    report_run(&nodes, &run_id, out, None).await
}

/// `bundle` is what was submitted, when this process submitted it: a
/// script's `handleSummary()` needs its files.
async fn report_run(
    nodes: &[String],
    run_id: &str,
    out: Outputs,
    bundle: Option<&Bundle>,
) -> anyhow::Result<u8> {
    let (reply, result, mirror) = wait_for(nodes, run_id, &out).await?;
    let plan = reply.plan.expect("a finished run has a plan");
    if plan.status == Status::Aborted {
        anyhow::bail!(
            "run {run_id} was aborted: {}",
            plan.error.unwrap_or_else(|| "no reason recorded".into())
        );
    }
    let result = result.ok_or_else(|| anyhow::anyhow!("run {run_id} finished without a result"))?;
    let source = Path::new(&plan.name);
    let config = loadtest_engine::config::parse_with_env(source, &plan.yaml, |_| None)?;
    let name = config.display_name(source);
    let mut summary = Summary::new(RunFacts {
        name: &name,
        config: &config,
        metrics: &result.metrics,
        elapsed: Duration::from_millis(result.elapsed_ms),
        stopped_early: result.stopped_early,
        aborted_by_threshold: result.aborted_by_threshold,
    });
    summary.cluster = Some(ClusterSummary::new(
        run_id.to_owned(),
        plan.version.clone(),
        result.nodes.iter().map(mirror::node_summary).collect(),
        result.events.clone(),
    ));
    summary.controls = crate::steering::log_lines(&plan);
    summary.aborted_by_script = result.aborted_by_script.clone();
    summary.failed_by_script = result.failed_by_script.clone();
    let elapsed = Duration::from_millis(result.elapsed_ms);
    let summarised = match bundle {
        Some(b) => {
            let runtime = || {
                Ok(Arc::new(
                    Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?,
                ))
            };
            let details = report::k6_data::RunDetails {
                rows: &result.rows,
                setup_data: plan.setup.first().map(String::as_str),
            };
            report::k6_data::end_of_test(b, runtime, &summary, &result.metrics, elapsed, details)
                .await
        }
        None => {
            print!("{}", report::render_table(&summary));
            if loadtest_engine::script::summary::Wanted::in_config(&config).is_some() {
                eprintln!(
                    "note: the script's handleSummary() is called by `loadtest submit`, which has the script; `loadtest report` does not"
                );
            }
            Ok(())
        }
    };
    if let Some(reason) = &summary.aborted_by_script {
        eprintln!("the script aborted the test: {reason}");
    }
    report::outputs::write_reports(&out, &summary, &result.rows)?;
    if let Some(m) = mirror {
        m.finish(&out, &summary, &result.rows).await;
    }
    if let Some(e) = &result.teardown_error {
        eprintln!("error: teardown failed: {e}");
        return Ok(loadtest_report::exit::ERROR);
    }
    if let Err(e) = summarised {
        eprintln!("error: {e:#}");
        return Ok(loadtest_report::exit::ERROR);
    }
    Ok(report::outputs::exit_code(&summary, false))
}

async fn send_submission(
    nodes: &[String],
    sub: &Submission,
    blobs: &BTreeMap<String, Arc<[u8]>>,
) -> anyhow::Result<String> {
    let mut errors = Vec::new();
    for node in nodes {
        let attempt = async {
            blobs::push(node, transport()?, blobs).await?;
            let reply = client(node).await?.submit(encode(sub)?).await?;
            let r: Result<String, String> = decode(reply.get_ref())?;
            r.map_err(|e| anyhow::anyhow!(e))
        };
        match attempt.await {
            Ok(id) => return Ok(id),
            Err(e) if refused(&e) => anyhow::bail!("{node}: {}", reason(&e)),
            Err(e) => errors.push(format!("{node}: {}", reason(&e))),
        }
    }
    anyhow::bail!("no node took the config: {}", errors.join("; "))
}

/// An answer that another node would give too (a wrong token, a bad
/// config): no point asking the next node. A node without a leader yet,
/// or one that could not reach it, is worth passing over.
fn refused(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<tonic::Status>() {
        Some(s) => matches!(
            s.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        None if e.downcast_ref::<tonic::transport::Error>().is_some() => false,
        None => {
            let m = e.to_string();
            !(m.contains("try again") || m.contains("forwarding to the leader"))
        }
    }
}

fn reason(e: &anyhow::Error) -> String {
    let Some(s) = e.downcast_ref::<tonic::Status>() else {
        return format!("{e:#}");
    };
    // A connection that failed below gRPC (refused, reset, a TLS or
    // HTTP/2 mismatch) comes back as one of these.
    use tonic::Code::{Cancelled, Internal, Unavailable, Unknown};
    if !matches!(s.code(), Unavailable | Internal | Unknown | Cancelled) {
        return s.message().to_owned();
    }
    // A connection problem: the useful part (refused, timed out) is the
    // innermost source.
    let mut inner: Option<&dyn std::error::Error> = std::error::Error::source(s);
    let mut last = None;
    while let Some(err) = inner {
        last = Some(err.to_string());
        inner = err.source();
    }
    format!(
        "{}{}; is a loadtest node running and reachable there? (A cluster with mutual TLS also needs \
         CLUSTER_TLS_CA, CLUSTER_TLS_CERT and CLUSTER_TLS_KEY set to an operator certificate its CA signed.)",
        s.message(),
        last.map_or(String::new(), |l| format!(" ({l})"))
    )
}

async fn ask(
    nodes: &[String],
    with_result: bool,
    live_since: Option<u64>,
) -> anyhow::Result<StatusReply> {
    let mut errors = Vec::new();
    for node in nodes {
        let attempt = async {
            let reply = client(node)
                .await?
                .status(encode(&StatusRequest {
                    with_result,
                    live_since,
                })?)
                .await?;
            Ok::<StatusReply, anyhow::Error>(decode(reply.get_ref())?)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) if refused(&e) => anyhow::bail!("{node}: {}", reason(&e)),
            Ok(Err(e)) => errors.push(format!("{node}: {}", reason(&e))),
            Err(_) => errors.push(format!("{node}: no answer within 5s")),
        }
    }
    anyhow::bail!("no node answered: {}", errors.join("; "))
}

/// Polls until the run is over, printing its changes of state and
/// feeding the live outputs `out` asks for. Nodes that stop answering (a
/// killed leader) are skipped for the next one.
async fn wait_for(
    nodes: &[String],
    run_id: &str,
    out: &Outputs,
) -> anyhow::Result<(StatusReply, Option<RunResult>, Option<Mirror>)> {
    let quiet = out.quiet;
    let mut mirror: Option<Mirror> = None;
    let mut said = (None, 0usize);
    let mut last_line = Instant::now();
    let mut unreachable_since: Option<Instant> = None;
    let mut order = nodes.to_vec();
    loop {
        let since = mirror.as_ref().map(Mirror::since);
        let reply = match ask(&order, true, since).await {
            Ok(r) => {
                unreachable_since = None;
                r
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(e.context(format!("lost touch with the cluster running {run_id}")));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // The leader is asked first from now on: it knows the run for sure.
        if let Some(leader) = &reply.leader_addr {
            order.retain(|n| n != leader);
            order.insert(0, leader.clone());
        }
        let mut reply = reply;
        if mirror.is_none()
            && mirror::wanted(out)
            && let Some(plan) = reply
                .plan
                .as_ref()
                // The start is set once every node has the config.
                .filter(|p| p.run_id == run_id && p.start_at_ms > 0)
        {
            mirror = Some(start_mirror(out, plan, nodes).await?);
            // Asked without the series: the next poll brings it.
            continue;
        }
        // A mirror that has not caught up with a finished run asks again.
        let behind = mirror.as_mut().is_some_and(|m| m.take(&mut reply));
        let Some(plan) = reply.plan.as_ref().filter(|p| p.run_id == run_id) else {
            // A node that does not lead may not have caught up (one that
            // just joined has no plan yet): only the leader's word counts.
            if reply.state != "leader" {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            anyhow::ensure!(
                said.0.is_none(),
                "run {run_id} was replaced by another run before its end was seen"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        if !quiet {
            if said.0 != Some(plan.status) {
                eprintln!("run {run_id}: {:?}", plan.status);
            }
            for e in plan.events.iter().skip(said.1) {
                eprintln!("run {run_id}: {e}");
            }
            if plan.status == Status::Running && last_line.elapsed() >= PROGRESS_EVERY {
                eprintln!("run {run_id}: {}", progress_line(&reply));
                last_line = Instant::now();
            }
        }
        said = (Some(plan.status), plan.events.len());
        match plan.status {
            Status::Aborted => return Ok((reply, None, mirror)),
            Status::Finished if reply.result.is_some() && !behind => {
                let result = reply.result.take();
                return Ok((reply, result, mirror));
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// The live view of the run `plan` describes, for what `out` asks.
async fn start_mirror(out: &Outputs, plan: &Plan, nodes: &[String]) -> anyhow::Result<Mirror> {
    let source = Path::new(&plan.name);
    let config = loadtest_engine::config::parse_with_env(source, &plan.yaml, |_| None)?;
    let name = config.display_name(source);
    Mirror::start(out, plan, &name, &config, nodes.to_vec()).await
}

/// How often `submit` and `report` print a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Merged counts so far, from the nodes' acknowledged seconds.
fn progress_line(reply: &StatusReply) -> String {
    let sum = |f: fn(&loadtest_wire::plan::Progress) -> u64| {
        reply.progress.iter().map(|(_, p)| f(p)).sum::<u64>()
    };
    let running = reply
        .progress
        .iter()
        .filter(|(a, p)| !a.lost && p.finished.is_none())
        .count();
    format!(
        "{} requests ({} failed), {} iterations merged so far; {running} share(s) running",
        sum(|p| p.requests),
        sum(|p| p.failed),
        sum(|p| p.iterations)
    )
}

/// `loadtest status`: the cluster, the plan and each node's progress.
pub async fn status(nodes: &str, json: bool) -> anyhow::Result<u8> {
    let reply = ask(&node_list(nodes), false, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(loadtest_report::exit::OK);
    }
    println!(
        "node {} is {} (term {}); leader {}; {} member(s)",
        reply.node_id,
        reply.state,
        reply.term,
        reply.leader.as_deref().unwrap_or("unknown"),
        reply.members.len()
    );
    let Some(plan) = &reply.plan else {
        println!("no run has been submitted");
        return Ok(loadtest_report::exit::OK);
    };
    println!(
        "run {} `{}` (config {}): {:?}{}",
        plan.run_id,
        plan.name,
        plan.version,
        plan.status,
        plan.error
            .as_ref()
            .map_or(String::new(), |e| format!(": {e}"))
    );
    for (a, p) in &reply.progress {
        println!(
            "  {:<20} {}/{} {:>10} requests {:>8} iterations  {}",
            a.node_id,
            a.index + 1,
            a.count,
            p.requests,
            p.iterations,
            if a.lost {
                "lost"
            } else if p.finished.is_some() {
                "finished"
            } else {
                "running"
            }
        );
    }
    for e in &plan.events {
        println!("  · {e}");
    }
    Ok(loadtest_report::exit::OK)
}

/// `loadtest pause`, `resume`, `scale --node`: a live change to the
/// cluster's run, through the first node that answers; returns what the
/// leader said it does and when.
pub async fn steer(nodes: &str, change: Change) -> anyhow::Result<String> {
    let mut errors = Vec::new();
    for node in &node_list(nodes) {
        let op = Op::Steer {
            change: change.clone(),
        };
        match crate::service::write_remote(node, op).await {
            Ok(a) => return Ok(a.said.unwrap_or_else(|| "done".into())),
            Err(e) if !passable(&e) => return Err(e),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    anyhow::bail!("no node took the change: {}", errors.join("; "))
}

/// A write that failed in a way another node might not: it could not be
/// reached, or knew no leader yet.
fn passable(e: &anyhow::Error) -> bool {
    let m = format!("{e:#}");
    [
        "try again",
        "connect",
        "unreachable",
        "not started Raft",
        "transport",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// `loadtest stop`: a graceful stop of whatever run is going.
pub async fn stop(nodes: &str) -> anyhow::Result<u8> {
    let nodes = node_list(nodes);
    let mut errors = Vec::new();
    for node in &nodes {
        let op = Op::Stop {
            run_id: String::new(),
            reason: None,
        };
        match crate::service::write_remote(node, op).await {
            Ok(a) if a.changed => {
                eprintln!(
                    "stopping the run: no new iterations; running ones finish within gracefulStop"
                );
                return Ok(loadtest_report::exit::OK);
            }
            Ok(_) => anyhow::bail!("no run is going"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    anyhow::bail!("no node took the stop: {}", errors.join("; "))
}
