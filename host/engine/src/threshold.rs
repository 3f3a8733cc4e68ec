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
use crate::metrics::{
    BUILTIN_TAGS, Filters, GaugeStats, Metrics, Phases, RateStats, ScenarioStats, TagFilter,
    Tagged, TrendStats, histogram,
};
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
    /// A gauge's last value.
    Value,
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

/// What a built-in metric can be aggregated by.
fn builtin_aggs(metric: &str) -> Option<&'static [&'static str]> {
    const TREND: &[&str] = &["avg", "min", "max", "med", "p(N)", "count"];
    const COUNTER: &[&str] = &["count", "rate"];
    const RATE: &[&str] = &["rate"];
    if Phases::NAMES.contains(&metric) {
        return Some(TREND);
    }
    Some(match metric {
        "http_req_duration" | "iteration_duration" | "group_duration" => TREND,
        "http_reqs" | "iterations" | "dropped_iterations" | "data_received" | "data_sent" => {
            COUNTER
        }
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
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(format!(
                "`{k}` is not a tag name; tags are words like scenario, name, group, status, method or one the scenario sets"
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
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{expr}`: `{rhs}` is not a number"))?;
    Ok((parse_agg(lhs)?, op, value))
}

/// An aggregation as thresholds and k6's `summaryTrendStats` name it:
/// `avg`, `min`, `max`, `med`, `p(N)`, `count`, `rate`, `value`.
pub fn parse_agg(name: &str) -> Result<Agg, String> {
    Ok(match name {
        "avg" => Agg::Avg,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "med" => Agg::Med,
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        "value" => Agg::Value,
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
                "`{other}` is not an aggregation; use avg, min, max, med, p(N), count, rate or value"
            ));
        }
    })
}

/// One statistic of a metric as a threshold would see it: `key` narrowed
/// by tags as a threshold's key is (`http_req_duration{scenario:buy}`),
/// `stat` named as in a threshold (`p(95)`, `avg`, `count`, `rate`). What
/// k6's end-of-test data reports; `None` when the metric has no such value.
pub fn statistic(key: &str, stat: &str, m: &Metrics, elapsed: Duration) -> Option<f64> {
    let selector = parse_selector(key).ok()?;
    observe(&selector, parse_agg(stat).ok()?, m, elapsed)
}

/// A rate metric's true and false samples (k6's `passes` and `fails`),
/// narrowed as [`statistic`] narrows: `checks`, `http_req_failed` or a
/// custom rate.
pub fn rate_counts(key: &str, m: &Metrics) -> Option<(u64, u64)> {
    let (hits, total) = hits_of(&parse_selector(key).ok()?, m)?;
    (total > 0).then(|| (hits, total - hits))
}

/// A rate's true samples and all its samples, as the selector narrows.
fn hits_of(sel: &Selector, m: &Metrics) -> Option<(u64, u64)> {
    Some(if needs_own_series(sel) {
        let t = m.tagged.get(&selector_key(sel))?;
        match sel.metric.as_str() {
            "checks" => (t.checks.passes, t.checks.passes + t.checks.fails),
            "http_req_failed" => t.requests.as_deref().map(|r| (r.failed, r.count))?,
            _ => (t.rate.hits, t.rate.total),
        }
    } else {
        match sel.metric.as_str() {
            "checks" => m
                .checks
                .iter()
                .filter(|((s, n), _)| matches(sel, s, Some(n)))
                .fold((0, 0), |a, (_, c)| {
                    (a.0 + c.passes, a.1 + c.passes + c.fails)
                }),
            "http_req_failed" => m
                .requests
                .iter()
                .filter(|((s, n), _)| matches(sel, s, Some(n)))
                .fold((0, 0), |a, (_, r)| (a.0 + r.failed, a.1 + r.count)),
            custom => m
                .rates
                .iter()
                .filter(|((s, n), _)| n == custom && matches(sel, s, None))
                .fold((0, 0), |a, (_, r)| (a.0 + r.hits, a.1 + r.total)),
        }
    })
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
        Agg::Value => "value",
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
        Agg::Rate | Agg::Value => return None,
    })
}

fn observe(sel: &Selector, agg: Agg, m: &Metrics, elapsed: Duration) -> Option<f64> {
    if sel.metric == "group_duration" {
        return group_duration(sel, agg, m);
    }
    if needs_own_series(sel) {
        return observe_tagged(sel, agg, m.tagged.get(&selector_key(sel))?, elapsed);
    }
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
    let counter = |n: f64| counter_agg(n, agg, elapsed);
    match sel.metric.as_str() {
        "http_req_duration" => {
            let mut h = histogram();
            requests().for_each(|r| h.add(&r.latency).expect("same bounds"));
            from_histogram(&h, agg, 1000.0)
        }
        "iteration_duration" => {
            let mut h = histogram();
            scenarios().for_each(|s: &ScenarioStats| h.add(&s.duration).expect("same bounds"));
            from_histogram(&h, agg, 1000.0)
        }
        "http_reqs" => counter(requests().map(|r| r.count).sum::<u64>() as f64),
        "data_received" => counter(requests().map(|r| r.bytes).sum::<u64>() as f64),
        "data_sent" => counter(requests().map(|r| r.sent).sum::<u64>() as f64),
        "iterations" => counter(scenarios().map(|s| s.iterations).sum::<u64>() as f64),
        "dropped_iterations" => counter(scenarios().map(|s| s.dropped).sum::<u64>() as f64),
        phase if Phases::NAMES.contains(&phase) => {
            let mut h = histogram();
            m.phases
                .iter()
                .filter(|(s, _)| matches(sel, s, None))
                .filter_map(|(_, p)| p.get(phase))
                .for_each(|p| h.add(p).expect("same bounds"));
            from_histogram(&h, agg, 1000.0)
        }
        "http_req_failed" | "checks" => {
            let (hits, total) = hits_of(sel, m)?;
            (total > 0).then(|| hits as f64 / total as f64)
        }
        custom => observe_custom(sel, custom, agg, m, elapsed),
    }
}

/// A custom metric of any kind, summed over the scenarios the selector
/// admits.
fn observe_custom(
    sel: &Selector,
    name: &str,
    agg: Agg,
    m: &Metrics,
    elapsed: Duration,
) -> Option<f64> {
    let of = |(s, n): &(String, String)| n == name && matches(sel, s, None);
    let counters: Vec<f64> = m
        .counters
        .iter()
        .filter(|(k, _)| of(k))
        .map(|(_, v)| *v)
        .collect();
    if !counters.is_empty() {
        return counter_agg(counters.iter().sum(), agg, elapsed);
    }
    let mut rate = RateStats::default();
    let mut gauge: Option<GaugeStats> = None;
    let mut trend = TrendStats::default();
    let (mut rates, mut trends) = (false, false);
    for (_, r) in m.rates.iter().filter(|(k, _)| of(k)) {
        rate.merge(r);
        rates = true;
    }
    for (_, g) in m.gauges.iter().filter(|(k, _)| of(k)) {
        match &mut gauge {
            Some(acc) => acc.sum(g),
            None => gauge = Some(g.clone()),
        }
    }
    for (_, t) in m.trends.iter().filter(|(k, _)| of(k)) {
        trend.merge(t);
        trends = true;
    }
    if rates {
        return rate_agg(&rate, agg);
    }
    if let Some(g) = gauge {
        return gauge_agg(&g, agg);
    }
    trends.then(|| trend_agg(&trend, agg)).flatten()
}

fn counter_agg(n: f64, agg: Agg, elapsed: Duration) -> Option<f64> {
    match agg {
        Agg::Count => Some(n),
        Agg::Rate => per_sec(n, elapsed),
        _ => None,
    }
}

fn rate_agg(r: &RateStats, agg: Agg) -> Option<f64> {
    match agg {
        Agg::Rate => r.rate(),
        Agg::Count => Some(r.hits as f64),
        _ => None,
    }
}

fn gauge_agg(g: &GaugeStats, agg: Agg) -> Option<f64> {
    match agg {
        Agg::Value => Some(g.value),
        Agg::Min => Some(g.min),
        Agg::Max => Some(g.max),
        _ => None,
    }
}

fn trend_agg(t: &TrendStats, agg: Agg) -> Option<f64> {
    match agg {
        Agg::Avg => Some(t.sum / t.count as f64),
        Agg::Min => Some(t.min),
        Agg::Max => Some(t.max),
        Agg::Count => Some(t.count as f64),
        other => from_histogram(&t.scaled, other, 1000.0),
    }
}

/// `group_duration`, over every group or the one the `group` tag names.
fn group_duration(sel: &Selector, agg: Agg, m: &Metrics) -> Option<f64> {
    let mut h = histogram();
    m.groups
        .iter()
        .filter(|((s, g), _)| {
            tag(sel, "scenario").is_none_or(|x| x == s) && tag(sel, "group").is_none_or(|x| x == g)
        })
        .for_each(|(_, v)| h.add(&v.duration).expect("same bounds"));
    from_histogram(&h, agg, 1000.0)
}

/// A selector with a tag the built-in series are not keyed by.
fn needs_own_series(sel: &Selector) -> bool {
    sel.metric != "group_duration"
        && sel
            .tags
            .iter()
            .any(|(k, _)| !BUILTIN_TAGS.contains(&k.as_str()))
}

fn selector_key(sel: &Selector) -> String {
    let tags: Vec<_> = sel.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{}{{{}}}", sel.metric, tags.join(","))
}

fn observe_tagged(sel: &Selector, agg: Agg, t: &Tagged, elapsed: Duration) -> Option<f64> {
    let requests = t.requests.as_deref();
    match sel.metric.as_str() {
        "http_req_duration" => from_histogram(&requests?.latency, agg, 1000.0),
        "http_reqs" => counter_agg(requests?.count as f64, agg, elapsed),
        "data_received" => counter_agg(requests?.bytes as f64, agg, elapsed),
        "data_sent" => counter_agg(requests?.sent as f64, agg, elapsed),
        "http_req_failed" => {
            let r = requests?;
            (r.count > 0).then(|| r.failed as f64 / r.count as f64)
        }
        phase if Phases::NAMES.contains(&phase) => {
            from_histogram(t.phases.as_deref()?.get(phase)?, agg, 1000.0)
        }
        "checks" => t.checks.rate(),
        _ => {
            if let Some(g) = &t.gauge {
                gauge_agg(g, agg)
            } else if let Some(tr) = &t.trend {
                trend_agg(tr, agg)
            } else if t.rate.total > 0 {
                rate_agg(&t.rate, agg)
            } else if t.counter != 0.0 {
                counter_agg(t.counter, agg, elapsed)
            } else {
                None
            }
        }
    }
}

/// The tag filters the thresholds need series of their own for.
pub fn filters(thresholds: &[Threshold]) -> Filters {
    let mut out: Vec<TagFilter> = Vec::new();
    for t in thresholds.iter().filter(|t| needs_own_series(&t.selector)) {
        let key = selector_key(&t.selector);
        if !out.iter().any(|f| f.key == key) {
            out.push(TagFilter {
                key,
                metric: t.selector.metric.clone(),
                tags: t.selector.tags.clone(),
            });
        }
    }
    out.into()
}

/// [`filters`] of a config's `thresholds`, which were checked when it loaded.
pub fn filters_of(map: &BTreeMap<String, Vec<ThresholdSpec>>) -> Filters {
    filters(&parse_all(map).unwrap_or_default())
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
                    expected: Some(status < 400),
                    micros: i * 1000,
                    bytes: 10,
                    sent: 0,
                    method: "GET",
                    timings: Default::default(),
                    ctx: Default::default(),
                },
            );
            m.apply(
                "browse",
                Event::Request {
                    name: "home".into(),
                    status: Some(200),
                    error: None,
                    expected: Some(true),
                    micros: 5000,
                    bytes: 10,
                    sent: 0,
                    method: "GET",
                    timings: Default::default(),
                    ctx: Default::default(),
                },
            );
            m.apply(
                "buy",
                Event::Check {
                    name: "paid".into(),
                    passed: i > 1,
                    ctx: Default::default(),
                },
            );
        }
        m.apply(
            "buy",
            Event::Counter {
                name: "orders".into(),
                value: 50.0,
                ctx: Default::default(),
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

    fn tagged(group: &str, status: u16, tags: &[(&str, &str)]) -> Event {
        Event::Request {
            name: "pay".into(),
            method: "POST",
            status: Some(status),
            error: None,
            expected: Some(status < 400),
            micros: 2000,
            bytes: 1,
            sent: 0,
            timings: [0, 0, 0, 0, 2000, 0],
            ctx: crate::metrics::Context::new(
                group,
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn tag_filters_get_their_own_series_as_samples_are_recorded() {
        let keys = [
            "http_reqs{status:503}",
            "http_reqs{group:::a,tier:gold}",
            "http_req_waiting{method:POST}",
            "http_reqs{scenario:other,status:503}",
        ];
        let thresholds: Vec<Threshold> = keys
            .iter()
            .map(|k| Threshold::parse(k, &ThresholdSpec::Plain("count>0".into())).unwrap())
            .collect();
        let filters = filters(&thresholds);
        assert_eq!(filters.len(), 4);
        let mut m = Metrics::default();
        for e in [
            tagged("::a", 503, &[("tier", "gold")]),
            tagged("::a", 200, &[("tier", "gold")]),
            tagged("::b", 503, &[("tier", "silver")]),
        ] {
            m.apply_tagged(&filters, "s", &e);
            m.apply("s", e);
        }
        let count = |k: &str| {
            m.tagged
                .get(k)
                .and_then(|t| t.requests.as_ref())
                .map(|r| r.count)
        };
        assert_eq!(count("http_reqs{status:503}"), Some(2));
        assert_eq!(count("http_reqs{group:::a,tier:gold}"), Some(2));
        assert_eq!(count("http_reqs{scenario:other,status:503}"), None);
        let e = Duration::from_secs(1);
        assert_eq!(thresholds[0].evaluate(&m, e).observed, Some(2.0));
        let waiting = Threshold::parse(keys[2], &ThresholdSpec::Plain("p(50)<3".into())).unwrap();
        assert!(waiting.evaluate(&m, e).passed);
        // Untagged phases come from the per-scenario series.
        let all =
            Threshold::parse("http_req_waiting", &ThresholdSpec::Plain("max>1".into())).unwrap();
        assert!(all.evaluate(&m, e).passed);
        assert_eq!(m.groups[&("s".into(), "::a".into())].requests.count, 2);
        // Merging (a cluster's nodes) adds the tagged series up too.
        let mut twice = m.clone();
        twice.merge(&m);
        assert_eq!(thresholds[0].evaluate(&twice, e).observed, Some(4.0));
    }

    #[test]
    fn gauges_keep_the_last_value_and_rates_the_share_of_hits() {
        let mut m = Metrics::default();
        let ctx = crate::metrics::Context::default();
        for v in [3.0, 9.0, 5.0] {
            m.apply(
                "s",
                Event::Gauge {
                    name: "queue".into(),
                    value: v,
                    ctx: ctx.clone(),
                },
            );
        }
        for hit in [true, true, false, true] {
            m.apply(
                "s",
                Event::Rate {
                    name: "cache_hit".into(),
                    hit,
                    ctx: ctx.clone(),
                },
            );
        }
        let v = |key: &str, expr: &str| {
            Threshold::parse(key, &ThresholdSpec::Plain(expr.into()))
                .unwrap()
                .evaluate(&m, Duration::from_secs(1))
                .observed
        };
        assert_eq!(v("queue", "value<10"), Some(5.0));
        assert_eq!(v("queue", "max<10"), Some(9.0));
        assert_eq!(v("queue", "min<10"), Some(3.0));
        assert_eq!(v("cache_hit", "rate>0.5"), Some(0.75));
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
        assert!(bad("http_req_duration{re gion:eu}", "avg<3").contains("not a tag name"));
        assert!(bad("gauge", "value").contains("no comparison"));
        assert!(bad("http_req_duration", "avg<fast").contains("not a number"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_threshold_text_parses_or_fails_cleanly(key in "[ -~]{0,60}", expr in "[ -~]{0,40}") {
            let _ = parse_selector(&key);
            let _ = parse_expr(&expr);
        }

        #[test]
        fn written_thresholds_read_back(
            tenths in 0u32..=1000, op in prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            value in -1.0e9f64..1.0e9, tag in "[a-z_]{1,10}", tv in "[a-z0-9:/._-]{0,12}",
        ) {
            let p = format!("{}.{}", tenths / 10, tenths % 10);
            let (agg, _, got) = parse_expr(&format!("p({p}) {op} {value}")).expect("a valid expression");
            prop_assert_eq!(agg, Agg::Percentile(p.parse().unwrap()));
            prop_assert_eq!(got, value);
            let sel = parse_selector(&format!("http_req_duration{{{tag}:{tv}}}")).expect("a valid selector");
            prop_assert_eq!(sel.tags, vec![(tag, tv)]);
        }
    }
}
