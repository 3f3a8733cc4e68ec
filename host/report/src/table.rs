//! The end-of-run summary as a plain-text table.

use super::Summary;
use std::fmt::Write;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  {}  ·  {:.1}s{}",
        s.name,
        s.duration_secs,
        if s.stopped_early {
            "  ·  stopped early"
        } else {
            ""
        }
    );
    for (name, sc) in &s.scenarios {
        let _ = writeln!(
            out,
            "\n  scenario {name} ({}): {} iterations, {} failed, iteration p50 {} p95 {}",
            sc.executor,
            sc.iterations,
            sc.iterations_failed,
            ms(sc.iteration_duration_ms.p50),
            ms(sc.iteration_duration_ms.p95)
        );
        dropped(&mut out, sc);
        for (kind, n) in &sc.failures {
            let _ = writeln!(out, "    {n} failed with {kind}");
        }
        for (msg, n) in sc.failure_messages.iter().take(5) {
            let _ = writeln!(out, "      {n} × {}", clip(msg, 110));
        }
        if sc.init_failed > 0 {
            let _ = writeln!(out, "    {} VU(s) failed init:", sc.init_failed);
            for (msg, n) in sc.init_messages.iter().take(5) {
                let _ = writeln!(out, "      {n} × {}", clip(msg, 110));
            }
        }
        phases(&mut out, &sc.timings_ms);
        groups(&mut out, &sc.groups);
        requests(&mut out, &sc.requests);
    }
    if let Some(st) = &s.setup_teardown {
        let _ = writeln!(out, "\n  setup and teardown (outside every scenario)");
        phases(&mut out, &st.timings_ms);
        groups(&mut out, &st.groups);
        requests(&mut out, &st.requests);
    }
    if !s.checks.is_empty() {
        let _ = writeln!(out, "\n    checks");
        for (name, c) in &s.checks {
            let mark = if c.counts.fails == 0 { "✓" } else { "✗" };
            let _ = writeln!(
                out,
                "    {mark} {:<50} {:>7.2}%  {} / {}",
                clip(name, 50),
                c.rate * 100.0,
                c.counts.passes,
                c.counts.passes + c.counts.fails
            );
        }
    }
    for (name, v) in &s.counters {
        let _ = writeln!(out, "    counter {name}: {v}");
    }
    for (name, g) in &s.gauges {
        let _ = writeln!(
            out,
            "    gauge {name}: {} (min {} max {})",
            g.value, g.min, g.max
        );
    }
    for (name, r) in &s.rates {
        let _ = writeln!(
            out,
            "    rate {name}: {:.2}%  {} / {}",
            r.rate * 100.0,
            r.counts.hits,
            r.counts.total
        );
    }
    for (name, t) in &s.trends {
        let _ = writeln!(
            out,
            "    trend {name}: count {} min {:.3} p50 {:.3} p95 {:.3} max {:.3}",
            t.count, t.min, t.p50, t.p95, t.max
        );
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(out, "\n    thresholds");
        for v in &s.thresholds {
            let _ = writeln!(out, "    {v}");
        }
    }
    generator(&mut out, &s.generator);
    if !s.controls.is_empty() {
        let _ = writeln!(out, "\n    live changes");
        for c in &s.controls {
            let _ = writeln!(out, "    · {c}");
        }
    }
    if let Some(c) = &s.cluster {
        cluster(&mut out, c);
    }
    let t = &s.totals;
    let failed_pct = if t.requests == 0 {
        0.0
    } else {
        t.failed as f64 * 100.0 / t.requests as f64
    };
    let _ = writeln!(
        out,
        "\n  requests {} ({:.1}/s), failed {} ({:.2}%), iterations {} ({} failed), received {}\n",
        t.requests,
        t.rate,
        t.failed,
        failed_pct,
        t.iterations,
        t.iterations_failed,
        bytes(t.bytes_received)
    );
    out
}

/// A scenario's requests, a line each with its statuses and errors below.
fn requests(
    out: &mut String,
    requests: &std::collections::BTreeMap<String, super::json::RequestSummary>,
) {
    if requests.is_empty() {
        return;
    }
    let width = column_width(requests.keys(), 7);
    let _ = writeln!(
        out,
        "\n    {:<width$} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "request", "count", "rate/s", "failed", "p50", "p90", "p95", "p99", "max"
    );
    for (req, r) in requests {
        let l = &r.latency_ms;
        let _ = writeln!(
            out,
            "    {:<width$} {:>9} {:>9.1} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            clip(req, width),
            r.count,
            r.rate,
            r.failed,
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.max)
        );
        let mut codes: Vec<String> = r.status.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        codes.extend(r.errors.iter().map(|(e, n)| format!("{e}: {n}")));
        let _ = writeln!(out, "    {:<width$}   {}", "", codes.join("  "));
    }
}

/// The width of a first column holding `names`: at least `min`, at most 40.
fn column_width<'a>(names: impl Iterator<Item = &'a String>, min: usize) -> usize {
    names
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(min)
        .clamp(min, 40)
}

/// One line of k6's request phases, at p95: where the time went.
fn phases(
    out: &mut String,
    t: &std::collections::BTreeMap<String, loadtest_engine::metrics::Latency>,
) {
    if t.is_empty() {
        return;
    }
    let parts: Vec<String> = loadtest_engine::metrics::Phases::NAMES
        .iter()
        .filter_map(|n| {
            let l = t.get(*n)?;
            Some(format!(
                "{} {}",
                n.trim_start_matches("http_req_"),
                ms(l.p95)
            ))
        })
        .collect();
    let _ = writeln!(out, "    p95 by phase: {}", parts.join(", "));
}

fn groups(out: &mut String, g: &std::collections::BTreeMap<String, super::json::GroupSummary>) {
    if g.is_empty() {
        return;
    }
    let width = column_width(g.keys(), 5);
    let _ = writeln!(
        out,
        "\n    {:<width$} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "group", "runs", "p50", "p95", "requests", "failed", "checks"
    );
    for (name, s) in g {
        let checks = s.checks.counts.passes + s.checks.counts.fails;
        let _ = writeln!(
            out,
            "    {:<width$} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            clip(name, width),
            s.runs,
            ms(s.duration_ms.p50),
            ms(s.duration_ms.p95),
            s.requests,
            s.failed,
            if checks == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", s.checks.rate * 100.0)
            }
        );
    }
}

fn cluster(out: &mut String, c: &super::ClusterSummary) {
    let spread = c
        .start_spread_ms
        .map_or(String::new(), |s| format!(", start spread {s} ms"));
    let _ = writeln!(
        out,
        "\n    nodes (run {}, config {}{spread})",
        c.run_id, c.config_version
    );
    for n in &c.nodes {
        let from = n
            .took_over_from
            .as_ref()
            .map_or(String::new(), |f| format!("  (took over from {f})"));
        let _ = writeln!(
            out,
            "    {:<24} {:>5} {:>10} requests {:>8} failed {:>10} iterations  {}{from}",
            clip(&n.node_id, 24),
            n.segment,
            n.requests,
            n.failed,
            n.iterations,
            n.status
        );
    }
    for e in &c.events {
        let _ = writeln!(out, "    · {e}");
    }
}

/// Why iterations were dropped: a short VU pool, or a generator short of CPU.
fn dropped(out: &mut String, sc: &super::json::ScenarioSummary) {
    let n = sc.dropped_iterations;
    let busy = sc.dropped_while_saturated;
    if n == 0 {
        return;
    }
    if busy == 0 {
        let _ = writeln!(
            out,
            "    {n} iterations dropped: no VU was free at their scheduled start (raise maxVUs)"
        );
        return;
    }
    let _ = writeln!(
        out,
        "    {n} iterations dropped, {busy} of them while the generator was saturated \
         (give it more CPU or more nodes; raising maxVUs will not help those)"
    );
}

/// A line when the generator itself was short of CPU: then the figures
/// measure it as much as the target.
fn generator(out: &mut String, g: &super::json::GeneratorSummary) {
    if g.saturated_seconds == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\n  generator saturated for {} of {} s (CPU up to {:.0}% of the cores, tasks waited up to {:.0} ms): \
         it, not the target, may have set the pace",
        g.saturated_seconds, g.seconds, g.cpu_max_pct, g.scheduling_lag_max_ms
    );
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.2}ms")
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}
