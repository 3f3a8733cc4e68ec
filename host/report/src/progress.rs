//! Live progress on stderr. On a terminal: one bar per scenario (elapsed
//! of planned time, busy VUs, current rate, failures), redrawn in place.
//! In a log: a plain line every five seconds.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use loadtest_engine::metrics::Metrics;
use loadtest_engine::workload::Live;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Per scenario: (requests, failed requests + failed iterations).
fn per_scenario(m: &Metrics) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((s, _), r) in &m.requests {
        let e = out.entry(s.clone()).or_default();
        e.0 += r.count;
        e.1 += r.failed;
    }
    for (s, st) in &m.scenarios {
        out.entry(s.clone()).or_default().1 += st.failed;
    }
    out
}

pub async fn report(live: Live) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:28}] {msg}")
        .expect("static template")
        .progress_chars("=> ");
    let mut bars: Vec<ProgressBar> = Vec::new();
    let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = per_scenario(&live.cumulative());
        let elapsed = live.elapsed();
        let scenarios = live
            .scenarios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut plain = Vec::new();
        for (i, (name, executor, active)) in scenarios.iter().enumerate() {
            let (req, failed) = now.get(&**name).copied().unwrap_or_default();
            let prev = last.get(&**name).copied().unwrap_or_default();
            let rate = (req - prev.0) as f64 / every.as_secs_f64();
            let busy = active.load(Ordering::Relaxed);
            let planned = executor.max_duration();
            let msg = format!(
                "{:.0}s/{:.0}s  VUs {busy}/{}  {rate:.0} req/s  {failed} failed",
                elapsed.as_secs_f64(),
                planned.as_secs_f64(),
                executor.max_vus()
            );
            if tty {
                if bars.len() <= i {
                    let bar = multi.add(ProgressBar::new(planned.as_millis().max(1) as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(name.to_string());
                    bars.push(bar);
                }
                bars[i].set_position(elapsed.as_millis().min(planned.as_millis()) as u64);
                bars[i].set_message(msg);
            } else {
                plain.push(format!("{name}: {msg}"));
            }
        }
        if !tty && !plain.is_empty() {
            eprintln!("{}", plain.join("; "));
        }
        last = now;
    }
}
