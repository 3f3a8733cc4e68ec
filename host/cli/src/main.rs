//! `loadtest`: HTTP load testing with scenarios as WebAssembly components.

mod memory;
mod standalone;
mod steer;

#[cfg(feature = "cluster")]
mod cluster_commands;
use clap::{Parser, Subcommand};
use loadtest_engine::{config, plugin, workload};
use loadtest_report::{exit, outputs};
use loadtest_target as target;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// What a run shows and sends while it goes (`run`, and `submit` and
/// `report` for a cluster run, whose merged series the operator follows).
#[derive(clap::Args)]
struct LiveArgs {
    /// Serve Prometheus metrics on this address during the run.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Serve a live dashboard (and the live controls `loadtest pause`,
    /// `resume` and `scale` use) on this address.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = steer::DEFAULT_DASHBOARD)]
    dashboard: Option<SocketAddr>,
    /// After the run, keep the dashboard up this long with the final
    /// report (Ctrl-C ends it sooner), e.g. `10m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    dashboard_linger: std::time::Duration,
    /// Stream the metrics every second while the run goes (repeat for
    /// several): `prometheus=URL` (remote write), `otlp=URL`
    /// (OTLP/HTTP), `json=FILE` (JSON lines).
    #[arg(long = "out", short = 'o', value_name = "KIND=WHERE")]
    outs: Vec<loadtest_report::stream::Out>,
}

impl ReportArgs {
    fn outputs(self, live: LiveArgs) -> outputs::Outputs {
        outputs::Outputs {
            json: self.json,
            html: self.html,
            timeseries: self.timeseries,
            metrics_addr: live.metrics_addr,
            quiet: self.quiet,
            dashboard: live.dashboard,
            dashboard_linger: live.dashboard_linger,
            stream: live.outs,
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
        #[command(flatten)]
        live: LiveArgs,
        /// Run only this share of the load: `2/3` is the second of three
        /// equal parts (the parts of all segments add up to the whole).
        #[arg(long, value_name = "I/N", value_parser = parse_segment, default_value = "1/1")]
        segment: workload::Segment,
    },
    /// Check a config and its plugins without sending any load.
    Validate { config: PathBuf },
    #[command(flatten)]
    Steer(steer::SteerCommand),
    #[cfg(feature = "cluster")]
    #[command(flatten)]
    Cluster(cluster_commands::ClusterCommand),
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

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    config::HumanDuration::parse(s).map(|d| d.0)
}

fn parse_segment(s: &str) -> Result<workload::Segment, String> {
    let err = || format!("`{s}` is not a segment; write I/N with 1 <= I <= N, like 2/3");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| err())?,
        n.trim().parse().map_err(|_| err())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(err());
    }
    Ok(workload::Segment {
        index: i - 1,
        count: n,
    })
}

fn main() -> ExitCode {
    init_tracing();
    loadtest_engine::bugs::install_hook();
    memory::start_trimming();
    raise_fd_limit();
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if is_node(&cli.command) {
        builder.on_thread_start(below_raft);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run {
                config,
                reports,
                live,
                segment,
            } => {
                if cluster_enabled() {
                    tracing::warn!(
                        "CLUSTER_ENABLED=true: starting as a cluster node; send {} to the cluster with `loadtest submit {} --node <addr>`",
                        config.display(),
                        config.display()
                    );
                    return start_node().await;
                }
                standalone::run(config, segment, reports.outputs(live)).await
            }
            Command::Validate { config } => validate(config).await,
            Command::Steer(c) => steer::run(c).await,
            Command::Inspect { plugin } => inspect(plugin),
            Command::Target { addr, tls } => target::serve(addr, tls).await.map(|()| exit::OK),
            #[cfg(feature = "cluster")]
            Command::Cluster(c) => cluster_commands::run(c).await,
        }
    });
    // VU tasks still parked in the runtime must not keep the process up.
    runtime.shutdown_background();
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => fail(format!("{e:#}")),
    }
}

/// `loadtest run` with CLUSTER_ENABLED=true: become a cluster node.
async fn start_node() -> anyhow::Result<u8> {
    #[cfg(feature = "cluster")]
    return cluster_commands::node().await;
    #[cfg(not(feature = "cluster"))]
    anyhow::bail!(
        "this loadtest was built without cluster support (cargo feature `cluster`): unset CLUSTER_ENABLED to run standalone, or build with the default features"
    )
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

/// Whether this process runs as a cluster node.
fn is_node(command: &Command) -> bool {
    match command {
        Command::Run { .. } => cluster_enabled(),
        #[cfg(feature = "cluster")]
        Command::Cluster(c) => matches!(c, cluster_commands::ClusterCommand::Node),
        _ => false,
    }
}

/// How far a node's load, metrics and coordinator work sit below its Raft.
const BELOW_RAFT: libc::c_int = 5;

/// A node's main-runtime threads (VUs, metrics, the coordinator) run at a
/// lower priority than Raft's: on a loaded machine the scheduler then gives
/// Raft's thread (and the gRPC server on it) its turn first, so heartbeats
/// go out on time and followers do not call elections nobody needs (a
/// 100-node bench lost its leader as every node started its share at
/// once). Lowering one's own priority needs no privilege, and with nothing
/// else to run the lower priority costs the load nothing. Raft's runtime
/// is built from the main thread, which keeps its priority, and its
/// threads inherit that.
fn below_raft() {
    #[cfg(target_os = "linux")]
    // SAFETY: nice only changes the calling thread's nice value (on Linux
    // it is per thread), by an increment, never above the process's own.
    unsafe {
        libc::nice(BELOW_RAFT);
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(exit::ERROR)
}

fn init_tracing() {
    // openraft logs every unreachable peer at error level; the node logs
    // leadership and membership changes itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,loadtest=info,plugin=info,openraft=off")
    });
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
    let runtime =
        std::sync::Arc::new(plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
    let bundle = standalone::load(&path, &runtime).await?;
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
    let failures = workload::check_inits(&bundle, runtime).await?;
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
