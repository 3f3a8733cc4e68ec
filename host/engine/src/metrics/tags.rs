//! Tags on samples, and the tag filters thresholds ask for. The built-in
//! series are keyed by scenario and name only, so a filter on any other
//! tag (`status:200`, `group:::checkout`, a tag the scenario set) gets a
//! series of its own, fed as samples are recorded: the cost is paid only
//! by tests whose thresholds name such a tag, as in k6.

use std::sync::Arc;

/// Tags a VU or a request set, carried by every sample they cover.
pub type Tags = Arc<[(String, String)]>;

/// Where a sample was taken: the VU's group (`::a::b`, "" outside any)
/// and its tags. Cloning it costs two reference counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub group: Arc<str>,
    pub tags: Option<Tags>,
}

impl Context {
    /// The value of a tag the scenario set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .as_deref()?
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
        let mut all: Vec<_> = self.tags.as_deref().map(<[_]>::to_vec).unwrap_or_default();
        all.extend(extra);
        Context {
            group: self.group.clone(),
            tags: Some(all.into()),
        }
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
        self.metric.starts_with("http_req") || self.metric == "data_received"
    }
}
