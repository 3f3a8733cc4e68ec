//! Tags on samples, and the tag filters thresholds ask for. The built-in
//! series are keyed by scenario and name only, so a filter on any other
//! tag (`status:200`, `group:::checkout`, a tag the scenario set) gets a
//! series of its own, fed as samples are recorded: the cost is paid only
//! by tests whose thresholds name such a tag, as in k6.

use std::sync::Arc;

/// Where a sample was taken: the VU's group (`::a::b`, "" outside any)
/// and its tags. Most VUs have neither, and then this is a null pointer:
/// samples carry it for free, and cloning it touches no counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context(Option<Arc<Scope>>);

#[derive(Debug, PartialEq)]
struct Scope {
    group: String,
    tags: Vec<(String, String)>,
}

impl Context {
    pub fn new(group: &str, tags: Vec<(String, String)>) -> Context {
        if group.is_empty() && tags.is_empty() {
            return Context(None);
        }
        Context(Some(Arc::new(Scope {
            group: group.to_owned(),
            tags,
        })))
    }

    pub fn group(&self) -> &str {
        self.0.as_deref().map_or("", |s| s.group.as_str())
    }

    pub fn tags(&self) -> &[(String, String)] {
        self.0.as_deref().map_or(&[], |s| s.tags.as_slice())
    }

    /// The value of a tag the scenario set (the latest, if set twice).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags()
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// This context with `extra` tags (a request's own) after the VU's.
    pub fn with(&self, extra: Vec<(String, String)>) -> Context {
        if extra.is_empty() {
            return self.clone();
        }
        let mut all = self.tags().to_vec();
        all.extend(extra);
        Context::new(self.group(), all)
    }
}

/// A threshold's selector that needs its own series: `key` is how the
/// threshold names it (`http_req_duration{status:200}`).
#[derive(Debug, Clone, PartialEq)]
pub struct TagFilter {
    pub key: String,
    pub metric: String,
    pub tags: Vec<(String, String)>,
}

/// Every filter of a run, shared by its collectors.
pub type Filters = Arc<[TagFilter]>;

/// The tags a selector can always be answered on from the built-in series.
pub const BUILTIN_TAGS: [&str; 3] = ["scenario", "name", "check"];

impl TagFilter {
    /// Whether a sample whose tag values `lookup` gives passes the filter.
    /// The scenario is not asked: samples come grouped by scenario, and
    /// the caller checks it once for all of them.
    pub fn matches<'a>(&self, lookup: impl Fn(&str) -> Option<std::borrow::Cow<'a, str>>) -> bool {
        self.tags
            .iter()
            .filter(|(k, _)| k != "scenario")
            .all(|(k, v)| lookup(k).is_some_and(|got| got == v.as_str()))
    }

    /// Whether this filter's samples pass in `scenario` at all.
    pub fn admits(&self, scenario: &str) -> bool {
        self.tags
            .iter()
            .all(|(k, v)| k != "scenario" || v == scenario)
    }

    /// Whether the filter is about HTTP requests (and so sees their samples).
    pub fn on_requests(&self) -> bool {
        self.metric.starts_with("http_req")
            || self.metric == "data_received"
            || self.metric == "data_sent"
    }
}
