//! `loadtest run` in standalone mode: load the Bundle, run the engine on
//! the whole load (or one segment of it), watch signals and abort
//! thresholds, then write every report and choose the exit code.

use loadtest_engine::config::Bundle;
use loadtest_engine::plugin::Runtime;
use loadtest_engine::threshold::{self, Threshold};
use loadtest_engine::workload::{self, Live, Segment, Stop};
use loadtest_report::outputs::{Outputs, exit_code, write_reports};
use loadtest_report::{self as report, RunFacts, Summary, exit, progress};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(path: PathBuf, segment: Segment, out: Outputs) -> anyhow::Result<u8> {
    let runtime = Arc::new(Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
    let bundle = load(&path, &runtime).await?;
    warn_if_map_count_is_low(&bundle, segment);
    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let stop_tx = Arc::new(stop_tx);
    let interrupted = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_signals(stop_tx.clone(), interrupted.clone()));

    let live = Live::with_filters(threshold::filters(&bundle.config.thresholds.0));
    let exporter = match out.metrics_addr {
        Some(addr) => Some(report::prometheus::bind(addr, live.clone()).await?),
        None => None,
    };
    let dashboard = match out.dashboard {
        Some(addr) => {
            let d =
                report::dashboard::bind(addr, live.clone(), &bundle.name, &bundle.config).await?;
            eprintln!("dashboard: {}", d.url);
            Some(d)
        }
        None => None,
    };
    let outs = report::stream::with_config(&out.stream, &bundle.config.output_specs())?;
    let stream = report::stream::start(&outs, live.clone()).await?;
    let progress = (!out.quiet).then(|| tokio::spawn(progress::report(live.clone())));
    let aborted = Arc::new(AtomicBool::new(false));
    let abort_watch = tokio::spawn(watch_abort_thresholds(
        bundle.config.thresholds.0.clone(),
        live.clone(),
        stop_tx.clone(),
        aborted.clone(),
    ));
    let script_abort = tokio::spawn(stop_on_script_abort(live.clone(), stop_tx.clone()));
    // A failing setup ends the run here, before any load; so does a stop.
    let mut asked = stop_rx.clone();
    let after = stop_rx.clone();
    let setup = tokio::select! {
        setup = workload::setup(&bundle, &runtime, &live) => setup,
        _ = asked.wait_for(|s| *s != Stop::No) => {
            if let Some(reason) = live.abort.reason() {
                eprintln!("the script aborted the test during setup: {reason}; no load was sent");
                return Ok(exit::SCRIPT_ABORTED);
            }
            eprintln!("stopped during setup; no load was sent");
            return Ok(loadtest_report::exit::INTERRUPTED);
        }
    };
    let setup = match (setup, live.abort.reason()) {
        (Err(_), Some(reason)) => {
            eprintln!("the script aborted the test during setup: {reason}; no load was sent");
            return Ok(exit::SCRIPT_ABORTED);
        }
        (setup, _) => setup?,
    };
    let outcome = workload::run(
        &bundle,
        runtime.clone(),
        segment,
        stop_rx,
        live.clone(),
        workload::Timing::default(),
        &setup,
    )
    .await;
    // Also after Ctrl-C: what setup made is cleaned up.
    let teardown = workload::teardown(&bundle, &runtime, &live, &setup).await;
    abort_watch.abort();
    script_abort.abort();
    if let Some(p) = progress {
        p.abort();
        // The bars stay on screen with their last state, above the summary.
        let _ = p.await;
    }
    if let Some(e) = exporter {
        e.abort();
    }
    if let Some(s) = stream {
        s.finish().await;
    }
    let mut outcome = outcome?;
    // Teardown's requests count too.
    outcome.metrics = live.cumulative();

    let mut summary = Summary::new(RunFacts {
        name: &bundle.name,
        config: &bundle.config,
        metrics: &outcome.metrics,
        elapsed: outcome.elapsed,
        stopped_early: outcome.stopped_early,
        aborted_by_threshold: aborted.load(Ordering::Relaxed),
    });
    summary.aborted_by_script = live.abort.reason();
    summary.failed_by_script = live.failed.reason();
    summary.controls = report::control::log_lines(
        &live.steering,
        *live.started.lock().unwrap_or_else(|p| p.into_inner()),
    );
    let summarised = report::k6_data::end_of_test(
        &bundle,
        || Ok(runtime.clone()),
        &summary,
        &outcome.metrics,
        outcome.elapsed,
        report::k6_data::RunDetails {
            rows: &outcome.rows,
            setup_data: setup.first().map(String::as_str),
        },
    )
    .await;
    write_reports(&out, &summary, &outcome.rows)?;
    let code = match teardown.and(summarised) {
        Err(e) => {
            eprintln!("error: {e:#}");
            loadtest_report::exit::ERROR
        }
        Ok(()) => match exit_code(&summary, interrupted.load(Ordering::Relaxed)) {
            // A panic outside any iteration (a scenario's task, a VU's
            // start) was contained too, but it is a bug all the same.
            exit::OK | exit::SCRIPT_ABORTED if loadtest_engine::bugs::seen() > 0 => {
                eprintln!(
                    "error: loadtest hit a bug (a panic); the reports cover what ran, but please report the panic logged above"
                );
                exit::ERROR
            }
            code => code,
        },
    };
    if let Some(d) = dashboard {
        d.finish(&summary, &outcome.rows);
        d.linger(out.dashboard_linger, after).await;
    }
    Ok(code)
}

/// A YAML config, or a k6-style script (`.js`) made into one.
pub async fn load(path: &std::path::Path, runtime: &Arc<Runtime>) -> anyhow::Result<Bundle> {
    if loadtest_engine::script::is_script(path) {
        return loadtest_engine::script::bundle(path, runtime).await;
    }
    let bundle = Bundle::load(path)?;
    Ok(loadtest_engine::script::compile_named(bundle, runtime).await)
}

/// Says before the run, not as hundreds of failed inits, when the VUs
/// will not fit under the process's cap on memory mappings.
fn warn_if_map_count_is_low(bundle: &Bundle, segment: Segment) {
    let Some(limit) = loadtest_engine::plugin::maps::limit() else {
        return;
    };
    let vus: u64 = bundle
        .config
        .scenarios
        .values()
        .map(|s| segment.share(s.executor.max_vus().into()))
        .sum();
    if let Some(warning) = loadtest_engine::plugin::maps::warning(vus, limit) {
        eprintln!("{warning}");
    }
}

/// Every second, checks the `abortOnFail` thresholds whose delay has
/// passed; the first failure stops the run gracefully.
async fn watch_abort_thresholds(
    thresholds: Vec<Threshold>,
    live: Live,
    stop: Arc<watch::Sender<Stop>>,
    aborted: Arc<AtomicBool>,
) {
    let watched: Vec<_> = thresholds.into_iter().filter(|t| t.abort_on_fail).collect();
    if watched.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let elapsed = live.elapsed();
        let due: Vec<_> = watched
            .iter()
            .filter(|t| elapsed > t.delay_abort_eval && !elapsed.is_zero())
            .collect();
        if due.is_empty() {
            continue;
        }
        let m = live.cumulative();
        if let Some(v) = due
            .iter()
            .map(|t| t.evaluate(&m, elapsed))
            .find(|v| !v.passed && v.observed.is_some())
        {
            eprintln!(
                "\nthreshold {} {} failed with abortOnFail: stopping the run",
                v.metric, v.threshold
            );
            aborted.store(true, Ordering::Relaxed);
            let _ = stop.send(Stop::Graceful);
            return;
        }
    }
}

/// A script ended the test (k6's `exec.test.abort()`): every VU stops
/// now; teardown still runs.
async fn stop_on_script_abort(live: workload::Live, stop: Arc<watch::Sender<Stop>>) {
    let reason = live.abort.asked().await;
    eprintln!("\nthe script aborted the test: {reason}");
    let _ = stop.send(Stop::Now);
}

/// First Ctrl-C or SIGTERM: graceful stop. Second: stop now.
async fn watch_signals(stop: Arc<watch::Sender<Stop>>, interrupted: Arc<AtomicBool>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    for next in [Stop::Graceful, Stop::Now] {
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
        interrupted.store(true, Ordering::Relaxed);
        eprintln!(
            "\n{}",
            if next == Stop::Graceful {
                "stopping: no new iterations, waiting for running ones (again to stop now)"
            } else {
                "stopping now"
            }
        );
        let _ = stop.send(next);
    }
}
