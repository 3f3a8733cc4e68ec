use super::{ConfigError, HumanDuration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole test: where to send load, with which plugins, in which shapes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Shown in reports; defaults to the config file's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Base URL that relative request paths are joined to.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSource>,
    pub scenarios: BTreeMap<String, Scenario>,
    #[serde(default)]
    pub http: HttpOptions,
    #[serde(default)]
    pub sandbox: SandboxOptions,
}

/// Where a plugin's bytes come from. Paths are relative to the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSource {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HttpOptions {
    /// Whole-request timeout (send to last body byte).
    pub timeout: HumanDuration,
    pub connect_timeout: HumanDuration,
    /// Speak HTTP/2 without TLS (h2c) instead of HTTP/1.1; TLS targets
    /// negotiate HTTP/2 through ALPN regardless.
    pub http2_prior_knowledge: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: HumanDuration(Duration::from_secs(60)),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            http2_prior_knowledge: false,
        }
    }
}

/// Limits that keep a plugin from hurting the host.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SandboxOptions {
    /// Guest CPU time one `init` or `iteration` call may use (time spent
    /// waiting on HTTP or sleep does not count).
    pub cpu_per_call: HumanDuration,
    /// Linear memory one VU instance may grow to, in MiB.
    pub memory_mb: u32,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            cpu_per_call: HumanDuration(Duration::from_secs(2)),
            memory_mb: 128,
        }
    }
}

/// One scenario: a plugin driven by an executor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawScenario", into = "RawScenario")]
pub struct Scenario {
    pub plugin: String,
    /// Handed to the plugin's `init` as JSON.
    pub params: serde_json::Value,
    pub executor: Executor,
    /// How long iterations still running at the end may take to finish.
    pub graceful_stop: Duration,
}

/// How a scenario schedules iterations (k6's executor names and fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// `vus` VUs loop over iterations for `duration`.
    ConstantVus { vus: u32, duration: Duration },
    /// Each of `vus` VUs runs exactly `iterations` iterations.
    PerVuIterations {
        vus: u32,
        iterations: u64,
        max_duration: Duration,
    },
}

impl Executor {
    pub fn vus(&self) -> u32 {
        match *self {
            Executor::ConstantVus { vus, .. } | Executor::PerVuIterations { vus, .. } => vus,
        }
    }

    /// The longest the executor itself runs, before graceful stop.
    pub fn max_duration(&self) -> Duration {
        match *self {
            Executor::ConstantVus { duration, .. } => duration,
            Executor::PerVuIterations { max_duration, .. } => max_duration,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ExecutorKind {
    ConstantVus,
    PerVuIterations,
}

/// The scenario as written; checked and turned into [`Scenario`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenario {
    plugin: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    params: serde_json::Value,
    executor: ExecutorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_duration: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    graceful_stop: Option<HumanDuration>,
}

const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

impl TryFrom<RawScenario> for Scenario {
    type Error = String;

    fn try_from(raw: RawScenario) -> Result<Self, String> {
        let kind = raw.executor;
        let name = match kind {
            ExecutorKind::ConstantVus => "constant-vus",
            ExecutorKind::PerVuIterations => "per-vu-iterations",
        };
        let not_for =
            |field: &str| format!("`{field}` does not apply to executor {name}; remove it");
        let vus = raw.vus.unwrap_or(1);
        if vus == 0 {
            return Err("`vus` must be at least 1".into());
        }
        let executor = match kind {
            ExecutorKind::ConstantVus => {
                if raw.iterations.is_some() {
                    return Err(not_for("iterations"));
                }
                if raw.max_duration.is_some() {
                    return Err(not_for("maxDuration"));
                }
                let duration = raw
                    .duration
                    .ok_or("executor constant-vus needs `duration` (e.g. `duration: 30s`)")?
                    .0;
                Executor::ConstantVus { vus, duration }
            }
            ExecutorKind::PerVuIterations => {
                if raw.duration.is_some() {
                    return Err(not_for("duration") + " (use `maxDuration` to cap the run)");
                }
                Executor::PerVuIterations {
                    vus,
                    iterations: raw.iterations.unwrap_or(1),
                    max_duration: raw.max_duration.map_or(DEFAULT_MAX_DURATION, |d| d.0),
                }
            }
        };
        Ok(Scenario {
            plugin: raw.plugin,
            params: raw.params,
            executor,
            graceful_stop: raw.graceful_stop.map_or(DEFAULT_GRACEFUL_STOP, |d| d.0),
        })
    }
}

impl From<Scenario> for RawScenario {
    fn from(s: Scenario) -> Self {
        let (executor, vus, duration, iterations, max_duration) = match s.executor {
            Executor::ConstantVus { vus, duration } => (
                ExecutorKind::ConstantVus,
                vus,
                Some(HumanDuration(duration)),
                None,
                None,
            ),
            Executor::PerVuIterations {
                vus,
                iterations,
                max_duration,
            } => (
                ExecutorKind::PerVuIterations,
                vus,
                None,
                Some(iterations),
                Some(HumanDuration(max_duration)),
            ),
        };
        RawScenario {
            plugin: s.plugin,
            params: s.params,
            executor,
            vus: Some(vus),
            duration,
            iterations,
            max_duration,
            graceful_stop: Some(HumanDuration(s.graceful_stop)),
        }
    }
}

impl Config {
    /// Checks that need the whole config (cross references, URLs).
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        if self.scenarios.is_empty() {
            return Err(ConfigError::new(
                file,
                Some("scenarios".into()),
                "at least one scenario is needed",
            ));
        }
        for (name, scenario) in &self.scenarios {
            if !self.plugins.contains_key(&scenario.plugin) {
                let known: Vec<_> = self.plugins.keys().map(String::as_str).collect();
                return Err(ConfigError::new(
                    file,
                    Some(format!("scenarios.{name}.plugin")),
                    format!(
                        "plugin `{}` is not defined under `plugins` (defined: {})",
                        scenario.plugin,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if let Some(target) = &self.target {
            crate::client::parse_base_url(target)
                .map_err(|e| ConfigError::new(file, Some("target".into()), e))?;
        }
        if self.sandbox.memory_mb == 0 {
            return Err(ConfigError::new(
                file,
                Some("sandbox.memoryMb".into()),
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The name reports use: `name`, else the config file's stem.
    pub fn display_name(&self, file: &Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map_or("loadtest".into(), |s| s.to_string_lossy().into_owned())
        })
    }
}
