use super::*;
use std::path::Path;
use std::time::Duration;

const GOOD: &str = "\
name: shop
target: http://127.0.0.1:8080
plugins:
  shop: { path: shop.wasm }
scenarios:
  browse:
    plugin: shop
    executor: constant-vus
    vus: 5
    duration: 1m30s
    params: { think_ms: 100, pages: [a, b] }
  buy:
    plugin: shop
    executor: per-vu-iterations
    vus: 2
    iterations: 7
";

fn parse_ok(yaml: &str) -> Config {
    parse(Path::new("t.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(yaml: &str) -> ConfigError {
    parse(Path::new("t.yaml"), yaml).expect_err("config should be rejected")
}

#[test]
fn a_good_config_parses_with_defaults() {
    let c = parse_ok(GOOD);
    let browse = &c.scenarios["browse"];
    assert_eq!(
        browse.executor,
        Executor::ConstantVus {
            vus: 5,
            duration: Duration::from_secs(90)
        }
    );
    assert_eq!(browse.params["pages"][1], "b");
    assert_eq!(browse.graceful_stop, Duration::from_secs(30));
    let buy = &c.scenarios["buy"];
    assert_eq!(
        buy.executor,
        Executor::PerVuIterations {
            vus: 2,
            iterations: 7,
            max_duration: Duration::from_secs(600)
        }
    );
    assert_eq!(c.http.timeout.0, Duration::from_secs(60));
}

#[test]
fn unknown_fields_name_line_column_and_path() {
    let e = parse_err(&GOOD.replace("    vus: 2\n", "    vuz: 2\n"));
    assert_eq!(e.field.as_deref(), Some("scenarios.buy.vuz"));
    assert_eq!(e.position.map(|p| p.0), Some(15));
    assert!(e.message.contains("unknown field `vuz`"), "{e}");
    assert!(e.to_string().starts_with("t.yaml:15:"), "{e}");
}

#[test]
fn unknown_executors_list_the_known_ones() {
    let e = parse_err(&GOOD.replace("per-vu-iterations", "ramping-bananas"));
    assert_eq!(e.field.as_deref(), Some("scenarios.buy.executor"));
    assert_eq!(e.position, Some((14, 15)));
    assert!(e.message.contains("constant-vus"), "{e}");
}

#[test]
fn bad_durations_point_at_the_value() {
    let e = parse_err(&GOOD.replace("1m30s", "5 parsecs"));
    assert_eq!(e.field.as_deref(), Some("scenarios.browse.duration"));
    assert_eq!(e.position.map(|p| p.0), Some(10));
    assert!(e.message.contains("write it like 30s"), "{e}");
}

#[test]
fn executor_fields_are_checked_together() {
    let e = parse_err(&GOOD.replace("    duration: 1m30s\n", ""));
    assert!(e.message.contains("constant-vus needs `duration`"), "{e}");
    assert_eq!(e.field.as_deref(), Some("scenarios.browse"));
    assert!(e.position.is_some());
    let e = parse_err(&GOOD.replace(
        "    iterations: 7\n",
        "    iterations: 7\n    duration: 3s\n",
    ));
    assert!(
        e.message
            .contains("`duration` does not apply to executor per-vu-iterations"),
        "{e}"
    );
}

#[test]
fn malformed_yaml_is_a_syntax_error_with_position() {
    let e = parse_err("name: shop\nscenarios:\n  a: [unclosed\n");
    assert!(e.position.is_some(), "{e}");
}

#[test]
fn undefined_plugins_are_named() {
    let e = parse_err(&GOOD.replace(
        "plugin: shop\n    executor: per",
        "plugin: cart\n    executor: per",
    ));
    assert_eq!(e.field.as_deref(), Some("scenarios.buy.plugin"));
    assert!(e.message.contains("`cart` is not defined"), "{e}");
}

#[test]
fn an_empty_scenario_name_is_refused() {
    let e = parse_err(&GOOD.replace("  buy:\n", "  \"\":\n"));
    assert_eq!(e.field.as_deref(), Some("scenarios"));
    assert!(e.message.contains("may not be empty"), "{e}");
}

#[test]
fn bad_target_urls_are_rejected() {
    let e = parse_err(&GOOD.replace("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_eq!(e.field.as_deref(), Some("target"));
}

#[test]
fn env_overrides_global_then_per_scenario() {
    let vars = |k: &str| match k {
        "LOADTEST_TARGET" => Some("http://10.0.0.1:9".to_string()),
        "LOADTEST_VUS" => Some("9".to_string()),
        "LOADTEST_SCENARIO_BUY_VUS" => Some("4".to_string()),
        "LOADTEST_DURATION" => Some("2s".to_string()),
        "LOADTEST_ITERATIONS" => Some("11".to_string()),
        _ => None,
    };
    let c = parse_with_env(Path::new("t.yaml"), GOOD, vars).unwrap();
    assert_eq!(c.target.as_deref(), Some("http://10.0.0.1:9"));
    assert_eq!(
        c.scenarios["browse"].executor,
        Executor::ConstantVus {
            vus: 9,
            duration: Duration::from_secs(2)
        }
    );
    assert_eq!(
        c.scenarios["buy"].executor,
        Executor::PerVuIterations {
            vus: 4,
            iterations: 11,
            max_duration: Duration::from_secs(2)
        }
    );
}

#[test]
fn bad_env_values_name_the_variable() {
    let vars = |k: &str| (k == "LOADTEST_VUS").then(|| "lots".to_string());
    let e = parse_with_env(Path::new("t.yaml"), GOOD, vars).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("LOADTEST_VUS"));
    assert!(e.message.contains("`lots`"), "{e}");
}

#[test]
fn durations_read_k6_style_and_bare_seconds() {
    assert_eq!(
        HumanDuration::parse("1m30s").unwrap().0,
        Duration::from_secs(90)
    );
    assert_eq!(
        HumanDuration::parse("500ms").unwrap().0,
        Duration::from_millis(500)
    );
    assert_eq!(
        HumanDuration::parse("2.5").unwrap().0,
        Duration::from_millis(2500)
    );
    assert!(HumanDuration::parse("soon").is_err());
}

#[test]
fn outputs_are_checked_where_they_are_written() {
    let c = parse_ok(&format!(
        "{GOOD}outputs: [\"prometheus=http://127.0.0.1:9090/api/v1/write\", \"json=series.jsonl\"]\n"
    ));
    assert_eq!(c.outputs.len(), 2);
    let e = parse_err(&format!("{GOOD}outputs: [\"kafka=broker:9092\"]\n"));
    assert_eq!(e.field.as_deref(), Some("outputs[0]"));
    assert_eq!(e.position.map(|p| p.0), Some(17));
    assert!(
        e.message.contains("`kafka=broker:9092` is not an output"),
        "{e}"
    );
}

#[test]
fn vu_counts_past_the_cap_are_refused_wherever_they_are_written() {
    let e = parse_err(&GOOD.replace("    vus: 2\n", "    vus: 1000001\n"));
    assert_eq!(e.field.as_deref(), Some("scenarios.buy.vus"));
    assert!(e.to_string().contains("at most 1000000"), "{e}");
    let ramp = GOOD.replace(
        "    executor: constant-vus\n    vus: 5\n    duration: 1m30s\n",
        "    executor: ramping-vus\n    stages: [ { duration: 1s, target: 10 }, { duration: 1s, target: 2000000 } ]\n",
    );
    let e = parse_err(&ramp);
    assert!(
        e.to_string().contains("`stages[1].target`: 2000000 VUs"),
        "{e}"
    );
    // At the cap is fine.
    parse_ok(
        &GOOD
            .replace(
                "    vus: 2\n",
                "    vus: 1000000\n    iterations: 1000000\n",
            )
            .replace("    iterations: 7\n", ""),
    );
}

#[test]
fn k6s_http_options_read_from_yaml_and_bad_hosts_are_named() {
    let http = "http:\n  rps: 50\n  httpDebug: full\n  noVUConnectionReuse: true\n  hosts: { shop.test: 10.0.0.5, \"api.test:443\": \"10.0.0.6:8443\" }\n";
    let c = parse_ok(&format!("{GOOD}{http}"));
    assert_eq!(c.http.rps, 50);
    assert_eq!(c.http.http_debug, crate::client::debug::HttpDebug::Full);
    assert_eq!(c.http.reuse(), crate::client::Reuse::WithinIteration);
    let hosts = c.http.hosts().unwrap();
    assert_eq!(
        hosts.get("api.test", 443),
        Some("10.0.0.6:8443".parse().unwrap())
    );
    let e = parse_err(&format!("{GOOD}http:\n  hosts: {{ shop.test: staging }}\n"));
    assert_eq!(e.field.as_deref(), Some("http.hosts"));
    assert!(e.message.contains("`staging` is not an address"), "{e}");
}
