//! k6-style JavaScript run as it is (`loadtest run script.js`) by the
//! builtin javascript plugin, against the embedded target, with counts
//! equal to the target's. The scripts follow the k6 documentation's
//! patterns; they are written here.

mod common;

use common::{BIN, Target, wait_bounded};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

struct Run {
    code: i32,
    stderr: String,
    stdout: String,
    /// Where the script ran from, kept for the files it wrote.
    dir: tempfile::TempDir,
    report: Value,
}

/// Writes `script` (and `extra` files) into a fresh directory and runs
/// `loadtest <command> script.js`.
fn k6(command: &str, script: &str, extra: &[(&str, &str)]) -> Run {
    k6_with_env(command, script, extra, &[])
}

fn k6_with_env(command: &str, script: &str, extra: &[(&str, &str)], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "script.js", script);
    for (name, text) in extra {
        write(dir.path(), name, text);
    }
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path()).arg(command);
    if command == "run" {
        cmd.args(["-q", "--json"]).arg(&report);
    }
    let out = cmd
        .arg(&path)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .env_remove("CLUSTER_ENABLED")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting loadtest");
    let mut child = out;
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let code = wait_bounded(&mut child, Duration::from_secs(120));
    let stderr = stderr.join().unwrap();
    let stdout = stdout.join().unwrap();
    let report = std::fs::read_to_string(&report)
        .ok()
        .map_or(Value::Null, |t| serde_json::from_str(&t).unwrap());
    Run {
        code,
        stderr,
        stdout,
        dir,
        report,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn check(r: &Value, name: &str) -> (u64, u64) {
    let c = &r["checks"][name];
    assert!(c.is_object(), "no check `{name}` in {}", r["checks"]);
    (c["passes"].as_u64().unwrap(), c["fails"].as_u64().unwrap())
}

/// Every named check passed `n` times and never failed.
fn all_passed(r: &Value, names: &[&str], n: u64) {
    for name in names {
        assert_eq!(check(r, name), (n, 0), "{name}: {}", r["checks"]);
    }
}

fn passed(r: &Value, metric: &str) -> bool {
    let v = r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == metric)
        .unwrap_or_else(|| panic!("no threshold on {metric}: {}", r["thresholds"]));
    v["passed"].as_bool().unwrap()
}

#[test]
fn a_check_and_sleep_script_with_thresholds_runs_as_written() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check, sleep }} from 'k6';

export const options = {{
  vus: 2,
  iterations: 10,
  thresholds: {{ checks: ['rate==1'], http_req_duration: ['p(95)<5000'] }},
}};

export default function () {{
  const res = http.get('{}/');
  check(res, {{ 'status is 200': (r) => r.status === 200, 'says hello': (r) => r.body.includes('hello') }});
  sleep(0.01);
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report;
    assert_eq!(r["totals"]["iterations"], 10);
    assert_eq!(r["totals"]["requests"], 10);
    assert_eq!(t.received(), 10);
    assert_eq!(check(r, "status is 200"), (10, 0));
    assert_eq!(check(r, "says hello"), (10, 0));
    assert!(passed(r, "checks") && passed(r, "http_req_duration"));
}

#[test]
fn setup_returns_a_token_every_vu_uses_and_teardown_gets_it_back() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
const BASE = '{}';
// As in k6, setup's and teardown's requests have no scenario tag.
export const options = {{
  vus: 3,
  iterations: 9,
  thresholds: {{ 'http_reqs{{scenario:default}}': ['count==9'], http_reqs: ['count==11'] }},
}};

export function setup() {{
  const res = http.post(`${{BASE}}/login`, JSON.stringify({{ user: 'ada' }}), {{
    headers: {{ 'Content-Type': 'application/json' }},
  }});
  return {{ token: res.json('token') }};
}}

export default function (data) {{
  const res = http.get(`${{BASE}}/`, {{ headers: {{ Authorization: `Bearer ${{data.token}}` }} }});
  check(data, {{ 'the token came from setup': (d) => d.token === 'token-ada' }});
  check(res, {{ '200': (r) => r.status === 200 }});
}}

export function teardown(data) {{
  http.get(`${{BASE}}/?bye=${{data.token}}`, {{ tags: {{ name: 'bye' }} }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report;
    assert_eq!(check(r, "the token came from setup"), (9, 0));
    let outside = &r["setup_teardown"]["requests"];
    assert_eq!(outside["POST /login"]["count"], 1, "{r}");
    assert_eq!(outside["bye"]["count"], 1, "{r}");
    assert_eq!(r["scenarios"]["default"]["requests"]["GET /"]["count"], 9);
    assert!(passed(r, "http_reqs{scenario:default}") && passed(r, "http_reqs"));
    assert_eq!(t.received(), 11);
    assert_eq!(r["totals"]["requests"], 11);
}

#[test]
fn groups_and_a_custom_trend_carry_thresholds() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ group }} from 'k6';
import {{ Trend, Counter }} from 'k6/metrics';
const cart = new Trend('cart_ms');
const orders = new Counter('orders');
export const options = {{
  vus: 2, iterations: 6,
  thresholds: {{
    cart_ms: ['max<0'],
    orders: ['count==6'],
    'group_duration{{group:::cart}}': ['count==6'],
    'http_reqs{{group:::cart::pay}}': ['count==6'],
  }},
}};
export default function () {{
  group('cart', () => {{
    const res = http.get('{0}/');
    cart.add(res.timings.duration);
    group('pay', () => {{ http.post('{0}/echo', 'paid'); orders.add(1); }});
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 99, "{}", run.stderr);
    let r = &run.report;
    assert!(!passed(r, "cart_ms"), "an impossible trend threshold fails");
    assert!(passed(r, "orders"));
    assert!(passed(r, "group_duration{group:::cart}"));
    assert!(passed(r, "http_reqs{group:::cart::pay}"));
    assert_eq!(r["trends"]["cart_ms"]["count"], 6);
    assert_eq!(
        r["scenarios"]["default"]["groups"]["::cart::pay"]["requests"],
        6
    );
    assert_eq!(t.received(), 12);
}

/// k6's tags argument: a custom metric's `add(value, tags)` and
/// `check(value, sets, tags)` put them on those samples only, over the
/// VU's own tag of the same name, which later samples carry again.
#[test]
fn custom_metrics_and_checks_take_tags_for_their_samples() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import {{ Trend, Counter, Rate, Gauge }} from 'k6/metrics';
const ms = new Trend('step_ms');
const hits = new Counter('hits');
const good = new Rate('good');
const last = new Gauge('last');
export const options = {{
  scenarios: {{
    s: {{ executor: 'per-vu-iterations', vus: 2, iterations: 3, tags: {{ endpoint: 'vu' }} }},
  }},
  thresholds: {{
    'step_ms{{endpoint:login}}': ['count==6'],
    'step_ms{{endpoint:vu}}': ['count==6'],
    'hits{{kind:x}}': ['count==12'],
    'good{{kind:y}}': ['rate==1'],
    'last{{kind:z}}': ['value==3'],
    'checks{{phase:after}}': ['rate==0.5'],
    'checks{{endpoint:vu}}': ['rate==0.5'],
    'checks{{endpoint:page}}': ['rate==1'],
  }},
}};
export default function () {{
  const res = http.get('{0}/');
  ms.add(res.timings.duration, {{ endpoint: 'login' }});
  ms.add(res.timings.duration);
  hits.add(2, {{ kind: 'x' }});
  good.add(true, {{ kind: 'y' }});
  last.add(3, {{ kind: 'z' }});
  check(res, {{ 'ok': (r) => r.status === 200, 'never': () => false }}, {{ phase: 'after' }});
  check(res, {{ 'page ok': (r) => r.status === 200 }}, {{ endpoint: 'page' }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    let r = &run.report;
    assert_eq!(run.code, 0, "{}", r["thresholds"]);
    for metric in [
        "step_ms{endpoint:login}",
        "step_ms{endpoint:vu}",
        "hits{kind:x}",
        "good{kind:y}",
        "last{kind:z}",
        "checks{phase:after}",
        "checks{endpoint:vu}",
        "checks{endpoint:page}",
    ] {
        assert!(passed(r, metric), "{metric}: {}", r["thresholds"]);
    }
    assert_eq!(r["trends"]["step_ms"]["count"], 12);
    assert_eq!(t.received(), 6);
}

/// k6's `exec.vu.tags` (and `exec.vu.metrics.tags`): a tag set there is
/// on every later sample of the VU until deleted, the scenario's tags read
/// back; metadata kept apart from them; and the test's options as the run
/// uses them, k6's defaults filled in.
#[test]
fn exec_vu_tags_tag_later_samples_and_test_options_read_back() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import exec from 'k6/execution';
import {{ check }} from 'k6';
export const options = {{
  scenarios: {{ s: {{ executor: 'per-vu-iterations', vus: 2, iterations: 2, tags: {{ team: 'a' }} }} }},
  thresholds: {{
    'http_reqs{{step:one}}': ['count==4'],
    'http_reqs{{step:two}}': ['count==4'],
    'http_reqs{{team:a}}': ['count==12'],
  }},
}};
export default function () {{
  exec.vu.tags.step = 'one';
  http.get('{0}/');
  exec.vu.metrics.tags.step = 'two';
  http.get('{0}/');
  delete exec.vu.tags.step;
  http.get('{0}/');
  exec.vu.metrics.metadata.trace_id = 'abc';
  let why = '';
  try {{ exec.vu.metrics.metadata.bad = {{}}; }} catch (e) {{ why = String(e); }}
  const o = exec.test.options;
  check(exec.vu.tags, {{
    'reads scenario tags': (t) => t.team === 'a' && t.scenario === 's' && !('step' in t),
    'lists them': (t) => JSON.stringify(Object.keys(t)) === '["team"]',
    'metadata apart': (t) => exec.vu.metrics.metadata.trace_id === 'abc' && !('trace_id' in t) && why.includes('metrics.metadata.bad'),
    'test options': () => o.scenarios.s.executor === 'per-vu-iterations' && o.scenarios.s.gracefulStop === '30s'
      && o.scenarios.s.tags.team === 'a' && o.thresholds['http_reqs{{team:a}}'][0] === 'count==12'
      && o.summaryTrendStats.join() === 'avg,min,med,max,p(90),p(95)' && Object.isFrozen(o.scenarios.s),
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    let r = &run.report;
    assert_eq!(run.code, 0, "{}", r["thresholds"]);
    let names = [
        "reads scenario tags",
        "lists them",
        "metadata apart",
        "test options",
    ];
    all_passed(r, &names, 4);
    for metric in [
        "http_reqs{step:one}",
        "http_reqs{step:two}",
        "http_reqs{team:a}",
    ] {
        assert!(passed(r, metric), "{metric}: {}", r["thresholds"]);
    }
    assert_eq!(t.received(), 12);
}

/// k6's `exec.instance` and `exec.scenario.startTime`/`progress`: the
/// share of a scenario's iterations done, iterations that ran to their
/// end apart from one that threw, the VUs, and a clock that moves while
/// the scenario's start stays.
#[test]
fn exec_instance_and_scenario_progress_follow_the_run() {
    let script = r#"import exec from 'k6/execution';
import { check } from 'k6';
export const options = { scenarios: { s: { executor: 'shared-iterations', vus: 1, iterations: 4 } } };
let last = -1;
let start = 0;
export default function () {
  const i = exec.scenario.iterationInInstance;
  const inst = exec.instance;
  const p = exec.scenario.progress;
  const t = inst.currentTestRunDuration;
  const st = exec.scenario.startTime;
  if (i === 0) start = st;
  check(null, {
    'progress is the share done': () => p === i / 4,
    'completed and interrupted': () => inst.iterationsCompleted + inst.iterationsInterrupted === i
      && inst.iterationsInterrupted === (i > 1 ? 1 : 0),
    'vus': () => inst.vusActive === 1 && inst.vusInitialized === 1,
    'clock': () => t > last && st === start && st <= Date.now() && st > Date.now() - 60000,
  });
  last = t;
  if (i === 1) throw new Error('interrupted on purpose');
}
"#;
    let run = k6("run", script, &[]);
    let r = &run.report;
    let names = [
        "progress is the share done",
        "completed and interrupted",
        "vus",
        "clock",
    ];
    all_passed(r, &names, 4);
    assert_eq!(
        r["scenarios"]["s"]["iterations_failed"], 1,
        "{}",
        r["scenarios"]
    );
}

/// `response.json(selector)` takes k6's (gjson's) paths: lengths, every
/// element's field, queries, wildcards, escaped dots; what it does not
/// support yet fails by name.
#[test]
fn json_selectors_follow_k6s_paths() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{ iterations: 1 }};
const doc = {{
  name: {{ first: 'Tom', last: 'Anderson' }}, children: ['Sara', 'Alex', 'Jack'],
  'fav.movie': 'Deer Hunter',
  friends: [
    {{ first: 'Dale', last: 'Murphy', age: 44, nets: ['ig', 'fb', 'tw'] }},
    {{ first: 'Roger', last: 'Craig', age: 68, nets: ['fb', 'tw'] }},
    {{ first: 'Jane', last: 'Murphy', age: 47, nets: ['ig', 'tw'] }},
  ],
}};
export function handleSummary() {{
  const r = http.post('{0}/echo', JSON.stringify(doc), {{ headers: {{ 'Content-Type': 'application/json' }} }});
  const q = (s) => {{ try {{ return r.json(s); }} catch (e) {{ return 'error: ' + e.message; }} }};
  const paths = ['name.last', 'children.#', 'children.1', 'child*.2', 'c?ildren.0', 'fav\\.movie',
    'friends.#.first', 'friends.#(last=="Murphy").first', 'friends.#(last=="Murphy")#.first',
    'friends.#(age>45)#.last', 'friends.#(first%"D*").last', 'friends.#(nets.#(=="fb"))#.first',
    'nope', 'children|@reverse'];
  return {{ 'json.json': JSON.stringify(paths.map((p) => [p, q(p) ?? 'none'])) }};
}}
export default function () {{}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: Value =
        serde_json::from_slice(&std::fs::read(run.dir.path().join("json.json")).unwrap()).unwrap();
    let want = serde_json::json!([
        ["name.last", "Anderson"],
        ["children.#", 3],
        ["children.1", "Alex"],
        ["child*.2", "Jack"],
        ["c?ildren.0", "Sara"],
        ["fav\\.movie", "Deer Hunter"],
        ["friends.#.first", ["Dale", "Roger", "Jane"]],
        ["friends.#(last==\"Murphy\").first", "Dale"],
        ["friends.#(last==\"Murphy\")#.first", ["Dale", "Jane"]],
        ["friends.#(age>45)#.last", ["Craig", "Murphy"]],
        ["friends.#(first%\"D*\").last", "Murphy"],
        ["friends.#(nets.#(==\"fb\"))#.first", ["Dale", "Roger"]],
        ["nope", "none"],
        [
            "children|@reverse",
            "error: json(): modifiers (@) and pipes (|) in the selector `children|@reverse` are not supported yet"
        ],
    ]);
    assert_eq!(got, want);
}

/// A SharedArray's function runs once in the whole run (here in the probe
/// that reads the options), and every VU reads the items the host keeps:
/// copies, read-only, an array to the script's eye.
#[test]
fn a_shared_array_from_a_json_file_opened_in_init() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import {{ SharedArray }} from 'k6/data';
import {{ pick }} from './lib/pick.js';
const users = new SharedArray('users', () => {{
  console.log(`building users in VU ${{__VU}}`);
  return JSON.parse(open('./data/users.json'));
}});
export const options = {{ vus: 4, iterations: 12 }};
function readOnly(write) {{
  try {{ write(); return false; }} catch (e) {{ return e instanceof TypeError && e.message.includes('read-only'); }}
}}
export default function () {{
  const user = pick(users, __ITER);
  const res = http.post('{}/echo', JSON.stringify({{ user: user.name }}));
  check(res, {{ 'the user came back': (r) => r.json('user') === user.name }});
  check(users, {{
    'an array of three': (u) => Array.isArray(u) && u.length === 3 && JSON.stringify(u) === '[{{"name":"ada"}},{{"name":"grace"}},{{"name":"linus"}}]',
    'for-of and map see every item': (u) => {{
      const names = [];
      for (const x of u) names.push(x.name);
      return names.join() === 'ada,grace,linus' && u.map((x) => x.name).join() === names.join();
    }},
    'no item past the ends': (u) => u[3] === undefined && u[-1] === undefined && !(3 in u) && 2 in u,
    'each read is a copy': (u) => {{ u[0].name = 'changed'; return u[0].name === 'ada' && u[0] !== u[0]; }},
    'writes are refused': (u) => readOnly(() => {{ u[0] = 1; }}) && readOnly(() => {{ u.push(1); }}) && readOnly(() => {{ delete u[1]; }}),
  }});
}}
"#,
        t.url
    );
    let lib = "export function pick(list, i) { return list[i % list.length]; }\n";
    let users = r#"[{"name": "ada"}, {"name": "grace"}, {"name": "linus"}]"#;
    let env = [("RUST_LOG", "warn,plugin=info")];
    let run = k6_with_env(
        "run",
        &script,
        &[("lib/pick.js", lib), ("data/users.json", users)],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check(&run.report, "the user came back"), (12, 0));
    for name in [
        "an array of three",
        "for-of and map see every item",
        "no item past the ends",
        "each read is a copy",
        "writes are refused",
    ] {
        assert_eq!(check(&run.report, name), (12, 0), "{name}");
    }
    assert_eq!(t.received(), 12);
    let built = run.stderr.matches("building users in VU").count();
    assert_eq!(built, 1, "built {built} times, not once:\n{}", run.stderr);
}

#[test]
fn http_batch_sends_every_request_once() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 2, iterations: 4, batchPerHost: 2 }};
export default function () {{
  const responses = http.batch([
    ['GET', '{0}/'],
    ['GET', '{0}/json', null, {{ tags: {{ name: 'json' }} }}],
    '{0}/',
  ]);
  check(responses, {{ 'all three are 200': (rs) => rs.length === 3 && rs.every((r) => r.status === 200) }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check(&run.report, "all three are 200"), (4, 0));
    assert_eq!(run.report["totals"]["requests"], 12);
    assert_eq!(t.received(), 12);
}

#[test]
fn options_scenarios_run_two_executors_with_their_exec_functions() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{
  scenarios: {{
    browse: {{ executor: 'per-vu-iterations', vus: 2, iterations: 3, exec: 'browse' }},
    buy: {{ executor: 'shared-iterations', vus: 1, iterations: 4, exec: 'buy' }},
  }},
}};
export function browse() {{ http.get('{0}/', {{ tags: {{ name: 'browse' }} }}); }}
export function buy() {{ http.post('{0}/echo', 'x', {{ tags: {{ name: 'buy' }} }}); }}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.report["scenarios"];
    assert_eq!(s["browse"]["iterations"], 6);
    assert_eq!(s["buy"]["iterations"], 4);
    assert_eq!(s["browse"]["requests"]["browse"]["count"], 6);
    assert_eq!(s["buy"]["requests"]["buy"]["count"], 4);
    assert_eq!(t.received(), 10);
}

#[test]
fn script_errors_name_the_file_line_and_column() {
    let t = Target::start();
    let script = format!(
        "import http from 'k6/http';\nexport const options = {{ vus: 1, iterations: 2 }};\nexport default function () {{\n  http.get('{}/');\n  throw new Error('the cart was empty');\n}}\n",
        t.url
    );
    let run = k6("run", &script, &[]);
    let messages = run.report["scenarios"]["default"]["failure_messages"].to_string();
    assert!(
        messages.contains("the cart was empty") && messages.contains("script.js:5:"),
        "{messages}"
    );
    assert_eq!(run.report["scenarios"]["default"]["iterations_failed"], 2);

    let broken = "export default function () {\n  let x = ;\n}\n";
    let run = k6("validate", broken, &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("script.js:2"), "{}", run.stderr);

    let unsupported = "import ws from 'k6/ws';\nexport default function () {}\n";
    let run = k6("validate", unsupported, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`k6/ws` is not supported"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_yaml_config_can_name_a_script_as_its_plugin() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "import http from 'k6/http';\nimport exec from 'k6/execution';\nimport {{ check }} from 'k6';\nexport default function () {{\n  check(http.get('{}/'), {{ 'ok': (r) => r.status === 200 }});\n  let why = '';\n  try {{ exec.test.options; }} catch (e) {{ why = String(e); }}\n  check(why, {{ 'no options under YAML': (w) => w.includes('a YAML config names as its plugin') }});\n}}\n",
        t.url
    );
    write(dir.path(), "shop.js", &script);
    let cfg = common::write_config(
        &dir,
        "plugins:\n  shop: { script: ./shop.js }\nscenarios:\n  s: { plugin: shop, executor: per-vu-iterations, vus: 2, iterations: 3 }\n",
    );
    let env = [("RUST_LOG", "warn,plugin=debug")];
    let run = common::run_loadtest_env(&dir, &["run", "-q", cfg.to_str().unwrap()], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    all_passed(&run.report, &["ok", "no options under YAML"], 6);
    assert_eq!(t.received(), 6);
    // Compiled once before the run, as a script run is; each VU loads it.
    let count = |what: &str| run.stderr.matches(what).count();
    for module in ["shop.js", "k6/http"] {
        assert_eq!(
            count(&format!("`{module}` compiled from source")),
            1,
            "{}",
            run.stderr
        );
        assert!(
            count(&format!("`{module}` loaded from bytecode")) >= 2,
            "{}",
            run.stderr
        );
    }
}

/// A named script whose scenarios give one `env` is compiled under it
/// before the run, and the SharedArray its top level builds there is the
/// run's: built once, not again by the first VU.
#[test]
fn a_named_script_compiles_under_its_scenarios_env_and_builds_shared_arrays_once() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let script = "import http from 'k6/http';\nimport { SharedArray } from 'k6/data';\n\
        if (!__ENV.BASE) throw new Error('BASE is not set');\n\
        const paths = new SharedArray('paths', () => { console.log(`building paths in VU ${__VU}`); return ['/', '/json']; });\n\
        export default function () {\n  http.get(__ENV.BASE + paths[__ITER % paths.length]);\n}\n";
    write(dir.path(), "env.js", script);
    let scenario = |name: &str| {
        format!(
            "  {name}: {{ plugin: e, executor: per-vu-iterations, vus: 2, iterations: 2, params: {{ env: {{ BASE: '{}' }} }} }}\n",
            t.url
        )
    };
    let yaml = format!(
        "plugins:\n  e: {{ script: ./env.js }}\nscenarios:\n{}{}",
        scenario("s"),
        scenario("t")
    );
    let cfg = common::write_config(&dir, &yaml);
    let env = [("RUST_LOG", "warn,plugin=info")];
    let run = common::run_loadtest_env(&dir, &["run", "-q", cfg.to_str().unwrap()], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.received(), 8, "{}", run.stderr);
    assert!(!run.stderr.contains("not compiled ahead"), "{}", run.stderr);
    let built = run.stderr.matches("building paths in VU").count();
    assert_eq!(built, 1, "built {built} times, not once:\n{}", run.stderr);
}

/// A script whose top level needs what its scenarios give differently
/// (here `params.env`) cannot be compiled ahead: the run warns and its VUs
/// parse it, as before.
#[test]
fn a_named_script_that_fails_ahead_of_the_run_is_parsed_by_each_vu() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let script = "import http from 'k6/http';\nif (!__ENV.BASE) throw new Error('BASE is not set');\nexport default function () {\n  http.get(__ENV.BASE + '/');\n}\n";
    write(dir.path(), "env.js", script);
    let scenario = |name: &str, who: &str| {
        format!(
            "  {name}: {{ plugin: e, executor: per-vu-iterations, vus: 2, iterations: 2, params: {{ env: {{ BASE: '{}', WHO: {who} }} }} }}\n",
            t.url
        )
    };
    let yaml = format!(
        "plugins:\n  e: {{ script: ./env.js }}\nscenarios:\n{}{}",
        scenario("s", "a"),
        scenario("t", "b")
    );
    let cfg = common::write_config(&dir, &yaml);
    let run = common::run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.received(), 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("env.js: not compiled ahead") && run.stderr.contains("BASE is not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_script_is_compiled_once_and_every_vu_loads_its_bytecode() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ path }} from './lib/paths.js';

export const options = {{ vus: 4, iterations: 8 }};

export default function () {{
  http.get('{}' + path(__ITER));
}}
"#,
        t.url
    );
    let lib = "export function path(i) {\n  return `/item/${i}`;\n}\n";
    let env = [("RUST_LOG", "warn,plugin=debug")];
    let run = k6_with_env("run", &script, &[("lib/paths.js", lib)], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["totals"]["requests"], 8);
    assert_eq!(t.received(), 8);
    let count = |what: &str| run.stderr.matches(what).count();
    for module in ["script.js", "lib/paths.js", "k6/http"] {
        // Once, when the script's options were read; never by a VU.
        let compiled = format!("`{module}` compiled from source");
        assert_eq!(count(&compiled), 1, "{module}: {}", run.stderr);
        let loaded = format!("`{module}` loaded from bytecode");
        assert!(count(&loaded) >= 4, "{module}: {}", run.stderr);
    }
}

/// VUs draw different numbers even when started together, and
/// `randomSeed` repeats a sequence.
#[test]
fn math_random_differs_between_vus_and_random_seed_repeats_it() {
    let script = r#"import { check, randomSeed } from 'k6';

export const options = {
  scenarios: { once: { executor: 'per-vu-iterations', vus: 4, iterations: 1 } },
};

export default function () {
  const x = Math.random();
  console.log(`draw ${x}`);
  randomSeed(7);
  const a = [Math.random(), Math.random()];
  randomSeed(7);
  const b = [Math.random(), Math.random()];
  check(a, {
    'randomSeed repeats': () => a[0] === b[0] && a[1] === b[1],
    'in [0, 1)': () => a.every((v) => v >= 0 && v < 1) && x >= 0 && x < 1,
    'not stuck': () => a[0] !== a[1],
  });
}
"#;
    let env = [("RUST_LOG", "warn,plugin=info")];
    let run = k6_with_env("run", script, &[], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in ["randomSeed repeats", "in [0, 1)", "not stuck"] {
        assert_eq!(check(&run.report, name), (4, 0), "{name}");
    }
    let draws: std::collections::BTreeSet<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split("draw ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(draws.len(), 4, "the VUs drew the same: {}", run.stderr);
}

#[test]
fn a_response_has_k6s_fields_whether_read_serialised_or_replaced() {
    let t = Target::start();
    // Port 1 on loopback: nothing listens, so the request fails to connect.
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';

export const options = {{ vus: 1, iterations: 3 }};

export default function () {{
  const r = http.get('{url}/');
  const b = http.batch(['{url}/', ['POST', '{url}/echo', 'hi']]);
  const failed = http.get('http://127.0.0.1:1/');
  const j = JSON.parse(JSON.stringify(r));
  check(r, {{
    'status and body': (r) => r.status === 200 && r.body.includes('hello'),
    'headers by canonical name': (r) => r.headers['Content-Type'] === 'text/plain',
    'timings add up': (r) => r.timings.duration > 0 && r.timings.waiting <= r.timings.duration,
    'request and url': (r) => r.request.method === 'GET' && r.request.url === '{url}/' && r.url === '{url}/',
    'serialised whole': () => j.status === 200 && j.headers['Content-Type'] === 'text/plain' && j.timings.duration > 0 && j.request.method === 'GET',
    'batch in order': () => b.length === 2 && b[0].status === 200 && b[1].request.method === 'POST' && b[1].body === 'hi',
    'failure is a status 0': () => failed.status === 0 && failed.error_code === 1210 && failed.error !== '' && Object.keys(failed.headers).length === 0,
    'fields can be replaced': (r) => {{ r.headers = {{ a: 1 }}; r.timings = 5; return r.headers.a === 1 && r.timings === 5; }},
    'status text as k6 words it': (r) => r.status_text === '200 OK' && failed.status_text === '',
    'missing fields fail by name': (r) => {{
      try {{ r.ocsp; return false; }} catch (e) {{ return String(e).includes('response.ocsp is not supported yet'); }}
    }},
  }});
}}
"#,
        url = t.url
    );
    let run = k6("run", &script, &[]);
    let r = &run.report;
    assert_eq!(t.received(), 9, "{}", run.stderr);
    all_passed(
        r,
        &[
            "status and body",
            "headers by canonical name",
            "timings add up",
            "request and url",
            "serialised whole",
            "batch in order",
            "failure is a status 0",
            "fields can be replaced",
            "status text as k6 words it",
            "missing fields fail by name",
        ],
        3,
    );
}

#[test]
fn k6_crypto_hashes_and_signs_as_k6_does() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import crypto from 'k6/crypto';
import {{ sha256, hmac, createHash }} from 'k6/crypto';

export const options = {{ vus: 1, iterations: 2 }};

export default function () {{
  const sig = hmac('sha256', 'key', 'The quick brown fox jumps over the lazy dog', 'hex');
  const r = http.get('{}/', {{ headers: {{ 'X-Signature': sig }} }});
  check(r, {{
    'md5 and sha1': () => crypto.md5('hello', 'hex') === '5d41402abc4b2a76b9719d911017c592'
      && crypto.sha1('hello', 'hex') === 'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d',
    'sha256 in hex and base64': () => sha256('hello', 'hex') === '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
      && sha256('hello', 'base64') === 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=',
    'hmac': () => sig === 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    'incremental': () => createHash('sha256').update('hel').update('lo').digest('hex') === sha256('hello', 'hex'),
    'binary and random bytes': () => sha256('hello', 'binary').byteLength === 32 && crypto.randomBytes(16).byteLength === 16,
    'an unknown algorithm says so': () => {{
      try {{ crypto.hmac('md4', 'k', 'd', 'hex'); return false; }} catch (e) {{ return String(e).includes('`md4` is not supported'); }}
    }},
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.received(), 2);
    for name in [
        "md5 and sha1",
        "sha256 in hex and base64",
        "hmac",
        "incremental",
        "binary and random bytes",
        "an unknown algorithm says so",
    ] {
        assert_eq!(
            check(&run.report, name),
            (2, 0),
            "{name}: {}",
            run.report["checks"]
        );
    }
}

/// k6's `check`: every entry in order, a function called with the value
/// or a value taken as it is, a throwing function a failed check, the
/// result whether all passed; a third argument (tags) is accepted.
#[test]
fn check_counts_functions_values_and_throws_as_k6_does() {
    let script = r#"import { check } from 'k6';

export const options = { vus: 1, iterations: 3 };

export default function () {
  const all = check(5, {
    'fn true': (v) => v === 5,
    'fn throws': () => { throw new Error('boom'); },
    'value truthy': 1,
    'value falsy': '',
  }, { page: 'home' });
  check(all, { 'returned false': (a) => a === false });
  const none = check(0, {});
  check(none, { 'empty is true': (a) => a === true });
  check(null, null);
}
"#;
    let run = k6("run", script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (name, passes, fails) in [
        ("fn true", 3, 0),
        ("fn throws", 0, 3),
        ("value truthy", 3, 0),
        ("value falsy", 0, 3),
        ("returned false", 3, 0),
        ("empty is true", 3, 0),
    ] {
        assert_eq!(check(&run.report, name), (passes, fails), "{name}");
    }
    assert_eq!(run.report["checks"].as_object().unwrap().len(), 6);
}

#[test]
fn expected_statuses_decide_what_fails_and_tag_expected_response() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{
  vus: 1,
  iterations: 2,
  thresholds: {{
    'http_req_duration{{expected_response:true}}': ['count==6'],
    'http_reqs{{expected_response:false}}': ['count==6'],
    http_req_failed: ['rate<0.5'],
  }},
}};
http.setResponseCallback(http.expectedStatuses(200, {{ min: 404, max: 404 }}));
export default function () {{
  http.get('{0}/status/404', {{ tags: {{ name: 'expected 404' }} }});
  http.get('{0}/status/503', {{ tags: {{ name: 'unexpected 503' }} }});
  http.get('{0}/status/503', {{ tags: {{ name: 'own 503' }}, responseCallback: http.expectedStatuses(503) }});
  http.get('{0}/status/201', {{ tags: {{ name: 'unjudged 201' }}, responseCallback: null }});
  http.get('{0}/status/201', {{ tags: {{ name: 'after 201' }} }});
  // In a batch, each request's own callback judges it alone.
  http.batch([
    ['GET', '{0}/status/503', null, {{ tags: {{ name: 'batch own 503' }}, responseCallback: http.expectedStatuses(503) }}],
    ['GET', '{0}/status/201', null, {{ tags: {{ name: 'batch unjudged 201' }}, responseCallback: null }}],
    ['GET', '{0}/status/503', null, {{ tags: {{ name: 'batch vu 503' }} }}],
  ]);
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report;
    assert_eq!(r["totals"]["requests"], 16);
    assert_eq!(t.received(), 16);
    assert_eq!(r["totals"]["failed"], 6);
    let failed = |name: &str| r["scenarios"]["default"]["requests"][name]["failed"].as_u64();
    assert_eq!(failed("expected 404"), Some(0));
    assert_eq!(failed("unexpected 503"), Some(2));
    assert_eq!(failed("own 503"), Some(0));
    assert_eq!(failed("unjudged 201"), Some(0));
    assert_eq!(failed("after 201"), Some(2));
    assert_eq!(failed("batch own 503"), Some(0));
    assert_eq!(failed("batch unjudged 201"), Some(0));
    assert_eq!(failed("batch vu 503"), Some(2));
    assert!(
        passed(r, "http_req_duration{expected_response:true}"),
        "{}",
        r["thresholds"]
    );
    assert!(
        passed(r, "http_reqs{expected_response:false}"),
        "{}",
        r["thresholds"]
    );
    assert!(passed(r, "http_req_failed"), "{}", r["thresholds"]);
}

#[test]
fn a_response_callback_that_is_not_expected_statuses_is_refused_with_the_reason() {
    let script = "import http from 'k6/http';\n\
                  http.setResponseCallback((r) => r.status === 200);\n\
                  export default function () {}\n";
    let run = k6("validate", script, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("setResponseCallback() takes what http.expectedStatuses() returns"),
        "{}",
        run.stderr
    );
    let script = "import http from 'k6/http';\n\
                  http.expectedStatuses(200, 'ok');\n\
                  export default function () {}\n";
    let run = k6("validate", script, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("expectedStatuses() argument 2"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_responses_body_and_headers_stay_readable_after_later_requests() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';

export const options = {{ vus: 1, iterations: 3 }};

// A response kept from one iteration to the next.
let kept;

export default function () {{
  const first = http.get('{url}/json');
  const second = http.post('{url}/echo', 'second');
  const none = http.get('{url}/', {{ responseType: 'none' }});
  const unread = http.get('{url}/json');
  const whole = JSON.parse(JSON.stringify(unread));
  const prev = kept;
  kept = first;
  check(first, {{
    'read after later requests': (r) => r.json('name') === 'widget' && second.body === 'second',
    'headers and timings read late': (r) => r.headers['Content-Type'] === 'application/json' && r.timings.duration > 0,
    'a read body is an own field': (r) => r.body === r.body && Object.keys(r).includes('body'),
    'responseType none': () => none.status === 200 && none.body === null && none.headers['Content-Type'] === 'text/plain',
    'serialised before read': () => whole.body.includes('widget') && whole.headers['Content-Type'] === 'application/json',
    'kept across iterations': () => prev === undefined || prev.json('id') === 42,
  }});
}}
"#,
        url = t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.received(), 12, "{}", run.stderr);
    for name in [
        "read after later requests",
        "headers and timings read late",
        "a read body is an own field",
        "responseType none",
        "serialised before read",
        "kept across iterations",
    ] {
        assert_eq!(
            check(&run.report, name),
            (3, 0),
            "{name}: {}",
            run.report["checks"]
        );
    }
}

#[test]
fn responses_kept_past_the_memory_limit_stop_the_vu_with_the_reason() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // 1 MB bodies, never dropped: the 40th would hold 40 MB on the host
    // for a VU whose sandbox allows 32 MiB.
    let script = format!(
        "import http from 'k6/http';\nconst kept = [];\nexport default function () {{\n  for (let i = 0; i < 40; i++) kept.push(http.get('{}/bytes/1000000'));\n}}\n",
        t.url
    );
    write(dir.path(), "hoard.js", &script);
    let cfg = common::write_config(
        &dir,
        "sandbox: { memoryMb: 32 }\nplugins:\n  hoard: { script: ./hoard.js }\nscenarios:\n  s: { plugin: hoard, executor: per-vu-iterations, vus: 1, iterations: 1 }\n",
    );
    let run = common::run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    let messages = run.report["scenarios"]["s"]["failure_messages"].to_string();
    assert!(
        messages.contains("responses it has not dropped") && messages.contains("sandbox.memoryMb"),
        "{messages}\n{}",
        run.stderr
    );
    // It stopped at the limit: 33 responses fit in 32 MiB, the 34th did not.
    let sent = t.received();
    assert!((33..=34).contains(&sent), "{sent}");
}

#[test]
fn responses_a_script_lets_go_are_released_on_the_host() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    // 100 MB through a VU allowed 32 MiB: each response is freed by
    // QuickJS when the next replaces it, and the host lets its body go.
    let script = format!(
        "import http from 'k6/http';\nexport default function () {{\n  let last;\n  for (let i = 0; i < 100; i++) last = http.get('{}/bytes/1000000');\n  if (last.body.length !== 1000000) throw new Error('short body');\n}}\n",
        t.url
    );
    write(dir.path(), "stream.js", &script);
    let cfg = common::write_config(
        &dir,
        "sandbox: { memoryMb: 32 }\nplugins:\n  s: { script: ./stream.js }\nscenarios:\n  s: { plugin: s, executor: per-vu-iterations, vus: 1, iterations: 1 }\n",
    );
    let run = common::run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.report["scenarios"]["s"];
    assert_eq!(s["iterations_failed"], 0, "{s}");
    assert_eq!(t.received(), 100);
}

/// k6's cookie and auth params against a real server (httpbin): request
/// cookies beside a Cookie header and the jar's, `response.cookies` from
/// Set-Cookie, credentials in the URL as Basic or Digest auth, and the
/// params loadtest lacks failing by name.
#[test]
fn request_cookies_response_cookies_and_url_credentials_work_as_in_k6() {
    let bin = common::httpbin::Httpbin::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 1, iterations: 1 }};
const B = '{b}';
const refused = (params) => {{
  try {{ http.get(`${{B}}/get`, params); return 'sent'; }} catch (e) {{ return String(e); }}
}};
export default async function () {{
  http.cookieJar().set(B, 'jarred', 'j');
  const sent = http.get(`${{B}}/headers`, {{
    headers: {{ Cookie: 'given=g' }},
    cookies: {{ plain: 'p', boxed: {{ value: 'b' }} }},
    jar: http.cookieJar(),
  }}).json('headers.Cookie');
  const set = http.get(`${{B}}/response-headers?Set-Cookie=sid%3Dabc%3B%20Path%3D%2Fx%3B%20HttpOnly%3B%20Max-Age%3D60`, {{ redirects: 0 }});
  const authed = http.get(B.replace('://', '://ada:s%3Acret@') + '/basic-auth/ada/s:cret');
  const denied = http.get(B.replace('://', '://ada:wrong@') + '/basic-auth/ada/s:cret');
  const withDigest = (pass, path) => http.get(B.replace('://', `://ada:${{pass}}@`) + path, {{ auth: 'digest' }});
  const digest = ['/digest-auth/auth/ada/s3cret', '/digest-auth/auth/ada/s3cret/SHA-256']
    .map((path) => withDigest('s3cret', path));
  const wrongDigest = withDigest('nope', '/digest-auth/auth/ada/s3cret');
  const asyncDigest = await http.asyncRequest('GET', B.replace('://', '://ada:s3cret@') + '/digest-auth/auth/ada/s3cret', null, {{ auth: 'digest' }});
  check(null, {{
    'request cookies join the header and the jar': () => sent === 'given=g; plain=p; boxed=b; jarred=j',
    'response cookies': () => {{
      const c = set.cookies.sid && set.cookies.sid[0];
      return c && c.value === 'abc' && c.path === '/x' && c.http_only === true && c.secure === false && c.max_age === 60;
    }},
    'url credentials are basic auth': () => authed.status === 200 && authed.json('user') === 'ada' && denied.status === 401,
    'ntlm is refused by name': () => refused({{ auth: 'ntlm' }}).includes('params.auth `ntlm`'),
    'digest answers the challenge': () => digest.concat([asyncDigest]).every((r) => r.status === 200 && r.json('authenticated') === true),
    'a wrong digest password is refused': () => wrongDigest.status === 401,
    'br compression is refused by name': () => refused({{ compression: 'br' }}).includes('params.compression `br` is not supported'),
    'a foreign jar is refused': () => refused({{ jar: {{}} }}).includes('params.jar must be http.cookieJar()'),
    'replace is refused': () => refused({{ cookies: {{ a: {{ value: 'b', replace: true }} }} }}).includes('params.cookies.a.replace'),
    'the jar sets with options, deletes and clears by URL': () => {{
      const jar = http.cookieJar();
      jar.clear();
      jar.set(B, 'a', '1');
      jar.set(`${{B}}/x/`, 'c', '3', {{ path: '/x', max_age: 60 }});
      const both = Object.keys(jar.cookiesForURL(`${{B}}/x/y`)).sort().join();
      jar.delete(B, 'a');
      const deleted = Object.keys(jar.cookiesForURL(`${{B}}/x/y`)).join();
      jar.set(B, 'b', '2');
      jar.clear(B);
      const cleared = Object.keys(jar.cookiesForURL(`${{B}}/x/y`)).join();
      return both === 'a,c' && deleted === 'c' && cleared === 'c' && Object.keys(jar.cookiesForURL(B)).length === 0;
    }},
  }});
}}
"#,
        b = bin.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report;
    all_passed(
        r,
        &[
            "request cookies join the header and the jar",
            "response cookies",
            "url credentials are basic auth",
            "ntlm is refused by name",
            "digest answers the challenge",
            "a wrong digest password is refused",
            "br compression is refused by name",
            "a foreign jar is refused",
            "replace is refused",
            "the jar sets with options, deletes and clears by URL",
        ],
        1,
    );
}

/// k6's `new http.CookieJar()` against a real server (httpbin): a request
/// naming it stores what the server sets, through a redirect too, in it
/// and not in the VU's jar; it keeps its cookies across iterations while
/// the VU's is emptied; batches use it; requests sent together from
/// different jars fail by name.
#[test]
fn a_script_s_own_cookie_jar_holds_its_cookies_apart_from_the_vu_s() {
    let bin = common::httpbin::Httpbin::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 1, iterations: 2 }};
const B = '{b}';
const kept = new http.CookieJar();
export default function () {{
  const first = kept.cookiesForURL(B).kept === undefined;
  if (first) http.get(`${{B}}/cookies/set?kept=k`, {{ jar: kept }});
  const jar = new http.CookieJar();
  const own = http.get(`${{B}}/cookies/set?own=1`, {{ jar }}).json('cookies');
  const vu = http.get(`${{B}}/cookies`).json('cookies');
  jar.set(B, 'extra', 'e');
  const batch = http.batch([['GET', `${{B}}/cookies`, null, {{ jar }}], ['GET', `${{B}}/cookies`, null, {{ jar }}]]);
  let mixed = '';
  try {{ http.batch([['GET', `${{B}}/get`, null, {{ jar }}], ['GET', `${{B}}/get`]]); }} catch (e) {{ mixed = String(e); }}
  for (let i = 0; i < 2000; i++) new http.CookieJar();
  check(null, {{
    'a redirect stores into the jar named': () => own.own === '1',
    'the VU jar does not get them': () => vu.own === undefined,
    'the jar sets and lists': () => Object.keys(jar.cookiesForURL(B)).sort().join() === 'extra,own',
    'a batch sends from the jar': () => batch.every((r) => r.json('cookies.extra') === 'e'),
    'different jars together fail by name': () => mixed.includes('must use one cookie jar'),
    'a jar outlives the iteration': () => first || kept.cookiesForURL(B).kept[0] === 'k',
  }});
}}
"#,
        b = bin.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report;
    all_passed(
        r,
        &[
            "a redirect stores into the jar named",
            "the VU jar does not get them",
            "the jar sets and lists",
            "a batch sends from the jar",
            "different jars together fail by name",
            "a jar outlives the iteration",
        ],
        2,
    );
}

/// A script that keeps every jar it makes is stopped at the cap, with a
/// message that says so, rather than growing the host's memory.
#[test]
fn a_script_that_hoards_cookie_jars_is_stopped() {
    let script = "import http from 'k6/http';
export const options = { vus: 1, iterations: 1 };
const all = [];
export default function () {
  for (let i = 0; i < 1100; i++) all.push(new http.CookieJar());
}
";
    let run = k6("run", script, &[]);
    let messages = run.report["scenarios"]["default"]["failure_messages"].to_string();
    assert!(
        messages.contains("1024 cookie jars it has not dropped"),
        "{messages}\n{}",
        run.stderr
    );
}

/// `response.proto`, `remote_ip`, `remote_port`, `tls_version` and
/// `tls_cipher_suite` name the connection that answered: HTTP/1.1 in the
/// clear, HTTP/2 over TLS 1.3 (the target offers both by ALPN), in a
/// batch too, and empty for a request that got no response.
#[test]
fn responses_tell_the_connection_that_answered() {
    let plain = Target::start();
    let tls = Target::start_tls();
    let port = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 1, iterations: 1, insecureSkipTLSVerify: true }};
export default function () {{
  const p = http.get('{plain}/');
  const t = http.get('{tls}/');
  const none = http.get('http://127.0.0.1:1/');
  const both = http.batch([['GET', '{tls}/'], ['GET', '{plain}/']]);
  check(null, {{
    'in a batch': () => both[0].proto === 'HTTP/2.0' && both[1].proto === 'HTTP/1.1' && both[1].remote_port === {pp} && both[0].body.startsWith('hello from'),
    'in the clear': () => p.proto === 'HTTP/1.1' && p.remote_ip === '127.0.0.1' && p.remote_port === {pp} && p.tls_version === '' && p.tls_cipher_suite === '',
    'over tls': () => t.proto === 'HTTP/2.0' && t.remote_port === {tp} && t.tls_version === http.TLS_1_3 && /^TLS_(AES|CHACHA20)_/.test(t.tls_cipher_suite),
    'no response': () => none.error_code !== 0 && none.proto === '' && none.remote_port === 0,
    'ocsp fails by name': () => {{ try {{ return p.ocsp === 1; }} catch (e) {{ return String(e).includes('response.ocsp'); }} }},
  }});
}}
"#,
        plain = plain.url,
        tls = tls.url,
        pp = port(&plain.url),
        tp = port(&tls.url),
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names = [
        "in the clear",
        "over tls",
        "no response",
        "in a batch",
        "ocsp fails by name",
    ];
    all_passed(&run.report, &names, 1);
}

/// k6's `hosts`: a name (with or without a port, or under a `*.`
/// pattern) goes to the address given, not to DNS, and the request is
/// recorded under its URL.
#[test]
fn hosts_send_names_to_the_addresses_given() {
    let t = Target::start();
    let port = t.url.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{
  vus: 1, iterations: 2,
  hosts: {{ 'shop.test': '127.0.0.1', 'api.shop.test:80': '127.0.0.1:{port}', '*.cdn.test': '127.0.0.1' }},
}};
export default function () {{
  const named = http.get('http://shop.test:{port}/');
  const ported = http.get('http://api.shop.test/json');
  const pattern = http.get('http://img.eu.cdn.test:{port}/');
  check(null, {{
    'a name': () => named.status === 200 && named.remote_ip === '127.0.0.1' && named.url === 'http://shop.test:{port}/',
    'a name and port': () => ported.status === 200 && ported.remote_port === {port},
    'a pattern': () => pattern.status === 200,
  }});
}}
"#
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    all_passed(&run.report, &["a name", "a name and port", "a pattern"], 2);
    assert_eq!(run.report["totals"]["requests"], 6);
    assert_eq!(t.received(), 6);

    let bad = "export const options = { hosts: { 'shop.test': 'staging.internal' } };\nexport default function () {}\n";
    let run = k6("validate", bad, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`shop.test`") && run.stderr.contains("is not an address"),
        "{}",
        run.stderr
    );
}

/// k6's `noVUConnectionReuse` and `noConnectionReuse`, counted by the
/// server: one connection for the whole run by default, one per
/// iteration, one per request.
#[test]
fn connections_are_reused_per_run_per_iteration_or_never_as_asked() {
    for (option, connections) in [
        ("", 1),
        ("noVUConnectionReuse: true,", 3),
        ("noConnectionReuse: true,", 6),
    ] {
        let t = Target::start();
        let script = format!(
            r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ {option} vus: 1, iterations: 3 }};
export default function () {{
  check(http.get('{0}/'), {{ 'first': (r) => r.status === 200 }});
  check(http.get('{0}/json'), {{ 'second': (r) => r.status === 200 }});
}}
"#,
            t.url
        );
        let run = k6("run", &script, &[]);
        assert_eq!(run.code, 0, "{option}: {}", run.stderr);
        all_passed(&run.report, &["first", "second"], 3);
        assert_eq!(t.received(), 6, "{option}");
        assert_eq!(t.connections(), connections, "{option}");
    }
}

/// k6's `rps`: five VUs that could send thirty requests in a blink are
/// held to twenty a second, so the run lasts at least the 1.45 s the
/// twenty-ninth interval ends at; every request still goes out once.
#[test]
fn rps_caps_requests_per_second_across_vus() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{ rps: 20, vus: 5, iterations: 30 }};
export default function () {{ http.get('{}/'); }}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report["totals"]["requests"], 30);
    assert_eq!(t.received(), 30);
    let secs = run.report["duration_secs"].as_f64().unwrap();
    assert!(secs >= 1.45, "30 requests at 20/s took {secs} s");
}

/// k6's `httpDebug`: each exchange's request and response on stderr, with
/// bodies when `full` (a compressed one by its size).
#[test]
fn http_debug_prints_each_request_and_response() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{ httpDebug: 'full', vus: 1, iterations: 1 }};
export default function () {{
  http.post('{0}/echo', 'ping-body', {{ headers: {{ 'X-Trace': 'abc' }} }});
  http.get('{0}/gzip/64');
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let err = &run.stderr;
    let expect = [
        format!("Request:\nPOST {}/echo HTTP/1.1\n", t.url),
        "x-trace: abc\n".to_string(),
        "Response:\nHTTP/1.1 200 OK\n".to_string(),
        "-encoded]".to_string(),
    ];
    for e in &expect {
        assert!(
            err.to_lowercase().contains(&e.to_lowercase()),
            "{e:?} in {err}"
        );
    }
    // The body, once sent and once echoed back.
    assert_eq!(err.matches("ping-body").count(), 2, "{err}");
    assert_eq!(t.received(), 2);
}

/// k6's `compression`: the body goes out gzipped, deflated (zlib), or
/// both in the order named, as the echoing target shows it.
#[test]
fn request_bodies_are_compressed_as_params_ask() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 1, iterations: 1 }};
const sent = (compression) => new Uint8Array(
  http.post('{0}/echo', 'a'.repeat(1000), {{ compression, responseType: 'binary' }}).body);
export default function () {{
  const [g, d, both] = [sent('gzip'), sent('deflate'), sent('gzip, deflate')];
  check(null, {{
    'gzip': () => g[0] === 0x1f && g[1] === 0x8b && g.length < 100,
    'deflate': () => d[0] === 0x78 && d.length < 100,
    'deflate applied last': () => both[0] === 0x78 && both.length < 100,
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    all_passed(&run.report, &["gzip", "deflate", "deflate applied last"], 1);
    assert_eq!(t.received(), 3);
}

/// k6's `throw`: a request that got no response throws (a promise of one
/// rejects) instead of giving status 0; an HTTP error status does not.
#[test]
fn with_throw_a_request_without_a_response_throws() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{ vus: 1, iterations: 1, throw: true }};
const refused = 'http://127.0.0.1:1/';
const thrown = (f) => {{ try {{ f(); return false; }} catch (e) {{ return String(e).includes('options.throw is on'); }} }};
export default async function () {{
  let rejected = false;
  await http.asyncRequest('GET', refused).catch((e) => {{ rejected = String(e).includes(refused); }});
  check(null, {{
    'get throws': () => thrown(() => http.get(refused)),
    'batch throws': () => thrown(() => http.batch([['GET', '{0}/'], ['GET', refused]])),
    'asyncRequest rejects': () => rejected,
    'a 404 is a response': () => http.get('{0}/status/404').status === 404,
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names = [
        "get throws",
        "batch throws",
        "asyncRequest rejects",
        "a 404 is a response",
    ];
    all_passed(&run.report, &names, 1);
    assert_eq!(t.received(), 2);
}

/// Bytes go out and come back as they are: ArrayBuffer and typed-array
/// bodies, `open(path, 'b')`, `responseType: 'binary'`, base64 of bytes,
/// and multipart bodies with `http.file`, as the server (httpbin) reads them.
#[test]
fn binary_bodies_files_and_multipart_uploads_carry_their_bytes() {
    let t = Target::start();
    let bin = common::httpbin::Httpbin::start();
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8: a text round trip would change these bytes.
    std::fs::write(dir.path().join("data.bin"), [0u8, 128, 255, 10, 13]).unwrap();
    std::fs::write(dir.path().join("note.txt"), "hello note").unwrap();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import encoding from 'k6/encoding';

const data = open('data.bin', 'b');
const note = open('note.txt');
const bytes = (b) => Array.from(new Uint8Array(b)).join(',');

export const options = {{ vus: 1, iterations: 2 }};

export default function () {{
  const raw = new Uint8Array([0, 1, 2, 255, 254]);
  const whole = http.post('{t}/echo', raw.buffer, {{ responseType: 'binary' }});
  const part = http.post('{t}/echo', new Uint8Array(raw.buffer, 1, 3), {{ responseType: 'binary' }});
  const file = http.post('{t}/echo', data, {{ responseType: 'binary' }});
  const text = http.post('{t}/echo', 'plain');
  const [batched] = http.batch([['POST', '{t}/echo', raw, {{ responseType: 'binary' }}]]);
  const up = http.post('{b}/post', {{
    field: 'plain',
    upload: http.file(note, 'note.txt', 'text/plain'),
    raw: http.file(data, 'raw.bin'),
  }}).json();
  check(null, {{
    'an ArrayBuffer body round-trips': () => whole.body instanceof ArrayBuffer && bytes(whole.body) === '0,1,2,255,254',
    'a view sends the bytes it shows': () => bytes(part.body) === '1,2,255',
    'open b is the file as bytes': () => data instanceof ArrayBuffer && bytes(file.body) === '0,128,255,10,13',
    'text is still the default': () => text.body === 'plain',
    'batch takes and gives bytes': () => bytes(batched.body) === '0,1,2,255,254',
    'base64 of bytes': () => encoding.b64encode(data) === 'AID/Cg0=' && bytes(encoding.b64decode('AID/Cg0=')) === '0,128,255,10,13' && encoding.b64decode('aGk=', 'std', 's') === 'hi',
    'multipart fields and files': () => up.form.field === 'plain' && up.files.upload === 'hello note' && up.headers['Content-Type'].startsWith('multipart/form-data; boundary='),
    'a binary file part keeps its bytes': () => up.files.raw === 'data:application/octet-stream;base64,AID/Cg0=',
  }});
}}
"#,
        t = t.url,
        b = bin.url
    );
    let path = write(dir.path(), "script.js", &script);
    let run = common::run_loadtest(&dir, &["run", "-q", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in [
        "an ArrayBuffer body round-trips",
        "a view sends the bytes it shows",
        "open b is the file as bytes",
        "text is still the default",
        "batch takes and gives bytes",
        "base64 of bytes",
        "multipart fields and files",
        "a binary file part keeps its bytes",
    ] {
        assert_eq!(
            check(&run.report, name),
            (2, 0),
            "{name}: {}",
            run.report["checks"]
        );
    }
    assert_eq!(t.received(), 10);
}

#[test]
fn an_unknown_response_type_or_open_mode_is_refused_by_name() {
    let t = Target::start();
    let script = format!(
        "import http from 'k6/http';\nexport const options = {{ vus: 1, iterations: 1 }};\nexport default function () {{\n  http.get('{}/', {{ responseType: 'blob' }});\n}}\n",
        t.url
    );
    let run = k6("run", &script, &[]);
    let messages = run.report["scenarios"]["default"]["failure_messages"].to_string();
    assert!(
        messages.contains("responseType `blob` is not one of text, binary, none"),
        "{messages}\n{}",
        run.stderr
    );
    assert_eq!(t.received(), 0, "nothing is sent");

    let run = k6(
        "validate",
        "const d = open('x.txt', 'r');\nexport default function () {}\n",
        &[("x.txt", "x")],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("mode is \"b\""), "{}", run.stderr);
}

/// k6's `exec.test.abort()`: the run ends early, teardown still runs,
/// and the exit code is 108.
#[test]
fn test_abort_ends_the_run_with_teardown_and_exit_code_108() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import exec from 'k6/execution';
import {{ sleep }} from 'k6';

export const options = {{ vus: 2, duration: '60s' }};

export default function () {{
  http.get('{url}/');
  if (__VU === 1 && __ITER === 3) exec.test.abort('enough seen');
  sleep(0.05);
}}

export function teardown() {{
  http.get('{url}/echo');
}}
"#,
        url = t.url
    );
    let started = std::time::Instant::now();
    let run = k6("run", &script, &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 108, "{}", run.stderr);
    assert_eq!(run.report["aborted_by_script"], "enough seen");
    assert!(
        took < Duration::from_secs(20),
        "the run went on for {took:?}"
    );
    // Said once, by the run, not once per VU.
    let said = run
        .stderr
        .matches("the script aborted the test: enough seen")
        .count();
    assert_eq!(said, 1, "{}", run.stderr);
    let r = &run.report;
    let sent = t.received();
    // Both VUs' requests, and teardown's. The other VU may have been cut
    // off mid-request: that one counts as interrupted, and the target may
    // or may not have read it.
    let reported = r["totals"]["requests"].as_u64().unwrap();
    let cut = r["scenarios"]["default"]["requests"]["GET /"]["errors"]["interrupted"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        cut <= 1 && (reported - cut..=reported).contains(&sent),
        "report {reported} ({cut} interrupted), target {sent}: {r}"
    );
    let teardown = &r["setup_teardown"]["requests"]["GET /echo"]["count"];
    assert_eq!(teardown, 1, "teardown ran: {r}");
}

/// k6's `exec.test.fail()`: the run goes on to its end, the report gives
/// the first reason, and the run exits with 110, or 99 when a threshold
/// failed too.
#[test]
fn test_fail_marks_the_run_failed_and_lets_it_finish() {
    for (threshold, code) in [("", 110), ("thresholds: { http_reqs: ['count>100'] },", 99)] {
        let t = Target::start();
        let script = format!(
            r#"import http from 'k6/http';
import exec from 'k6/execution';
export const options = {{ {threshold} vus: 2, iterations: 6 }};
export default function () {{
  http.get('{url}/');
  if (exec.scenario.iterationInTest === 1) exec.test.fail('checkout broke');
  if (exec.scenario.iterationInTest === 4) exec.test.fail();
}}
"#,
            url = t.url
        );
        let run = k6("run", &script, &[]);
        assert_eq!(run.code, code, "{}", run.stderr);
        assert_eq!(run.report["failed_by_script"], "checkout broke");
        assert_eq!(run.report["totals"]["requests"], 6);
        assert_eq!(t.received(), 6);
        let said = "the script marked the test failed: checkout broke";
        assert_eq!(run.stderr.matches(said).count(), 1, "{}", run.stderr);
    }
}

/// `k6/html` and the web-flow helpers built on it: a page read with CSS
/// selectors, a form's values as a browser would send them, and
/// `submitForm`/`clickLink` against a real server's form and links
/// (httpbin), relative URLs resolved against the page's.
#[test]
fn html_pages_are_queried_and_their_forms_and_links_followed() {
    let t = Target::start();
    let bin = common::httpbin::Httpbin::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import {{ parseHTML }} from 'k6/html';

const PAGE = `<html><head><title>Shop</title></head><body>
<ul id="items"><li class="item" data-id="1" data-price="9.5">Apple</li><li class="item sale" data-id="2">Pear</li><li class="item">Plum</li></ul>
<form id="login" action="/post" method="post">
 <input type="hidden" name="csrf" value="tok-123">
 <input name="user" value="">
 <input type="checkbox" name="remember" checked>
 <input type="checkbox" name="news">
 <input name="off" value="x" disabled>
 <select name="lang"><option value="en">English</option><option value="fr" selected>French</option></select>
 <textarea name="note">hi there</textarea>
 <input type="submit" name="go" value="Log in">
</form>
<a id="next" href="/links/3/1">next</a>
</body></html>`;

export const options = {{ vus: 1, iterations: 2 }};

export default function () {{
  const doc = http.post('{t}/echo', PAGE, {{ headers: {{ 'Content-Type': 'text/html' }} }}).html();
  const items = doc.find('li.item');
  const order = http.get('{b}/forms/post').submitForm({{
    fields: {{ custname: 'Ada', custemail: 'ada@example.com', topping: ['bacon', 'onion'] }},
  }}).json();
  const clicked = http.get('{b}/links/3/0').clickLink({{ selector: 'a' }});
  check(null, {{
    'find and text': () => items.size() === 3 && items.first().text() === 'Apple' && doc.find('title').text() === 'Shop',
    'attr and data': () => doc.find('#next').attr('href') === '/links/3/1' && doc.find('#next').attr('nope', 'none') === 'none'
      && items.first().data('price') === 9.5 && items.eq(1).data().id === 2,
    'filter not is eq last': () => items.filter('.sale').text() === 'Pear' && items.not('.sale').size() === 2
      && items.last().is('li') && !items.last().is('.sale') && items.eq(-1).text() === 'Plum',
    'navigation': () => items.eq(1).next().text() === 'Plum' && items.eq(1).prev().text() === 'Apple'
      && items.first().parent().attr('id') === 'items' && items.first().siblings().size() === 2
      && items.first().closest('ul').attr('id') === 'items' && items.first().parents().size() === 3
      && items.first().nextAll().text() === 'PearPlum' && items.last().prevAll().first().text() === 'Pear',
    'each gives elements, map selections': () => items.map((i, s) => s.text()).join(',') === 'Apple,Pear,Plum'
      && items.get().length === 3 && items.get(0).nodeName() === 'LI' && items.get(1).classList().join(' ') === 'item sale'
      && (() => {{ const seen = []; items.each((i, el) => seen.push(el.textContent())); return seen.join() === 'Apple,Pear,Plum'; }})(),
    'element URLs are resolved against the page': () => doc.find('#next').get(0).href() === '{t}/links/3/1'
      && doc.find('#login').get(0).action() === '{t}/post',
    'form values as a browser sends them': () => doc.find('#login').serialize() === 'csrf=tok-123&user=&remember=on&lang=fr&note=hi+there'
      && doc.find('select').val() === 'fr' && doc.find('textarea').val() === 'hi there',
    'parseHTML and inner html': () => parseHTML('<p>a<b>b</b></p>').find('p').html() === 'a<b>b</b>',
    'index and end': () => items.eq(2).index() === 2 && items.filter('.sale').index('li') === 1
      && items.index(items.eq(1)) === 1 && items.index(doc.find('#next')) === -1 && doc.find('title').index('li') === -1
      && items.filter('.sale').end().size() === 3 && doc.find('#items').children().end().attr('id') === 'items',
    'a bad selector names itself': () => {{
      try {{ doc.find('li[['); return false; }} catch (e) {{ return String(e).includes('`li[[` is not a CSS selector'); }}
    }},
    'submitForm posts the form with fields': () => order.form.custname === 'Ada' && order.form.custemail === 'ada@example.com'
      && order.form.topping.join(',') === 'bacon,onion' && order.form.comments === '' && order.form.size === undefined
      && order.headers['Content-Type'] === 'application/x-www-form-urlencoded',
    'clickLink follows a relative link': () => clicked.status === 200 && clicked.url === '{b}/links/3/1',
  }});
}}
"#,
        t = t.url,
        b = bin.url
    );
    let run = k6_with_env("run", &script, &[], &[("RUST_LOG", "warn,plugin=debug")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // k6/html is compiled once, while the script is probed; VUs load it.
    let compiled = run.stderr.matches("`k6/html` compiled from source").count();
    assert_eq!(compiled, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`k6/html` loaded from bytecode"),
        "{}",
        run.stderr
    );
    for name in [
        "find and text",
        "attr and data",
        "filter not is eq last",
        "navigation",
        "each gives elements, map selections",
        "element URLs are resolved against the page",
        "form values as a browser sends them",
        "parseHTML and inner html",
        "index and end",
        "a bad selector names itself",
        "submitForm posts the form with fields",
        "clickLink follows a relative link",
    ] {
        assert_eq!(
            check(&run.report, name),
            (2, 0),
            "{name}: {}",
            run.report["checks"]
        );
    }
    assert_eq!(t.received(), 2);
    assert_eq!(bin.received(8), 8, "{:?}", bin.log());
    assert_eq!(run.report["totals"]["requests"], 10);
}

/// `async` exports, `http.asyncRequest` and timers run as in k6's event
/// loop: a call is over when its promise has settled and its timers have
/// fired, a rejection fails the iteration with its message and line, and a
/// promise nothing can settle is an error, not an iteration that silently
/// did nothing.
#[test]
fn async_functions_and_timers_finish_before_the_iteration_ends() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check, group }} from 'k6';
import {{ setTimeout as later }} from 'k6/timers';

const T = '{url}';
export const options = {{
  scenarios: {{
    flows: {{ executor: 'shared-iterations', vus: 2, iterations: 4, exec: 'flows' }},
    rejects: {{ executor: 'per-vu-iterations', vus: 1, iterations: 2, exec: 'rejects' }},
    hangs: {{ executor: 'per-vu-iterations', vus: 1, iterations: 1, exec: 'hangs' }},
    floating: {{ executor: 'per-vu-iterations', vus: 1, iterations: 1, exec: 'floating' }},
  }},
}};

export async function setup() {{
  const r = await http.asyncRequest('POST', `${{T}}/login`, JSON.stringify({{ user: 'ada' }}));
  return {{ token: r.json('token') }};
}}

export async function flows(data) {{
  const order = [];
  const res = await http.asyncRequest('GET', `${{T}}/`);
  order.push('got');
  await new Promise((resolve) => later(resolve, 50));
  order.push('timer');
  setTimeout(() => http.get(`${{T}}/echo`), 20);
  const dropped = setTimeout(() => http.get(`${{T}}/status/500`), 10);
  clearTimeout(dropped);
  let ticks = 0;
  const every = setInterval(() => {{
    ticks += 1;
    if (ticks === 3) clearInterval(every);
  }}, 5);
  check(res, {{
    'awaited a response': (r) => r.status === 200,
    'setup was awaited': () => data.token === 'token-ada',
    'awaits run in order': () => order.join() === 'got,timer',
  }});
}}

export async function rejects() {{
  await http.asyncRequest('GET', `${{T}}/`);
  throw new Error('async boom');
}}

export async function hangs() {{
  await new Promise(() => {{}});
}}

export function floating() {{
  Promise.reject(new Error('nobody caught me'));
  http.get(`${{T}}/`);
  const caught = Promise.reject(new Error('caught later'));
  caught.catch(() => {{}});
  check(null, {{
    'group refuses async functions': () => {{
      try {{ group('g', async () => {{}}); return false; }} catch (e) {{ return String(e).includes('does not support async'); }}
    }},
  }});
}}
"#,
        url = t.url
    );
    let run = k6("run", &script, &[]);
    let r = &run.report;
    all_passed(
        r,
        &[
            "awaited a response",
            "setup was awaited",
            "awaits run in order",
        ],
        4,
    );
    let flows = &r["scenarios"]["flows"];
    assert_eq!(flows["iterations_failed"], 0, "{flows}");
    // Each iteration waited for the timer it set before returning.
    assert_eq!(flows["requests"]["GET /echo"]["count"], 4, "{flows}");
    let min = flows["iteration_duration_ms"]["min"].as_f64().unwrap();
    assert!(
        min >= 60.0,
        "an iteration ended before its timers: {min} ms"
    );
    let rejects = r["scenarios"]["rejects"]["failure_messages"].to_string();
    assert!(rejects.contains("async boom"), "{rejects}");
    assert!(
        rejects.contains("script.js:"),
        "the line is named: {rejects}"
    );
    assert_eq!(r["scenarios"]["rejects"]["iterations_failed"], 2);
    let hangs = r["scenarios"]["hangs"]["failure_messages"].to_string();
    assert!(hangs.contains("never settles"), "{hangs}");
    // A rejection nobody handles fails the iteration (one handled later
    // does not), as in k6.
    let floating = r["scenarios"]["floating"]["failure_messages"].to_string();
    assert!(
        floating.contains("Uncaught (in promise) nobody caught me"),
        "{floating}"
    );
    assert!(!floating.contains("caught later"), "{floating}");
    assert_eq!(check(r, "group refuses async functions"), (1, 0));
    // One setup for the scenarios of one script, as in k6: its login,
    // then 4 × (GET / and the timer's echo), 2 × GET /, and 1 GET /.
    assert_eq!(t.received(), 12, "{r}");
    assert_eq!(r["totals"]["requests"], 12);
    // As in k6, failed iterations alone do not fail the run.
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `http.asyncRequest`s awaited together are in flight at once, as in
/// k6 (the target sees them overlap); one made in a group counts in it;
/// one whose params are wrong rejects its promise and the rest still go.
#[test]
fn async_requests_awaited_together_are_in_flight_at_once() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check, group }} from 'k6';

const T = '{url}';
export const options = {{ vus: 1, iterations: 2 }};

export default async function () {{
  const slow = () => http.asyncRequest('GET', `${{T}}/delay/300`);
  const all = await Promise.all([slow(), slow(), slow()]);
  let why = '';
  const bad = http.asyncRequest('GET', `${{T}}/`, null, {{ timeout: 'soon' }}).catch((e) => {{ why = String(e); }});
  const fine = http.asyncRequest('POST', `${{T}}/echo`, 'hi');
  await Promise.all([bad, fine]);
  group('g', () => {{ http.asyncRequest('GET', `${{T}}/json`); }});
  check(all, {{
    'all answered': (rs) => rs.length === 3 && rs.every((r) => r.status === 200),
    'bad params reject': () => why.includes('not a duration'),
  }});
  check(await fine, {{ 'the rest still went': (r) => r.body === 'hi' }});
}}
"#,
        url = t.url
    );
    let run = k6("run", &script, &[]);
    let r = &run.report;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in ["all answered", "bad params reject", "the rest still went"] {
        assert_eq!(check(r, name), (2, 0), "{name}: {}", r["checks"]);
    }
    assert_eq!(
        t.peak_in_flight(),
        3,
        "the three were not in flight at once"
    );
    assert_eq!(
        r["scenarios"]["default"]["groups"]["::g"]["requests"], 2,
        "{r}"
    );
    // 2 × (three slow ones, the echo, the group's one); the bad one never left.
    assert_eq!(t.received(), 10);
    assert_eq!(r["totals"]["requests"], 10);
}

/// k6's `data_sent`: each request's head and body as written, in the
/// JSON report, in thresholds and in handleSummary's data.
#[test]
fn data_sent_counts_each_request_as_written() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
export const options = {{
  vus: 1,
  iterations: 3,
  thresholds: {{ data_sent: ['count>3000'] }},
}};
export default function () {{
  http.post('{url}/echo', 'x'.repeat(1000), {{ tags: {{ name: 'post' }} }});
  http.get('{url}/', {{ tags: {{ name: 'get' }} }});
}}
export function handleSummary(data) {{
  return {{ 'sent.json': JSON.stringify(data.metrics.data_sent) }};
}}
"#,
        url = t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = &run.report["scenarios"]["default"]["requests"];
    let post = requests["post"]["bytes_sent"].as_u64().unwrap();
    let get = requests["get"]["bytes_sent"].as_u64().unwrap();
    // Three of each: the body and a head of some tens of bytes.
    assert!((3 * 1030..3 * 1400).contains(&post), "POST: {post}");
    assert!((3 * 30..3 * 400).contains(&get), "GET: {get}");
    assert_eq!(run.report["totals"]["bytes_sent"], post + get);
    let data: Value =
        serde_json::from_slice(&std::fs::read(run.dir.path().join("sent.json")).unwrap()).unwrap();
    assert_eq!(data["contains"], "data");
    assert_eq!(data["values"]["count"], (post + get) as f64);
    assert_eq!(data["thresholds"]["count>3000"]["ok"], true);
}

/// A plain HTTP file server (Python's `http.server`) over a directory,
/// on a free loopback port; its log says what it served. Killed on drop.
struct FileServer {
    child: std::process::Child,
    url: String,
    log: PathBuf,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        let port = common::cluster::free_port();
        let log = dir.join("access.log");
        let child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir.join("www"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting python3 -m http.server");
        let limit = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < limit,
                "http.server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FileServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// How many times `path` was served.
    fn served(&self, path: &str) -> usize {
        let needle = format!("\"GET {path} HTTP/1.1\" 200");
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(&needle)
            .count()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Modules imported by URL (as k6 scripts import jslib) are fetched once,
/// when the script is bundled, with what they import in turn; VUs load
/// them from the bundle. One that cannot be fetched is named.
#[test]
fn modules_imported_by_url_are_fetched_once_and_travel_with_the_script() {
    let t = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("www/utils/1.0");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("index.js"),
        "import { pick } from './pick.js';\nexport function randomItem(a) { return a[pick(a.length)]; }\nexport const version = '1.0';\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("pick.js"),
        "export const pick = (n) => Math.floor(Math.random() * n);\n",
    )
    .unwrap();
    let server = FileServer::start(dir.path());
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import {{ randomItem, version }} from '{lib}/utils/1.0/index.js';

export const options = {{ vus: 3, iterations: 9 }};

export default function () {{
  const path = randomItem(['/', '/json']);
  const res = http.get(`{t}${{path}}`);
  check(res, {{ 'a remote module ran': (r) => r.status === 200 && version === '1.0' }});
}}
"#,
        lib = server.url,
        t = t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check(&run.report, "a remote module ran"), (9, 0));
    assert_eq!(t.received(), 9);
    // Once for the whole run, not once per VU.
    assert_eq!(server.served("/utils/1.0/index.js"), 1);
    assert_eq!(server.served("/utils/1.0/pick.js"), 1);

    let missing = format!(
        "import {{ x }} from '{}/utils/9.9/index.js';\nexport default function () {{}}\n",
        server.url
    );
    let run = k6("validate", &missing, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&format!(
            "cannot import {}/utils/9.9/index.js: the server answered 404",
            server.url
        )),
        "{}",
        run.stderr
    );
}

/// `k6/execution`'s numbers: `scenario.iterationInTest` counts every VU's
/// iterations (each number once), `vu.idInTest` and the executor's name.
#[test]
fn execution_numbers_iterations_across_the_scenarios_vus() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
import exec from 'k6/execution';

export const options = {{ scenarios: {{ s: {{ executor: 'shared-iterations', vus: 3, iterations: 12 }} }} }};

export default function () {{
  http.get('{}/');
  check(null, {{
    ['iteration ' + exec.scenario.iterationInTest]: () => exec.scenario.iterationInInstance === exec.scenario.iterationInTest,
    'vu id in test': () => [1, 2, 3].includes(exec.vu.idInTest) && exec.vu.idInTest === __VU,
    'executor': () => exec.scenario.executor === 'shared-iterations',
  }});
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for n in 0..12 {
        assert_eq!(check(&run.report, &format!("iteration {n}")), (1, 0));
    }
    assert_eq!(check(&run.report, "vu id in test"), (12, 0));
    assert_eq!(check(&run.report, "executor"), (12, 0));
    assert_eq!(t.received(), 12);
}

#[test]
fn test_wide_tags_user_agent_discarded_bodies_min_iteration_duration_and_scenario_env() {
    let t = Target::start();
    let bin = common::httpbin::Httpbin::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{
  tags: {{ env: 'staging' }},
  userAgent: 'shop-test/1.0',
  discardResponseBodies: true,
  minIterationDuration: '150ms',
  scenarios: {{
    browse: {{ executor: 'per-vu-iterations', vus: 2, iterations: 2, tags: {{ flow: 'browse' }}, env: {{ SHOP: 'north', RETRIES: '3' }} }},
  }},
  thresholds: {{
    'http_reqs{{env:staging}}': ['count==16'],
    'http_reqs{{flow:browse}}': ['count==16'],
    'checks{{env:staging}}': ['rate==1'],
  }},
}};
export default function () {{
  const discarded = http.get('{t}/');
  const ua = http.get('{b}/user-agent', {{ responseType: 'text' }});
  const own = http.get('{b}/headers', {{ headers: {{ 'user-agent': 'mine' }}, responseType: 'text' }});
  const echoed = http.post('{t}/echo', 'kept', {{ responseType: 'text' }});
  check(discarded, {{
    'a body is discarded unless asked for': (r) => r.status === 200 && r.body === null,
    'the default user agent is sent': () => ua.json('user-agent') === 'shop-test/1.0',
    "a request's own user agent wins": () => own.json('headers.User-Agent') === 'mine',
    'responseType text keeps the body': () => echoed.body === 'kept',
    "the scenario's env is in __ENV": () => __ENV.SHOP === 'north' && __ENV.RETRIES === '3',
  }});
}}
"#,
        t = t.url,
        b = bin.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(
        run.code, 0,
        "{}\n{}\n{}",
        run.stderr, run.report["thresholds"], run.report["checks"]
    );
    let r = &run.report;
    all_passed(
        r,
        &[
            "a body is discarded unless asked for",
            "the default user agent is sent",
            "a request's own user agent wins",
            "responseType text keeps the body",
            "the scenario's env is in __ENV",
        ],
        4,
    );
    for t in [
        "http_reqs{env:staging}",
        "http_reqs{flow:browse}",
        "checks{env:staging}",
    ] {
        assert!(passed(r, t), "{t}: {}", r["thresholds"]);
    }
    assert_eq!(r["totals"]["requests"], 16);
    assert_eq!(t.received(), 8);
    let min = r["scenarios"]["browse"]["iteration_duration_ms"]["min"]
        .as_f64()
        .unwrap();
    assert!(min >= 150.0, "an iteration ended before 150 ms: {min} ms");

    let bad = "export const options = { scenarios: { a: { executor: 'per-vu-iterations', tags: ['x'] } } };\nexport default function () {}\n";
    let run = k6("validate", bad, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("options.scenarios.a.tags must be an object of tag names and values"),
        "{}",
        run.stderr
    );
    let bad = "export const options = { userAgent: 7 };\nexport default function () {}\n";
    let run = k6("validate", bad, &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("options.userAgent must be a string"),
        "{}",
        run.stderr
    );
}

#[test]
fn handle_summary_gets_k6s_data_and_writes_where_it_says_in_place_of_the_table() {
    let t = Target::start();
    let script = format!(
        r#"import http from 'k6/http';
import {{ check, group }} from 'k6';
import {{ Counter, Trend }} from 'k6/metrics';
const carts = new Counter('carts');
const waits = new Trend('waits', true);
const sizes = new Trend('sizes');
export const options = {{
  vus: 2,
  iterations: 6,
  summaryTrendStats: ['avg', 'p(99)', 'count'],
  thresholds: {{ http_req_duration: ['p(99)<5000'], 'http_reqs{{expected_response:true}}': ['count==6'] }},
}};
export default function () {{
  group('cart', () => {{
    check(http.get('{0}/'), {{ 'home ok': (r) => r.status === 200 }});
    check(http.get('{0}/status/404'), {{ 'missing': (r) => r.status === 404 }});
    carts.add(1);
  }});
  check(1, {{ 'outside': () => true }});
  waits.add(5);
  sizes.add(5);
}}
export function setup() {{
  return {{ token: 't-1' }};
}}
export function handleSummary(data) {{
  const m = data.metrics;
  return {{
    stdout: `custom: ${{m.http_reqs.values.count}} requests, ${{m.checks.values.passes}} checks passed\n`,
    'out/summary.json': JSON.stringify(data),
    'out/bytes.bin': new Uint8Array([1, 2, 3]).buffer,
  }};
}}
"#,
        t.url
    );
    let run = k6("run", &script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.received(), 12);
    assert_eq!(
        run.stdout, "custom: 12 requests, 18 checks passed\n",
        "in place of the table"
    );
    let read = |p: &str| std::fs::read(run.dir.path().join(p)).unwrap();
    assert_eq!(read("out/bytes.bin"), [1, 2, 3]);
    let data: Value = serde_json::from_slice(&read("out/summary.json")).unwrap();
    let m = &data["metrics"];
    assert_eq!(m["http_reqs"]["type"], "counter");
    assert_eq!(m["http_reqs"]["values"]["count"], 12);
    assert_eq!(m["carts"]["values"]["count"], 6);
    assert_eq!(
        m["http_req_failed"]["values"]["passes"], 6,
        "the 404s: {}",
        m["http_req_failed"]
    );
    assert_eq!(m["http_req_duration"]["contains"], "time");
    let stats = m["http_req_duration"]["values"].as_object().unwrap();
    assert_eq!(
        stats.keys().collect::<Vec<_>>(),
        ["avg", "count", "p(99)"],
        "summaryTrendStats"
    );
    assert_eq!(
        m["http_req_duration"]["thresholds"]["p(99)<5000"]["ok"],
        true
    );
    let sub = &m["http_reqs{expected_response:true}"];
    assert_eq!(sub["values"]["count"], 6, "{sub}");
    assert_eq!(sub["thresholds"]["count==6"]["ok"], true);
    assert_eq!(m["waits"]["contains"], "time", "new Trend(name, true)");
    assert_eq!(data["setup_data"]["token"], "t-1");
    assert_eq!(m["vus"]["type"], "gauge");
    let most = m["vus"]["values"]["max"].as_u64().unwrap();
    assert!(most <= 2, "{}", m["vus"]);
    assert_eq!(m["sizes"]["contains"], "default");
    // Each check under the group it ran in, as in k6's tree.
    let root = &data["root_group"];
    let cart = &root["groups"][0];
    assert_eq!(cart["path"], "::cart");
    let checks = cart["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(
        checks.iter().all(|c| c["passes"] == 6 && c["fails"] == 0),
        "{checks:?}"
    );
    assert_eq!(checks[0]["path"], "::cart::home ok");
    let outside = root["checks"].as_array().unwrap();
    assert_eq!(outside.len(), 1, "{outside:?}");
    assert_eq!(outside[0]["name"], "outside");
    assert_eq!(outside[0]["passes"], 6);
    assert_eq!(data["options"]["summaryTrendStats"][1], "p(99)");
    assert!(data["state"]["testRunDurationMs"].as_f64().unwrap() > 0.0);
    // The JSON report is written as always.
    assert_eq!(run.report["totals"]["requests"], 12);

    // A handleSummary() that throws: as in k6, the error, the table after
    // all, and the run's own exit code.
    let broken = "export default function () {}\nexport function handleSummary() { throw new Error('no summary today'); }\n";
    let run = k6("run", broken, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("handleSummary() failed: ") && run.stderr.contains("no summary today"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("iterations 1"),
        "the table: {}",
        run.stdout
    );

    // One that returns nothing writes nothing, the table neither.
    let quiet = "export default function () {}\nexport function handleSummary(data) { console.log('seen ' + data.metrics.iterations.values.count); }\n";
    let run = k6("run", quiet, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("seen 1"), "{}", run.stderr);
}

#[test]
fn globals_made_on_first_use_behave_as_if_made_up_front() {
    // Typed arrays, Map/Set, Date, Proxy... are made when a script first
    // names them (intrinsics.rs); reads, writes, typeof and natives that
    // return ArrayBuffers all see the real thing.
    let script = r#"import { check } from 'k6';
import encoding from 'k6/encoding';
import crypto from 'k6/crypto';
export const options = { vus: 1, iterations: 2 };
export default function () {
  check(null, {
    'Map and Set': () => new Map([[1, 2]]).get(1) === 2 && new Set([1, 1]).size === 1 && new WeakMap() instanceof WeakMap,
    'Date': () => Date.now() > 0 && new Date(0).toISOString() === '1970-01-01T00:00:00.000Z',
    'typed arrays': () => new Uint8Array([1, 2]).length === 2 && new Uint8Array(4).buffer instanceof ArrayBuffer && new DataView(new ArrayBuffer(2)).byteLength === 2,
    'natives give real ArrayBuffers': () => encoding.b64decode('AQID') instanceof ArrayBuffer && new Uint8Array(encoding.b64decode('AQID'))[2] === 3 && crypto.randomBytes(4) instanceof ArrayBuffer,
    'typeof': () => typeof Proxy === 'function' && typeof WeakRef === 'function' && typeof performance.now === 'function' && typeof Float64Array === 'function',
    'a data property once made': () => Object.getOwnPropertyDescriptor(globalThis, 'Map').value === Map,
    'written before read': () => { globalThis.FinalizationRegistry = 5; return FinalizationRegistry === 5; },
    'atob and btoa': () => atob(btoa('hi')) === 'hi',
    'an unknown global is still a ReferenceError': () => { try { return Atomics === 1; } catch (e) { return e instanceof ReferenceError; } },
    '__ENV': () => typeof __ENV.PATH === 'string' && (__ENV.MINE = 'x', __ENV.MINE === 'x') && Object.keys(globalThis).includes('__ENV'),
    // Natives are made on first call (lazy_natives.rs): one kept before
    // then still works after, and the first call put the real one in place.
    'a native kept before its first call': () => {
      const kept = __host.scenario;
      return kept() === 'default' && kept() === 'default' && (__ITER > 0 || __host.scenario !== kept);
    },
  });
}
"#;
    let run = k6("run", script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let checks = run.report["checks"].as_object().unwrap();
    assert_eq!(checks.len(), 11, "{checks:?}");
    for (name, c) in checks {
        assert_eq!(
            (c["passes"].as_u64(), c["fails"].as_u64()),
            (Some(2), Some(0)),
            "{name}"
        );
    }

    // Natives that return bytes before the script has named a typed
    // array: what they return is a real ArrayBuffer all the same.
    let natives_first = r#"import { check } from 'k6';
import encoding from 'k6/encoding';
import crypto from 'k6/crypto';
export default function () {
  const decoded = encoding.b64decode('AQID');
  const random = crypto.randomBytes(2);
  const digest = crypto.sha256('x', 'binary');
  check(null, {
    'b64decode': () => Object.getPrototypeOf(decoded) === ArrayBuffer.prototype && decoded.byteLength === 3,
    'randomBytes and digests': () => Object.getPrototypeOf(random) === ArrayBuffer.prototype && digest.byteLength === 32,
  });
}
"#;
    let run = k6("run", natives_first, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check(&run.report, "b64decode"), (1, 0));
    assert_eq!(check(&run.report, "randomBytes and digests"), (1, 0));
}
