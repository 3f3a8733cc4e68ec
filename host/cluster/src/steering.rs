//! Live changes to a cluster run (`loadtest pause`, `resume`, `scale`, the
//! dashboard's buttons). The leader checks a change against the config
//! and writes it into the plan with a moment a little ahead; every node
//! applies it to its shares at that moment, so the whole fleet changes at
//! once, and a share started later (a takeover) catches up at its start.

use crate::coordinator::{current_plan, now_ms, update_plan};
use crate::node::NodeCtx;
use loadtest_engine::workload::{Change, Steering, check_change};
use loadtest_wire::command::Applied;
use loadtest_wire::plan::{Plan, Status, Steer};
use std::sync::Arc;
use std::time::Duration;

/// How far ahead of now a change is set: enough for the plan carrying it
/// to be committed and reach every member (learners hear of a commit
/// within a heartbeat or two) before the moment comes.
const LEAD: Duration = Duration::from_millis(500);

/// How long a share's scenarios may take to start before its live
/// changes are given up (VU start is bounded by `sandbox.initTimeout`).
const REGISTERED_WITHIN: Duration = Duration::from_secs(600);

/// Attempts at writing the plan when the coordinator changed it between
/// our read and our write.
const ATTEMPTS: usize = 5;

/// The leader's side: checks `change` and schedules it on every node.
pub async fn steer(ctx: &Arc<NodeCtx>, change: Change) -> Result<Applied, String> {
    for _ in 0..ATTEMPTS {
        let mut plan = current_plan(ctx)
            .filter(|p| p.status == Status::Running)
            .ok_or("no run is going: live changes apply to a running test")?;
        let said = schedule(&mut plan, change.clone(), now_ms())?;
        match update_plan(ctx, &mut plan).await {
            Ok(()) => {
                tracing::info!(run = %plan.run_id, "live change: {said}");
                return Ok(Applied {
                    said: Some(said),
                    changed: true,
                    ..Applied::default()
                });
            }
            Err(e) if e.contains("changed meanwhile") => continue,
            Err(e) => return Err(e),
        }
    }
    Err("the plan kept changing under this live change; try again".into())
}

/// Adds `change` to the plan at its moment (after the start and after the
/// last change, so every node applies them in the same order), with an
/// event for the report. Returns what it does, as the operator sees it.
fn schedule(plan: &mut Plan, change: Change, now: u64) -> Result<String, String> {
    let config = loadtest_engine::config::parse_with_env(
        std::path::Path::new(&plan.name),
        &plan.yaml,
        |_| None,
    )
    .map_err(|e| format!("the run's config does not parse here: {e}"))?;
    let scenarios = config
        .scenarios
        .iter()
        .map(|(name, s)| (name.as_str(), &s.executor));
    let said = check_change(scenarios, &change)?;
    let at_ms = (now + LEAD.as_millis() as u64)
        .max(plan.start_at_ms)
        .max(plan.changes.last().map_or(0, |c| c.at_ms + 1));
    let secs = (at_ms - plan.start_at_ms) as f64 / 1000.0;
    plan.events
        .push(format!("live change at {secs:.1} s: {said}"));
    plan.changes.push(Steer {
        at_ms,
        change,
        said: said.clone(),
    });
    Ok(format!("{said} (on every node at {secs:.1} s)"))
}

/// The report's lines for the plan's changes, as a standalone run lists
/// its own.
pub fn log_lines(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| {
            let secs = c.at_ms.saturating_sub(plan.start_at_ms) as f64 / 1000.0;
            format!("at {secs:.1} s: {}", c.said)
        })
        .collect()
}

/// A node's side, for one share: applies `changes` (the plan's, from
/// where this share left off) in order, each at its moment, once the
/// share's scenarios are there to take them.
pub async fn apply(steering: Steering, changes: Vec<Steer>, run: String) {
    if tokio::time::timeout(REGISTERED_WITHIN, steering.registered())
        .await
        .is_err()
    {
        tracing::warn!(run = %run, "this share's scenarios never started; its live changes are dropped");
        return;
    }
    for c in changes {
        tokio::time::sleep_until(tokio::time::Instant::from_std(crate::worker::instant_of(
            c.at_ms,
        )))
        .await;
        match steering.apply(&c.change) {
            Ok(said) => tracing::info!(run = %run, "live change: {said}"),
            Err(e) => tracing::warn!(run = %run, "live change not applied here: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str) -> Plan {
        Plan {
            run_id: "r1".into(),
            name: "t.yaml".into(),
            yaml: yaml.into(),
            status: Status::Running,
            start_at_ms: 10_000,
            ..serde_json::from_str(
                r#"{"run_id":"","name":"","version":"","yaml":"","plugins":{},"files":{},"status":"running","start_at_ms":0,"assignments":[],"events":[],"error":null}"#,
            )
            .unwrap()
        }
    }

    const EXT: &str = "target: http://127.0.0.1:1\nplugins: { p: { builtin: http-steps } }\nscenarios:\n  ext: { plugin: p, executor: externally-controlled, vus: 1, maxVUs: 5, duration: 1m, params: { steps: [] } }\n";

    #[test]
    fn changes_are_checked_and_set_after_the_start_and_each_other() {
        let mut p = plan(EXT);
        let said = schedule(
            &mut p,
            Change::Vus {
                scenario: None,
                vus: 4,
            },
            0,
        )
        .unwrap();
        assert!(
            said.contains("4 VUs") && said.contains("at 0.0 s"),
            "{said}"
        );
        assert_eq!(p.changes[0].at_ms, 10_000, "not before the start");
        schedule(&mut p, Change::Pause, 0).unwrap();
        assert_eq!(p.changes[1].at_ms, 10_001, "after the change before it");
        schedule(&mut p, Change::Resume, 20_000).unwrap();
        assert_eq!(p.changes[2].at_ms, 20_000 + LEAD.as_millis() as u64);
        assert_eq!(p.events.len(), 3);
        assert_eq!(log_lines(&p)[2], "at 10.5 s: resumed");

        let err = schedule(
            &mut p,
            Change::Vus {
                scenario: None,
                vus: 6,
            },
            0,
        )
        .unwrap_err();
        assert!(err.contains("maxVUs 5"), "{err}");
        assert_eq!(p.changes.len(), 3, "a refused change is not scheduled");
    }
}
