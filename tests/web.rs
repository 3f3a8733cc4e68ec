//! Browser-like HTTP, against a server nobody here wrote (httpbin under
//! gunicorn): cookies kept per VU and reset per iteration, redirects
//! followed hop by hop and counted as the server counts them, bodies
//! decoded, and size caps that hold host memory down.

mod common;

use common::httpbin::{self, Httpbin};
use common::{Target, run_loadtest, write_config};
use serde_json::Value;

fn config(target: &str, http: &str, iterations: u32, steps: &str) -> String {
    format!(
        "target: {target}\nhttp: {{ {http} }}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  s:\n    plugin: steps\n    executor: per-vu-iterations\n    vus: 2\n    iterations: {iterations}\n    params:\n      steps:\n{steps}"
    )
}

fn check(report: &Value, name: &str) -> (u64, u64) {
    let c = &report["checks"][name];
    assert!(c.is_object(), "no check `{name}` in {}", report["checks"]);
    (c["passes"].as_u64().unwrap(), c["fails"].as_u64().unwrap())
}

fn request<'a>(report: &'a Value, name: &str) -> &'a Value {
    let r = &report["scenarios"]["s"]["requests"][name];
    assert!(
        r.is_object(),
        "no request row `{name}` in {}",
        report["scenarios"]["s"]["requests"]
    );
    r
}

const LOGIN: &str = r#"        - request: { path: /cookies, name: before }
          assert: [{ body_contains: "abc" }]
        - request: { path: "/cookies/set?session=abc", name: login }
          assert: [{ status: 200 }, { json: { path: $.cookies.session, equals: abc } }]
        - request: { path: /cookies, name: after }
          assert: [{ json: { path: $.cookies.session, equals: abc } }]
"#;

#[test]
fn a_session_cookie_carries_a_login_through_its_redirect_and_is_reset_each_iteration() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&bin.url, "", 3, LOGIN));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    // Per iteration: before, login (302), its redirect to /cookies, after.
    assert_eq!(r["totals"]["requests"], 24);
    assert_eq!(bin.received(24), 24, "{:?}", bin.log());
    assert_eq!(request(r, "login")["status"]["302"], 6);
    assert_eq!(request(r, "GET /cookies")["status"]["200"], 6);
    assert_eq!(check(r, "login: status is 200"), (6, 0));
    assert_eq!(check(r, "login: json $.cookies.session"), (6, 0));
    assert_eq!(check(r, "after: json $.cookies.session"), (6, 0));
    // Every iteration starts with an empty jar.
    assert_eq!(check(r, "before: body contains abc"), (0, 6));
}

#[test]
fn with_no_cookies_reset_a_vu_keeps_its_cookies_across_iterations() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&bin.url, "noCookiesReset: true", 3, LOGIN));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Only each VU's first iteration starts without the cookie.
    assert_eq!(check(&run.report, "before: body contains abc"), (4, 2));
}

#[test]
fn redirects_are_followed_hop_by_hop_with_browser_method_rules() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let steps = r#"        - request: { path: /absolute-redirect/3, name: absolute }
          assert: [{ status: 200 }]
        - request: { path: /relative-redirect/2, name: relative }
          assert: [{ status: 200 }]
        - request: { method: POST, path: "/redirect-to?url=/post&status_code=307", name: keep, body: keep-me }
          assert: [{ status: 200 }, { body_contains: keep-me }]
        - request: { method: POST, path: "/redirect-to?url=/get&status_code=302", name: to-get, body: dropped }
          assert: [{ status: 200 }]
"#;
    let cfg = write_config(&dir, &config(&bin.url, "", 2, steps));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    // 4 + 3 + 2 + 2 requests in each of 4 iterations.
    assert_eq!(r["totals"]["requests"], 44);
    let log = bin.log();
    assert_eq!(bin.received(44), 44, "{log:?}");
    let log = bin.log();
    let count = |line: &str| log.iter().filter(|l| l.as_str() == line).count();
    assert_eq!(count("POST /post 200"), 4, "307 keeps the method: {log:?}");
    // absolute, relative and to-get all end at /get; to-get's POST came
    // back as a GET after its 302.
    assert_eq!(
        count("GET /get 200"),
        12,
        "302 turns POST into GET: {log:?}"
    );
    assert!(!log.iter().any(|l| l.starts_with("POST /get")), "{log:?}");
    for name in ["absolute", "relative", "keep", "to-get"] {
        let (passes, fails) = check(r, &format!("{name}: status is 200"));
        assert_eq!((passes, fails), (4, 0), "{name}");
    }
    assert_eq!(check(r, "keep: body contains keep-me"), (4, 0));
    assert_eq!(r["scenarios"]["s"]["iterations_failed"], 0);
}

#[test]
fn a_redirect_loop_ends_as_an_error_after_the_limit() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let steps = "        - request: { path: /redirect/20, name: loop }\n";
    let cfg = write_config(&dir, &config(&bin.url, "maxRedirects: 5", 1, steps));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    let r = &run.report;
    // The request and 5 redirects went out, per VU; the 6th answer was
    // still a redirect.
    assert_eq!(r["totals"]["requests"], 12, "{}", run.stderr);
    assert_eq!(bin.received(12), 12, "{:?}", bin.log());
    let errors: u64 = r["scenarios"]["s"]["requests"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|row| row["errors"]["too_many_redirects"].as_u64())
        .sum();
    assert_eq!(errors, 2, "{}", r["scenarios"]["s"]["requests"]);
    assert_eq!(r["scenarios"]["s"]["iterations_failed"], 2);
}

#[test]
fn gzip_deflate_and_brotli_bodies_are_decoded_for_the_guest() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let steps = r#"        - request: { path: /gzip, name: gzip }
          assert: [{ body_contains: '"gzipped": true' }]
        - request: { path: /deflate, name: deflate }
          assert: [{ body_contains: '"deflated": true' }]
        - request: { path: /brotli, name: brotli }
          assert: [{ body_contains: '"brotli": true' }]
"#;
    let cfg = write_config(&dir, &config(&bin.url, "", 2, steps));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = &run.report;
    assert_eq!(check(r, "gzip: body contains \"gzipped\": true"), (4, 0));
    assert_eq!(
        check(r, "deflate: body contains \"deflated\": true"),
        (4, 0)
    );
    assert_eq!(check(r, "brotli: body contains \"brotli\": true"), (4, 0));
    // The metrics count what crossed the wire: compressed, so less than
    // the decoded JSON would be.
    let wire = request(r, "gzip")["bytes_received"].as_u64().unwrap();
    assert!(wire > 0 && wire < 4 * 400, "{wire}");
}

#[test]
fn bodies_past_the_cap_fail_as_body_too_large_and_memory_stays_bounded() {
    let target = Target::start();
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    // One scenario per body: a failed request ends its iteration.
    let scenario = |name: &str, url: &str| {
        format!(
            "  {name}:\n    plugin: steps\n    executor: per-vu-iterations\n    vus: 2\n    iterations: 1\n    params:\n      steps:\n        - request: {{ path: \"{url}\", name: {name} }}\n"
        )
    };
    let yaml = format!(
        "target: {}\nhttp: {{ maxBodyBytes: 10000 }}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n{}{}{}",
        target.url,
        scenario("large", "/bytes/5000000"),
        // 500 MB of zeros, gzip-encoded: about 500 KB on the wire.
        scenario("bomb", "/gzip/500000000"),
        scenario("chunked", &format!("{}/stream-bytes/50000", bin.url)),
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    let r = &run.report;
    for name in ["large", "bomb", "chunked"] {
        let row = &r["scenarios"][name]["requests"][name];
        assert_eq!(
            row["errors"]["body_too_large"], 2,
            "{name}: {row}\n{}",
            run.stderr
        );
        assert!(
            r["scenarios"][name]["failure_messages"]
                .to_string()
                .contains("http.maxBodyBytes"),
            "the error names the setting: {}",
            r["scenarios"][name]
        );
    }
    // 500 MB decoded would show in the peak RSS of the finished children.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    let peak_mib = usage.ru_maxrss / 1024;
    assert!(peak_mib < 200, "a child peaked at {peak_mib} MiB");
}

#[test]
fn http_steps_sends_form_bodies() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let steps = r#"        - request: { method: POST, path: /post, name: form, form: { user: ada, pass: "p w&x" } }
          assert: [{ json: { path: $.form.user, equals: ada } }, { json: { path: $.form.pass, equals: "p w&x" } }]
"#;
    let cfg = write_config(&dir, &config(&bin.url, "", 1, steps));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(check(&run.report, "form: json $.form.user"), (2, 0));
    assert_eq!(check(&run.report, "form: json $.form.pass"), (2, 0));
}

#[test]
fn steps_setup_runs_once_and_its_variables_reach_every_vu_and_teardown() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "target: {}\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  s:\n    plugin: steps\n    executor: per-vu-iterations\n    vus: 2\n    iterations: 3\n{}thresholds:\n  \"http_reqs{{kind:work}}\": [\"count==6\"]\n  \"group_duration{{group:::browse}}\": [\"count==6\"]\n",
        bin.url,
        httpbin::LIFECYCLE
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(bin.received(14), 14, "{:?}", bin.log());
    bin.assert_lifecycle(6);
    let r = &run.report;
    assert_eq!(r["scenarios"]["s"]["groups"]["::browse"]["runs"], 6);
    assert_eq!(r["scenarios"]["s"]["groups"]["::browse"]["requests"], 12);
    assert!(
        r["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["passed"] == true),
        "{}",
        r["thresholds"]
    );
}

/// Three scenarios, each a request the server sees and then one the
/// sandbox must stop: the metadata address, a redirect to a blocked
/// address, and a blocked host name.
#[test]
fn requests_to_metadata_and_blocked_destinations_fail_as_blocked_even_through_a_redirect() {
    let bin = Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    let scenario = |blocked: &str| {
        format!(
            "    plugin: steps\n    executor: per-vu-iterations\n    vus: 1\n    iterations: 3\n    params:\n      steps:\n        - request: {{ path: /get, name: ok }}\n        - request: {{ {blocked}, name: blocked }}\n"
        )
    };
    let yaml = format!(
        "target: {}\nsandbox:\n  blockIPs: [127.0.0.2]\n  blockHostnames: ['*.internal.test']\nplugins:\n  steps: {{ builtin: http-steps }}\nscenarios:\n  metadata:\n{}  redirect:\n{}  named:\n{}",
        bin.url,
        scenario("url: 'http://169.254.169.254/latest/meta-data/'"),
        scenario("path: '/redirect-to?url=http://127.0.0.2:9/get'"),
        scenario("url: 'http://api.internal.test/'"),
    );
    let cfg = write_config(&dir, &yaml);
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    let r = &run.report;
    for s in ["metadata", "redirect", "named"] {
        let rows = &r["scenarios"][s]["requests"];
        let blocked: u64 = rows
            .as_object()
            .unwrap_or_else(|| panic!("no rows for {s}: {}", run.stderr))
            .values()
            .filter_map(|row| row["errors"]["blocked"].as_u64())
            .sum();
        assert_eq!(blocked, 3, "{s}: {rows}");
        assert_eq!(rows["ok"]["status"]["200"], 3, "{s}: {rows}");
    }
    // The server saw each `ok`, and the redirect's first hop; nothing
    // blocked left the machine as a request it could count.
    assert_eq!(bin.received(12), 12, "{:?}", bin.log());
    let redirected = bin
        .log()
        .iter()
        .filter(|l| l.starts_with("GET /redirect-to"))
        .count();
    assert_eq!(redirected, 3, "{:?}", bin.log());
}
