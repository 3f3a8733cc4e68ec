//! `loadtest`: HTTP load testing with scenarios as WebAssembly components.

mod client;
mod cluster;
mod config;
mod consul;
mod engine;
mod gcs;
mod httpd;
mod metrics;
mod plugin;
mod progress;
mod report;
mod run;
mod source;
mod target;
mod threshold;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, documented in the README.
mod exit {
    pub const OK: u8 = 0;
    /// Bad config, bad plugin, or another error that stopped the run.
    pub const ERROR: u8 = 1;
    /// Some VUs could not start (instantiate or `init` failed).
    pub const INIT_FAILED: u8 = 3;
    /// A threshold failed (k6 uses the same code).
    pub const THRESHOLDS_FAILED: u8 = 99;
    /// Stopped by Ctrl-C or SIGTERM (the reports still cover what ran).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "HTTP load testing with WebAssembly scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a run's reports go (`run`, `submit`, `report`).
#[derive(clap::Args)]
struct ReportArgs {
    /// Write the JSON report here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts here.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Write the per-second time series here, as JSON lines.
    #[arg(long, value_name = "PATH")]
    timeseries: Option<PathBuf>,
    /// Print no progress (the summary is still printed).
    #[arg(long, short)]
    quiet: bool,
}

impl ReportArgs {
    fn outputs(self, metrics_addr: Option<SocketAddr>) -> run::Outputs {
        run::Outputs {
            json: self.json,
            html: self.html,
            timeseries: self.timeseries,
            metrics_addr,
            quiet: self.quiet,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a test from a config file on this machine.
    Run {
        /// The test config (YAML).
        config: PathBuf,
        #[command(flatten)]
        reports: ReportArgs,
        /// Serve Prometheus metrics on this address during the run.
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// Run only this share of the load: `2/3` is the second of three
        /// equal parts (the parts of all segments add up to the whole).
        #[arg(long, value_name = "I/N", value_parser = parse_segment, default_value = "1/1")]
        segment: engine::Segment,
    },
    /// Check a config and its plugins without sending any load.
    Validate { config: PathBuf },
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
    /// Show what a component imports and exports, and whether it can run
    /// as a scenario.
    Inspect { plugin: PathBuf },
    /// Serve the embedded HTTP target (for trying things out and for tests).
    Target {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Serve HTTPS with a fresh self-signed certificate.
        #[arg(long)]
        tls: bool,
    },
}

fn parse_segment(s: &str) -> Result<engine::Segment, String> {
    let err = || format!("`{s}` is not a segment; write I/N with 1 <= I <= N, like 2/3");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| err())?,
        n.trim().parse().map_err(|_| err())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(err());
    }
    Ok(engine::Segment {
        index: i - 1,
        count: n,
    })
}

fn main() -> ExitCode {
    init_tracing();
    raise_fd_limit();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run {
                config,
                reports,
                metrics_addr,
                segment,
            } => {
                if cluster_enabled() {
                    tracing::warn!(
                        "CLUSTER_ENABLED=true: starting as a cluster node; send {} to the cluster with `loadtest submit {} --node <addr>`",
                        config.display(),
                        config.display()
                    );
                    return cluster::run(cluster::Settings::from_env()?).await.map(|()| exit::OK);
                }
                run::run(config, segment, reports.outputs(metrics_addr)).await
            }
            Command::Validate { config } => validate(config).await,
            Command::Inspect { plugin } => inspect(plugin),
            Command::Node => cluster::run(cluster::Settings::from_env()?).await.map(|()| exit::OK),
            Command::ClusterWrite { key, value, node } => {
                let token = std::env::var("CLUSTER_TOKEN").ok().filter(|t| !t.is_empty());
                let applied = cluster::write_remote(&node, token.as_deref(), cluster::Command::Set { key, value }).await?;
                println!("ok (previous value: {})", applied.previous.as_deref().unwrap_or("none"));
                Ok(exit::OK)
            }
            Command::Target { addr, tls } => target::serve(addr, tls).await.map(|()| exit::OK),
            Command::Submit { config, node, reports, detach } => {
                cluster::submit(&config, &node, reports.outputs(None), detach).await
            }
            Command::Status { node, json } => cluster::status(&node, json).await,
            Command::Push { config, gcs: Some(url), .. } => push_gcs(&config, &url).await,
            Command::Push { config, consul, key, .. } => push(&config, consul.as_deref(), &key).await,
            Command::Report { node, reports } => cluster::report(&node, reports.outputs(None)).await,
            Command::Stop { node } => cluster::stop(&node).await,
        }
    });
    // VU tasks still parked in the runtime must not keep the process up.
    runtime.shutdown_background();
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => fail(format!("{e:#}")),
    }
}

async fn push(config: &std::path::Path, agent: Option<&str>, key: &str) -> anyhow::Result<u8> {
    let (shipped, _) = source::Shipped::from_file(config)?;
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
    let (shipped, _) = source::Shipped::from_file(config)?;
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

/// Every VU holds a connection, and the embedded target one per client:
/// lift the soft open-files limit to the hard one, as Go programs do, so
/// thousands of VUs do not fail on a default of 1024.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(exit::ERROR)
}

fn init_tracing() {
    // openraft logs every unreachable peer at error level; the node logs
    // leadership and membership changes itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,loadtest=info,openraft=off"));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn cluster_enabled() -> bool {
    std::env::var("CLUSTER_ENABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

fn inspect(path: PathBuf) -> anyhow::Result<u8> {
    let bytes =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let plugin = config::PluginBytes::new(bytes);
    let runtime = plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let name = path.display().to_string();
    let d = runtime.describe(&name, &plugin)?;
    println!(
        "{name}: {} bytes, sha256 {}",
        plugin.bytes.len(),
        plugin.digest
    );
    println!("imports:");
    for (n, k) in &d.imports {
        println!("  {n} ({k})");
    }
    println!("exports:");
    for (n, k) in &d.exports {
        println!("  {n} ({k})");
    }
    match d.fits {
        Ok(()) => {
            println!("runs as a loadtest:scenario plugin: yes");
            Ok(exit::OK)
        }
        Err(why) => {
            println!("runs as a loadtest:scenario plugin: no");
            anyhow::bail!("{name} {why}")
        }
    }
}

async fn validate(path: PathBuf) -> anyhow::Result<u8> {
    let bundle = config::Bundle::load(&path)?;
    let runtime =
        std::sync::Arc::new(plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
    for (name, bytes) in &bundle.plugins {
        let plugin = runtime.load(name, bytes)?;
        println!(
            "plugin {}: {} bytes, sha256 {}, compiled in {:.1?}",
            plugin.name,
            bytes.bytes.len(),
            &plugin.digest[..16],
            plugin.compile_time
        );
    }
    let failures = engine::check_inits(&bundle, runtime).await?;
    if !failures.is_empty() {
        let yaml = std::fs::read_to_string(&path).unwrap_or_default();
        let file = path.display().to_string();
        for (scenario, why) in &failures {
            let located = config::locate_param_error(&file, &yaml, scenario, why);
            eprintln!("error: {located}");
        }
        anyhow::bail!(
            "{} scenario(s) cannot start; nothing was sent",
            failures.len()
        );
    }
    println!(
        "{}: ok ({} scenario(s), {} plugin(s))",
        path.display(),
        bundle.config.scenarios.len(),
        bundle.plugins.len()
    );
    Ok(exit::OK)
}
