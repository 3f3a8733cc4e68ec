//! `loadtest pause`, `resume` and `scale`: live changes to a run started
//! with `--dashboard` (sent to that dashboard), or to a cluster's run
//! (`--node`, sent to the cluster, whose nodes all apply it at once).

use loadtest_engine::workload::Change;
use loadtest_report::{control, exit};

/// Where `--dashboard` serves when no address is given (k6's dashboard
/// port).
pub const DEFAULT_DASHBOARD: &str = "127.0.0.1:5665";

#[derive(clap::Subcommand)]
pub enum SteerCommand {
    /// Pause a running test: no new iterations start (running ones
    /// finish) until `loadtest resume`.
    Pause {
        #[command(flatten)]
        to: Dashboard,
    },
    /// Resume a paused test.
    Resume {
        #[command(flatten)]
        to: Dashboard,
    },
    /// Change a running test's load: the VUs of its externally-controlled
    /// scenarios (up to their maxVUs), or a factor on the rate of its
    /// arrival-rate scenarios (1 is the configured rate).
    Scale {
        /// The VU count wanted.
        #[arg(long, conflicts_with = "rate", required_unless_present = "rate")]
        vus: Option<u64>,
        /// The factor on the configured arrival rate, e.g. 1.5 or 0.5.
        #[arg(long)]
        rate: Option<f64>,
        /// Only this scenario (default: every one the change applies to).
        #[arg(long)]
        scenario: Option<String>,
        #[command(flatten)]
        to: Dashboard,
    },
}

#[derive(clap::Args)]
pub struct Dashboard {
    /// The run's dashboard (its `--dashboard` address).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_DASHBOARD)]
    dashboard: String,
    /// A cluster's run instead: nodes' Raft/gRPC addresses,
    /// comma-separated (uses CLUSTER_TOKEN or the operator's TLS files).
    #[cfg(feature = "cluster")]
    #[arg(long, value_name = "ADDR[,ADDR...]", conflicts_with = "dashboard")]
    node: Option<String>,
}

pub async fn run(c: SteerCommand) -> anyhow::Result<u8> {
    let (to, change) = match c {
        SteerCommand::Pause { to } => (to, Change::Pause),
        SteerCommand::Resume { to } => (to, Change::Resume),
        SteerCommand::Scale {
            vus: Some(vus),
            scenario,
            to,
            ..
        } => (to, Change::Vus { scenario, vus }),
        SteerCommand::Scale {
            rate, scenario, to, ..
        } => (
            to,
            Change::Rate {
                scenario,
                factor: rate.unwrap_or(1.0),
            },
        ),
    };
    #[cfg(feature = "cluster")]
    if let Some(nodes) = &to.node {
        println!("{}", loadtest_cluster::steer(nodes, change).await?);
        return Ok(exit::OK);
    }
    println!("{}", control::send(&to.dashboard, &change).await?);
    Ok(exit::OK)
}
