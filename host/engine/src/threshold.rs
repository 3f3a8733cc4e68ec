//! Thresholds in k6's syntax: pass/fail criteria on metrics that decide
//! the exit code, so a CI job fails when the service got slow.
//!
//! ```yaml
//! thresholds:
//!   http_req_duration: ["p(95)<300"]
//!   "http_req_duration{scenario:buy}": [{ threshold: "p(99)<500", abortOnFail: true }]
//!   http_req_failed: ["rate<0.01"]
//!   checks: ["rate>0.99"]
//! ```

use crate::config::HumanDuration;
use crate::metrics::{Metrics, ScenarioStats, TrendStats};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Which metric, narrowed by tags (`scenario`, `name`, `check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Med,
    Percentile(f64),
    Count,
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One criterion, e.g. `p(95)<300` on `http_req_duration{scenario:buy}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub selector: Selector,
    pub agg: Agg,
    pub op: Op,
    pub value: f64,
    /// As written, for reports.
    pub source: String,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

/// What a threshold found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub metric: String,
    pub threshold: String,
    /// The measured value; `None` when the metric had no samples.
    pub observed: Option<f64>,
    pub passed: bool,
    pub abort_on_fail: bool,
}

const KNOWN_TAGS: [&str; 3] = ["scenario", "name", "check"];

/// What a built-in metric can be aggregated by.
fn builtin_aggs(metric: &str) -> Option<&'static [&'static str]> {
    const TREND: &[&str] = &["avg", "min", "max", "med", "p(N)", "count"];
    const COUNTER: &[&str] = &["count", "rate"];
    const RATE: &[&str] = &["rate"];
    Some(match metric {
        "http_req_duration" | "iteration_duration" => TREND,
        "http_reqs" | "iterations" | "dropped_iterations" | "data_received" => COUNTER,
        "http_req_failed" | "checks" => RATE,
        _ => return None,
    })
}

pub fn parse_selector(key: &str) -> Result<Selector, String> {
    let key = key.trim();
    let (metric, tags) = match key.split_once('{') {
        None => (key, ""),
        Some((m, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| format!("`{key}`: a tag filter must end with `}}`, like `http_req_duration{{scenario:buy}}`"))?;
            (m, inner)
        }
    };
    if metric.is_empty()
        || !metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    {
        return Err(format!("`{metric}` is not a metric name"));
    }
    let mut parsed = Vec::new();
    for pair in tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("tag filter `{pair}` must look like `key:value`"))?;
        let k = k.trim();
        if !KNOWN_TAGS.contains(&k) {
            return Err(format!(
                "unknown tag `{k}`; thresholds can filter by {}",
                KNOWN_TAGS.join(", ")
            ));
        }
        parsed.push((k.to_owned(), v.trim().to_owned()));
    }
    Ok(Selector {
        metric: metric.to_owned(),
        tags: parsed,
    })
}

pub fn parse_expr(expr: &str) -> Result<(Agg, Op, f64), String> {
    let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (pos, len, op) = ops
        .iter()
        .filter_map(|(s, op)| e.find(s).map(|p| (p, s.len(), *op)))
        .min_by_key(|(p, l, _)| (*p, usize::MAX - l))
        .ok_or_else(|| {
            format!("`{expr}` has no comparison; write it like `p(95)<300` or `rate>0.99`")
        })?;
    let (lhs, rhs) = (&e[..pos], &e[pos + len..]);
    let value: f64 = rhs
        .parse()
        .map_err(|_| format!("`{expr}`: `{rhs}` is not a number"))?;
    let agg = match lhs {
        "avg" => Agg::Avg,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "med" => Agg::Med,
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        p if p.starts_with("p(") && p.ends_with(')') => {
            let n: f64 = p[2..p.len() - 1]
                .parse()
                .map_err(|_| format!("`{p}` needs a number, like p(95)"))?;
            if !(0.0..=100.0).contains(&n) {
                return Err(format!("`{p}`: the percentile must be within 0..100"));
            }
            Agg::Percentile(n)
        }
        other => {
            return Err(format!(
                "`{other}` is not an aggregation; use avg, min, max, med, p(N), count or rate"
            ));
        }
    };
    Ok((agg, op, value))
}

fn agg_name(a: Agg) -> &'static str {
    match a {
        Agg::Avg => "avg",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Med => "med",
        Agg::Percentile(_) => "p(N)",
        Agg::Count => "count",
        Agg::Rate => "rate",
    }
}

impl Threshold {
    pub fn parse(key: &str, spec: &ThresholdSpec) -> Result<Threshold, String> {
        let selector = parse_selector(key)?;
        let (source, abort_on_fail, delay) = match spec {
            ThresholdSpec::Plain(s) => (s.clone(), false, Duration::ZERO),
            ThresholdSpec::Full {
                threshold,
                abort_on_fail,
                delay_abort_eval,
            } => (
                threshold.clone(),
                *abort_on_fail,
                delay_abort_eval.map_or(Duration::ZERO, |d| d.0),
            ),
        };
        let (agg, op, value) = parse_expr(&source)?;
        if let Some(allowed) = builtin_aggs(&selector.metric)
            && !allowed.contains(&agg_name(agg))
        {
            return Err(format!(
                "`{source}`: {} cannot be aggregated by {}; use {}",
                selector.metric,
                agg_name(agg),
                allowed.join(", ")
            ));
        }
        Ok(Threshold {
            selector,
            agg,
            op,
            value,
            source,
            abort_on_fail,
            delay_abort_eval: delay,
        })
    }

    pub fn key(&self) -> String {
        if self.selector.tags.is_empty() {
            return self.selector.metric.clone();
        }
        let tags: Vec<_> = self
            .selector
            .tags
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{}{{{}}}", self.selector.metric, tags.join(","))
    }

    /// Checks the threshold against metrics covering `elapsed` of run time.
    pub fn evaluate(&self, m: &Metrics, elapsed: Duration) -> Verdict {
        let observed = observe(&self.selector, self.agg, m, elapsed);
        let passed = observed.is_some_and(|v| compare(v, self.op, self.value));
        Verdict {
            metric: self.key(),
            threshold: self.source.clone(),
            observed,
            passed,
            abort_on_fail: self.abort_on_fail,
        }
    }
}

fn compare(v: f64, op: Op, x: f64) -> bool {
    match op {
        Op::Lt => v < x,
        Op::Le => v <= x,
        Op::Gt => v > x,
        Op::Ge => v >= x,
        Op::Eq => (v - x).abs() < 1e-9,
        Op::Ne => (v - x).abs() >= 1e-9,
    }
}

/// A threshold as written in YAML: a string, or a map with options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Plain(String),
    #[serde(rename_all = "camelCase")]
    Full {
        threshold: String,
        #[serde(default)]
        abort_on_fail: bool,
        #[serde(default)]
        delay_abort_eval: Option<HumanDuration>,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "✓" } else { "✗" };
        match self.observed {
            Some(v) => write!(
                f,
                "{mark} {} {}  (observed {})",
                self.metric,
                self.threshold,
                fmt_num(v)
            ),
            None => write!(f, "{mark} {} {}  (no samples)", self.metric, self.threshold),
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn tag<'a>(sel: &'a Selector, key: &str) -> Option<&'a str> {
    sel.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn matches(sel: &Selector, scenario: &str, name: Option<&str>) -> bool {
    tag(sel, "scenario").is_none_or(|s| s == scenario)
        && tag(sel, "name").is_none_or(|n| Some(n) == name)
        && tag(sel, "check").is_none_or(|n| Some(n) == name)
}

fn per_sec(n: f64, elapsed: Duration) -> Option<f64> {
    let s = elapsed.as_secs_f64();
    (s > 0.0).then(|| n / s)
}

fn from_histogram(h: &Histogram<u64>, agg: Agg, scale: f64) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    Some(match agg {
        Agg::Avg => h.mean() / scale,
        Agg::Min => h.min() as f64 / scale,
        Agg::Max => h.max() as f64 / scale,
        Agg::Med => h.value_at_quantile(0.5) as f64 / scale,
        Agg::Percentile(p) => h.value_at_quantile(p / 100.0) as f64 / scale,
        Agg::Count => h.len() as f64,
        Agg::Rate => return None,
    })
}

fn observe(sel: &Selector, agg: Agg, m: &Metrics, elapsed: Duration) -> Option<f64> {
    let scenarios = || {
        m.scenarios
            .iter()
            .filter(|(s, _)| matches(sel, s, None))
            .map(|(_, v)| v)
    };
    let requests = || {
        m.requests
            .iter()
            .filter(|((s, n), _)| matches(sel, s, Some(n)))
            .map(|(_, v)| v)
    };
    let counter = |n: f64| match agg {
        Agg::Count => Some(n),
        Agg::Rate => per_sec(n, elapsed),
        _ => None,
    };
    match sel.metric.as_str() {
        "http_req_duration" => {
            let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).ok()?;
            requests().for_each(|r| h.add(&r.latency).expect("same bounds"));
            from_histogram(&h, agg, 1000.0)
        }
        "iteration_duration" => {
            let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).ok()?;
            scenarios().for_each(|s: &ScenarioStats| h.add(&s.duration).expect("same bounds"));
            from_histogram(&h, agg, 1000.0)
        }
        "http_reqs" => counter(requests().map(|r| r.count).sum::<u64>() as f64),
        "data_received" => counter(requests().map(|r| r.bytes).sum::<u64>() as f64),
        "iterations" => counter(scenarios().map(|s| s.iterations).sum::<u64>() as f64),
        "dropped_iterations" => counter(scenarios().map(|s| s.dropped).sum::<u64>() as f64),
        "http_req_failed" => {
            let (n, f) = requests().fold((0u64, 0u64), |a, r| (a.0 + r.count, a.1 + r.failed));
            (n > 0).then(|| f as f64 / n as f64)
        }
        "checks" => {
            let (p, f) = m
                .checks
                .iter()
                .filter(|((s, n), _)| matches(sel, s, Some(n)))
                .fold((0u64, 0u64), |a, (_, c)| (a.0 + c.passes, a.1 + c.fails));
            (p + f > 0).then(|| p as f64 / (p + f) as f64)
        }
        custom => {
            let counters: Vec<f64> = m
                .counters
                .iter()
                .filter(|((s, n), _)| n == custom && matches(sel, s, None))
                .map(|(_, v)| *v)
                .collect();
            if !counters.is_empty() {
                return counter(counters.iter().sum());
            }
            let mut t = TrendStats::default();
            let mut any = false;
            for ((s, n), v) in &m.trends {
                if n == custom && matches(sel, s, None) {
                    t.merge(v);
                    any = true;
                }
            }
            if !any {
                return None;
            }
            match agg {
                Agg::Avg => Some(t.sum / t.count as f64),
                Agg::Min => Some(t.min),
                Agg::Max => Some(t.max),
                Agg::Count => Some(t.count as f64),
                other => from_histogram(&t.scaled, other, 1000.0),
            }
        }
    }
}

/// Evaluates every threshold; the map is the config's `thresholds`.
pub fn evaluate_all(thresholds: &[Threshold], m: &Metrics, elapsed: Duration) -> Vec<Verdict> {
    thresholds.iter().map(|t| t.evaluate(m, elapsed)).collect()
}

/// Turns the config's map into thresholds, reporting the first bad one.
pub fn parse_all(
    map: &BTreeMap<String, Vec<ThresholdSpec>>,
) -> Result<Vec<Threshold>, (String, String)> {
    let mut out = Vec::new();
    for (key, specs) in map {
        for spec in specs {
            out.push(Threshold::parse(key, spec).map_err(|e| (key.clone(), e))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Event;

    fn metrics() -> Metrics {
        let mut m = Metrics::default();
        for i in 1..=100u64 {
            let status = if i <= 3 { 500 } else { 200 };
            m.apply(
                "buy",
                Event::Request {
                    name: "pay".into(),
                    status: Some(status),
                    error: None,
                    micros: i * 1000,
                    bytes: 10,
                },
            );
            m.apply(
                "browse",
                Event::Request {
                    name: "home".into(),
                    status: Some(200),
                    error: None,
                    micros: 5000,
                    bytes: 10,
                },
            );
            m.apply(
                "buy",
                Event::Check {
                    name: "paid".into(),
                    passed: i > 1,
                },
            );
        }
        m.apply(
            "buy",
            Event::Counter {
                name: "orders".into(),
                value: 50.0,
            },
        );
        m
    }

    fn verdict(key: &str, expr: &str) -> Verdict {
        Threshold::parse(key, &ThresholdSpec::Plain(expr.into()))
            .unwrap()
            .evaluate(&metrics(), Duration::from_secs(10))
    }

    #[test]
    fn percentiles_filter_by_scenario_tag() {
        let v = verdict("http_req_duration{scenario:buy}", "p(95)<90");
        // HDR reports the top of the value's bucket (3 significant digits).
        assert!((v.observed.unwrap() - 95.0).abs() < 0.1, "{v:?}");
        assert!(!v.passed);
        assert!(verdict("http_req_duration{scenario:browse}", "p(95)<90").passed);
        assert!(verdict("http_req_duration{name:home}", "max<5.01").passed);
    }

    #[test]
    fn rates_and_counts() {
        let failed = verdict("http_req_failed", "rate<0.01");
        assert_eq!(failed.observed, Some(0.015));
        assert!(!failed.passed);
        assert!(verdict("checks", "rate>0.98").passed);
        assert!(!verdict("checks{check:paid}", "rate>0.995").passed);
        assert_eq!(verdict("http_reqs", "rate>10").observed, Some(20.0));
        assert!(verdict("orders", "count==50").passed);
    }

    #[test]
    fn metrics_without_samples_fail() {
        let v = verdict("http_req_duration{scenario:nope}", "p(95)<1000");
        assert_eq!(v.observed, None);
        assert!(!v.passed);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let bad =
            |k: &str, e: &str| Threshold::parse(k, &ThresholdSpec::Plain(e.into())).unwrap_err();
        assert!(bad("http_req_duration", "p95<300").contains("not an aggregation"));
        assert!(bad("http_req_duration", "p(95)").contains("no comparison"));
        assert!(bad("http_reqs", "p(95)<3").contains("cannot be aggregated"));
        assert!(bad("http_req_duration{scenario=buy}", "avg<3").contains("key:value"));
        assert!(bad("http_req_duration{region:eu}", "avg<3").contains("unknown tag"));
        assert!(bad("http_req_duration", "avg<fast").contains("not a number"));
    }
}
