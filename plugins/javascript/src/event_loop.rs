//! What runs after an export returns, as k6's event loop runs it: the
//! jobs its promises queued (an `async` export returns a promise), and
//! the timers it set, each after sleeping on the host until it is due (so
//! a stop cuts the wait short). A call is over when its promise has
//! settled and no timer or request is left; its value is the promise's.
//! A request returns its response synchronously, except those
//! `http.asyncRequest` queues: they go out together, in parallel, as soon
//! as the script waits (its jobs are done), so `Promise.all` over them
//! has them in flight at once, as in k6.
//!
//! The timers are kept here rather than in JavaScript: four native
//! functions cost each VU's heap less than a module of closures.

use loadtest_sdk::vu;
use rquickjs::function::{Opt, Rest};
use rquickjs::promise::PromiseState;
use rquickjs::{Array, Ctx, Exception, Function, Persistent, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

struct Timer {
    /// When it is due, on the host's monotonic clock.
    at: Duration,
    /// For `setInterval`: how long until it is due again.
    every: Option<Duration>,
    call: Persistent<Function<'static>>,
    args: Persistent<Array<'static>>,
}

/// A request `http.asyncRequest` made: `[method, url, body, params]`,
/// and what to call with its raw response or with why it was not sent.
pub struct Queued {
    pub item: Persistent<Array<'static>>,
    pub ok: Persistent<Function<'static>>,
    pub fail: Persistent<Function<'static>>,
}

#[derive(Default)]
struct Timers {
    last: u32,
    queue: BTreeMap<u32, Timer>,
}

thread_local! {
    /// This instance's timers (one VU, one engine, one thread).
    static TIMERS: RefCell<Timers> = RefCell::default();
    /// Promises rejected with no handler yet, and why.
    static UNHANDLED: RefCell<Vec<(Persistent<Value<'static>>, Persistent<Value<'static>>)>> =
        const { RefCell::new(Vec::new()) };
    /// Requests queued by `http.asyncRequest`, not sent yet.
    static QUEUED: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
}

/// `__host.queue(item, ok, fail)`: see [`Queued`].
pub fn queue<'js>(ctx: Ctx<'js>, item: Array<'js>, ok: Function<'js>, fail: Function<'js>) {
    let q = Queued {
        item: Persistent::save(&ctx, item),
        ok: Persistent::save(&ctx, ok),
        fail: Persistent::save(&ctx, fail),
    };
    QUEUED.with_borrow_mut(|list| list.push(q));
}

/// The queued requests, in the order they were made.
pub fn take_queued() -> Vec<Queued> {
    QUEUED.with_borrow_mut(std::mem::take)
}

/// The runtime's rejection tracker: a promise rejected with no handler is
/// kept until one is attached; one still unhandled when a call is over
/// fails it, as k6 fails an iteration on an uncaught rejection.
pub fn track<'js>(ctx: Ctx<'js>, promise: Value<'js>, reason: Value<'js>, handled: bool) {
    UNHANDLED.with_borrow_mut(|u| {
        if handled {
            u.retain(|(p, _)| p.clone().restore(&ctx).ok().as_ref() != Some(&promise));
        } else {
            u.push((
                Persistent::save(&ctx, promise),
                Persistent::save(&ctx, reason),
            ));
        }
    });
}

/// The first rejection nobody handled, as the call's error.
fn uncaught<'js>(ctx: &Ctx<'js>, returned: Option<&Value<'js>>) -> rquickjs::Result<()> {
    let first = UNHANDLED.with_borrow_mut(|u| {
        let mut left = std::mem::take(u).into_iter();
        left.find(|(p, _)| p.clone().restore(ctx).ok().as_ref() != returned)
    });
    let Some((_, reason)) = first else {
        return Ok(());
    };
    let reason = reason.restore(ctx)?;
    let text = match reason.as_exception() {
        Some(e) => {
            let stack = e.stack().unwrap_or_default();
            format!("{}\n{}", e.message().unwrap_or_default(), stack.trim_end())
        }
        None => ctx
            .json_stringify(reason)?
            .map_or_else(|| Ok("undefined".to_owned()), |s| s.to_string())?,
    };
    Err(Exception::throw_message(
        ctx,
        &format!("Uncaught (in promise) {}", text.trim_end()),
    ))
}

/// Runs what a call that threw queued (it would otherwise run in the
/// next one), keeping the call's own exception.
pub fn after_throw(ctx: &Ctx<'_>) -> rquickjs::Error {
    let thrown = ctx.catch();
    while ctx.execute_pending_job() {}
    UNHANDLED.with_borrow_mut(Vec::clear);
    ctx.throw(thrown)
}

/// `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval`.
pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let g = ctx.globals();
    g.set("setTimeout", Function::new(ctx.clone(), set_timeout)?)?;
    g.set("setInterval", Function::new(ctx.clone(), set_interval)?)?;
    let clear = Function::new(ctx.clone(), clear)?;
    g.set("clearTimeout", clear.clone())?;
    g.set("clearInterval", clear)
}

fn set_timeout<'js>(
    ctx: Ctx<'js>,
    f: Value<'js>,
    ms: Opt<f64>,
    args: Rest<Value<'js>>,
) -> rquickjs::Result<u32> {
    add(&ctx, f, ms.0, args, false)
}

fn set_interval<'js>(
    ctx: Ctx<'js>,
    f: Value<'js>,
    ms: Opt<f64>,
    args: Rest<Value<'js>>,
) -> rquickjs::Result<u32> {
    add(&ctx, f, ms.0, args, true)
}

fn add<'js>(
    ctx: &Ctx<'js>,
    f: Value<'js>,
    ms: Option<f64>,
    args: Rest<Value<'js>>,
    repeat: bool,
) -> rquickjs::Result<u32> {
    let Some(call) = f.into_function() else {
        return Err(Exception::throw_type(
            ctx,
            "setTimeout/setInterval: the first argument must be a function",
        ));
    };
    // NaN, negative or missing: due at once, as in browsers.
    let delay = Duration::from_secs_f64(ms.filter(|m| m.is_finite()).unwrap_or(0.0).max(0.0) / 1e3);
    let list = Array::new(ctx.clone())?;
    for (i, a) in args.0.into_iter().enumerate() {
        list.set(i, a)?;
    }
    let timer = Timer {
        at: vu::monotonic() + delay,
        every: repeat.then_some(delay),
        call: Persistent::save(ctx, call),
        args: Persistent::save(ctx, list),
    };
    Ok(TIMERS.with_borrow_mut(|t| {
        t.last += 1;
        t.queue.insert(t.last, timer);
        t.last
    }))
}

fn clear(id: Opt<Value<'_>>) {
    if let Some(id) = id.0.and_then(|v| v.as_number()) {
        TIMERS.with_borrow_mut(|t| t.queue.remove(&(id as u32)));
    }
}

/// Drops every timer and queued request: what a call that failed left
/// (never sent), or all of them before the runtime they belong to goes.
pub fn reset() {
    let dropped = TIMERS.with_borrow_mut(|t| std::mem::take(&mut t.queue));
    drop(dropped);
    let unhandled = UNHANDLED.with_borrow_mut(std::mem::take);
    drop(unhandled);
    drop(take_queued());
}

/// How long until the earliest timer is due (zero: due), if any is set.
fn next_wait() -> Option<Duration> {
    let at = TIMERS.with_borrow(|t| t.queue.values().map(|t| t.at).min())?;
    Some(at.saturating_sub(vu::monotonic()))
}

/// Runs the earliest timer alone, so that the jobs it queues run before
/// the next one, as in browsers.
fn fire(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let taken = TIMERS.with_borrow_mut(|t| {
        let (&id, _) = t.queue.iter().min_by_key(|(id, t)| (t.at, **id))?;
        let timer = t.queue.remove(&id)?;
        let handle = (timer.call.clone(), timer.args.clone());
        if let Some(every) = timer.every {
            t.queue.insert(
                id,
                Timer {
                    at: vu::monotonic() + every,
                    ..timer
                },
            );
        }
        Some(handle)
    });
    let Some((call, args)) = taken else {
        return Ok(());
    };
    let (call, args) = (call.restore(ctx)?, args.restore(ctx)?);
    let mut a = rquickjs::function::Args::new(ctx.clone(), args.len());
    for v in args.iter::<Value>() {
        a.push_arg(v?)?;
    }
    call.call_arg::<()>(a)
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
        if crate::host::send_queued(ctx)? {
            continue;
        }
        let Some(wait) = next_wait() else {
            uncaught(ctx, promise.as_ref().map(|p| p.as_value()))?;
            return match &promise {
                None => Ok(value),
                Some(p) => p.result().unwrap_or_else(|| Err(never_settles(ctx))),
            };
        };
        if !wait.is_zero() {
            vu::sleep(wait);
        }
        fire(ctx)?;
    }
}

fn never_settles(ctx: &Ctx<'_>) -> rquickjs::Error {
    Exception::throw_message(
        ctx,
        "the function's promise never settles: it awaits something that nothing pending (no timer, no request) will resolve",
    )
}
