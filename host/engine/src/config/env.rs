//! Environment overrides. Env wins over YAML so one config file serves
//! laptops and CI alike. The full list, documented in the README:
//!
//! | variable | overrides |
//! |---|---|
//! | `LOADTEST_TARGET` | `target` |
//! | `LOADTEST_VUS`, `LOADTEST_DURATION`, `LOADTEST_ITERATIONS`, `LOADTEST_RATE` | that field of every scenario whose executor has it (`DURATION` sets `maxDuration` of the iteration executors) |
//! | `LOADTEST_SCENARIO_<NAME>_VUS` / `_DURATION` / `_ITERATIONS` / `_RATE` | one scenario (`<NAME>` upper-cased, non-alphanumerics as `_`); wins over the global one |
//! | `LOADTEST_HTTP_TIMEOUT` | `http.timeout` |

use super::{Config, ConfigError, Executor, HumanDuration};
use std::path::Path;

pub(super) fn apply(
    config: &mut Config,
    vars: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let env_err = |var: &str, msg: String| {
        ConfigError::new(Path::new("<environment>"), Some(var.to_owned()), msg)
    };

    if let Some(t) = vars("LOADTEST_TARGET") {
        config.target = Some(t);
    }
    if let Some(t) = vars("LOADTEST_HTTP_TIMEOUT") {
        config.http.timeout =
            HumanDuration::parse(&t).map_err(|e| env_err("LOADTEST_HTTP_TIMEOUT", e))?;
    }
    for (name, scenario) in config.scenarios.iter_mut() {
        let key = scenario_key(name);
        let pick = |field: &str| {
            let specific = format!("LOADTEST_SCENARIO_{key}_{field}");
            vars(&specific).map(|v| (specific, v)).or_else(|| {
                vars(&format!("LOADTEST_{field}")).map(|v| (format!("LOADTEST_{field}"), v))
            })
        };
        if let Some((var, v)) = pick("VUS") {
            let n: u32 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                env_err(&var, format!("`{v}` is not a positive whole number of VUs"))
            })?;
            super::scenario::check_vus(n.into()).map_err(|e| env_err(&var, e))?;
            match &mut scenario.executor {
                Executor::ConstantVus { vus, .. }
                | Executor::PerVuIterations { vus, .. }
                | Executor::SharedIterations { vus, .. } => *vus = n,
                Executor::ExternallyControlled { vus, max_vus, .. } => {
                    *vus = n;
                    *max_vus = (*max_vus).max(n);
                }
                _ => {}
            }
        }
        if let Some((var, v)) = pick("DURATION") {
            let d = HumanDuration::parse(&v).map_err(|e| env_err(&var, e))?.0;
            match &mut scenario.executor {
                Executor::ConstantVus { duration, .. }
                | Executor::ConstantArrivalRate { duration, .. }
                | Executor::ExternallyControlled { duration, .. } => *duration = d,
                Executor::PerVuIterations { max_duration, .. }
                | Executor::SharedIterations { max_duration, .. } => *max_duration = d,
                _ => {}
            }
        }
        if let Some((var, v)) = pick("ITERATIONS") {
            let n: u64 = v
                .parse()
                .map_err(|_| env_err(&var, format!("`{v}` is not a whole number of iterations")))?;
            if let Executor::PerVuIterations { iterations, .. }
            | Executor::SharedIterations { iterations, .. } = &mut scenario.executor
            {
                *iterations = n;
            }
        }
        if let Some((var, v)) = pick("RATE") {
            let n: u64 = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| env_err(&var, format!("`{v}` is not a positive whole rate")))?;
            if let Executor::ConstantArrivalRate { rate, .. } = &mut scenario.executor {
                *rate = n;
            }
        }
    }
    Ok(())
}

fn scenario_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
