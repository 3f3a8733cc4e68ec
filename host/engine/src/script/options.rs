//! k6's `options` as a loadtest config. k6 chose the executor names and
//! fields this config uses, so most of it carries over as written; what
//! has no counterpart here is refused by name rather than ignored.

use super::Described;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The config a script is first run under, only to read its options.
pub fn probe_config(
    name: &str,
    main: &str,
    env: &Map<String, Value>,
    files: &BTreeMap<String, Arc<[u8]>>,
) -> String {
    let params = json!({ "main": main, "env": env, "probe": "options" });
    probe_config_with(name, "probe", params, files)
}

/// A config whose one scenario, `scenario`, has the javascript plugin's
/// setup called with `params`: how the host asks a script something.
pub fn probe_config_with(
    name: &str,
    scenario: &str,
    params: Value,
    files: &BTreeMap<String, Arc<[u8]>>,
) -> String {
    json!({
        "name": name,
        "plugins": { "js": { "builtin": "javascript" } },
        "files": files.keys().map(|k| (k.clone(), Value::String(k.clone()))).collect::<Map<_, _>>(),
        "scenarios": { scenario: {
            "plugin": "js", "executor": "per-vu-iterations", "vus": 1, "iterations": 1,
            "params": params,
        }},
    })
    .to_string()
}

/// Scenario fields that mean the same here as in k6.
const SCENARIO_FIELDS: &[&str] = &[
    "executor",
    "vus",
    "duration",
    "iterations",
    "stages",
    "startVUs",
    "rate",
    "timeUnit",
    "preAllocatedVUs",
    "maxVUs",
    "startRate",
    "startTime",
    "gracefulStop",
    "gracefulRampDown",
    "maxDuration",
];

/// Top-level options that become the config's `http` section.
const HTTP_OPTIONS: &[&str] = &[
    "maxRedirects",
    "noCookiesReset",
    "insecureSkipTLSVerify",
    "batch",
    "batchPerHost",
    "hosts",
    "noConnectionReuse",
    "noVUConnectionReuse",
    "rps",
    "httpDebug",
];

/// k6's egress options, as the config's `sandbox` names them.
fn sandbox_option(key: &str) -> Option<&'static str> {
    match key {
        "blockHostnames" => Some("blockHostnames"),
        "blacklistIPs" => Some("blockIPs"),
        _ => None,
    }
}

/// Options each VU of the script applies itself (the plugin reads them
/// from the script): the config has nothing to carry.
const VU_OPTIONS: &[&str] = &[
    "tags",
    "userAgent",
    "discardResponseBodies",
    "minIterationDuration",
    "throw",
];

/// Options that only shape k6's own output; accepted, no effect here
/// but on what a script's `handleSummary()` is given.
const COSMETIC: &[&str] = &[
    "summaryTrendStats",
    "summaryTimeUnit",
    "noColor",
    "setupTimeout",
    "teardownTimeout",
];

/// Options for k6 Cloud runs (project, name, load zones): `k6 run`
/// ignores them on a machine of its own, and so does loadtest, saying so.
const CLOUD_ONLY: &[&str] = &["cloud", "ext"];

/// The options `handleSummary()` reads from its data (`data.options`).
const SUMMARY_OPTIONS: &[&str] = &["summaryTrendStats", "summaryTimeUnit", "noColor"];

/// The YAML (as JSON, which YAML reads) of a run of the script.
pub fn config_of<'a>(
    name: &str,
    main: &str,
    described: &Described,
    env: &Map<String, Value>,
    files: impl Iterator<Item = &'a String>,
) -> Result<String, String> {
    let options = match &described.options {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        _ => return Err("`options` must be an object".into()),
    };
    let mut http = Map::new();
    let mut sandbox = Map::new();
    for (key, value) in &options {
        if HTTP_OPTIONS.contains(&key.as_str()) {
            http.insert(key.clone(), value.clone());
        } else if let Some(k) = sandbox_option(key) {
            sandbox.insert(k.into(), value.clone());
        } else if CLOUD_ONLY.contains(&key.as_str()) {
            tracing::warn!(
                "options.{key} is for k6 Cloud runs; ignored here, as `k6 run` ignores it"
            );
        } else if !matches!(
            key.as_str(),
            "scenarios" | "thresholds" | "vus" | "duration" | "iterations" | "stages"
        ) && !COSMETIC.contains(&key.as_str())
            && !VU_OPTIONS.contains(&key.as_str())
        {
            return Err(format!(
                "options.{key} is not supported by loadtest yet (supported: scenarios, thresholds, vus, duration, iterations, stages, blockHostnames, blacklistIPs, {}, {})",
                HTTP_OPTIONS.join(", "),
                VU_OPTIONS.join(", ")
            ));
        }
    }
    if let Some(stats) = options.get("summaryTrendStats") {
        let list = stats
            .as_array()
            .ok_or("options.summaryTrendStats must be a list such as ['avg', 'p(95)']")?;
        for s in list {
            let s = s
                .as_str()
                .ok_or("options.summaryTrendStats must be a list of strings")?;
            crate::threshold::parse_agg(s)
                .map_err(|e| format!("options.summaryTrendStats: {e}"))?;
        }
    }
    let mut params = json!({ "main": main, "env": env });
    if described.exports.iter().any(|e| e == "handleSummary") {
        params["handleSummary"] = true.into();
        let summary: Map<String, Value> = SUMMARY_OPTIONS
            .iter()
            .filter_map(|k| Some((k.to_string(), options.get(*k)?.clone())))
            .collect();
        params["summaryOptions"] = summary.into();
    }
    let k6 = k6_scenarios(&options)?;
    params["testOptions"] = consolidated(&options, &k6);
    let scenarios = scenarios(&k6, &params, &described.exports)?;
    let mut config = json!({
        "name": name,
        "plugins": { "js": { "builtin": "javascript" } },
        "files": files.map(|k| (k.clone(), Value::String(k.clone()))).collect::<Map<_, _>>(),
        "scenarios": scenarios,
        "http": http,
        "sandbox": sandbox,
    });
    if let Some(t) = options.get("thresholds") {
        config["thresholds"] = t.clone();
    }
    Ok(config.to_string())
}

fn scenarios(
    k6: &Map<String, Value>,
    params: &Value,
    exports: &[String],
) -> Result<Map<String, Value>, String> {
    k6.iter()
        .map(|(name, s)| Ok((name.clone(), scenario(name, s, params, exports)?)))
        .collect()
}

/// What `exec.test.options` shows, as k6 consolidates it: the script's
/// options, with its scenarios as they run (the shorthand's `default`
/// one too) and k6's defaults for what they leave out.
fn consolidated(options: &Map<String, Value>, k6: &Map<String, Value>) -> Value {
    let mut out = options.clone();
    let scenarios = k6.iter().map(|(name, s)| {
        let mut s = s.as_object().cloned().unwrap_or_default();
        let ramping = s.get("executor").and_then(Value::as_str) == Some("ramping-vus");
        let mut defaults = vec![
            ("exec", json!("default")),
            ("startTime", json!("0s")),
            ("gracefulStop", json!("30s")),
        ];
        if ramping {
            defaults.push(("gracefulRampDown", json!("30s")));
        }
        for (k, v) in defaults {
            s.entry(k).or_insert(v);
        }
        (name.clone(), Value::Object(s))
    });
    out.insert("scenarios".into(), Value::Object(scenarios.collect()));
    out.entry("summaryTrendStats")
        .or_insert(json!(super::summary::TREND_STATS));
    Value::Object(out)
}

/// The scenarios as k6 runs them: `options.scenarios`, or the one
/// `default` scenario k6 makes of `vus`, `duration`, `iterations` and
/// `stages`.
fn k6_scenarios(options: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    if let Some(list) = options.get("scenarios") {
        return list
            .as_object()
            .cloned()
            .ok_or_else(|| "options.scenarios must be an object of scenarios".into());
    }
    let field = |k: &str| options.get(k).cloned();
    let mut s = Map::new();
    if let Some(stages) = field("stages") {
        s.insert("executor".into(), "ramping-vus".into());
        s.insert("startVUs".into(), field("vus").unwrap_or(json!(1)));
        s.insert("stages".into(), stages);
    } else if let Some(iterations) = field("iterations") {
        s.insert("executor".into(), "shared-iterations".into());
        s.insert("vus".into(), field("vus").unwrap_or(json!(1)));
        s.insert("iterations".into(), iterations);
        if let Some(d) = field("duration") {
            s.insert("maxDuration".into(), d);
        }
    } else if let Some(duration) = field("duration") {
        s.insert("executor".into(), "constant-vus".into());
        s.insert("vus".into(), field("vus").unwrap_or(json!(1)));
        s.insert("duration".into(), duration);
    } else {
        // k6's default: one VU, one iteration.
        s.insert("executor".into(), "per-vu-iterations".into());
        s.insert("vus".into(), field("vus").unwrap_or(json!(1)));
        s.insert("iterations".into(), json!(1));
    }
    Ok(Map::from_iter([("default".into(), Value::Object(s))]))
}

/// A scenario's `env`: names and string values, as k6 takes it.
fn scenario_env(name: &str, env: &Value) -> Result<Value, String> {
    let env = env.as_object().ok_or_else(|| {
        format!("options.scenarios.{name}.env must be an object of names and string values")
    })?;
    if let Some((k, _)) = env.iter().find(|(_, v)| !v.is_string()) {
        return Err(format!(
            "options.scenarios.{name}.env.{k} must be a string, as environment variables are"
        ));
    }
    Ok(Value::Object(env.clone()))
}

fn scenario(name: &str, s: &Value, params: &Value, exports: &[String]) -> Result<Value, String> {
    let s = s
        .as_object()
        .ok_or_else(|| format!("options.scenarios.{name} must be an object"))?;
    let mut out = Map::new();
    let mut exec = "default".to_owned();
    let mut params = params.clone();
    for (key, value) in s {
        if SCENARIO_FIELDS.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else if key == "env" {
            // k6's scenario env: the plugin adds it to this scenario's
            // `__ENV`; kept apart from the test's env, which is what
            // handleSummary() sees.
            params["scenarioEnv"] = scenario_env(name, value)?;
        } else if key == "tags" {
            // The scenario's VUs tag their samples with them themselves.
        } else if key == "exec" {
            exec = value
                .as_str()
                .ok_or_else(|| format!("options.scenarios.{name}.exec must be a function name"))?
                .to_owned();
        } else {
            return Err(format!(
                "options.scenarios.{name}.{key} is not supported by loadtest yet (supported: exec, env, tags, {})",
                SCENARIO_FIELDS.join(", ")
            ));
        }
    }
    if !exports.contains(&exec) {
        return Err(if exec == "default" {
            format!(
                "scenario `{name}` runs the default function, but the script exports none: add `export default function () {{ ... }}` or give the scenario an `exec`"
            )
        } else {
            format!("options.scenarios.{name}.exec: the script exports no function `{exec}`")
        });
    }
    out.insert("plugin".into(), "js".into());
    if exec != "default" {
        out.insert("exec".into(), json!({ exec: 1 }));
    }
    out.insert("params".into(), params);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: Value, exports: &[&str]) -> Result<Value, String> {
        let d = Described {
            options,
            exports: exports.iter().map(|s| s.to_string()).collect(),
            bytecode: Default::default(),
        };
        let files = ["s.js".to_string()];
        config_of("s", "s.js", &d, &Map::new(), files.iter())
            .map(|t| serde_json::from_str(&t).unwrap())
    }

    #[test]
    fn k6_shortcuts_become_executors() {
        let c = config(json!({ "vus": 5, "duration": "10s" }), &["default"]).unwrap();
        assert_eq!(c["scenarios"]["default"]["executor"], "constant-vus");
        assert_eq!(c["scenarios"]["default"]["vus"], 5);
        let c = config(json!({ "iterations": 7 }), &["default"]).unwrap();
        assert_eq!(c["scenarios"]["default"]["executor"], "shared-iterations");
        let c = config(
            json!({ "stages": [{ "duration": "1s", "target": 3 }] }),
            &["default"],
        )
        .unwrap();
        assert_eq!(c["scenarios"]["default"]["executor"], "ramping-vus");
        let c = config(json!(null), &["default"]).unwrap();
        assert_eq!(c["scenarios"]["default"]["iterations"], 1);
    }

    #[test]
    fn scenarios_keep_their_fields_and_exec_names_a_function() {
        let c = config(
            json!({ "scenarios": { "buy": { "executor": "constant-arrival-rate", "rate": 5, "duration": "2s", "preAllocatedVUs": 2, "exec": "buy" } },
                    "thresholds": { "http_req_duration": ["p(95)<500"] }, "maxRedirects": 3 }),
            &["buy"],
        )
        .unwrap();
        let buy = &c["scenarios"]["buy"];
        assert_eq!(buy["rate"], 5);
        assert_eq!(buy["exec"]["buy"], 1);
        assert_eq!(c["http"]["maxRedirects"], 3);
        assert_eq!(c["thresholds"]["http_req_duration"][0], "p(95)<500");
    }

    #[test]
    fn k6_cloud_options_are_ignored_as_k6_run_ignores_them() {
        let options = json!({ "vus": 2, "cloud": { "projectID": 1 }, "ext": { "loadimpact": { "name": "x" } } });
        let c = config(options, &["default"]).unwrap();
        assert_eq!(c["scenarios"]["default"]["vus"], 2);
        assert!(c.get("cloud").is_none() && c.get("ext").is_none(), "{c}");
    }

    #[test]
    fn what_has_no_counterpart_is_refused_by_name() {
        let e = config(json!({ "localIPs": "10.0.0.1" }), &["default"]).unwrap_err();
        assert!(e.contains("options.localIPs is not supported"), "{e}");
        let e = config(
            json!({ "scenarios": { "a": { "executor": "constant-vus", "options": {} } } }),
            &["default"],
        )
        .unwrap_err();
        assert!(
            e.contains("options.scenarios.a.options is not supported"),
            "{e}"
        );
        let e = config(json!({}), &["setup"]).unwrap_err();
        assert!(e.contains("exports none"), "{e}");
        let e = config(
            json!({ "scenarios": { "a": { "executor": "constant-vus", "exec": "nope" } } }),
            &["default"],
        )
        .unwrap_err();
        assert!(e.contains("exports no function `nope`"), "{e}");
        let e = config(
            json!({ "scenarios": { "a": { "executor": "constant-vus", "env": { "N": 3 } } } }),
            &["default"],
        )
        .unwrap_err();
        assert!(
            e.contains("options.scenarios.a.env.N must be a string"),
            "{e}"
        );
        let e = config(
            json!({ "summaryTrendStats": ["p(99)", "mode"] }),
            &["default"],
        )
        .unwrap_err();
        assert!(e.contains("`mode` is not an aggregation"), "{e}");
        let c = config(
            json!({ "summaryTrendStats": ["p(99)"] }),
            &["default", "handleSummary"],
        )
        .unwrap();
        let params = &c["scenarios"]["default"]["params"];
        assert_eq!(params["handleSummary"], true);
        assert_eq!(params["summaryOptions"]["summaryTrendStats"][0], "p(99)");
    }
}
