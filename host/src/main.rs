//! `loadtest`: HTTP load testing with scenarios as WebAssembly components.

mod client;
mod config;
mod engine;
mod metrics;
mod plugin;
mod progress;
mod report;
mod target;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Exit codes, documented in the README.
mod exit {
    pub const OK: u8 = 0;
    /// Bad config, bad plugin, or another error that stopped the run.
    pub const ERROR: u8 = 1;
    /// Some VUs could not start (instantiate or `init` failed).
    pub const INIT_FAILED: u8 = 3;
    /// Stopped by Ctrl-C or SIGTERM (the summary still covers what ran).
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

#[derive(Subcommand)]
enum Command {
    /// Run a test from a config file on this machine.
    Run {
        /// The test config (YAML).
        config: PathBuf,
        /// Write the JSON report here.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Print no progress lines (the summary is still printed).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a config and its plugins without sending any load.
    Validate { config: PathBuf },
    /// Serve the embedded HTTP target (for trying things out and for tests).
    Target {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    init_tracing();
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
                json,
                quiet,
            } => run(config, json, quiet).await,
            Command::Validate { config } => validate(config),
            Command::Target { addr } => match target::serve(addr).await {
                Ok(()) => Ok(exit::OK),
                Err(e) => Err(e),
            },
        }
    });
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => fail(format!("{e:#}")),
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(exit::ERROR)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn refuse_cluster_mode() -> anyhow::Result<()> {
    if std::env::var("CLUSTER_ENABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        anyhow::bail!(
            "CLUSTER_ENABLED=true: cluster mode is not part of this build yet; unset it to run standalone"
        );
    }
    Ok(())
}

fn validate(path: PathBuf) -> anyhow::Result<u8> {
    let bundle = config::Bundle::load(&path)?;
    let runtime = plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
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
    println!(
        "{}: ok ({} scenario(s), {} plugin(s))",
        path.display(),
        bundle.config.scenarios.len(),
        bundle.plugins.len()
    );
    Ok(exit::OK)
}

async fn run(path: PathBuf, json: Option<PathBuf>, quiet: bool) -> anyhow::Result<u8> {
    refuse_cluster_mode()?;
    let bundle = config::Bundle::load(&path)?;
    let runtime = Arc::new(plugin::Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(engine::Stop::No);
    tokio::spawn(watch_signals(stop_tx));

    let live: metrics::Sink = Arc::new(Mutex::new(metrics::Metrics::default()));
    let progress = (!quiet).then(|| tokio::spawn(progress::report(live.clone(), bundle.clone())));
    let outcome = engine::run(
        &bundle,
        runtime,
        engine::Segment::WHOLE,
        stop_rx,
        Some(live),
    )
    .await;
    if let Some(p) = progress {
        p.abort();
    }
    let outcome = outcome?;

    let summary = report::Summary::new(
        &bundle.name,
        &outcome.metrics,
        outcome.elapsed,
        outcome.stopped_early,
    );
    print!("{}", report::render_table(&summary));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(&path, text).map_err(|e| {
            anyhow::anyhow!("cannot write the JSON report to {}: {e}", path.display())
        })?;
    }
    Ok(if outcome.stopped_early {
        exit::INTERRUPTED
    } else if summary.totals.init_failed > 0 {
        eprintln!(
            "error: {} VU(s) failed to start; see the summary above",
            summary.totals.init_failed
        );
        exit::INIT_FAILED
    } else {
        exit::OK
    })
}

/// First Ctrl-C or SIGTERM: graceful stop. Second: stop now.
async fn watch_signals(stop: tokio::sync::watch::Sender<engine::Stop>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    for next in [engine::Stop::Graceful, engine::Stop::Now] {
        #[cfg(unix)]
        let sigterm = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sigterm = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = sigterm => {},
        }
        eprintln!(
            "\n{}",
            if next == engine::Stop::Graceful {
                "stopping: no new iterations, waiting for running ones (again to stop now)"
            } else {
                "stopping now"
            }
        );
        let _ = stop.send(next);
    }
}
