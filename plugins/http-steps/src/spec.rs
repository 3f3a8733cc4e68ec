//! The steps language, as the config's `params` spell it.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// One flow (shorthand for `flows: [{ steps: ... }]`).
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Several flows; each iteration runs one, picked by weight.
    #[serde(default)]
    pub flows: Vec<Flow>,
    #[serde(default)]
    pub data: Option<Data>,
    /// Steps run once per test before any VU starts (log in, create test
    /// data); the variables they extract are defined in every flow.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// Steps run once after the last iteration (also after Ctrl-C), with
    /// setup's variables.
    #[serde(default)]
    pub teardown: Vec<Step>,
    /// The statuses a response may have without counting as failed
    /// (k6's `expectedStatuses`): codes and `{ min, max }` ranges, checked
    /// when compiled. The default is 200–399.
    #[serde(default)]
    pub expected_statuses: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "one")]
    pub weight: u32,
    pub steps: Vec<Step>,
}

fn one() -> u32 {
    1
}

/// Rows of variables: each VU (or each iteration) takes the next row.
/// Inline `rows`, or a `file` the config lists under `files` (CSV with a
/// header line, or a JSON array of objects).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub per: Per,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    #[default]
    Iteration,
    Vu,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub request: Option<Request>,
    #[serde(default, rename = "assert")]
    pub asserts: Vec<Assert>,
    #[serde(default)]
    pub extract: Vec<Extract>,
    #[serde(default)]
    pub think: Option<Think>,
    /// Runs the step in this group (`group: checkout` becomes
    /// `::checkout`); consecutive steps of one group are one run of it.
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "get")]
    pub method: String,
    /// A path joined to the target, or an absolute URL.
    #[serde(alias = "url")]
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A form body (`application/x-www-form-urlencoded`), fields sorted by name.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Tags on this request's samples (thresholds can filter on them).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Redirects to follow (default: the config's `http.maxRedirects`).
    #[serde(default)]
    pub max_redirects: Option<u32>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Assert {
    Status(u16),
    Header {
        name: String,
        #[serde(default)]
        equals: Option<String>,
        #[serde(default)]
        contains: Option<String>,
    },
    BodyContains(String),
    Json {
        path: String,
        #[serde(default)]
        equals: Option<serde_json::Value>,
        #[serde(default)]
        exists: Option<bool>,
    },
    LatencyMs {
        max: u64,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub var: String,
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
}

/// Fixed milliseconds, or a random range.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Think {
    Fixed(u64),
    Range { min_ms: u64, max_ms: u64 },
}
