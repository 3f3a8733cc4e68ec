//! The `http-steps` plugin: declarative HTTP scenarios written in the
//! config (`params`), interpreted by a WASM component like any other
//! scenario, so the host has no special code for them.

mod program;
mod spec;

use loadtest_sdk::{Params, Result, Scenario, check, http, vu};
use program::{CAssert, CRequest, CStep, Program, Source};
use std::collections::BTreeMap;
use std::time::Duration;

pub use program::{JsonPath, compile};
pub use spec::Spec;

/// Parses and checks params; errors name the field path. `read_file`
/// fetches a data file by its name under the config's `files`.
pub fn load(
    json: &serde_json::Value,
    read_file: impl Fn(&str) -> Option<Vec<u8>>,
) -> std::result::Result<Program, String> {
    let mut spec: Spec = serde_path_to_error::deserialize(json.clone()).map_err(|e| {
        let path = e.path().to_string();
        format!("params.{path}: {}", e.into_inner())
    })?;
    if let Some(data) = spec.data.as_mut()
        && let Some(name) = data.file.take()
    {
        if !data.rows.is_empty() {
            return Err("data: give `rows` or `file`, not both".into());
        }
        let bytes = read_file(&name).ok_or_else(|| {
            format!("data.file: `{name}` is not listed under the config's `files`")
        })?;
        data.rows = program::parse_rows(&name, &bytes)?;
    }
    compile(spec)
}

struct Steps {
    program: Program,
    /// Per flow and step, the request built once when it has no variables:
    /// most steps send the same request every time.
    fixed: Vec<Vec<Option<http::Request>>>,
    /// The variables `setup` extracted.
    from_setup: BTreeMap<String, String>,
}

impl Scenario for Steps {
    fn init(params: &Params) -> Result<Self> {
        let program = load(&params.0, vu::file)?;
        expect(&program);
        let none = BTreeMap::new();
        let fixed = program
            .flows
            .iter()
            .map(|f| {
                f.steps
                    .iter()
                    .map(|step| {
                        let req = step.request.as_ref().filter(|r| r.is_fixed())?;
                        Some(build(req, &none, step))
                    })
                    .collect()
            })
            .collect();
        let from_setup = vu::setup_json()?.unwrap_or_default();
        Ok(Steps {
            program,
            fixed,
            from_setup,
        })
    }

    fn iteration(&mut self) -> Result<()> {
        let mut vars = self.row();
        vars.extend(self.from_setup.clone());
        let flow = self.pick_flow();
        run(
            &self.program.flows[flow].steps,
            &self.fixed[flow],
            &mut vars,
        )
    }

    /// Runs the `setup:` steps; their extracted variables are the data.
    fn setup(params: &Params) -> Result<Option<String>> {
        let program = load(&params.0, vu::file)?;
        expect(&program);
        if program.setup.is_empty() {
            return Ok(None);
        }
        let mut vars = BTreeMap::new();
        let fixed = vec![None; program.setup.len()];
        run(&program.setup, &fixed, &mut vars)?;
        Ok(Some(serde_json::to_string(&vars)?))
    }

    /// Runs the `teardown:` steps with setup's variables.
    fn teardown(params: &Params, data: Option<&str>) -> Result<()> {
        let program = load(&params.0, vu::file)?;
        expect(&program);
        let mut vars: BTreeMap<String, String> = match data {
            Some(d) => serde_json::from_str(d)?,
            None => BTreeMap::new(),
        };
        let fixed = vec![None; program.teardown.len()];
        run(&program.teardown, &fixed, &mut vars)
    }
}

/// Tells the host which statuses are not failures, when the params say.
fn expect(program: &Program) {
    if let Some(ranges) = &program.expected {
        http::expect_statuses(Some(ranges));
    }
}

/// Runs steps in order, in their groups; an extraction that finds nothing
/// fails the iteration.
fn run(
    steps: &[CStep],
    fixed: &[Option<http::Request>],
    vars: &mut BTreeMap<String, String>,
) -> Result<()> {
    let mut group: Option<&str> = None;
    let result = steps.iter().zip(fixed).try_for_each(|(step, fixed)| {
        if step.group.as_deref() != group {
            if group.is_some() {
                loadtest_sdk::group_end();
            }
            group = step.group.as_deref();
            if let Some(g) = group {
                loadtest_sdk::group_start(g);
            }
        }
        run_step(step, fixed.as_ref(), vars)
    });
    if group.is_some() {
        loadtest_sdk::group_end();
    }
    result
}

fn run_step(
    step: &CStep,
    fixed: Option<&http::Request>,
    vars: &mut BTreeMap<String, String>,
) -> Result<()> {
    if let Some(req) = &step.request {
        let res = match fixed {
            Some(r) => r.send()?,
            None => build(req, vars, step).send()?,
        };
        for a in &step.asserts {
            assert_one(req, a, &res, vars);
        }
        for (var, src) in &step.extract {
            let v = extract(src, &res)
                .ok_or_else(|| format!("{}: could not extract `{var}`", req.name))?;
            vars.insert(var.clone(), v);
        }
    }
    if let Some((lo, hi)) = step.think {
        vu::sleep(Duration::from_millis(vu::random_range(lo, hi + 1)));
    }
    Ok(())
}

impl Steps {
    fn row(&self) -> BTreeMap<String, String> {
        let rows = &self.program.rows;
        if rows.is_empty() {
            return BTreeMap::new();
        }
        let k = match self.program.per {
            spec::Per::Vu => u64::from(vu::id().saturating_sub(1)),
            // Spread VUs over the rows, then walk on per iteration.
            spec::Per::Iteration => u64::from(vu::id().saturating_sub(1)) + vu::iteration(),
        };
        rows[(k % rows.len() as u64) as usize].clone()
    }

    fn pick_flow(&self) -> usize {
        let flows = &self.program.flows;
        if flows.len() == 1 {
            return 0;
        }
        let total: u64 = flows.iter().map(|f| u64::from(f.weight)).sum();
        let mut roll = vu::random_range(0, total);
        for (i, f) in flows.iter().enumerate() {
            if roll < u64::from(f.weight) {
                return i;
            }
            roll -= u64::from(f.weight);
        }
        0
    }
}

/// A step's request; what no assertion or extraction reads of the response
/// is left on the host's side.
fn build(req: &CRequest, vars: &BTreeMap<String, String>, step: &CStep) -> http::Request {
    let mut url = req.path.render_url(vars);
    for (i, (k, v)) in req.query.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(&format!("{k}={}", encode(&v.render(vars))));
    }
    let mut r = http::Request::new(&req.method, url).name(req.name.clone());
    for (k, v) in &req.headers {
        r = r.header(k.clone(), v.render_header(vars));
    }
    if let Some(b) = &req.body {
        let body = if req.json {
            r = r.header("content-type", "application/json");
            b.render_json(vars)
        } else {
            b.render(vars)
        };
        r = r.body(body);
    }
    if !req.form.is_empty() {
        let fields: Vec<String> = req
            .form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(&v.render(vars))))
            .collect();
        r = r
            .header("content-type", "application/x-www-form-urlencoded")
            .body(fields.join("&"));
    }
    for (k, v) in &req.tags {
        r = r.tag(k.clone(), v.clone());
    }
    if let Some(n) = req.max_redirects {
        r = r.max_redirects(n);
    }
    if !step.reads_headers() {
        r = r.discard_headers();
    }
    if !step.reads_body() {
        r = r.discard_body();
    }
    r
}

use program::percent_encode as encode;

fn assert_one(req: &CRequest, a: &CAssert, res: &http::Response, vars: &BTreeMap<String, String>) {
    let (label, passed) = match a {
        CAssert::Status(code) => (format!("status is {code}"), res.status() == *code),
        CAssert::Header {
            name,
            equals,
            contains,
        } => {
            let v = res.header(name);
            let ok = v.is_some()
                && equals.as_ref().is_none_or(|e| v == Some(e.as_str()))
                && contains
                    .as_ref()
                    .is_none_or(|c| v.is_some_and(|v| v.contains(c.as_str())));
            (format!("header {name}"), ok)
        }
        CAssert::BodyContains(t) => {
            let needle = t.render(vars);
            (
                format!("body contains {needle}"),
                res.text().contains(&needle),
            )
        }
        CAssert::Json {
            path,
            raw,
            equals,
            exists,
        } => {
            let body: Option<serde_json::Value> = res.json().ok();
            let found = body.as_ref().and_then(|b| path.find(b));
            let ok = match (equals, exists) {
                (Some(e), _) => found == Some(e),
                (None, Some(false)) => found.is_none(),
                _ => found.is_some(),
            };
            (format!("json {raw}"), ok)
        }
        CAssert::LatencyMs(max) => (
            format!("latency under {max} ms"),
            res.duration() <= Duration::from_millis(*max),
        ),
    };
    check(&format!("{}: {label}", req.name), passed);
}

fn extract(src: &Source, res: &http::Response) -> Option<String> {
    match src {
        Source::Json(path) => {
            let body: serde_json::Value = res.json().ok()?;
            let v = path.find(&body)?;
            Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        }
        Source::Regex(re) => re
            .captures(&res.text())?
            .get(1)
            .map(|m| m.as_str().to_owned()),
        Source::Header(h) => res.header(h).map(str::to_owned),
    }
}

loadtest_sdk::export_scenario!(Steps);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_substituted_into_json_bodies_are_escaped() {
        let t = program::Template::parse_for_test(r#"{"user":"${u}","n":"${n}"}"#);
        let vars = BTreeMap::from([
            ("u".to_string(), r#"a"b\c"#.to_string()),
            ("n".to_string(), "line\nbreak".to_string()),
        ]);
        let body = t.render_json(&vars);
        let v: serde_json::Value = serde_json::from_str(&body).expect(&body);
        assert_eq!(v["user"], r#"a"b\c"#);
        assert_eq!(v["n"], "line\nbreak");
    }

    #[test]
    fn values_substituted_into_urls_and_headers_keep_their_place() {
        let vars = BTreeMap::from([
            ("base".to_string(), "https://shop.test/v1".to_string()),
            ("id".to_string(), "a/b?c=d&e#f g".to_string()),
            ("h".to_string(), "x\r\nInjected: yes".to_string()),
        ]);
        let url = program::Template::parse_for_test("${base}/items/${id}?q=${id}");
        assert_eq!(
            url.render_url(&vars),
            "https://shop.test/v1/items/a%2Fb%3Fc%3Dd%26e%23f%20g?q=a%2Fb%3Fc%3Dd%26e%23f%20g"
        );
        let header = program::Template::parse_for_test("Bearer ${h}");
        assert_eq!(header.render_header(&vars), "Bearer x  Injected: yes");
    }

    fn err(v: serde_json::Value) -> String {
        load(&v, |_| None).unwrap_err()
    }

    #[test]
    fn a_good_program_compiles() {
        let p = load(&json!({
            "data": { "rows": [{"user": "a"}, {"user": "b"}] },
            "flows": [
                { "weight": 3, "steps": [
                    { "request": { "path": "/json" }, "assert": [{ "status": 200 }], "extract": [{ "var": "id", "json": "$.id" }] },
                    { "request": { "method": "post", "path": "/echo", "json": { "id": "${id}", "user": "${user}" } } },
                    { "think": { "min_ms": 1, "max_ms": 5 } }
                ]},
                { "steps": [{ "request": { "path": "/" } }] }
            ]
        }), |_| None)
        .unwrap();
        assert_eq!(p.flows.len(), 2);
        assert_eq!(p.rows.len(), 2);
    }

    #[test]
    fn mistakes_name_their_field() {
        assert!(
            err(json!({ "steps": [{ "request": { "path": "/", "stauts": 1 } }] }))
                .contains("params.steps[0].request")
        );
        assert!(
            err(json!({ "steps": [{ "request": { "path": "/a/${nope}" } }] }))
                .contains("steps[0].request.path: `${nope}` is not defined")
        );
        assert!(err(json!({ "steps": [{ "request": { "path": "/" }, "extract": [{ "var": "x", "json": "items[0]" }] }] }))
            .contains("steps[0].extract[0].json: `items[0]` is not a JSON path"));
        assert!(err(json!({ "data": { "rows": [{"a": 1}, {"b": 2}] }, "steps": [{ "request": { "path": "/" } }] }))
            .contains("data.rows[1]: has columns [b] but row 0 has [a]"));
        assert!(err(json!({ "steps": [{ "request": { "path": "/" }, "extract": [{ "var": "t", "regex": "token" }] }] }))
            .contains("needs a capture group"));
    }

    #[test]
    fn data_files_are_csv_or_json_and_ragged_csv_names_the_line() {
        let files = |name: &str| match name {
            "users" => Some(b"user,pass\nada,x\ngrace,y\n".to_vec()),
            "json" => Some(br#"[{"user":"linus"}]"#.to_vec()),
            "ragged" => Some(b"user,pass\nada,x\ngrace\n".to_vec()),
            _ => None,
        };
        let spec = |file: &str| json!({ "data": { "file": file }, "steps": [{ "request": { "path": "/${user}" } }] });
        assert_eq!(load(&spec("users"), files).unwrap().rows.len(), 2);
        assert_eq!(load(&spec("json"), files).unwrap().rows[0]["user"], "linus");
        let ragged = load(&spec("ragged"), files).unwrap_err();
        assert!(
            ragged.contains("data file `ragged` line 3: 1 fields, but the header has 2"),
            "{ragged}"
        );
        assert!(
            load(&spec("nope"), files)
                .unwrap_err()
                .contains("`nope` is not listed under the config's `files`")
        );
    }

    #[test]
    fn json_paths_find_values() {
        let v = json!({ "items": [{ "id": 7 }], "odd key": true });
        assert_eq!(
            JsonPath::parse("$.items[0].id", "t").unwrap().find(&v),
            Some(&json!(7))
        );
        assert_eq!(
            JsonPath::parse("$['odd key']", "t").unwrap().find(&v),
            Some(&json!(true))
        );
        assert_eq!(JsonPath::parse("$.missing", "t").unwrap().find(&v), None);
    }
}
