//! Where a run's reports go (`--json`, `--html`, `--timeseries`), writing
//! them, and the exit code a finished run ends with: shared by standalone
//! runs and the cluster's operator commands, so both end alike.

use crate::{Summary, exit};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the reports go, from the command line.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub timeseries: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    pub quiet: bool,
    /// Where to serve the live dashboard (standalone runs).
    pub dashboard: Option<SocketAddr>,
    /// How long the dashboard stays up after the run.
    pub dashboard_linger: std::time::Duration,
    /// Where the metrics are streamed while the run goes.
    pub stream: Vec<crate::stream::Out>,
}

pub fn write_reports(
    out: &Outputs,
    summary: &Summary,
    rows: &[loadtest_engine::metrics::Row],
) -> anyhow::Result<()> {
    let fail = |what: &str, p: &PathBuf, e: std::io::Error| {
        anyhow::anyhow!("cannot write the {what} to {}: {e}", p.display())
    };
    if let Some(p) = &out.json {
        std::fs::write(p, serde_json::to_string_pretty(summary)?)
            .map_err(|e| fail("JSON report", p, e))?;
    }
    if let Some(p) = &out.timeseries {
        crate::series::write_jsonl(p, rows).map_err(|e| fail("time series", p, e))?;
    }
    if let Some(p) = &out.html {
        std::fs::write(p, crate::html::render(summary, rows))
            .map_err(|e| fail("HTML report", p, e))?;
    }
    Ok(())
}

pub fn exit_code(summary: &Summary, interrupted: bool) -> u8 {
    if let Some(reason) = &summary.failed_by_script {
        eprintln!("error: the script marked the test failed: {reason}");
    }
    match outcome_code(summary, interrupted) {
        // An abort ends the run early and may fail its thresholds; an
        // error (a panic, VUs that could not start) still says so.
        exit::OK | exit::THRESHOLDS_FAILED | exit::INTERRUPTED
            if summary.aborted_by_script.is_some() =>
        {
            exit::SCRIPT_ABORTED
        }
        exit::OK if summary.failed_by_script.is_some() => exit::MARKED_FAILED,
        code => code,
    }
}

fn outcome_code(summary: &Summary, interrupted: bool) -> u8 {
    if interrupted {
        exit::INTERRUPTED
    } else if summary.totals.panics > 0 {
        eprintln!(
            "error: loadtest hit a bug (a panic) in {} iteration(s); the reports cover the whole run, but please report the panic logged above",
            summary.totals.panics
        );
        exit::ERROR
    } else if summary.thresholds_failed() {
        eprintln!("error: some thresholds failed; see the summary above");
        exit::THRESHOLDS_FAILED
    } else if summary.totals.init_failed > 0 {
        eprintln!(
            "error: {} VU(s) failed to start; see the summary above",
            summary.totals.init_failed
        );
        exit::INIT_FAILED
    } else {
        exit::OK
    }
}
