//! Property tests of the config parser and what is computed from it:
//! whatever numbers a config holds, parsing ends in a config or an error
//! with a position, and an accepted config's schedule can be computed
//! without a panic.

use super::*;
use crate::workload::schedule::{Arrivals, Ramp};
use proptest::prelude::*;
use std::path::Path;

/// Numbers as people (and attackers) write them in YAML.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..10_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just("18446744073709551616".to_string()),
        Just("1e20".to_string()),
        Just("-0".to_string()),
        Just(".inf".to_string()),
        Just(".nan".to_string()),
        Just("0x10".to_string()),
        "[0-9]{1,3}(ns|us|ms|s|m|h|d)",
        "[0-9]{1,25}(ms|s|h|d|y)",
    ]
}

fn config(executor: &str, fields: &[(&str, String)]) -> String {
    let mut scenario = format!("    executor: {executor}\n");
    for (k, v) in fields {
        scenario.push_str(&format!("    {k}: {v}\n"));
    }
    format!(
        "name: p\ntarget: http://127.0.0.1:1\nplugins: {{ s: {{ builtin: http-steps }} }}\nhttp: {{ timeout: 5s }}\nscenarios:\n  a:\n    plugin: s\n{scenario}"
    )
}

/// The first starts of every arrival schedule in the config.
fn first_starts(c: &Config) {
    for s in c.scenarios.values() {
        match &s.executor {
            Executor::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                ..
            } => {
                let per_second = *rate as f64 / time_unit.as_secs_f64();
                let _: Vec<_> = Arrivals::constant(per_second, *duration, 0, 3)
                    .take(5)
                    .collect();
            }
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                ..
            } => {
                let ramp = Ramp::new(*start_rate, stages).scaled(1.0 / time_unit.as_secs_f64());
                let _: Vec<_> = Arrivals::new(&ramp, 1, 2).take(5).collect();
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arrival_rate_numbers_parse_or_fail_cleanly(
        rate in number(), unit in number(), duration in number(), pre in number(), max in number(),
    ) {
        let yaml = config("constant-arrival-rate", &[
            ("rate", rate), ("timeUnit", unit), ("duration", duration),
            ("preAllocatedVUs", pre), ("maxVUs", max),
        ]);
        match parse(Path::new("p.yaml"), &yaml) {
            Ok(c) => first_starts(&c),
            Err(e) => prop_assert!(e.position.is_some() || e.field.is_some(), "an error without a place: {e}"),
        }
    }

    #[test]
    fn ramping_numbers_parse_or_fail_cleanly(
        start in number(), unit in number(), d1 in number(), t1 in number(), d2 in number(), t2 in number(),
    ) {
        let yaml = config("ramping-arrival-rate", &[
            ("startRate", start), ("timeUnit", unit), ("preAllocatedVUs", "2".into()),
            ("stages", format!("[{{ duration: {d1}, target: {t1} }}, {{ duration: {d2}, target: {t2} }}]")),
        ]);
        if let Ok(c) = parse(Path::new("p.yaml"), &yaml) {
            first_starts(&c);
        }
    }

    #[test]
    fn closed_model_numbers_parse_or_fail_cleanly(vus in number(), iterations in number(), duration in number(), graceful in number()) {
        for executor in ["constant-vus", "per-vu-iterations", "shared-iterations"] {
            let yaml = config(executor, &[
                ("vus", vus.clone()), ("iterations", iterations.clone()),
                ("duration", duration.clone()), ("gracefulStop", graceful.clone()),
            ]);
            let _ = parse(Path::new("p.yaml"), &yaml);
        }
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[ -~\n]{0,300}") {
        let _ = parse(Path::new("p.yaml"), &text);
    }
}
