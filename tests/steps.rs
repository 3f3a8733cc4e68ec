//! The builtin http-steps plugin, run as users run it: a config naming
//! `builtin: http-steps`, the binary, and the embedded target.

mod common;

use common::{Target, run_loadtest, write_config};
use serde_json::Value;

fn config(target: &str, executor: &str, params: &str) -> String {
    format!(
        "target: {target}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  s:\n    plugin: steps\n{executor}    params:\n{params}"
    )
}

fn checks(report: &Value) -> &serde_json::Map<String, Value> {
    report["checks"].as_object().expect("checks")
}

#[test]
fn extraction_feeds_a_later_request_and_assertions_become_checks() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let params = r#"      steps:
        - request: { path: /json, name: product }
          assert: [{ status: 200 }, { json: { path: $.price.currency, equals: EUR } }]
          extract: [{ var: id, json: $.id }, { var: ctype, header: content-type }]
        - request: { method: POST, path: /echo, name: order, json: { product: "${id}", seen: "${ctype}" } }
          assert: [{ status: 200 }, { body_contains: '"product":"42"' }, { header: { name: content-type, contains: json } }]
        - request: { path: /status/404, name: missing }
          assert: [{ status: 200 }]
"#;
    let cfg = write_config(
        &dir,
        &config(
            &target.url,
            "    executor: per-vu-iterations\n    vus: 2\n    iterations: 5\n",
            params,
        ),
    );
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report["totals"]["requests"].as_u64(), Some(30));
    assert_eq!(target.received(), 30);
    let c = checks(&run.report);
    assert_eq!(
        c["order: body contains \"product\":\"42\""]["passes"], 10,
        "{c:?}"
    );
    assert_eq!(c["product: json $.price.currency"]["passes"], 10);
    assert_eq!(c["order: header content-type"]["passes"], 10);
    // The failing assertion is a failed check, not a failed iteration.
    assert_eq!(c["missing: status is 200"]["fails"], 10);
    assert_eq!(run.report["scenarios"]["s"]["iterations_failed"], 0);
}

#[test]
fn data_rows_are_taken_per_vu_or_per_iteration() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let steps = |per: &str| {
        format!(
            r#"      data: {{ per: {per}, rows: [{{ user: u1 }}, {{ user: u2 }}, {{ user: u3 }}] }}
      steps:
        - request: {{ method: POST, path: /echo, name: echo, body: "${{user}}" }}
          assert: [{{ body_contains: "${{user}}" }}]
"#
        )
    };
    let executor = "    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n";
    let count = |run: &common::RunResult, user: &str| {
        checks(&run.report)
            .get(&format!("echo: body contains {user}"))
            .map_or(0, |c| c["passes"].as_u64().unwrap())
    };

    let cfg = write_config(&dir, &config(&target.url, executor, &steps("vu")));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (count(&run, "u1"), count(&run, "u2"), count(&run, "u3")),
        (3, 3, 0)
    );

    let cfg = write_config(&dir, &config(&target.url, executor, &steps("iteration")));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (count(&run, "u1"), count(&run, "u2"), count(&run, "u3")),
        (2, 2, 2)
    );
}

#[test]
fn mistakes_in_steps_are_caught_by_validate_with_their_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n";
    let cases = [
        (
            "      steps:\n        - request: { path: /, methd: GET }\n",
            "params.steps[0].request",
            "10:38",
        ),
        (
            "      steps:\n        - request: { path: / }\n          extract: [{ var: x, json: items.id }]\n",
            "steps[0].extract[0].json: `items.id` is not a JSON path",
            "11:37",
        ),
        (
            "      steps:\n        - request: { path: \"/users/${uid}\" }\n",
            "steps[0].request.path: `${uid}` is not defined",
            "10:28",
        ),
        (
            "      data: { rows: [{ a: 1 }, { a: 1, b: 2 }] }\n      steps:\n        - request: { path: / }\n",
            "data.rows[1]: has columns [a, b] but row 0 has [a]",
            "9:32",
        ),
    ];
    for (params, needle, position) in cases {
        let cfg = write_config(&dir, &config("http://127.0.0.1:1", executor, params));
        let run = run_loadtest(&dir, &["validate", cfg.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{params}: {}", run.stdout);
        assert!(
            run.stderr.contains(&format!(":{position}: scenario `s`"))
                && run.stderr.contains(needle),
            "{needle} at {position}: {}",
            run.stderr
        );
    }
}

#[test]
fn the_steps_example_validates() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/steps.yaml");
    let run = run_loadtest(&dir, &["validate", example]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn data_rows_come_from_a_csv_file_that_travels_with_the_config() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "user,password\nada,pw1\ngrace,pw2\n",
    )
    .unwrap();
    let params = r#"      data: { file: users, per: vu }
      steps:
        - request: { method: POST, path: /echo, name: login, body: "${user}:${password}" }
          assert: [{ body_contains: "${user}:${password}" }]
"#;
    let yaml = format!(
        "files:\n  users: users.csv\n{}",
        config(
            &target.url,
            "    executor: per-vu-iterations\n    vus: 2\n    iterations: 4\n",
            params
        )
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = checks(&run.report);
    assert_eq!(c["login: body contains ada:pw1"]["passes"], 4, "{c:?}");
    assert_eq!(c["login: body contains grace:pw2"]["passes"], 4, "{c:?}");
    assert_eq!(target.received(), 8);

    // A ragged CSV is caught by validate, with its line.
    std::fs::write(
        dir.path().join("users.csv"),
        "user,password\nada,pw1\ngrace\n",
    )
    .unwrap();
    let run = run_loadtest(&dir, &["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("data file `users` line 3: 1 fields, but the header has 2"),
        "{}",
        run.stderr
    );
    // A file the config lists but that is missing is a config error.
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();
    let run = run_loadtest(&dir, &["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("field `files.users`: cannot read"),
        "{}",
        run.stderr
    );
}

#[test]
fn expected_statuses_decide_which_responses_count_as_failed() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let executor = "    executor: per-vu-iterations\n    vus: 1\n    iterations: 3\n";
    let params = "      expected_statuses: [200, { min: 400, max: 404 }]
      steps:
        - request: { path: /status/404, name: gone }
        - request: { path: /status/503, name: down }
        - request: { path: /, name: home }
";
    let cfg = write_config(&dir, &config(&target.url, executor, params));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(target.received(), 9);
    let r = &run.report;
    assert_eq!(r["totals"]["failed"], 3, "{}", r["totals"]);
    let failed = |name: &str| r["scenarios"]["s"]["requests"][name]["failed"].as_u64();
    assert_eq!(failed("gone"), Some(0));
    assert_eq!(failed("down"), Some(3));
    assert_eq!(failed("home"), Some(0));

    // A range the wrong way round is refused before any load, by name.
    let bad = "      expected_statuses: [200, { min: 500, max: 400 }]\n      steps:\n        - request: { path: / }\n";
    let cfg = write_config(&dir, &config(&target.url, executor, bad));
    let run = run_loadtest(&dir, &["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("expected_statuses[1]") && run.stderr.contains("min <= max"),
        "{}",
        run.stderr
    );
    // So is a range without its max, by its index.
    let bad = "      expected_statuses: [200, 404, { min: 500 }]\n      steps:\n        - request: { path: / }\n";
    let cfg = write_config(&dir, &config(&target.url, executor, bad));
    let run = run_loadtest(&dir, &["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("expected_statuses[2]: `{\"min\":500}`"),
        "{}",
        run.stderr
    );
}
