//! k6's test-wide options that each VU applies itself, read from the
//! script's `options` when it loads: `tags` (and a scenario's own), the
//! default `userAgent`, `discardResponseBodies`, `throw` and
//! `minIterationDuration`. The host's config has no field for them, so
//! they travel in the script, as in k6.

use loadtest_sdk::vu;
use rquickjs::convert::Coerced;
use rquickjs::{Ctx, Exception, Object, Value};
use std::cell::{Cell, RefCell};
use std::time::Duration;

thread_local! {
    static USER_AGENT: RefCell<Option<String>> = const { RefCell::new(None) };
    static DISCARD_BODIES: Cell<bool> = const { Cell::new(false) };
    static THROW: Cell<bool> = const { Cell::new(false) };
    static TEST_OPTIONS: RefCell<Option<String>> = const { RefCell::new(None) };
    static MIN_ITERATION: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// The `User-Agent` a request without one gets, if the script set one.
pub fn user_agent() -> Option<String> {
    USER_AGENT.with_borrow(Clone::clone)
}

/// Whether a request without a `responseType` keeps no body (k6's
/// `discardResponseBodies`).
pub fn discard_bodies() -> bool {
    DISCARD_BODIES.get()
}

/// Whether a request that got no response throws rather than returning
/// status 0 with `error` (k6's `throw`).
pub fn throws() -> bool {
    THROW.get()
}

/// Keeps what `exec.test.options` shows (JSON), when the host sent it:
/// it does for a script run as the test, not for one a YAML config names.
pub fn set_test_options(json: Option<String>) {
    TEST_OPTIONS.set(json);
}

/// `exec.test.options` as JSON, or why there is none.
pub fn test_options() -> Result<String, String> {
    TEST_OPTIONS.with_borrow(Clone::clone).ok_or_else(|| {
        "k6/execution: exec.test.options is not offered to a script a YAML config names as its plugin (the config's scenarios, not the script's options, shape the run); run the script itself (`loadtest run script.js`) to read it".into()
    })
}

/// How long an iteration lasts at least (k6's `minIterationDuration`).
pub fn min_iteration() -> Option<Duration> {
    MIN_ITERATION.get()
}

/// Applies `options` (the script's export, if any) to this VU.
pub fn apply<'js>(ctx: &Ctx<'js>, options: Option<Object<'js>>) -> rquickjs::Result<()> {
    let Some(options) = options else {
        return Ok(());
    };
    tag(ctx, options.get("tags")?, "options.tags", true)?;
    // Every scenario's tags are checked (so `validate` finds a bad one);
    // this VU's scenario's are applied.
    let scenario = vu::scenario();
    let scenarios: Value = options.get("scenarios")?;
    if let Some(all) = scenarios.as_object() {
        for pair in all.props::<String, Value>() {
            let (name, s) = pair?;
            let Some(s) = s.as_object() else { continue };
            let what = format!("options.scenarios.{name}.tags");
            tag(ctx, s.get("tags")?, &what, name == scenario)?;
        }
    }
    let agent: Value = options.get("userAgent")?;
    let agent = match agent.as_string() {
        Some(s) => Some(s.to_string()?).filter(|s| !s.is_empty()),
        None if agent.is_undefined() || agent.is_null() => None,
        None => return Err(type_error(ctx, "options.userAgent must be a string")),
    };
    USER_AGENT.set(agent);
    let discard = options.get("discardResponseBodies")?;
    DISCARD_BODIES.set(flag(ctx, discard, "options.discardResponseBodies")?);
    THROW.set(flag(ctx, options.get("throw")?, "options.throw")?);
    let min: Value = options.get("minIterationDuration")?;
    MIN_ITERATION.set(if min.is_undefined() || min.is_null() {
        None
    } else {
        Some(crate::host::duration(ctx, &min)?)
    });
    Ok(())
}

/// Checks `tags`, and when `apply`, tags every sample of this VU with
/// their entries.
fn tag<'js>(
    ctx: &Ctx<'js>,
    tags: Option<Value<'js>>,
    what: &str,
    apply: bool,
) -> rquickjs::Result<()> {
    let Some(tags) = tags.filter(|t| !t.is_undefined() && !t.is_null()) else {
        return Ok(());
    };
    let Some(tags) = tags.into_object().filter(|t| !t.is_array()) else {
        let message = format!("{what} must be an object of tag names and values");
        return Err(type_error(ctx, &message));
    };
    for pair in tags.props::<String, Coerced<String>>() {
        let (k, v) = pair?;
        if apply {
            crate::vu_tags::set(&k, Some(&v.0));
        }
    }
    Ok(())
}

/// A true-or-false option; absent is false.
fn flag<'js>(ctx: &Ctx<'js>, v: Value<'js>, what: &str) -> rquickjs::Result<bool> {
    match v.as_bool() {
        Some(b) => Ok(b),
        None if v.is_undefined() || v.is_null() => Ok(false),
        None => Err(type_error(ctx, &format!("{what} must be true or false"))),
    }
}

fn type_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, message)
}
