//! The operator's live copy of a cluster run, for `submit` and `report`
//! with `--dashboard`, `--metrics-addr` or `--out`. Every node holds the
//! merged series in the replicated state; the operator asks the node it
//! polls anyway (the leader first, the next one when that dies) for the
//! seconds every share has reported, and feeds them to the same live view
//! a standalone run has. So the dashboard, the scrape endpoint and the
//! outputs work as they do standalone, see each second once, and carry on
//! through a failover with nothing counted twice.
//!
//! Why the operator serves what its command line asks for, not the
//! leader: it already holds the cluster's credentials and outlives any one
//! leader, so the page (with its controls), the scrape target and the
//! streams stay at one address while leaders come and go, and nodes open
//! no extra port. What the config itself names (`outputs:`) has no
//! operator to count on; the leader publishes that (`publish.rs`).

use crate::coordinator::{self, LiveView};
use crate::service::StatusReply;
use loadtest_engine::config::Config;
use loadtest_engine::metrics::Row;
use loadtest_engine::workload::{Live, Stop};
use loadtest_report::dashboard::{self, Dashboard, Remote};
use loadtest_report::outputs::Outputs;
use loadtest_report::{ClusterSummary, NodeSummary, Summary, prometheus, stream};
use loadtest_wire::plan::Plan;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Mirror {
    live: Live,
    /// The next second to ask for.
    next: u64,
    dashboard: Option<Dashboard>,
    exporter: Option<tokio::task::JoinHandle<()>>,
    stream: Option<stream::Stream>,
}

/// Whether `out` asks for anything live.
pub fn wanted(out: &Outputs) -> bool {
    out.dashboard.is_some() || out.metrics_addr.is_some() || !out.stream.is_empty()
}

impl Mirror {
    /// Starts what `out` asks for, for the run `plan` describes; `nodes`
    /// take the dashboard's live changes.
    pub async fn start(
        out: &Outputs,
        plan: &Plan,
        name: &str,
        config: &Config,
        nodes: Vec<String>,
    ) -> anyhow::Result<Mirror> {
        let epoch = crate::worker::instant_of(plan.start_at_ms);
        let filters = loadtest_engine::threshold::filters(&config.thresholds.0);
        let live = Live::mirror(epoch, filters);
        let dashboard = match out.dashboard {
            Some(addr) => {
                let d = dashboard::bind_with(addr, live.clone(), name, config, Some(remote(nodes)))
                    .await?;
                eprintln!("dashboard: {}", d.url);
                Some(d)
            }
            None => None,
        };
        let exporter = match out.metrics_addr {
            Some(addr) => Some(prometheus::bind(addr, live.clone()).await?),
            None => None,
        };
        let stream =
            stream::start_at(&out.stream, live.clone(), Some(plan.start_at_ms as i64)).await?;
        Ok(Mirror {
            live,
            next: 0,
            dashboard,
            exporter,
            stream,
        })
    }

    /// The second to ask the cluster from.
    pub fn since(&self) -> u64 {
        self.next
    }

    /// Takes what a status reply brought: new whole seconds, and the
    /// nodes, events and live changes as they are now. Returns whether
    /// there are more seconds to ask for at once.
    pub fn take(&mut self, reply: &mut StatusReply) -> bool {
        let more = reply.live.as_ref().is_some_and(|v| v.more);
        if let Some(view) = reply.live.take() {
            self.absorb(view);
        }
        let (Some(d), Some(plan)) = (&self.dashboard, &reply.plan) else {
            return more;
        };
        let nodes = reply
            .progress
            .iter()
            .map(|(a, p)| node_summary(&coordinator::node_report(plan, a, p)))
            .collect();
        let cluster = ClusterSummary::new(
            plan.run_id.clone(),
            plan.version.clone(),
            nodes,
            plan.events.clone(),
        );
        d.show_cluster(cluster, crate::steering::log_lines(plan));
        more
    }

    fn absorb(&mut self, view: LiveView) {
        self.next = self.next.max(view.absorb_into(&self.live));
    }

    /// The run is over: the streams send what is left, the dashboard shows
    /// the report and stays as `--dashboard-linger` says.
    pub async fn finish(self, out: &Outputs, summary: &Summary, rows: &[Row]) {
        if let Some(e) = self.exporter {
            e.abort();
        }
        if let Some(s) = self.stream {
            s.finish().await;
        }
        if let Some(d) = self.dashboard {
            d.finish(summary, rows);
            // The first Ctrl-C ends the linger.
            let (tx, stop) = watch::channel(Stop::No);
            let ctrl_c = tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = tx.send(Stop::Graceful);
                }
            });
            d.linger(out.dashboard_linger, stop).await;
            ctrl_c.abort();
        }
    }
}

/// The dashboard's live changes go to the cluster like `loadtest scale
/// --node` sends them.
fn remote(nodes: Vec<String>) -> Remote {
    let nodes = Arc::new(nodes.join(","));
    Arc::new(move |change| {
        let nodes = nodes.clone();
        Box::pin(async move {
            crate::operator::steer(&nodes, change)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    })
}

/// The report's line for a node, from the replicated result's.
pub fn node_summary(n: &loadtest_wire::plan::NodeReport) -> NodeSummary {
    NodeSummary {
        node_id: n.node_id.clone(),
        addr: n.addr.clone(),
        segment: n.segment.clone(),
        requests: n.requests,
        failed: n.failed,
        iterations: n.iterations,
        dropped_iterations: n.dropped_iterations,
        started_at_ms: n.started_at_ms,
        status: n.status.clone(),
        took_over_from: n.took_over_from.clone(),
    }
}
