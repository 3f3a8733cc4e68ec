//! Scenarios and their executors, with k6's names and fields so that k6
//! users' habits carry over. The YAML is read into a flat [`RawScenario`]
//! and checked into the typed [`Executor`] inside deserialization, which
//! lets serde_yaml attach a line and column to every mistake.

use super::HumanDuration;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// One scenario: a plugin driven by an executor.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawScenario")]
pub struct Scenario {
    pub plugin: String,
    /// Handed to the plugin's `init` as JSON.
    pub params: serde_json::Value,
    pub executor: Executor,
    /// Offset from the start of the run before this scenario begins.
    pub start_time: Duration,
    /// How long iterations still running at the end may take to finish.
    pub graceful_stop: Duration,
    /// Names the plugin may branch on (`vu.exec()`), with relative weights;
    /// empty when the config gives none.
    pub exec: Vec<(String, u32)>,
}

/// A stage of a ramping executor: reach `target` linearly over `duration`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: HumanDuration,
    pub target: u64,
}

/// How a scenario schedules iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// `vus` VUs loop over iterations for `duration`.
    ConstantVus { vus: u32, duration: Duration },
    /// The number of looping VUs follows `stages`, starting at `start_vus`.
    RampingVus {
        start_vus: u32,
        stages: Vec<Stage>,
        graceful_ramp_down: Duration,
    },
    /// Each of `vus` VUs runs exactly `iterations` iterations.
    PerVuIterations {
        vus: u32,
        iterations: u64,
        max_duration: Duration,
    },
    /// `vus` VUs share `iterations` iterations between them.
    SharedIterations {
        vus: u32,
        iterations: u64,
        max_duration: Duration,
    },
    /// Open model: `rate` iterations per `time_unit` start on schedule.
    ConstantArrivalRate {
        rate: u64,
        time_unit: Duration,
        duration: Duration,
        pre_allocated_vus: u32,
        max_vus: u32,
    },
    /// Open model: the start rate follows `stages` from `start_rate`.
    RampingArrivalRate {
        start_rate: u64,
        time_unit: Duration,
        stages: Vec<Stage>,
        pre_allocated_vus: u32,
        max_vus: u32,
    },
    /// k6's `externally-controlled`: `vus` VUs loop for `duration`, and
    /// the operator changes the count live (`loadtest scale`, the
    /// dashboard) up to `max_vus`, which are all started up front.
    ExternallyControlled {
        vus: u32,
        max_vus: u32,
        duration: Duration,
    },
}

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::PerVuIterations { .. } => "per-vu-iterations",
            Executor::SharedIterations { .. } => "shared-iterations",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
            Executor::ExternallyControlled { .. } => "externally-controlled",
        }
    }

    /// The most VUs the executor may use.
    pub fn max_vus(&self) -> u32 {
        match self {
            Executor::ConstantVus { vus, .. }
            | Executor::PerVuIterations { vus, .. }
            | Executor::SharedIterations { vus, .. } => *vus,
            Executor::RampingVus {
                start_vus, stages, ..
            } => stages
                .iter()
                .map(|s| s.target.min(u32::MAX as u64) as u32)
                .chain([*start_vus])
                .max()
                .unwrap_or(0),
            Executor::ConstantArrivalRate { max_vus, .. }
            | Executor::RampingArrivalRate { max_vus, .. }
            | Executor::ExternallyControlled { max_vus, .. } => *max_vus,
        }
    }

    /// How long the executor itself runs, before graceful stop.
    pub fn max_duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. }
            | Executor::ConstantArrivalRate { duration, .. }
            | Executor::ExternallyControlled { duration, .. } => *duration,
            Executor::PerVuIterations { max_duration, .. }
            | Executor::SharedIterations { max_duration, .. } => *max_duration,
            Executor::RampingVus { stages, .. } | Executor::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration.0).sum()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ExecutorKind {
    ConstantVus,
    RampingVus,
    PerVuIterations,
    SharedIterations,
    ConstantArrivalRate,
    RampingArrivalRate,
    ExternallyControlled,
}

/// `exec: name` or `exec: { name: weight, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawExec {
    One(String),
    Weighted(BTreeMap<String, u32>),
}

/// The most VUs one scenario may have. Each VU is a plugin instance of its
/// own (tens of KiB at the very least), so a larger count is a slip of the
/// keyboard, not a plan, and counts near `u32::MAX` would overflow the
/// sums the executors make of them.
pub const MAX_VUS: u32 = 1_000_000;

/// A VU count as written, refused where it is written when over [`MAX_VUS`].
#[derive(Debug, Clone, Copy)]
struct VuCount(u32);

impl<'de> Deserialize<'de> for VuCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_u32(VuVisitor)
    }
}

/// Checks inside the visitor, so an error keeps the value's position.
struct VuVisitor;

impl serde::de::Visitor<'_> for VuVisitor {
    type Value = VuCount;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a whole number of VUs up to {MAX_VUS}")
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<VuCount, E> {
        check_vus(n).map_err(E::custom)?;
        Ok(VuCount(n as u32))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<VuCount, E> {
        let n = u64::try_from(n).map_err(|_| E::custom("a VU count cannot be negative"))?;
        self.visit_u64(n)
    }
}

/// Whether `n` VUs fit in one scenario.
pub fn check_vus(n: u64) -> Result<(), String> {
    if n > u64::from(MAX_VUS) {
        return Err(format!(
            "{n} VUs is more than one scenario can have (at most {MAX_VUS}; each VU is a plugin instance of its own): for more load use an arrival-rate executor, or spread the run over a cluster"
        ));
    }
    Ok(())
}

fn vus_of(v: Option<VuCount>) -> Option<u32> {
    v.map(|v| v.0)
}

/// The scenario as written; checked and turned into [`Scenario`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenario {
    plugin: String,
    #[serde(default)]
    params: serde_json::Value,
    executor: ExecutorKind,
    start_time: Option<HumanDuration>,
    graceful_stop: Option<HumanDuration>,
    exec: Option<RawExec>,
    vus: Option<VuCount>,
    duration: Option<HumanDuration>,
    iterations: Option<u64>,
    max_duration: Option<HumanDuration>,
    #[serde(rename = "startVUs")]
    start_vus: Option<VuCount>,
    stages: Option<Vec<Stage>>,
    graceful_ramp_down: Option<HumanDuration>,
    rate: Option<u64>,
    start_rate: Option<u64>,
    time_unit: Option<HumanDuration>,
    #[serde(rename = "preAllocatedVUs")]
    pre_allocated_vus: Option<VuCount>,
    #[serde(rename = "maxVUs")]
    max_vus: Option<VuCount>,
}

const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);
const DEFAULT_TIME_UNIT: Duration = Duration::from_secs(1);

impl RawScenario {
    /// The executor-specific fields that were given, by their YAML names.
    fn present(&self) -> Vec<&'static str> {
        let fields = [
            ("vus", self.vus.is_some()),
            ("duration", self.duration.is_some()),
            ("iterations", self.iterations.is_some()),
            ("maxDuration", self.max_duration.is_some()),
            ("startVUs", self.start_vus.is_some()),
            ("stages", self.stages.is_some()),
            ("gracefulRampDown", self.graceful_ramp_down.is_some()),
            ("rate", self.rate.is_some()),
            ("startRate", self.start_rate.is_some()),
            ("timeUnit", self.time_unit.is_some()),
            ("preAllocatedVUs", self.pre_allocated_vus.is_some()),
            ("maxVUs", self.max_vus.is_some()),
        ];
        fields
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(n, _)| n)
            .collect()
    }
}

fn allowed(kind: ExecutorKind) -> &'static [&'static str] {
    match kind {
        ExecutorKind::ConstantVus => &["vus", "duration"],
        ExecutorKind::RampingVus => &["startVUs", "stages", "gracefulRampDown"],
        ExecutorKind::PerVuIterations | ExecutorKind::SharedIterations => {
            &["vus", "iterations", "maxDuration"]
        }
        ExecutorKind::ConstantArrivalRate => {
            &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"]
        }
        ExecutorKind::RampingArrivalRate => &[
            "startRate",
            "timeUnit",
            "stages",
            "preAllocatedVUs",
            "maxVUs",
        ],
        ExecutorKind::ExternallyControlled => &["vus", "maxVUs", "duration"],
    }
}

fn kind_name(kind: ExecutorKind) -> &'static str {
    match kind {
        ExecutorKind::ConstantVus => "constant-vus",
        ExecutorKind::RampingVus => "ramping-vus",
        ExecutorKind::PerVuIterations => "per-vu-iterations",
        ExecutorKind::SharedIterations => "shared-iterations",
        ExecutorKind::ConstantArrivalRate => "constant-arrival-rate",
        ExecutorKind::RampingArrivalRate => "ramping-arrival-rate",
        ExecutorKind::ExternallyControlled => "externally-controlled",
    }
}

fn positive<T: PartialEq + Default>(v: Option<T>, field: &str) -> Result<Option<T>, String> {
    match v {
        Some(x) if x == T::default() => Err(format!("`{field}` must be greater than 0")),
        other => Ok(other),
    }
}

fn stages(raw: Option<Vec<Stage>>, name: &str) -> Result<Vec<Stage>, String> {
    let stages = raw.ok_or_else(|| {
        format!("executor {name} needs `stages`, e.g. `stages: [{{ duration: 30s, target: 10 }}]`")
    })?;
    if stages.is_empty() {
        return Err("`stages` needs at least one stage".into());
    }
    Ok(stages)
}

impl TryFrom<RawScenario> for Scenario {
    type Error = String;

    fn try_from(raw: RawScenario) -> Result<Self, String> {
        let kind = raw.executor;
        let name = kind_name(kind);
        if let Some(bad) = raw
            .present()
            .into_iter()
            .find(|f| !allowed(kind).contains(f))
        {
            return Err(format!(
                "`{bad}` does not apply to executor {name}, which takes: {}",
                allowed(kind).join(", ")
            ));
        }
        let vus = positive(vus_of(raw.vus), "vus")?.unwrap_or(1);
        let need_duration = || {
            raw.duration
                .map(|d| d.0)
                .ok_or_else(|| format!("executor {name} needs `duration` (e.g. `duration: 30s`)"))
        };
        let time_unit =
            positive(raw.time_unit.map(|d| d.0), "timeUnit")?.unwrap_or(DEFAULT_TIME_UNIT);
        let max_duration = raw.max_duration.map_or(DEFAULT_MAX_DURATION, |d| d.0);
        let executor = match kind {
            ExecutorKind::ConstantVus => Executor::ConstantVus {
                vus,
                duration: need_duration()?,
            },
            ExecutorKind::RampingVus => Executor::RampingVus {
                start_vus: vus_of(raw.start_vus).unwrap_or(1),
                stages: vu_stages(stages(raw.stages, name)?)?,
                graceful_ramp_down: raw
                    .graceful_ramp_down
                    .map_or(DEFAULT_GRACEFUL_STOP, |d| d.0),
            },
            ExecutorKind::PerVuIterations => Executor::PerVuIterations {
                vus,
                iterations: raw.iterations.unwrap_or(1),
                max_duration,
            },
            ExecutorKind::SharedIterations => {
                let iterations = raw.iterations.unwrap_or(1);
                if iterations < vus as u64 {
                    return Err(format!(
                        "shared-iterations: `iterations` ({iterations}) is less than `vus` ({vus}); some VUs would have nothing to do"
                    ));
                }
                Executor::SharedIterations {
                    vus,
                    iterations,
                    max_duration,
                }
            }
            ExecutorKind::ConstantArrivalRate => {
                let rate = positive(raw.rate, "rate")?
                    .ok_or("executor constant-arrival-rate needs `rate` (iterations per `timeUnit`, default 1s)")?;
                let (pre, max) = pool(vus_of(raw.pre_allocated_vus), vus_of(raw.max_vus), name)?;
                Executor::ConstantArrivalRate {
                    rate,
                    time_unit,
                    duration: need_duration()?,
                    pre_allocated_vus: pre,
                    max_vus: max,
                }
            }
            ExecutorKind::RampingArrivalRate => {
                let (pre, max) = pool(vus_of(raw.pre_allocated_vus), vus_of(raw.max_vus), name)?;
                Executor::RampingArrivalRate {
                    start_rate: raw.start_rate.unwrap_or(0),
                    time_unit,
                    stages: stages(raw.stages, name)?,
                    pre_allocated_vus: pre,
                    max_vus: max,
                }
            }
            ExecutorKind::ExternallyControlled => {
                let max_vus = positive(vus_of(raw.max_vus), "maxVUs")?.unwrap_or(vus);
                if max_vus < vus {
                    return Err(format!(
                        "externally-controlled: `maxVUs` ({max_vus}) is less than `vus` ({vus})"
                    ));
                }
                Executor::ExternallyControlled {
                    vus,
                    max_vus,
                    duration: need_duration()?,
                }
            }
        };
        Ok(Scenario {
            plugin: raw.plugin,
            params: raw.params,
            executor,
            start_time: raw.start_time.map_or(Duration::ZERO, |d| d.0),
            graceful_stop: raw.graceful_stop.map_or(DEFAULT_GRACEFUL_STOP, |d| d.0),
            exec: exec(raw.exec)?,
        })
    }
}

/// A ramping-vus scenario's stages, whose targets are VU counts.
fn vu_stages(stages: Vec<Stage>) -> Result<Vec<Stage>, String> {
    for (i, s) in stages.iter().enumerate() {
        check_vus(s.target).map_err(|e| format!("`stages[{i}].target`: {e}"))?;
    }
    Ok(stages)
}

fn pool(pre: Option<u32>, max: Option<u32>, name: &str) -> Result<(u32, u32), String> {
    let pre = positive(pre, "preAllocatedVUs")?.ok_or_else(|| {
        format!("executor {name} needs `preAllocatedVUs` (VUs made ready before the start)")
    })?;
    let max = max.unwrap_or(pre);
    if max < pre {
        return Err(format!(
            "`maxVUs` ({max}) is less than `preAllocatedVUs` ({pre})"
        ));
    }
    Ok((pre, max))
}

fn exec(raw: Option<RawExec>) -> Result<Vec<(String, u32)>, String> {
    let list: Vec<(String, u32)> = match raw {
        None => return Ok(Vec::new()),
        Some(RawExec::One(name)) => vec![(name, 1)],
        Some(RawExec::Weighted(map)) => map.into_iter().collect(),
    };
    if list.is_empty() || list.iter().all(|(_, w)| *w == 0) {
        return Err("`exec` needs at least one name with a weight above 0".into());
    }
    Ok(list)
}
