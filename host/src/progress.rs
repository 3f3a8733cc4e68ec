//! A live line on stderr while the run goes: on a terminal it rewrites
//! itself every second; in a log it is a plain line every five seconds.

use crate::config::Bundle;
use crate::metrics::Sink;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub async fn report(live: Sink, bundle: Bundle) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let planned = bundle
        .config
        .scenarios
        .values()
        .map(|s| s.executor.max_duration())
        .max()
        .unwrap_or_default();
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let (requests, failed, iterations) = {
            let m = live.lock().unwrap_or_else(|p| p.into_inner());
            (
                m.total_requests(),
                m.total_failed(),
                m.scenarios.values().map(|s| s.iterations).sum::<u64>(),
            )
        };
        let rate = (requests - last) as f64 / every.as_secs_f64();
        last = requests;
        let line = format!(
            "{:>6.1}s / {:.0}s  requests {requests} ({rate:.0}/s)  failed {failed}  iterations {iterations}",
            start.elapsed().as_secs_f64(),
            planned.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}
