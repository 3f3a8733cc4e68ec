//! A self-contained HTML report: inline CSS and SVG charts, no scripts and
//! nothing fetched, so it opens offline and can be attached to a ticket.

use super::Summary;
use loadtest_engine::metrics::Row;
use std::fmt::Write;

const COLORS: [&str; 5] = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed"];

pub fn render(s: &Summary, rows: &[Row]) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadtest: {}</title>\
         <style>{CSS}</style></head><body>{}</body></html>\n",
        esc(&s.name),
        body(s, rows)
    )
}

/// The report's content without the document around it: what the live
/// dashboard shows, so the page during the run and the saved report
/// agree.
pub fn body(s: &Summary, rows: &[Row]) -> String {
    let mut h = String::new();
    let verdict = if s.thresholds_failed() {
        ("failed", "bad")
    } else {
        ("passed", "good")
    };
    let _ = write!(
        h,
        "<h1>loadtest: {name}</h1>\
         <p class=\"meta\">{secs:.1}s · {req} requests ({rate:.1}/s) · {failed} failed · {iter} iterations \
         ({ifail} failed, {dropped} dropped) · <span class=\"{cls}\">thresholds {word}</span>{stopped}</p>",
        name = esc(&s.name),
        secs = s.duration_secs,
        req = s.totals.requests,
        rate = s.totals.rate,
        failed = s.totals.failed,
        iter = s.totals.iterations,
        ifail = s.totals.iterations_failed,
        dropped = s.totals.dropped_iterations,
        cls = verdict.1,
        word = if s.thresholds.is_empty() {
            "none set"
        } else {
            verdict.0
        },
        stopped = if s.stopped_early {
            " · <b>stopped early</b>"
        } else {
            ""
        },
    );
    let g = &s.generator;
    if g.saturated_seconds > 0 {
        let _ = write!(
            h,
            "<p class=\"bad\">The generator was saturated for {} of {} s (CPU up to {:.0}% of the cores, \
             tasks waited up to {:.0} ms): it, not the target, may have set the pace.</p>",
            g.saturated_seconds, g.seconds, g.cpu_max_pct, g.scheduling_lag_max_ms
        );
    }
    h.push_str("<div class=\"charts\">");
    let t = |r: &Row| r.t as f64;
    // Counts per second, also for rows that cover a folded minute.
    let per_s = |r: &Row, n: u64| n as f64 / r.secs.max(1) as f64;
    h.push_str(&chart(
        "Requests per second",
        "req/s",
        &[
            (
                "requests",
                rows.iter().map(|r| (t(r), per_s(r, r.requests))).collect(),
            ),
            (
                "failed",
                rows.iter().map(|r| (t(r), per_s(r, r.failed))).collect(),
            ),
        ],
    ));
    h.push_str(&chart(
        "Latency (ms)",
        "ms",
        &[
            (
                "p50",
                rows.iter().map(|r| (t(r), r.latency_ms.p50)).collect(),
            ),
            (
                "p90",
                rows.iter().map(|r| (t(r), r.latency_ms.p90)).collect(),
            ),
            (
                "p95",
                rows.iter().map(|r| (t(r), r.latency_ms.p95)).collect(),
            ),
            (
                "p99",
                rows.iter().map(|r| (t(r), r.latency_ms.p99)).collect(),
            ),
        ],
    ));
    h.push_str(&chart(
        "Errors per second",
        "/s",
        &[
            (
                "failed requests",
                rows.iter().map(|r| (t(r), per_s(r, r.failed))).collect(),
            ),
            (
                "failed iterations",
                rows.iter()
                    .map(|r| (t(r), per_s(r, r.iterations_failed)))
                    .collect(),
            ),
            (
                "dropped iterations",
                rows.iter()
                    .map(|r| (t(r), per_s(r, r.dropped_iterations)))
                    .collect(),
            ),
        ],
    ));
    h.push_str(&chart(
        "Busy VUs",
        "VUs",
        &[("VUs", rows.iter().map(|r| (t(r), r.vus as f64)).collect())],
    ));
    h.push_str("</div>");
    tables(&mut h, s);
    if !s.controls.is_empty() {
        h.push_str("<h2>Live changes</h2><ul>");
        for c in &s.controls {
            let _ = write!(h, "<li>{}</li>", esc(c));
        }
        h.push_str("</ul>");
    }
    if let Some(c) = &s.cluster {
        cluster(&mut h, c);
    }
    h
}

/// A cluster run's nodes (each one's share and counts) and its events.
fn cluster(h: &mut String, c: &crate::ClusterSummary) {
    let _ = write!(
        h,
        "<h2>Nodes <small>(run {}, config {})</small></h2>{}\
         <table><tr><th>node</th><th>address</th><th>share</th><th>status</th><th>requests</th>\
         <th>failed</th><th>iterations</th><th>dropped</th><th>took over from</th></tr>",
        esc(&c.run_id),
        esc(&c.config_version),
        c.start_spread_ms.map_or(String::new(), |ms| format!(
            "<p>first iterations within {ms} ms of each other</p>"
        ))
    );
    for n in &c.nodes {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.node_id),
            esc(&n.addr),
            esc(&n.segment),
            esc(&n.status),
            n.requests,
            n.failed,
            n.iterations,
            n.dropped_iterations,
            esc(n.took_over_from.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");
    if !c.events.is_empty() {
        h.push_str("<h2>Events</h2><ul>");
        for e in &c.events {
            let _ = write!(h, "<li>{}</li>", esc(e));
        }
        h.push_str("</ul>");
    }
}

pub const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}h1{font-size:1.4em}\
h2{font-size:1.1em;margin-top:2em}.meta{color:#444}.good{color:#16a34a;font-weight:600}\
.bad{color:#dc2626;font-weight:600}.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1em}\
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:.5em}figcaption{font-weight:600}\
table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #eee;padding:.25em .8em;text-align:right}\
td:first-child,th:first-child{text-align:left}svg text{font-size:11px;fill:#555}";

/// One line chart as inline SVG.
fn chart(title: &str, unit: &str, series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, hgt, left, bottom, top, right) = (460.0, 220.0, 50.0, 24.0, 10.0, 10.0);
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let x_max = xs.fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_max <= 0.0 { 1.0 } else { nice(y_max) };
    let sx = |x: f64| left + (x / x_max) * (w - left - right);
    let sy = |y: f64| top + (1.0 - y / y_max) * (hgt - top - bottom);
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {w} {hgt}\" width=\"100%\">",
        esc(title),
        esc(title)
    );
    for i in 0..=4 {
        let y = y_max * i as f64 / 4.0;
        let py = sy(y);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 4.0,
            py + 4.0,
            short(y),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{}\">0s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{x_max:.0}s · {}</text>",
        hgt - 6.0,
        w - right,
        hgt - 6.0,
        esc(unit)
    );
    for (i, (label, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" data-label=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\" style=\"fill:{color}\">{}</text>",
            esc(label),
            pts.join(" "),
            left + 8.0 + 110.0 * i as f64,
            top + 12.0,
            esc(label)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// A request table: a row each, with its statuses and errors.
fn requests(
    h: &mut String,
    requests: &std::collections::BTreeMap<String, super::json::RequestSummary>,
) {
    h.push_str(
        "<table><tr><th>request</th><th>count</th><th>rate/s</th><th>failed</th><th>p50</th><th>p90</th>\
         <th>p95</th><th>p99</th><th>max</th><th>status</th></tr>",
    );
    for (req, r) in requests {
        let l = &r.latency_ms;
        let codes: Vec<String> = r
            .status
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .chain(r.errors.iter().map(|(e, n)| format!("{e}: {n}")))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(req),
            r.count,
            r.rate,
            r.failed,
            l.p50,
            l.p90,
            l.p95,
            l.p99,
            l.max,
            esc(&codes.join(", "))
        );
    }
    h.push_str("</table>");
}

fn tables(h: &mut String, s: &Summary) {
    for (name, sc) in &s.scenarios {
        let _ = write!(
            h,
            "<h2>Scenario {} <small>({})</small></h2><p>{} iterations, {} failed, {} dropped</p>",
            esc(name),
            esc(&sc.executor),
            sc.iterations,
            sc.iterations_failed,
            sc.dropped_iterations
        );
        requests(h, &sc.requests);
        for (msg, n) in sc.failure_messages.iter().chain(&sc.init_messages).take(10) {
            let _ = write!(h, "<p class=\"bad\">{n} × {}</p>", esc(msg));
        }
    }
    if let Some(st) = &s.setup_teardown {
        h.push_str("<h2>Setup and teardown <small>(outside every scenario)</small></h2>");
        requests(h, &st.requests);
    }
    if !s.checks.is_empty() {
        h.push_str("<h2>Checks</h2><table><tr><th>check</th><th>passes</th><th>fails</th><th>rate</th></tr>");
        for (name, c) in &s.checks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td></tr>",
                esc(name),
                c.counts.passes,
                c.counts.fails,
                c.rate * 100.0
            );
        }
        h.push_str("</table>");
    }
    if !s.thresholds.is_empty() {
        h.push_str("<h2>Thresholds</h2><table><tr><th>metric</th><th>threshold</th><th>observed</th><th>result</th></tr>");
        for v in &s.thresholds {
            let observed = v
                .observed
                .map_or("no samples".to_string(), |o| format!("{o:.4}"));
            let (cls, word) = if v.passed {
                ("good", "pass")
            } else {
                ("bad", "fail")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{observed}</td><td class=\"{cls}\">{word}</td></tr>",
                esc(&v.metric),
                esc(&v.threshold)
            );
        }
        h.push_str("</table>");
    }
}

/// Rounds an axis maximum up to 1, 2 or 5 times a power of ten.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 10.0 || v == 0.0 => format!("{v:.0}"),
        v => format!("{v:.2}"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(0.4), 0.5);
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
