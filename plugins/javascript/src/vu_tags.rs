//! The VU's own tags as the script sees them (k6's `exec.vu.tags`): the
//! host keeps the tags every sample carries, and this copy is what the
//! plugin set there, so the script can read them back.

use loadtest_sdk::vu;
use std::cell::RefCell;

thread_local! {
    static TAGS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Tags every later sample of this VU with `key`, or takes the tag off.
pub fn set(key: &str, value: Option<&str>) {
    match value {
        Some(v) => vu::set_tag(key, v),
        None => vu::remove_tag(key),
    }
    TAGS.with_borrow_mut(|tags| {
        tags.retain(|(k, _)| k != key);
        if let Some(v) = value {
            tags.push((key.to_owned(), v.to_owned()));
        }
    });
}

/// `H.vuTag(key)`.
pub fn get(key: String) -> Option<String> {
    TAGS.with_borrow(|tags| tags.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
}

/// `H.vuTagNames()`, in the order they were set.
pub fn names() -> Vec<String> {
    TAGS.with_borrow(|tags| tags.iter().map(|(k, _)| k.clone()).collect())
}
