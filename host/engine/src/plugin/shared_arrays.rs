//! k6's `SharedArray` on the host: a test's arrays stored once per process
//! and read by every VU, instead of each VU's heap holding its own copy of
//! a data file's rows. Items are kept as the JSON text the guest gave, and
//! a read hands one item back as text: each read is a fresh copy in the
//! guest, as in k6, and nothing a VU does to it reaches another VU.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How much item text one test may store. A test that stores more is
/// almost surely a script building arrays in a loop, and the process
/// would run out of memory before saying why.
pub const BUDGET_BYTES: usize = 1 << 30;

/// What the store spends on an array and on an item besides their text.
const ARRAY_OVERHEAD: usize = 64;
const ITEM_OVERHEAD: usize = std::mem::size_of::<Box<str>>();

/// The arrays of one test, by name; clones share them.
#[derive(Debug, Clone)]
pub struct SharedArrays(Arc<Mutex<Store>>);

#[derive(Debug)]
struct Store {
    arrays: HashMap<String, Arc<[Box<str>]>>,
    bytes: usize,
    budget: usize,
}

impl Default for SharedArrays {
    fn default() -> Self {
        Self::with_budget(BUDGET_BYTES)
    }
}

impl SharedArrays {
    fn with_budget(budget: usize) -> Self {
        let arrays = HashMap::new();
        SharedArrays(Arc::new(Mutex::new(Store {
            arrays,
            bytes: 0,
            budget,
        })))
    }

    /// The named array's length, or none when no VU has stored it yet.
    pub fn len(&self, name: &str) -> Option<u32> {
        let store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        store.arrays.get(name).map(|a| a.len() as u32)
    }

    /// Stores `items` under `name` unless an array is already there (two
    /// VUs can build it at once; the first to store wins and both then
    /// read that one), and gives the length stored under the name.
    pub fn put(&self, name: &str, items: Vec<String>) -> Result<u32, String> {
        let mut store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = store.arrays.get(name) {
            return Ok(a.len() as u32);
        }
        let len = u32::try_from(items.len())
            .map_err(|_| format!("SharedArray {name}: more than {} items", u32::MAX))?;
        // Names and bookkeeping count too: a hostile plugin storing many
        // empty arrays under long names must meet the budget as well.
        let bytes = name.len()
            + ARRAY_OVERHEAD
            + items.iter().map(|i| i.len() + ITEM_OVERHEAD).sum::<usize>();
        if store.bytes + bytes > store.budget {
            return Err(format!(
                "SharedArray {name}: {bytes} bytes (its items, name and bookkeeping) would take the test's shared arrays past {} MiB; \
                 store fewer or smaller items (each array is kept once per process)",
                store.budget >> 20
            ));
        }
        store.bytes += bytes;
        let items = items.into_iter().map(String::into_boxed_str).collect();
        store.arrays.insert(name.to_owned(), items);
        Ok(len)
    }

    /// Item `index` of the named array as JSON text; none past its end or
    /// for a name never stored.
    pub fn get(&self, name: &str, index: u32) -> Option<String> {
        let array = {
            let store = self.0.lock().unwrap_or_else(|e| e.into_inner());
            store.arrays.get(name)?.clone()
        };
        array.get(index as usize).map(|item| item.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_array_stored_under_a_name_is_the_one_every_vu_reads() {
        let shared = SharedArrays::default();
        assert_eq!(shared.len("users"), None);
        assert_eq!(shared.put("users", items(&["1", "2"])), Ok(2));
        let other = shared.clone();
        assert_eq!(other.put("users", items(&["9", "9", "9"])), Ok(2));
        assert_eq!(other.len("users"), Some(2));
        assert_eq!(other.get("users", 1).as_deref(), Some("2"));
        assert_eq!(other.get("users", 2), None);
        assert_eq!(other.get("nobody", 0), None);
    }

    #[test]
    fn storing_past_the_budget_is_refused_and_says_why() {
        let shared = SharedArrays::with_budget(3 << 20);
        let big = "x".repeat(2 << 20);
        assert_eq!(shared.put("a", vec![big.clone()]), Ok(1));
        let err = shared.put("b", vec![big]).unwrap_err();
        assert!(
            err.contains("SharedArray b") && err.contains("MiB"),
            "{err}"
        );
        assert_eq!(shared.len("b"), None);
    }

    #[test]
    fn empty_arrays_under_long_names_meet_the_budget_too() {
        let shared = SharedArrays::with_budget(1 << 20);
        let name = |i: usize| format!("{i:0>4096}");
        let stored = (0..1000)
            .take_while(|&i| shared.put(&name(i), Vec::new()).is_ok())
            .count();
        assert!((200..=256).contains(&stored), "{stored} stored");
    }
}
