//! The commands of cluster mode: run as a node, and drive a cluster from
//! outside (submit, status, report, stop, cluster-write), and push a config
//! where a cluster reads it (Consul KV, a GCS bucket).

use crate::{LiveArgs, ReportArgs};
use loadtest_backends::{consul, gcs, shipped};
use loadtest_cluster as cluster;
use loadtest_report::exit;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Run as a cluster node (configured by the CLUSTER_* environment variables).
    Node,
    /// Write a key to the cluster's replicated state (through any node;
    /// uses CLUSTER_TOKEN).
    ClusterWrite {
        key: String,
        value: String,
        /// A node's Raft/gRPC address.
        #[arg(long)]
        node: String,
    },
    /// Run a test across a cluster: send the config, its plugins and data
    /// files to a node (it forwards them to the leader), wait for the run,
    /// and print the merged report. Uses CLUSTER_TOKEN.
    Submit {
        config: PathBuf,
        /// Nodes' Raft/gRPC addresses, comma-separated; the next is tried
        /// when one does not answer.
        #[arg(long, value_name = "ADDR[,ADDR...]")]
        node: String,
        #[command(flatten)]
        reports: ReportArgs,
        #[command(flatten)]
        live: LiveArgs,
        /// Print the run id and return without waiting for the run.
        #[arg(long)]
        detach: bool,
    },
    /// Put a config and everything it references (plugin bytes, data
    /// files) into Consul KV or a GCS bucket, for a cluster with
    /// CLUSTER_CONFIG_SOURCE=consul-kv or gcs.
    Push {
        config: PathBuf,
        /// The Consul agent (default: CONSUL_ADDR, CONSUL_HTTP_ADDR, or
        /// http://127.0.0.1:8500); CONSUL_HTTP_TOKEN is sent when set.
        #[arg(long, value_name = "ADDR", conflicts_with = "gcs")]
        consul: Option<String>,
        /// The key the cluster reads (CONSUL_CONFIG_KEY on the nodes).
        #[arg(long, default_value = "loadtest/config", conflicts_with = "gcs")]
        key: String,
        /// Upload to GCS instead, as gs://bucket/path/config.yaml (the
        /// nodes' GCS_CONFIG_BUCKET and GCS_CONFIG_OBJECT), with
        /// Application Default Credentials.
        #[arg(long, value_name = "gs://BUCKET/OBJECT")]
        gcs: Option<String>,
    },
    /// Wait for the cluster's current run (however it was started) and
    /// print its merged report, like `submit` does.
    Report {
        #[arg(long, value_name = "ADDR[,ADDR...]")]
        node: String,
        #[command(flatten)]
        reports: ReportArgs,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Show the cluster, the current run's plan and each node's progress.
    Status {
        #[arg(long, value_name = "ADDR[,ADDR...]")]
        node: String,
        /// Print the whole status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the cluster's current run gracefully.
    Stop {
        #[arg(long, value_name = "ADDR[,ADDR...]")]
        node: String,
    },
    /// Tools for setting a cluster up.
    #[command(subcommand)]
    Cluster(ClusterTool),
}

#[derive(clap::Subcommand)]
pub enum ClusterTool {
    /// Make a cluster CA and certificates for mutual TLS: one per node
    /// (CLUSTER_TLS_CERT, CLUSTER_TLS_KEY) and per operator, all trusting
    /// ca.pem (CLUSTER_TLS_CA). With an --out that holds a CA already, new
    /// certificates are signed by it: issue one and restart that node to
    /// rotate its certificate.
    Certs {
        /// Where to write the PEM files (keys are made readable by their
        /// owner only).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The nodes, by host name or address (each certificate is also
        /// valid for the name peers check, loadtest-node).
        #[arg(long, value_name = "NODE[,NODE...]", value_delimiter = ',')]
        nodes: Vec<String>,
        /// Operators who drive the cluster (submit, status, stop, report).
        #[arg(
            long,
            value_name = "NAME[,NAME...]",
            value_delimiter = ',',
            default_value = "operator"
        )]
        operators: Vec<String>,
    },
}

/// Runs as a node until stopped.
pub async fn node() -> anyhow::Result<u8> {
    cluster::run(cluster::Settings::from_env()?)
        .await
        .map(|()| exit::OK)
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<u8> {
    match command {
        ClusterCommand::Node => node().await,
        ClusterCommand::ClusterWrite { key, value, node } => {
            let applied = cluster::write_remote(&node, cluster::Op::Put { key, value }).await?;
            println!(
                "ok (previous value: {})",
                applied.previous.as_deref().unwrap_or("none")
            );
            Ok(exit::OK)
        }
        ClusterCommand::Submit {
            config,
            node,
            reports,
            live,
            detach,
        } => cluster::submit(&config, &node, reports.outputs(live), detach).await,
        ClusterCommand::Status { node, json } => cluster::status(&node, json).await,
        ClusterCommand::Push {
            config,
            gcs: Some(url),
            ..
        } => push_gcs(&config, &url).await,
        ClusterCommand::Push {
            config,
            consul,
            key,
            ..
        } => push(&config, consul.as_deref(), &key).await,
        ClusterCommand::Report {
            node,
            reports,
            live,
        } => cluster::report(&node, reports.outputs(live)).await,
        ClusterCommand::Stop { node } => cluster::stop(&node).await,
        ClusterCommand::Cluster(ClusterTool::Certs {
            out,
            nodes,
            operators,
        }) => certs(&out, &nodes, &operators),
    }
}

fn certs(out: &std::path::Path, nodes: &[String], operators: &[String]) -> anyhow::Result<u8> {
    let written = cluster::certs::make(out, nodes, operators)?;
    for f in &written {
        println!("{}", f.display());
    }
    eprintln!(
        "wrote {} file(s) to {}. On each node set CLUSTER_TLS_CA={}/ca.pem and its own \
         CLUSTER_TLS_CERT=node-<name>.pem, CLUSTER_TLS_KEY=node-<name>.key; operators set theirs the same way. \
         Keep ca.key off the nodes.",
        written.len(),
        out.display(),
        out.display()
    );
    Ok(exit::OK)
}

async fn push(config: &std::path::Path, agent: Option<&str>, key: &str) -> anyhow::Result<u8> {
    let (shipped, _) = shipped::Shipped::from_path(config).await?;
    let addr = consul::address(agent);
    let started = std::time::Instant::now();
    let chunks = consul::kv::Kv::new(&addr).push(key, &shipped).await?;
    let bytes: usize = shipped.blobs.values().map(|b| b.len()).sum();
    eprintln!(
        "pushed `{}` to {addr} at `{key}`: the config and {} byte(s) in {chunks} chunk(s) under `{key}.blobs/`, in {:.0?}",
        shipped.name,
        bytes,
        started.elapsed()
    );
    Ok(exit::OK)
}

async fn push_gcs(config: &std::path::Path, url: &str) -> anyhow::Result<u8> {
    let (bucket, object) = gcs::parse_url(url)?;
    let (shipped, _) = shipped::Shipped::from_path(config).await?;
    let started = std::time::Instant::now();
    let client = gcs::Gcs::new().await?;
    let pushed = client.push(&bucket, &object, &shipped).await?;
    eprintln!(
        "pushed `{}` to {url}: the config, and {} object(s) of {} byte(s) under {url}.blobs/ ({} already there), in {:.0?}",
        shipped.name,
        pushed.written,
        pushed.bytes,
        pushed.reused,
        started.elapsed()
    );
    Ok(exit::OK)
}
