//! A checked steps program: templates parsed, JSON paths parsed, regexes
//! compiled, and every `${var}` known to be defined before it is used. All
//! of this happens in `init`, so `loadtest validate` reports mistakes with
//! their field path before any load is sent.

use crate::spec::{Assert, Data, Extract, Per, Request, Spec, Step, Think};
use regex_lite::Regex;
use std::collections::{BTreeMap, BTreeSet};

/// Text with `${var}` placeholders.
#[derive(Debug, Clone)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    fn parse(s: &str, at: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("{at}: `${{` without a closing `}}` in `{s}`"))?;
            let name = &rest[start + 2..start + end];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!(
                    "{at}: `${{{name}}}` is not a variable name (letters, digits, _)"
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    #[cfg(test)]
    pub fn parse_for_test(s: &str) -> Template {
        Template::parse(s, "test").expect("a valid template")
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| {
            if let Part::Var(v) = p {
                Some(v.as_str())
            } else {
                None
            }
        })
    }

    /// Whether it has no `${var}`, so renders the same every time.
    pub fn is_fixed(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    pub fn render(&self, vars: &BTreeMap<String, String>) -> String {
        self.render_with(vars, |out, _, value| out.push_str(value))
    }

    /// The text with each variable's value put in by `put(out, part
    /// index, value)`: how each place escapes what it substitutes.
    fn render_with(
        &self,
        vars: &BTreeMap<String, String>,
        mut put: impl FnMut(&mut String, usize, &str),
    ) -> String {
        let mut out = String::new();
        for (i, p) in self.0.iter().enumerate() {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => put(&mut out, i, vars.get(v).map_or("", String::as_str)),
            }
        }
        out
    }

    /// Renders a path or URL: a variable at the very start is put in as
    /// it is (it may be a whole URL or a base path, such as an extracted
    /// link); anywhere after it, a value is one component and is
    /// percent-encoded, so a `/`, `?`, `&`, `#` or space in it cannot
    /// change which resource or query is asked for.
    pub fn render_url(&self, vars: &BTreeMap<String, String>) -> String {
        self.render_with(vars, |out, i, value| {
            if i == 0 {
                out.push_str(value);
            } else {
                out.push_str(&percent_encode(value));
            }
        })
    }

    /// Renders a header value: control characters in a value (a CR or LF
    /// would end the header and start another) become spaces.
    pub fn render_header(&self, vars: &BTreeMap<String, String>) -> String {
        self.render_with(vars, |out, _, value| {
            out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
        })
    }

    /// Renders a `json:` body, whose variables all stand inside JSON
    /// strings (the YAML was serialised before templating): each value is
    /// escaped as a JSON string, so a `"` or `\` in it keeps the body valid.
    pub fn render_json(&self, vars: &BTreeMap<String, String>) -> String {
        self.render_with(vars, |out, _, value| {
            let quoted = serde_json::to_string(value).expect("a string serialises");
            out.push_str(&quoted[1..quoted.len() - 1]);
        })
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: the
/// value becomes one path segment or query component.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A JSON path subset: `$`, `.key`, `['key']`, `[index]`.
#[derive(Debug, Clone)]
pub struct JsonPath(Vec<Seg>);

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(s: &str, at: &str) -> Result<JsonPath, String> {
        let bad = |why: &str| {
            format!("{at}: `{s}` is not a JSON path ({why}); write it like $.items[0].id")
        };
        let mut rest = s
            .strip_prefix('$')
            .ok_or_else(|| bad("it must start with $"))?;
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(bad("empty key"));
                }
                segs.push(Seg::Key(r[..end].to_owned()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| bad("`[` without `]`"))?;
                let inner = &r[..end];
                let seg =
                    if let Some(q) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                        Seg::Key(q.to_owned())
                    } else {
                        Seg::Index(
                            inner
                                .parse()
                                .map_err(|_| bad("an index must be a number"))?,
                        )
                    };
                segs.push(seg);
                rest = &r[end + 1..];
            } else {
                return Err(bad("expected `.` or `[`"));
            }
        }
        Ok(JsonPath(segs))
    }

    pub fn find<'a>(&self, mut v: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        for seg in &self.0 {
            v = match seg {
                Seg::Key(k) => v.get(k)?,
                Seg::Index(i) => v.get(*i)?,
            };
        }
        Some(v)
    }
}

#[derive(Debug)]
pub struct CRequest {
    pub method: String,
    pub path: Template,
    pub name: String,
    pub headers: Vec<(String, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<Template>,
    pub json: bool,
    pub form: Vec<(String, Template)>,
    pub tags: Vec<(String, String)>,
    pub max_redirects: Option<u32>,
}

impl CRequest {
    /// Whether every part of the request is fixed text.
    pub fn is_fixed(&self) -> bool {
        self.path.is_fixed()
            && self.body.as_ref().is_none_or(Template::is_fixed)
            && self.form.iter().all(|(_, v)| v.is_fixed())
            && self
                .headers
                .iter()
                .chain(&self.query)
                .all(|(_, t)| t.is_fixed())
    }
}

#[derive(Debug)]
pub enum CAssert {
    Status(u16),
    Header {
        name: String,
        equals: Option<String>,
        contains: Option<String>,
    },
    BodyContains(Template),
    Json {
        path: JsonPath,
        raw: String,
        equals: Option<serde_json::Value>,
        exists: Option<bool>,
    },
    LatencyMs(u64),
}

#[derive(Debug)]
pub enum Source {
    Json(JsonPath),
    Regex(Regex),
    Header(String),
}

#[derive(Debug)]
pub struct CStep {
    pub request: Option<CRequest>,
    pub asserts: Vec<CAssert>,
    pub extract: Vec<(String, Source)>,
    pub think: Option<(u64, u64)>,
    pub group: Option<String>,
}

impl CStep {
    /// Whether anything looks at the response headers; if not, the host
    /// is told not to copy them in.
    pub fn reads_headers(&self) -> bool {
        self.asserts
            .iter()
            .any(|a| matches!(a, CAssert::Header { .. }))
            || self
                .extract
                .iter()
                .any(|(_, s)| matches!(s, Source::Header(_)))
    }

    /// Whether anything looks at the response body.
    pub fn reads_body(&self) -> bool {
        self.asserts
            .iter()
            .any(|a| matches!(a, CAssert::BodyContains(_) | CAssert::Json { .. }))
            || self
                .extract
                .iter()
                .any(|(_, s)| matches!(s, Source::Json(_) | Source::Regex(_)))
    }
}

#[derive(Debug)]
pub struct CFlow {
    pub weight: u32,
    pub steps: Vec<CStep>,
}

#[derive(Debug)]
pub struct Program {
    /// The statuses that are not failures, as inclusive ranges; None
    /// leaves the host's default (200–399).
    pub expected: Option<Vec<(u16, u16)>>,
    /// Steps run once per test, in `setup` and `teardown`.
    pub setup: Vec<CStep>,
    pub teardown: Vec<CStep>,
    pub flows: Vec<CFlow>,
    pub rows: Vec<BTreeMap<String, String>>,
    pub per: Per,
}

/// Parses a data file into rows: a JSON array of objects, or CSV with a
/// header line. A row with the wrong number of fields names its line.
pub fn parse_rows(
    name: &str,
    bytes: &[u8],
) -> Result<Vec<BTreeMap<String, serde_json::Value>>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("data file `{name}` is not UTF-8 text"))?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text)
            .map_err(|e| format!("data file `{name}`: not a JSON array of objects: {e}"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("data file `{name}`: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("data file `{name}`: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(format!(
                "data file `{name}` line {line}: {} fields, but the header has {} ({})",
                record.len(),
                header.len(),
                header.join(",")
            ));
        }
        rows.push(
            header
                .iter()
                .cloned()
                .zip(
                    record
                        .iter()
                        .map(|v| serde_json::Value::String(v.to_owned())),
                )
                .collect(),
        );
    }
    Ok(rows)
}

pub fn compile(spec: Spec) -> Result<Program, String> {
    let expected = spec.expected_statuses.map(expected).transpose()?;
    let (rows, per, mut columns) = data(spec.data)?;
    // Setup runs outside any VU, so it sees no data rows; what it extracts
    // is defined everywhere after it.
    let mut from_setup = BTreeSet::new();
    let setup = spec
        .setup
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(s, &format!("setup[{i}]"), &mut from_setup))
        .collect::<Result<Vec<_>, _>>()?;
    let mut for_teardown = from_setup.clone();
    let teardown = spec
        .teardown
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(s, &format!("teardown[{i}]"), &mut for_teardown))
        .collect::<Result<Vec<_>, _>>()?;
    columns.extend(from_setup);
    let flows = match (spec.steps.is_empty(), spec.flows.is_empty()) {
        (false, true) => vec![(String::from("steps"), 1, spec.steps)],
        (true, false) => spec
            .flows
            .into_iter()
            .enumerate()
            .map(|(i, f)| (format!("flows[{i}].steps"), f.weight, f.steps))
            .collect(),
        (true, true) => {
            return Err("params need `steps` (one flow) or `flows` (weighted flows)".into());
        }
        (false, false) => return Err("give either `steps` or `flows`, not both".into()),
    };
    let mut out = Vec::new();
    for (at, weight, steps) in flows {
        let mut defined = columns.clone();
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| step(s, &format!("{at}[{i}]"), &mut defined))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(CFlow { weight, steps });
    }
    if out.iter().all(|f| f.weight == 0) {
        return Err("every flow has weight 0".into());
    }
    Ok(Program {
        expected,
        setup,
        teardown,
        flows: out,
        rows,
        per,
    })
}

/// `expected_statuses` as ranges, each checked: a status (100–999) or
/// `{ min, max }` with min <= max, and nothing else.
fn expected(list: Vec<serde_json::Value>) -> Result<Vec<(u16, u16)>, String> {
    if list.is_empty() {
        return Err("expected_statuses: give at least one status or { min, max }".into());
    }
    list.iter().enumerate().map(|(i, v)| status_range(v).ok_or_else(|| {
        format!("expected_statuses[{i}]: `{v}` is not a status (100–999) or {{ min, max }} with min <= max")
    })).collect()
}

fn status_range(v: &serde_json::Value) -> Option<(u16, u16)> {
    let status = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|n| (100..=999).contains(n))
            .map(|n| n as u16)
    };
    if let Some(n) = status(v) {
        return Some((n, n));
    }
    let range = v.as_object().filter(|o| o.len() == 2)?;
    let (min, max) = (status(range.get("min")?)?, status(range.get("max")?)?);
    (min <= max).then_some((min, max))
}

/// Data rows as strings, how they are taken, and their column names.
type Rows = (Vec<BTreeMap<String, String>>, Per, BTreeSet<String>);

fn data(d: Option<Data>) -> Result<Rows, String> {
    let Some(d) = d else {
        return Ok((Vec::new(), Per::Iteration, BTreeSet::new()));
    };
    if d.rows.is_empty() {
        return Err("data.rows is empty".into());
    }
    let columns: BTreeSet<String> = d.rows[0].keys().cloned().collect();
    let mut rows = Vec::new();
    for (i, row) in d.rows.into_iter().enumerate() {
        let keys: BTreeSet<String> = row.keys().cloned().collect();
        if keys != columns {
            let cols: Vec<_> = columns.iter().map(String::as_str).collect();
            let got: Vec<_> = keys.iter().map(String::as_str).collect();
            return Err(format!(
                "data.rows[{i}]: has columns [{}] but row 0 has [{}]; every row needs the same columns",
                got.join(", "),
                cols.join(", ")
            ));
        }
        rows.push(
            row.into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
        );
    }
    Ok((rows, d.per, columns))
}

fn check_defined(t: &Template, at: &str, defined: &BTreeSet<String>) -> Result<(), String> {
    for v in t.vars() {
        if !defined.contains(v) {
            let known: Vec<&str> = defined.iter().map(String::as_str).collect();
            return Err(format!(
                "{at}: `${{{v}}}` is not defined here (defined: {}); extract it in an earlier step or add it to data.rows",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    Ok(())
}

fn template(s: &str, at: &str, defined: &BTreeSet<String>) -> Result<Template, String> {
    let t = Template::parse(s, at)?;
    check_defined(&t, at, defined)?;
    Ok(t)
}

fn step(s: Step, at: &str, defined: &mut BTreeSet<String>) -> Result<CStep, String> {
    if s.request.is_none() && s.think.is_none() {
        return Err(format!("{at}: a step needs a `request` or a `think`"));
    }
    if s.request.is_none() && (!s.asserts.is_empty() || !s.extract.is_empty()) {
        return Err(format!(
            "{at}: `assert` and `extract` need a `request` in the same step"
        ));
    }
    let request = s
        .request
        .map(|r| request(r, &format!("{at}.request"), defined))
        .transpose()?;
    let asserts = s
        .asserts
        .into_iter()
        .enumerate()
        .map(|(i, a)| assertion(a, &format!("{at}.assert[{i}]"), defined))
        .collect::<Result<Vec<_>, _>>()?;
    let mut extract = Vec::new();
    for (i, e) in s.extract.into_iter().enumerate() {
        let src = source(&e, &format!("{at}.extract[{i}]"))?;
        defined.insert(e.var.clone());
        extract.push((e.var, src));
    }
    let think = s.think.map(|t| match t {
        Think::Fixed(ms) => (ms, ms),
        Think::Range { min_ms, max_ms } => (min_ms.min(max_ms), max_ms.max(min_ms)),
    });
    if s.group
        .as_deref()
        .is_some_and(|g| g.is_empty() || g.contains("::"))
    {
        return Err(format!(
            "{at}.group: a group name must be non-empty and not contain `::` (groups nest by themselves)"
        ));
    }
    Ok(CStep {
        request,
        asserts,
        extract,
        think,
        group: s.group,
    })
}

fn request(r: Request, at: &str, defined: &BTreeSet<String>) -> Result<CRequest, String> {
    let bodies = [r.body.is_some(), r.json.is_some(), !r.form.is_empty()];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err(format!(
            "{at}: give one of `body`, `json` or `form`, not several"
        ));
    }
    let pairs =
        |m: BTreeMap<String, String>, what: &str| -> Result<Vec<(String, Template)>, String> {
            m.into_iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        template(&v, &format!("{at}.{what}.{k}"), defined)?,
                    ))
                })
                .collect()
        };
    let json = r.json.is_some();
    let body = match (r.body, r.json) {
        (Some(b), _) => Some(template(&b, &format!("{at}.body"), defined)?),
        (_, Some(j)) => Some(template(&j.to_string(), &format!("{at}.json"), defined)?),
        _ => None,
    };
    let method = r.method.to_ascii_uppercase();
    Ok(CRequest {
        name: r
            .name
            .unwrap_or_else(|| format!("{method} {}", r.path.split('?').next().unwrap_or(""))),
        path: template(&r.path, &format!("{at}.path"), defined)?,
        method,
        headers: pairs(r.headers, "headers")?,
        query: pairs(r.query, "query")?,
        form: pairs(r.form, "form")?,
        body,
        json,
        tags: r.tags.into_iter().collect(),
        max_redirects: r.max_redirects,
    })
}

fn assertion(a: Assert, at: &str, defined: &BTreeSet<String>) -> Result<CAssert, String> {
    Ok(match a {
        Assert::Status(code) => CAssert::Status(code),
        Assert::Header {
            name,
            equals,
            contains,
        } => CAssert::Header {
            name,
            equals,
            contains,
        },
        Assert::BodyContains(s) => {
            CAssert::BodyContains(template(&s, &format!("{at}.body_contains"), defined)?)
        }
        Assert::Json {
            path,
            equals,
            exists,
        } => CAssert::Json {
            path: JsonPath::parse(&path, &format!("{at}.json.path"))?,
            raw: path,
            equals,
            exists,
        },
        Assert::LatencyMs { max } => CAssert::LatencyMs(max),
    })
}

fn source(e: &Extract, at: &str) -> Result<Source, String> {
    match (&e.json, &e.regex, &e.header) {
        (Some(p), None, None) => Ok(Source::Json(JsonPath::parse(p, &format!("{at}.json"))?)),
        (None, Some(r), None) => {
            let re =
                Regex::new(r).map_err(|err| format!("{at}.regex: `{r}` is not a regex: {err}"))?;
            if re.captures_len() < 2 {
                return Err(format!(
                    "{at}.regex: `{r}` needs a capture group, like token=(\\w+)"
                ));
            }
            Ok(Source::Regex(re))
        }
        (None, None, Some(h)) => Ok(Source::Header(h.to_ascii_lowercase())),
        _ => Err(format!(
            "{at}: give exactly one of `json`, `regex` or `header`"
        )),
    }
}
