//! `setup` and `teardown`: code that runs once per test, not once per VU,
//! each in an instance of its own (VU id 0). Scenarios that run the same
//! plugin with the same params (a k6 script's scenarios, which differ
//! only in their `exec` function) share one setup and one teardown, as in
//! k6. Their samples count under no scenario ([`NO_SCENARIO`]), as k6
//! leaves them without a `scenario` tag. What setup
//! returns is handed to every VU (`vu.setup-data`) and to teardown. A
//! cluster runs them on the leader only and ships the data in the plan,
//! so this is where both kinds of run come for them.

use super::Live;
use crate::config::Bundle;
use crate::metrics::{NO_SCENARIO, Recorder};
use crate::plugin::{CallFailure, Limits, Runtime, VuHost, VuInstance};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// What each scenario's `setup` returned, by scenario name; scenarios
/// whose plugin has no setup are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetupData(pub BTreeMap<String, Option<String>>);

impl SetupData {
    pub fn of(&self, scenario: &str) -> Option<Arc<str>> {
        self.0.get(scenario).cloned().flatten().map(Arc::from)
    }

    /// The data of the first scenario whose setup returned any: a
    /// script's scenarios share one setup.
    pub fn first(&self) -> Option<&String> {
        self.0.values().find_map(Option::as_ref)
    }
}

/// A setup or teardown that failed, with the guest's message.
#[derive(Debug, thiserror::Error)]
#[error("scenario `{scenario}`: {phase} failed: {message}")]
pub struct LifecycleError {
    pub scenario: String,
    pub phase: &'static str,
    pub message: String,
}

/// Runs every scenario's `setup`, in config order; the first failure
/// stops, before any load.
pub async fn setup(
    bundle: &Bundle,
    runtime: &Arc<Runtime>,
    live: &Live,
) -> anyhow::Result<SetupData> {
    let mut data = SetupData::default();
    let limit = Limits::of(&bundle.config.sandbox).start_timeout;
    for (names, params, mut inst) in instances(bundle, runtime, live, "setup").await? {
        let name = names[0].as_str();
        let started = Instant::now();
        let result = tokio::time::timeout(limit, inst.setup(&params))
            .await
            .unwrap_or_else(|_| Err(too_slow("setup", limit)));
        finish(&mut inst);
        let value = result.map_err(|f| failed(name, "setup", f))?;
        // Worth a line when there was a setup to run, not for a plugin
        // without one or the host's own probes of a script.
        if value.is_some() && !is_probe(&params) {
            tracing::info!(scenario = name, "setup ran in {:.0?}", started.elapsed());
        } else {
            tracing::debug!(scenario = name, "setup ran in {:.0?}", started.elapsed());
        }
        for n in names {
            data.0.insert(n, value.clone());
        }
    }
    Ok(data)
}

/// Params the host wrote to ask a script for its options or its summary
/// (script/options.rs, script/summary.rs).
fn is_probe(params: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(params).is_ok_and(|p| p.get("probe").is_some())
}

/// Runs every scenario's `teardown` with its setup's data. All run even
/// when one fails; the first failure is returned.
pub async fn teardown(
    bundle: &Bundle,
    runtime: &Arc<Runtime>,
    live: &Live,
    data: &SetupData,
) -> anyhow::Result<()> {
    let mut first = None;
    let limit = Limits::of(&bundle.config.sandbox).start_timeout;
    for (names, params, mut inst) in instances(bundle, runtime, live, "teardown").await? {
        let name = &names[0];
        let value = data.0.get(name).cloned().flatten();
        let result = tokio::time::timeout(limit, inst.teardown(&params, value.as_deref()))
            .await
            .unwrap_or_else(|_| Err(too_slow("teardown", limit)));
        finish(&mut inst);
        if let Err(f) = result {
            let e = failed(name, "teardown", f);
            tracing::error!("{e}");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), |e| Err(e.into()))
}

fn plugin_of(
    bundle: &Bundle,
    runtime: &Runtime,
    plugin: &str,
) -> anyhow::Result<Arc<crate::plugin::Plugin>> {
    let bytes = bundle
        .plugins
        .get(plugin)
        .ok_or_else(|| anyhow::anyhow!("plugin `{plugin}` was not loaded"))?;
    Ok(runtime.load(plugin, bytes)?)
}

/// One setup and teardown: the scenarios that share it, their params
/// (JSON) and plugin.
type Lifecycle = (Vec<String>, String, Arc<crate::plugin::Plugin>);

/// Scenarios whose plugin has a lifecycle, those that share one (same
/// plugin, same params) together, in config order.
fn lifecycles(bundle: &Bundle, runtime: &Runtime) -> anyhow::Result<Vec<Lifecycle>> {
    let mut out: Vec<Lifecycle> = Vec::new();
    let mut plugins = Vec::new();
    for (name, scenario) in &bundle.config.scenarios {
        let plugin = plugin_of(bundle, runtime, &scenario.plugin)?;
        if !plugin.has_lifecycle() {
            continue;
        }
        let params = serde_json::to_string(&scenario.params)?;
        let key = (scenario.plugin.as_str(), params);
        match plugins.iter().position(|k| *k == key) {
            Some(i) => out[i].0.push(name.clone()),
            None => {
                out.push((vec![name.clone()], key.1.clone(), plugin));
                plugins.push(key);
            }
        }
    }
    Ok(out)
}

/// An instance for each lifecycle, its samples in the group `::setup` or
/// `::teardown` under no scenario; its logs and `exec.scenario` name the
/// first scenario that shares it.
async fn instances(
    bundle: &Bundle,
    runtime: &Arc<Runtime>,
    live: &Live,
    phase: &'static str,
) -> anyhow::Result<Vec<(Vec<String>, String, VuInstance)>> {
    let config = &bundle.config;
    // Setup and teardown run once for the whole test: the whole `rps`.
    let client = super::client_of(config, super::Segment { index: 0, count: 1 })?;
    let limits = Limits::of(&config.sandbox);
    let mut out = Vec::new();
    for (names, params, plugin) in lifecycles(bundle, runtime)? {
        let name = &names[0];
        let scenario_name: Arc<str> = name.as_str().into();
        let recorder = Recorder::new(NO_SCENARIO.into(), live.sink.clone());
        let mut host = VuHost::new(
            0,
            scenario_name,
            client.clone(),
            bundle.files.clone(),
            recorder,
            Instant::now(),
        );
        host.abort = live.abort.clone();
        host.failed = live.failed.clone();
        host.shared_arrays = bundle.shared_arrays.clone();
        host.enter_quiet_group(phase);
        let inst = VuInstance::new(runtime, &plugin, host, limits)
            .await
            .map_err(|(_, message)| LifecycleError {
                scenario: name.clone(),
                phase,
                message: format!("instantiate: {message}"),
            })?;
        out.push((names, params, inst));
    }
    Ok(out)
}

fn too_slow(phase: &str, limit: std::time::Duration) -> CallFailure {
    CallFailure::Guest(format!(
        "{phase} did not return within {limit:?} (sandbox.initTimeout)"
    ))
}

fn finish(inst: &mut VuInstance) {
    let host = inst.host();
    host.close_groups();
    host.recorder.flush();
}

fn failed(scenario: &str, phase: &'static str, f: CallFailure) -> LifecycleError {
    let message = match f {
        CallFailure::Guest(m) | CallFailure::Fault(_, m) => m,
    };
    LifecycleError {
        scenario: scenario.to_owned(),
        phase,
        message,
    }
}
