//! The virtual user's identity, clock and dice, all from the host so a
//! scenario needs no WASI clocks or randomness.

use crate::bindings::loadtest::scenario::vu as wit;
use std::time::Duration;

pub fn id() -> u32 {
    wit::id()
}

pub fn iteration() -> u64 {
    wit::iteration()
}

pub fn scenario() -> String {
    wit::scenario()
}

/// The `exec` name picked for this iteration ("" when the scenario has none):
/// one plugin can hold several flows and let the config weigh them.
pub fn exec() -> String {
    wit::exec()
}

/// Think time: pauses this VU only, for at least `d`. The host counts
/// whole milliseconds, so a fraction rounds up: a plugin that pads an
/// iteration to a minimum must never end it a fraction short.
pub fn sleep(d: Duration) {
    wit::sleep(d.as_micros().div_ceil(1000).min(u32::MAX as u128) as u32)
}

pub fn now_ms() -> u64 {
    wit::now_ms()
}

pub fn monotonic() -> Duration {
    Duration::from_micros(wit::monotonic_us())
}

/// A data file the config lists under `files`, by its name there.
pub fn file(name: &str) -> Option<Vec<u8>> {
    wit::file(name)
}

pub fn random() -> u64 {
    wit::random_u64()
}

/// A random number in `lo..hi` (`lo` when the range is empty).
pub fn random_range(lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        lo
    } else {
        lo + random() % (hi - lo)
    }
}

/// Tags every sample this VU records from now on.
pub fn set_tag(key: &str, value: &str) {
    wit::set_tag(key, Some(value))
}

pub fn remove_tag(key: &str) {
    wit::set_tag(key, None)
}

/// What the scenario's `setup` returned, if it has one.
pub fn setup_data() -> Option<String> {
    wit::setup_data()
}

/// [`setup_data`] read as JSON.
pub fn setup_json<T: serde::de::DeserializeOwned>() -> crate::Result<Option<T>> {
    setup_data()
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(Into::into)
}

/// Ends the whole test (k6's `exec.test.abort()`): this node's VUs stop
/// at once, teardown still runs, and a standalone run exits with code 108
/// (a cluster's other nodes stop as `loadtest stop` stops them). Return an
/// error from the iteration right after (`fail!`), so this one ends too.
pub fn abort_test(reason: &str) {
    wit::abort_test(reason)
}

/// Marks the whole test failed (k6's `exec.test.fail()`) and lets it run
/// on: the report gives the reason and the run exits with code 110.
pub fn fail_test(reason: &str) {
    wit::fail_test(reason)
}

/// Where the running iteration stands in the test (k6's `k6/execution`
/// numbers): its number among the scenario's iterations on this node and
/// in the whole test (unique across a cluster's nodes), this VU's id in
/// the whole test, and the scenario's executor.
pub use wit::ExecutionInfo;

pub fn execution() -> ExecutionInfo {
    wit::execution()
}

/// How far this node's test and the VU's scenario are (k6's
/// `exec.instance`, `exec.scenario.startTime` and `progress`).
pub use wit::ProgressInfo;

pub fn progress() -> ProgressInfo {
    wit::progress()
}

/// The length of the array stored under `name` for the whole process (k6's
/// `SharedArray`), or none when no VU has stored it yet.
pub fn shared_array_len(name: &str) -> Option<u32> {
    wit::shared_array_len(name)
}

/// Stores an array (items as JSON text) once per process unless another VU
/// did first; gives the length the name then holds.
pub fn shared_array_put(name: &str, items: &[String]) -> Result<u32, String> {
    wit::shared_array_put(name, items)
}

/// One item of a shared array, as JSON text.
pub fn shared_array_get(name: &str, index: u32) -> Option<String> {
    wit::shared_array_get(name, index)
}
