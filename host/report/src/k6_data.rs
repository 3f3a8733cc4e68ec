//! The end-of-test data k6 gives a script's `handleSummary()`, in k6's
//! shape (`metrics.<name>.{type, contains, values, thresholds}`,
//! `root_group`, `options`, `state`), so the summary helpers scripts
//! import (k6-summary's `textSummary`, HTML reporters) read it as they
//! read k6's. And writing out what `handleSummary()` returned.

use crate::Summary;
use loadtest_engine::config::Bundle;
use loadtest_engine::metrics::{CheckStats, Metrics, Phases, Row};
use loadtest_engine::plugin::Runtime;
use loadtest_engine::script::summary::Wanted;
use loadtest_engine::threshold::{rate_counts, statistic};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What one metric is, as k6 types it.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Rate,
    Trend,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Rate => "rate",
            Kind::Trend => "trend",
            Kind::Gauge => "gauge",
        }
    }
}

/// What `handleSummary()`'s data takes from the run besides its metrics.
pub struct RunDetails<'a> {
    /// The run's per-second rows: k6's `vus` gauge is sampled from them.
    pub rows: &'a [Row],
    /// What `setup()` returned, as JSON, when it returned anything.
    pub setup_data: Option<&'a str>,
}

/// The summary table, or in its place what the script's
/// `handleSummary()` makes of k6's end-of-test data, as k6 does. When the
/// script fails, k6's fallback: the error said, the table printed, the
/// run's exit code kept. An output that cannot be written is an error.
pub async fn end_of_test(
    bundle: &Bundle,
    runtime: impl FnOnce() -> anyhow::Result<Arc<Runtime>>,
    summary: &Summary,
    metrics: &Metrics,
    elapsed: Duration,
    details: RunDetails<'_>,
) -> anyhow::Result<()> {
    let Some(wanted) = Wanted::of(bundle) else {
        print!("{}", crate::render_table(summary));
        return Ok(());
    };
    let vus_max = bundle
        .config
        .scenarios
        .values()
        .map(|s| u64::from(s.executor.max_vus()))
        .sum();
    let data = data(
        summary,
        metrics,
        elapsed,
        wanted.options(),
        vus_max,
        &details,
    );
    let called = match runtime() {
        Ok(rt) => wanted.call(bundle, &rt, &data).await,
        Err(e) => Err(e),
    };
    match called {
        Ok(outputs) => emit(&outputs),
        Err(e) => {
            eprintln!("handleSummary() failed: {e:#}; the default summary follows");
            print!("{}", crate::render_table(summary));
            Ok(())
        }
    }
}

/// `data` for `handleSummary(data)`. `options` is `data.options` (the
/// script's summary options); trends report its `summaryTrendStats`.
pub fn data(
    summary: &Summary,
    metrics: &Metrics,
    elapsed: Duration,
    options: Value,
    vus_max: u64,
    details: &RunDetails<'_>,
) -> Value {
    let stats: Vec<String> = options["summaryTrendStats"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| Some(s.as_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let kinds = known(metrics);
    let mut out = Map::new();
    for (name, (kind, contains)) in &kinds {
        if let Some(entry) = entry(name, *kind, contains, metrics, elapsed, &stats) {
            out.insert(name.clone(), entry);
        }
    }
    // k6's `vus_max`: the VUs the run could have had at once.
    out.insert(
        "vus_max".into(),
        json!({ "type": "gauge", "contains": "default", "values": { "value": vus_max, "min": vus_max, "max": vus_max } }),
    );
    if let Some(vus) = vus(details.rows) {
        out.insert("vus".into(), vus);
    }
    add_thresholds(&mut out, &kinds, summary, metrics, elapsed, &stats);
    let mut data = json!({
        "metrics": out,
        "root_group": root_group(metrics),
        "options": options,
        "state": {
            "isStdOutTTY": std::io::stdout().is_terminal(),
            "isStdErrTTY": std::io::stderr().is_terminal(),
            "testRunDurationMs": elapsed.as_secs_f64() * 1000.0,
        },
    });
    // As in k6, only when setup() returned something.
    if let Some(json) = details.setup_data {
        data["setup_data"] = serde_json::from_str(json).unwrap_or_else(|_| json.into());
    }
    data
}

/// k6's `vus` gauge: the VUs in an iteration, sampled each second; its
/// value the last sample. `None` for a run with no rows.
fn vus(rows: &[Row]) -> Option<Value> {
    let last = rows.last()?.vus;
    let min = rows.iter().map(|r| r.vus).min()?;
    let max = rows.iter().map(|r| r.vus).max()?;
    Some(
        json!({ "type": "gauge", "contains": "default", "values": { "value": last, "min": min, "max": max } }),
    )
}

/// Every metric the run has: its kind and what its values measure.
type Known = BTreeMap<String, (Kind, &'static str)>;

/// Every metric the run has, with its kind and what its values measure.
fn known(m: &Metrics) -> Known {
    let mut all = vec![
        ("http_reqs".to_owned(), Kind::Counter, "default"),
        ("http_req_failed".to_owned(), Kind::Rate, "default"),
        ("http_req_duration".to_owned(), Kind::Trend, "time"),
        ("data_received".to_owned(), Kind::Counter, "data"),
        ("data_sent".to_owned(), Kind::Counter, "data"),
        ("iterations".to_owned(), Kind::Counter, "default"),
        ("iteration_duration".to_owned(), Kind::Trend, "time"),
        ("dropped_iterations".to_owned(), Kind::Counter, "default"),
        ("checks".to_owned(), Kind::Rate, "default"),
        ("group_duration".to_owned(), Kind::Trend, "time"),
    ];
    all.extend(
        Phases::NAMES
            .iter()
            .map(|n| (n.to_string(), Kind::Trend, "time")),
    );
    fn custom<'a>(
        series: impl Iterator<Item = &'a (String, String)>,
        kind: Kind,
    ) -> Vec<(String, Kind, &'static str)> {
        let names: BTreeSet<&String> = series.map(|k| &k.1).collect();
        names
            .into_iter()
            .map(|n| (n.clone(), kind, "default"))
            .collect()
    }
    all.extend(custom(m.counters.keys(), Kind::Counter));
    all.extend(custom(m.rates.keys(), Kind::Rate));
    all.extend(custom(m.trends.keys(), Kind::Trend));
    all.extend(custom(m.gauges.keys(), Kind::Gauge));
    all.into_iter().map(|(n, k, c)| (n, (k, c))).collect()
}

/// `{ type, contains, values }` of `key` (a metric, maybe narrowed by
/// tags), or `None` when it has no samples.
fn entry(
    key: &str,
    kind: Kind,
    contains: &str,
    m: &Metrics,
    elapsed: Duration,
    stats: &[String],
) -> Option<Value> {
    let stat = |s: &str| statistic(key, s, m, elapsed);
    let mut values = Map::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            values.insert(k.to_owned(), json!(v));
        }
    };
    match kind {
        Kind::Counter => {
            let count = stat("count").filter(|c| *c > 0.0)?;
            put("count", Some(count));
            put("rate", stat("rate"));
        }
        Kind::Rate => {
            let (passes, fails) = rate_counts(key, m)?;
            put("rate", Some(passes as f64 / (passes + fails).max(1) as f64));
            put("passes", Some(passes as f64));
            put("fails", Some(fails as f64));
        }
        Kind::Trend => {
            stat("count").filter(|c| *c > 0.0).or(stat("max"))?;
            for s in stats {
                put(s, stat(s));
            }
        }
        Kind::Gauge => {
            put("value", Some(stat("value")?));
            put("min", stat("min"));
            put("max", stat("max"));
        }
    }
    Some(json!({ "type": kind.name(), "contains": contains, "values": values }))
}

/// Each threshold's verdict under its metric (`thresholds: { "p(95)<500":
/// { ok } }`), and the tag-filtered series thresholds made
/// (`http_req_duration{expected_response:true}`) as metrics of their own,
/// as k6 reports them.
fn add_thresholds(
    out: &mut Map<String, Value>,
    kinds: &Known,
    summary: &Summary,
    m: &Metrics,
    elapsed: Duration,
    stats: &[String],
) {
    for v in &summary.thresholds {
        let base = v.metric.split('{').next().unwrap_or(&v.metric);
        let (kind, contains) = kinds.get(base).copied().unwrap_or((Kind::Trend, "default"));
        if !out.contains_key(&v.metric) {
            let e = entry(&v.metric, kind, contains, m, elapsed, stats)
                .unwrap_or_else(|| empty(kind, contains, stats));
            out.insert(v.metric.clone(), e);
        }
        let e = out.get_mut(&v.metric).expect("inserted above");
        e["thresholds"][&v.threshold] = json!({ "ok": v.passed });
    }
}

/// A metric with no samples, as k6 reports one: every value there, at 0
/// (summary helpers print them all).
fn empty(kind: Kind, contains: &str, stats: &[String]) -> Value {
    let keys: Vec<&str> = match kind {
        Kind::Counter => vec!["count", "rate"],
        Kind::Rate => vec!["rate", "passes", "fails"],
        Kind::Trend => stats.iter().map(String::as_str).collect(),
        Kind::Gauge => vec!["value", "min", "max"],
    };
    let values: Map<String, Value> = keys.into_iter().map(|k| (k.to_owned(), json!(0))).collect();
    json!({ "type": kind.name(), "contains": contains, "values": values })
}

/// k6's group tree: each group by its path, with its subgroups and the
/// checks that ran in it; the checks outside any group at the root.
fn root_group(m: &Metrics) -> Value {
    let mut named: BTreeMap<&str, BTreeMap<&str, CheckStats>> = BTreeMap::new();
    let mut in_groups: BTreeMap<&str, CheckStats> = BTreeMap::new();
    for ((_, path), g) in &m.groups {
        for (name, c) in &g.named_checks {
            add(named.entry(path).or_default(), name, c);
            add(&mut in_groups, name, c);
        }
    }
    // The root's: every check's counts less those made in a group.
    let root = named.entry("").or_default();
    for ((_, name), c) in &m.checks {
        add(root, name, c);
    }
    for (name, c) in &in_groups {
        let r = root.entry(name).or_default();
        r.passes = r.passes.saturating_sub(c.passes);
        r.fails = r.fails.saturating_sub(c.fails);
    }
    let paths: BTreeSet<&str> = m.groups.keys().map(|(_, p)| p.as_str()).collect();
    let tree = Tree { paths, named };
    json!({
        "name": "", "path": "", "id": id(""),
        "groups": tree.groups_under(""),
        "checks": tree.checks_of(""),
    })
}

fn add<'a>(to: &mut BTreeMap<&'a str, CheckStats>, name: &'a str, c: &CheckStats) {
    to.entry(name).or_default().merge(c);
}

/// The groups of a run by path, and each path's checks by name.
struct Tree<'a> {
    paths: BTreeSet<&'a str>,
    named: BTreeMap<&'a str, BTreeMap<&'a str, CheckStats>>,
}

impl Tree<'_> {
    fn groups_under(&self, parent: &str) -> Vec<Value> {
        self.paths
            .iter()
            .filter(|p| {
                p.strip_prefix(parent)
                    .and_then(|rest| rest.strip_prefix("::"))
                    .is_some_and(|name| !name.is_empty() && !name.contains("::"))
            })
            .map(|p| {
                let name = &p[parent.len() + 2..];
                json!({ "name": name, "path": p, "id": id(p), "groups": self.groups_under(p), "checks": self.checks_of(p) })
            })
            .collect()
    }

    /// k6's `{ name, path, id, passes, fails }` of each check of `group`.
    fn checks_of(&self, group: &str) -> Vec<Value> {
        let Some(checks) = self.named.get(group) else {
            return Vec::new();
        };
        checks
            .iter()
            .filter(|(_, c)| c.passes + c.fails > 0)
            .map(|(name, c)| {
                let path = format!("{group}::{name}");
                json!({ "name": name, "path": path, "id": id(&path), "passes": c.passes, "fails": c.fails })
            })
            .collect()
    }
}

/// A stable id per path (k6 uses an MD5 of it; nothing reads it but as a key).
fn id(path: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes what `handleSummary()` returned: `stdout`, `stderr`, or a file
/// (relative to the working directory). Every destination is tried; the
/// first failure is returned.
pub fn emit(outputs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let mut first = None;
    for (at, bytes) in outputs {
        let written = match at.as_str() {
            "stdout" => std::io::stdout()
                .write_all(bytes)
                .and_then(|_| std::io::stdout().flush()),
            "stderr" => std::io::stderr().write_all(bytes),
            path => write_file(Path::new(path), bytes),
        };
        if let Err(e) = written {
            first.get_or_insert(anyhow::anyhow!("handleSummary(): cannot write `{at}`: {e}"));
        }
    }
    first.map_or(Ok(()), Err)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}
