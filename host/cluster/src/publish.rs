//! The leader's live outputs of a cluster run: the merged series streamed
//! to the outputs the config names (`outputs:`), and the run's metrics on
//! the health port's `/metrics` for Prometheus to scrape. Both read the
//! seconds every share has reported from the replicated state, as the
//! operator's mirror does, so only the leader's copy is published and a
//! new leader carries on where the old one was.
//!
//! A new leader streams the run again from its start: the outputs keep
//! the last few minutes of it and stamp each second from the run's start,
//! so what the old leader sent already arrives again as the same samples
//! (which Prometheus takes once) and nothing it had not sent is missing.

use crate::coordinator::{self, current_plan};
use crate::node::NodeCtx;
use loadtest_engine::workload::Live;
use loadtest_report::httpd::Reply;
use loadtest_report::stream::{self, Stream};
use loadtest_wire::plan::Plan;
use std::sync::Arc;
use std::time::Duration;

/// What this node publishes while it leads a run.
struct Published {
    run_id: String,
    live: Live,
    next: u64,
    stream: Option<Stream>,
    done: bool,
}

/// Publishes the current run while this node leads; stops when it does not.
pub async fn publish(ctx: Arc<NodeCtx>) {
    let mut current: Option<Published> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let plan = ctx
            .is_leader()
            .then(|| current_plan(&ctx))
            .flatten()
            .filter(|p| p.start_at_ms > 0);
        let Some(plan) = plan else {
            if current.take().is_some() {
                *lock(&ctx) = None;
            }
            continue;
        };
        if current.as_ref().is_none_or(|c| c.run_id != plan.run_id) {
            current = start(&ctx, &plan).await;
        }
        if let Some(c) = current.as_mut() {
            feed(&ctx, &plan, c).await;
        }
    }
}

async fn start(ctx: &NodeCtx, plan: &Plan) -> Option<Published> {
    let config = loadtest_engine::config::parse_with_env(
        std::path::Path::new(&plan.name),
        &plan.yaml,
        |_| None,
    )
    .ok()?;
    let filters = loadtest_engine::threshold::filters(&config.thresholds.0);
    let live = Live::mirror(crate::worker::instant_of(plan.start_at_ms), filters);
    let stream = match stream::with_config(&[], &config.output_specs()) {
        Ok(outs) => stream::start_at(&outs, live.clone(), Some(plan.start_at_ms as i64))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(run = %plan.run_id, "the config's outputs cannot start: {e:#}");
                None
            }),
        Err(e) => {
            tracing::error!(run = %plan.run_id, "{e:#}");
            None
        }
    };
    *lock(ctx) = Some(live.clone());
    Some(Published {
        run_id: plan.run_id.clone(),
        live,
        next: 0,
        stream,
        done: false,
    })
}

/// Takes the seconds that became whole; at the end, sends what is left.
async fn feed(ctx: &NodeCtx, plan: &Plan, p: &mut Published) {
    if p.done {
        return;
    }
    let progress: Vec<_> = plan
        .assignments
        .iter()
        .map(|a| (a.clone(), coordinator::progress_of(ctx, &plan.run_id, a)))
        .collect();
    loop {
        let view = coordinator::live_view(ctx, &plan.run_id, &progress, p.next);
        let more = view.more;
        p.next = p.next.max(view.absorb_into(&p.live));
        if !more {
            break;
        }
    }
    if plan.status.is_over() {
        p.done = true;
        if let Some(s) = p.stream.take() {
            s.finish().await;
        }
    }
}

/// `/metrics` on the health port: the run this node publishes as leader,
/// or nothing (so that scraping every node counts the run once).
pub fn scrape(ctx: &NodeCtx) -> Reply {
    let text = lock(ctx)
        .as_ref()
        .map(loadtest_report::prometheus::exposition)
        .unwrap_or_default();
    Reply::Found("text/plain; version=0.0.4", text.into_bytes())
}

fn lock(ctx: &NodeCtx) -> std::sync::MutexGuard<'_, Option<Live>> {
    ctx.local
        .published
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}
