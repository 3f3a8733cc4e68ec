//! Write loadtest scenarios in Rust.
//!
//! A scenario is a type that implements [`Scenario`]; [`export_scenario!`]
//! turns it into the exports of the `loadtest:scenario` WIT world. Build the
//! crate as a `cdylib` for `wasm32-wasip2` and point a config's `plugins` entry
//! at the `.wasm` file.
//!
//! ```no_run
//! use loadtest_sdk::{check, http, Params, Result, Scenario};
//!
//! struct Home;
//!
//! impl Scenario for Home {
//!     fn init(_params: &Params) -> Result<Self> { Ok(Home) }
//!     fn iteration(&mut self) -> Result<()> {
//!         let res = http::get("/").name("home").send()?;
//!         check("home is 200", res.status() == 200);
//!         Ok(())
//!     }
//! }
//! loadtest_sdk::export_scenario!(Home);
//! ```

// The generated bindings name the crate by its public path.
extern crate self as loadtest_sdk;

pub mod cookies;
pub mod http;
mod params;
pub mod vu;

pub use params::Params;

/// Generated bindings of the WIT world; the SDK's modules wrap them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "scenario-lifecycle",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "loadtest_sdk::bindings",
        runtime_path: "loadtest_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::loadtest::scenario::{log as wit_log, metrics};

/// Why an iteration (or `init`) failed; its text ends up in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(format!("json: {e}"))
    }
}

impl From<http::HttpError> for Error {
    fn from(e: http::HttpError) -> Self {
        use http::HttpError as E;
        Error(match e {
            E::InvalidRequest(m) => format!("invalid request: {m}"),
            E::Connect(m) => format!("connect: {m}"),
            E::Timeout => "timeout".into(),
            E::Transport(m) => format!("transport: {m}"),
            E::TooManyRedirects(n) => format!("stopped after {n} redirects (http.maxRedirects)"),
            E::BodyTooLarge(n) => {
                format!("the response body is larger than http.maxBodyBytes ({n} bytes)")
            }
        })
    }
}

/// Returns early from an iteration with a formatted [`Error`].
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::Error(format!($($arg)*))) };
}

/// One virtual user's scenario. The host creates one value per VU with
/// `init` and calls `iteration` on it for as long as the workload says.
///
/// `setup` and `teardown` run once per test (once per cluster, too), each
/// in an instance of its own: log in once, create test data, clean up.
/// What `setup` returns, every VU reads with [`vu::setup_data`].
pub trait Scenario: Sized + 'static {
    fn init(params: &Params) -> Result<Self>;
    fn iteration(&mut self) -> Result<()>;

    /// Runs before any VU starts; an error aborts the test before any load.
    fn setup(_params: &Params) -> Result<Option<String>> {
        Ok(None)
    }

    /// Runs after the last iteration, also after Ctrl-C, with setup's data.
    fn teardown(_params: &Params, _data: Option<&str>) -> Result<()> {
        Ok(())
    }
}

/// Records a named pass/fail check and returns `passed`, so it can guard
/// the next step: `if !check("logged in", res.status == 200) { ... }`.
pub fn check(name: &str, passed: bool) -> bool {
    metrics::check(name, passed);
    passed
}

/// Adds `value` to the counter `name`.
pub fn counter(name: &str, value: f64) {
    metrics::counter_add(name, value);
}

/// Records one sample of the trend `name` (percentiles in the summary).
pub fn trend(name: &str, value: f64) {
    metrics::trend_add(name, value);
}

/// Sets the gauge `name`: the last value counts, min and max are kept.
pub fn gauge(name: &str, value: f64) {
    metrics::gauge_set(name, value);
}

/// Records one sample of the rate `name` (the share of `true`s).
pub fn rate(name: &str, hit: bool) {
    metrics::rate_add(name, hit);
}

/// Runs `f` in the group `name`: its requests and checks are tagged
/// `group: ::outer::name`, and its time is recorded as `group_duration`.
/// Groups nest.
pub fn group<R>(name: &str, f: impl FnOnce() -> R) -> R {
    group_start(name);
    let r = f();
    group_end();
    r
}

/// Runs `f` with `tags` added to every sample it records, over the VU's
/// tags of the same names: `with_tags(&[("endpoint", "login")], ||
/// trend("login_time", ms))`, as k6's `add(value, tags)`. Tags left on by
/// a panic end with the iteration.
pub fn with_tags<R>(tags: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let owned: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tags_push(&owned);
    let r = f();
    tags_pop();
    r
}

/// [`with_tags`] without a closure; pair it with [`tags_pop`].
pub fn tags_push(tags: &[(String, String)]) {
    metrics::tags_push(tags);
}

pub fn tags_pop() {
    metrics::tags_pop();
}

/// Enters a group without a closure; pair it with [`group_end`]. A group
/// left open ends with the iteration.
pub fn group_start(name: &str) {
    metrics::group_start(name);
}

pub fn group_end() {
    metrics::group_end();
}

/// Log lines go to the host's log, tagged with the scenario and VU.
pub mod log {
    use super::wit_log::{Level, log};
    pub fn debug(msg: &str) {
        log(Level::Debug, msg)
    }
    pub fn info(msg: &str) {
        log(Level::Info, msg)
    }
    pub fn warn(msg: &str) {
        log(Level::Warn, msg)
    }
    pub fn error(msg: &str) {
        log(Level::Error, msg)
    }
}

/// Exports a [`Scenario`] type as the component's `init`/`iteration`,
/// `setup`/`teardown`.
#[macro_export]
macro_rules! export_scenario {
    ($ty:ty) => {
        struct __LoadtestScenarioExport;
        impl $crate::bindings::Guest for __LoadtestScenarioExport {
            fn init(params: String) -> ::std::result::Result<(), String> {
                $crate::__private::init::<$ty>(&params)
            }
            fn iteration() -> ::std::result::Result<(), String> {
                $crate::__private::iteration::<$ty>()
            }
        }
        impl $crate::bindings::exports::loadtest::scenario::lifecycle::Guest
            for __LoadtestScenarioExport
        {
            fn setup(params: String) -> ::std::result::Result<Option<String>, String> {
                $crate::__private::setup::<$ty>(&params)
            }
            fn teardown(params: String, data: Option<String>) -> ::std::result::Result<(), String> {
                $crate::__private::teardown::<$ty>(&params, data.as_deref())
            }
        }
        // Only components export: in a native build (tests, clippy) the
        // interface's export names (`loadtest:scenario/lifecycle@0.2.0#setup`)
        // are not valid symbol names for the linker.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_world!(__LoadtestScenarioExport);
        /// What the component would export, named so a native build
        /// sees the scenario as used.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __loadtest_exports() -> [*const (); 4] {
            use $crate::bindings::Guest as _;
            use $crate::bindings::exports::loadtest::scenario::lifecycle::Guest as _;
            [
                __LoadtestScenarioExport::init as *const (),
                __LoadtestScenarioExport::iteration as *const (),
                __LoadtestScenarioExport::setup as *const (),
                __LoadtestScenarioExport::teardown as *const (),
            ]
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use super::{Params, Scenario};
    use std::any::Any;
    use std::cell::RefCell;
    pub use wit_bindgen;

    thread_local! {
        // One instance serves one VU, so one scenario value per instance.
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    pub fn init<S: Scenario>(params: &str) -> Result<(), String> {
        let params = Params::parse(params).map_err(|e| e.0)?;
        let scenario = S::init(&params).map_err(|e| e.0)?;
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(scenario)));
        Ok(())
    }

    pub fn setup<S: Scenario>(params: &str) -> Result<Option<String>, String> {
        let params = Params::parse(params).map_err(|e| e.0)?;
        S::setup(&params).map_err(|e| e.0)
    }

    pub fn teardown<S: Scenario>(params: &str, data: Option<&str>) -> Result<(), String> {
        let params = Params::parse(params).map_err(|e| e.0)?;
        S::teardown(&params, data).map_err(|e| e.0)
    }

    pub fn iteration<S: Scenario>() -> Result<(), String> {
        STATE.with(|s| {
            let mut slot = s.borrow_mut();
            let scenario = slot
                .as_mut()
                .and_then(|b| b.downcast_mut::<S>())
                .ok_or_else(|| "iteration called before init".to_string())?;
            scenario.iteration().map_err(|e| e.0)
        })
    }
}
