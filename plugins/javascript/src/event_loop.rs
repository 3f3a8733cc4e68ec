//! What runs after an export returns, as k6's event loop runs it: the
//! jobs its promises queued (an `async` export returns a promise), and
//! the timers it set, each after sleeping on the host until it is due (so
//! a stop cuts the wait short). A call is over when its promise has
//! settled and no timer is left; its value is the promise's. All I/O is
//! synchronous here (a request returns its response), so nothing else
//! can resolve a promise.

use loadtest_sdk::vu;
use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Exception, Function, Object, Value};
use std::cell::Cell;
use std::time::Duration;

thread_local! {
    /// Set when a script arms a timer: until then a call that returns
    /// no promise is over at once, with no JavaScript call to ask.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// `H.armTimers()`, called by setTimeout and setInterval.
pub fn arm() {
    ARMED.set(true);
}

/// Drops what an earlier call that failed left armed.
pub fn reset(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    if !ARMED.get() {
        return Ok(());
    }
    timers(ctx)?.get::<_, Function>("clear")?.call(())
}

fn timers<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    ctx.globals().get("__timers")
}

/// Runs the loop for the value an export returned.
pub fn settle<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<Value<'js>> {
    let promise = value.as_promise().cloned();
    loop {
        while ctx.execute_pending_job() {}
        if let Some(p) = &promise
            && p.state() == PromiseState::Rejected
        {
            return p.result().expect("a settled promise has a result");
        }
        let wait = if ARMED.get() {
            timers(ctx)?
                .get::<_, Function>("wait")?
                .call::<_, f64>(())?
        } else {
            -1.0
        };
        if wait < 0.0 {
            ARMED.set(false);
            return match &promise {
                None => Ok(value),
                Some(p) => p.result().unwrap_or_else(|| Err(never_settles(ctx))),
            };
        }
        if wait > 0.0 {
            vu::sleep(Duration::from_micros((wait * 1000.0) as u64));
        }
        timers(ctx)?.get::<_, Function>("fire")?.call::<_, ()>(())?;
    }
}

fn never_settles(ctx: &Ctx<'_>) -> rquickjs::Error {
    Exception::throw_message(
        ctx,
        "the function's promise never settles: it awaits something that nothing pending (no timer, no request) will resolve",
    )
}
