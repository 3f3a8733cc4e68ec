//! k6's `handleSummary()`: after a run of a script that exports it, the
//! script is given the end-of-test data and says what to write where.
//! It runs in an instance of its own, as in k6, like the probe that read
//! its options.

use crate::config::{Bundle, Config};
use crate::plugin::Runtime;
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::Arc;

/// k6's default `summaryTrendStats`.
pub const TREND_STATS: &[&str] = &["avg", "min", "med", "max", "p(90)", "p(95)"];

/// A run of a script that exports `handleSummary()`: its params (main
/// file, env, summary options) as the host wrote them.
pub struct Wanted {
    params: Value,
}

impl Wanted {
    /// Set when `bundle` is a run of a script that exports `handleSummary()`.
    pub fn of(bundle: &Bundle) -> Option<Wanted> {
        Wanted::in_config(&bundle.config)
    }

    /// The same from the config alone (which marks it in a scenario's params).
    pub fn in_config(config: &Config) -> Option<Wanted> {
        let params = config
            .scenarios
            .values()
            .map(|s| &s.params)
            .find(|p| p["handleSummary"] == true)?;
        Some(Wanted {
            params: params.clone(),
        })
    }

    /// What `data.options` holds: the script's summary options, with k6's
    /// defaults.
    pub fn options(&self) -> Value {
        let given = &self.params["summaryOptions"];
        json!({
            "summaryTrendStats": given.get("summaryTrendStats").cloned().unwrap_or(json!(TREND_STATS)),
            "summaryTimeUnit": given.get("summaryTimeUnit").cloned().unwrap_or(json!("")),
            // k6 takes it from --no-color or NO_COLOR, a script too.
            "noColor": given.get("noColor").and_then(Value::as_bool).unwrap_or(false)
                || std::env::var_os("NO_COLOR").is_some(),
        })
    }

    /// Calls `handleSummary(data)`: each destination (`stdout`, `stderr`
    /// or a file's path) with its bytes.
    pub async fn call(
        &self,
        bundle: &Bundle,
        runtime: &Arc<Runtime>,
        data: &Value,
    ) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        // The test's env, not a scenario's own (`scenarioEnv`), as in k6.
        let params = json!({
            "main": self.params["main"],
            "env": self.params["env"],
            "probe": "summary",
            "summary": data,
        });
        let config =
            super::options::probe_config_with(&bundle.name, "summary", params, &bundle.files);
        let mut probe = Bundle::from_shipped(
            &bundle.name,
            &config,
            Default::default(),
            (*bundle.files).clone(),
        )?;
        // Requests it makes go where the run's could, no further.
        probe.config.sandbox = bundle.config.sandbox.clone();
        probe.config.http = bundle.config.http.clone();
        let text = super::ask(&probe, runtime).await?.unwrap_or_default();
        outputs(&text)
    }
}

/// The plugin's `{ "where": { "text": ... } | { "base64": ... } }`.
fn outputs(text: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(text)?;
    map.into_iter()
        .map(|(at, v)| {
            let bytes = match (v["text"].as_str(), v["base64"].as_str()) {
                (Some(t), _) => t.as_bytes().to_vec(),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b)?,
                _ => anyhow::bail!("the javascript plugin gave `{at}` no content"),
            };
            Ok((at, bytes))
        })
        .collect()
}
