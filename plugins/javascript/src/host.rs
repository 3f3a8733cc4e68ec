//! The native functions behind the k6 modules (`globalThis.__host`): each
//! one a direct call of a host import, so a request costs one crossing and
//! no interpreted glue beyond building the response object.

use base64::Engine as _;
use loadtest_sdk::{cookies, http, log, vu};
use rquickjs::convert::{Coerced, List};
use rquickjs::prelude::Opt;
use rquickjs::{Array, Class, Ctx, Exception, FromJs, Function, IntoJs, Object, Value, qjs};
use std::time::Duration;

/// Makes `globalThis.__host`. `check` and `random` are made now, since
/// the modules keep them (`export const check = H.check`, `Math.random =
/// H.random`); the rest when first called (`crate::lazy_natives`).
pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let h = Object::new(ctx.clone())?;
    h.set("check", Function::new(ctx.clone(), check)?)?;
    h.set("random", Function::new(ctx.clone(), crate::random::next)?)?;
    crate::lazy_natives::install(ctx, &h, LAZY)?;
    ctx.globals().set("__host", h)
}

/// Natives made on first call: `name: the function;`, each made with
/// `Function::new`.
macro_rules! lazy {
    ($($name:ident: $f:expr;)*) => {
        const LAZY: &[crate::lazy_natives::Native] = &[$(
            crate::lazy_natives::Native {
                name: match std::ffi::CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                    Ok(name) => name,
                    Err(_) => panic!("a native's name is a C string"),
                },
                make: {
                    fn make<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
                        Function::new(ctx.clone(), $f)
                    }
                    make
                },
            },
        )*];
    };
}

lazy! {
    send: send;
    batch: batch;
    queue: crate::event_loop::queue;
    sendQueued: |ctx: Ctx<'_>| send_queued(&ctx).map(|_| ());
    body: held_body;
    bodyBytes: held_body_bytes;
    multipart: crate::binary::multipart;
    openBinary: open_binary;
    headers: held_headers;
    timings: held_timings;
    expect: expect;
    counter: |n: String, v: f64| loadtest_sdk::counter(&n, v);
    trend: |n: String, v: f64| loadtest_sdk::trend(&n, v);
    gauge: |n: String, v: f64| loadtest_sdk::gauge(&n, v);
    rate: |n: String, v: bool| loadtest_sdk::rate(&n, v);
    groupStart: |n: String| loadtest_sdk::group_start(&n);
    groupEnd: loadtest_sdk::group_end;
    tagsPush: |tags: Vec<List<(String, String)>>| {
        loadtest_sdk::tags_push(&tags.into_iter().map(|p| p.0).collect::<Vec<_>>())
    };
    tagsPop: loadtest_sdk::tags_pop;
    vuTag: crate::vu_tags::get;
    vuTagNames: crate::vu_tags::names;
    setVuTag: |k: String, v: Option<String>| crate::vu_tags::set(&k, v.as_deref());
    sleep: |ms: f64| vu::sleep(Duration::from_micros((ms.max(0.0) * 1000.0) as u64));
    vuId: vu::id;
    abortTest: |reason: String| vu::abort_test(&reason);
    failTest: |reason: String| vu::fail_test(&reason);
    iteration: || vu::iteration() as f64;
    scenario: vu::scenario;
    execution: execution;
    progress: progress;
    testOptions: |ctx: Ctx<'_>| {
        crate::options::test_options().map_err(|e| Exception::throw_message(&ctx, &e))
    };
    open: |path: String| {
        let name = crate::engine::join("", &path);
        vu::file(&name).map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    log: log_line;
    hash: crate::crypto::hash;
    hmac: crate::crypto::hmac;
    randomBytes: crate::crypto::random_bytes;
    randomSeed: crate::random::seed;
    b64encode: b64encode;
    b64decode: b64decode;
    cookies: |url: String| {
        let pairs = cookies::for_url(&url).into_iter();
        pairs.map(|(k, v)| vec![k, v]).collect::<Vec<_>>()
    };
    setCookie: |url: String, c: String| cookies::set(&url, &c).is_ok();
    clearCookies: cookies::clear;
    newJar: new_jar;
    jarCookies: |jar: Class<'_, OwnJar>, url: String| {
        let pairs = jar.borrow().0.for_url(&url).into_iter();
        pairs.map(|(k, v)| vec![k, v]).collect::<Vec<_>>()
    };
    jarSet: |jar: Class<'_, OwnJar>, url: String, c: String| jar.borrow().0.set(&url, &c).is_ok();
    jarClear: |jar: Class<'_, OwnJar>| jar.borrow().0.clear();
    connection: held_connection;
    htmlNatives: html_natives;
    dataNatives: data_natives;
    importModule: import_module;
    resolveUrl: resolve_url;
    statusText: status_text;
}

/// k6's `response.status_text`: the status and its reason phrase, as Go
/// words them (`200 OK`); empty for a request that got no response.
fn status_text(status: u16) -> String {
    let reason = match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        0 => return String::new(),
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_owned()
}

/// `H.execution()`: k6/execution's numbers, as a list.
fn execution() -> List<(f64, f64, f64, String)> {
    let e = vu::execution();
    let (vu_id, executor) = (e.vu_id_in_test as f64, e.executor);
    List((
        e.iteration_in_instance as f64,
        e.iteration_in_test as f64,
        vu_id,
        executor,
    ))
}

/// `[vusActive, vusInitialized, iterationsCompleted,
/// iterationsInterrupted, currentTestRunDuration, scenario startTime,
/// scenario progress]`, as k6's `exec.instance` and `exec.scenario` give them.
fn progress() -> Vec<f64> {
    let p = vu::progress();
    vec![
        f64::from(p.vus_active),
        f64::from(p.vus_initialized),
        p.iterations_completed as f64,
        p.iterations_interrupted as f64,
        p.test_run_ms,
        p.scenario_start_ms as f64,
        p.scenario_progress,
    ]
}

/// `H.log(level, message)`: console's levels, 0–1 debug to 4 error.
fn log_line(level: u8, msg: String) {
    match level {
        0 | 1 => log::debug(&msg),
        2 => log::info(&msg),
        3 => log::warn(&msg),
        _ => log::error(&msg),
    }
}

/// `H.htmlNatives()`: the functions behind k6/html (`crate::html`).
fn html_natives(ctx: Ctx<'_>) -> rquickjs::Result<Object<'_>> {
    use crate::html;
    let n = Object::new(ctx.clone())?;
    n.set("parse", Function::new(ctx.clone(), html::parse)?)?;
    n.set("find", Function::new(ctx.clone(), html::find)?)?;
    n.set("filter", Function::new(ctx.clone(), html::filter)?)?;
    n.set("walk", Function::new(ctx.clone(), html::walk)?)?;
    n.set("text", Function::new(ctx.clone(), html::text)?)?;
    n.set("inner", Function::new(ctx.clone(), html::inner)?)?;
    n.set("outer", Function::new(ctx.clone(), html::outer)?)?;
    n.set("attr", Function::new(ctx.clone(), html::attr)?)?;
    n.set("attrs", Function::new(ctx.clone(), html::attrs)?)?;
    n.set("kind", Function::new(ctx.clone(), html::kind)?)?;
    n.set("resolve", Function::new(ctx.clone(), resolve_url)?)?;
    Ok(n)
}

/// `H.dataNatives()`: the functions behind k6/data's `SharedArray`, whose
/// items live on the host once per process (made when k6/data loads).
fn data_natives(ctx: Ctx<'_>) -> rquickjs::Result<Object<'_>> {
    let n = Object::new(ctx.clone())?;
    n.set(
        "len",
        Function::new(ctx.clone(), |name: String| vu::shared_array_len(&name))?,
    )?;
    n.set("put", Function::new(ctx.clone(), shared_array_put)?)?;
    n.set("get", Function::new(ctx.clone(), shared_array_get)?)?;
    Ok(n)
}

/// Hands an array's items to the host as JSON text (what `JSON.stringify`
/// makes of each; `null` for what it leaves out, as in an array), and
/// gives the length the name then holds: another VU's array if it stored
/// one first.
fn shared_array_put<'js>(ctx: Ctx<'js>, name: String, items: Array<'js>) -> rquickjs::Result<u32> {
    let mut texts = Vec::with_capacity(items.len());
    for item in items.iter::<Value>() {
        let text = ctx.json_stringify(item?)?;
        texts.push(match text {
            Some(t) => t.to_string()?,
            None => "null".into(),
        });
    }
    vu::shared_array_put(&name, &texts).map_err(|e| Exception::throw_message(&ctx, &e))
}

/// Item `index` of a shared array: a fresh copy made from its JSON text,
/// or undefined past the end.
fn shared_array_get<'js>(ctx: Ctx<'js>, name: String, index: u32) -> rquickjs::Result<Value<'js>> {
    match vu::shared_array_get(&name, index) {
        Some(text) => ctx.json_parse(text),
        None => Ok(Value::new_undefined(ctx)),
    }
}

/// `H.importModule(name)`: a k6 module's namespace, loaded on first use,
/// for an API reached through another module (`Response.html()` needs
/// `k6/html`); a static import would make every VU evaluate it.
fn import_module<'js>(ctx: Ctx<'js>, name: String) -> rquickjs::Result<Object<'js>> {
    rquickjs::Module::import(&ctx, name)?.finish()
}

/// `open(path, 'b')`: the file as an ArrayBuffer, or null when it did
/// not travel with the script.
fn open_binary<'js>(ctx: Ctx<'js>, path: String) -> rquickjs::Result<Value<'js>> {
    match vu::file(&crate::engine::join("", &path)) {
        Some(bytes) => crate::binary::array_buffer(&ctx, bytes),
        None => Ok(Value::new_null(ctx)),
    }
}

/// k6's `check(value, sets)`: each of `sets`' own properties in order, a
/// function called with `value` or a value taken as it is; truthy
/// passes, and a function that throws fails its check (the exception is
/// dropped). Native because a script pays it on every request it checks:
/// 0.5–0.8 µs less a check than the same loop in JavaScript (2.6 µs).
/// `tags` go on the checks' samples over the VU's tags, as in k6.
fn check<'js>(
    ctx: Ctx<'js>,
    value: Value<'js>,
    sets: Opt<Value<'js>>,
    tags: Opt<Value<'js>>,
) -> rquickjs::Result<bool> {
    let Some(sets) = sets.0.and_then(|s| s.into_object()) else {
        return Ok(true);
    };
    let tags = match tags.0 {
        Some(t) if !(t.is_undefined() || t.is_null()) => Some(tag_pairs(&ctx, t)?),
        _ => None,
    };
    let Some(tags) = tags else {
        return check_each(&ctx, &value, &sets);
    };
    loadtest_sdk::tags_push(&tags);
    let all = check_each(&ctx, &value, &sets);
    loadtest_sdk::tags_pop();
    all
}

/// A tags object's names and values (values made strings, as k6 does).
fn tag_pairs<'js>(ctx: &Ctx<'js>, tags: Value<'js>) -> rquickjs::Result<Vec<(String, String)>> {
    let Some(tags) = tags.into_object() else {
        return Err(Exception::throw_type(
            ctx,
            "check(value, sets, tags): tags must be an object of names and values",
        ));
    };
    tags.props::<String, Coerced<String>>()
        .map(|p| p.map(|(k, v)| (k, v.0)))
        .collect()
}

fn check_each<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    sets: &Object<'js>,
) -> rquickjs::Result<bool> {
    let mut all = true;
    for prop in sets.props::<rquickjs::String, Value>() {
        let (name, test) = prop?;
        let outcome = match test.as_function() {
            Some(f) => f.call::<_, Coerced<bool>>((value.clone(),)),
            None => Coerced::<bool>::from_js(ctx, test),
        };
        let ok = match outcome {
            Ok(ok) => ok.0,
            Err(rquickjs::Error::Exception) => {
                drop(ctx.catch());
                false
            }
            Err(e) => return Err(e),
        };
        loadtest_sdk::check(&name.to_string()?, ok);
        all &= ok;
    }
    Ok(all)
}

/// k6's response callback as the host keeps it: `[[min, max], ...]`
/// (checked by `k6/http`), or null to judge nothing.
fn expect(ranges: Option<Vec<Vec<u32>>>) {
    let ranges: Option<Vec<(u16, u16)>> =
        ranges.map(|rs| rs.iter().filter_map(|r| pair(r)).collect());
    http::expect_statuses(ranges.as_deref());
}

/// `method` and `url` come back in the response (k6's `response.request`),
/// the same strings, not copies. The headers, body and timings stay on the
/// host until the script reads them (`Held`): most scripts check only the
/// status, and building those was a third of the guest's CPU per request.
fn send<'js>(
    ctx: Ctx<'js>,
    method: rquickjs::String<'js>,
    url: rquickjs::String<'js>,
    body: Option<Value<'js>>,
    params: Option<Object<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let (req, kind) = request(
        &ctx,
        &method.to_string()?,
        url.to_string()?,
        body,
        params.as_ref(),
    )?;
    let sent = match params
        .as_ref()
        .map(|p| jar_of(&ctx, p))
        .transpose()?
        .flatten()
    {
        Some(jar) => jar.borrow().0.within(|| req.send_held()),
        None => req.send_held(),
    };
    match sent {
        Ok(res) => held(&ctx, res, kind, (method, url)),
        Err(e) => failed(&ctx, e, (method, url)),
    }
}

/// k6's `responseType`: what `response.body` is.
#[derive(Clone, Copy, PartialEq)]
enum BodyKind {
    /// A string (the default).
    Text,
    /// An ArrayBuffer.
    Binary,
    /// null: the host counts the body but keeps none of it.
    None,
}

impl BodyKind {
    fn of<'js>(ctx: &Ctx<'js>, params: &Object<'js>) -> rquickjs::Result<BodyKind> {
        match params.get::<_, Option<String>>("responseType")?.as_deref() {
            None => Ok(default_kind()),
            Some("text") => Ok(BodyKind::Text),
            Some("binary") => Ok(BodyKind::Binary),
            Some("none") => Ok(BodyKind::None),
            Some(other) => Err(Exception::throw_type(
                ctx,
                &format!("k6/http: responseType `{other}` is not one of text, binary, none"),
            )),
        }
    }
}

/// The host counts such a body but keeps none of it.
fn discard_if(r: http::Request, discard: bool) -> http::Request {
    if discard { r.discard_body() } else { r }
}

/// A request's `responseType` when its params give none: k6's
/// `discardResponseBodies` makes it `none`.
fn default_kind() -> BodyKind {
    if crate::options::discard_bodies() {
        BodyKind::None
    } else {
        BodyKind::Text
    }
}

/// A response's headers, body and timings, kept by the host until read;
/// the host lets them go when QuickJS frees the `Response` holding this.
pub struct Held {
    res: http::HeldResponse,
}

native_class!(Held, "HeldResponse");

/// A cookie jar of the script's own (`new http.CookieJar()`); the host
/// drops it when QuickJS frees the object holding this.
pub struct OwnJar(cookies::Jar);

native_class!(OwnJar, "OwnCookieJar");

/// `H.newJar()`: a jar of the script's own.
fn new_jar(ctx: Ctx<'_>) -> rquickjs::Result<Class<'_, OwnJar>> {
    Class::instance(ctx, OwnJar(cookies::Jar::new()))
}

/// The jar `params.jar` names: none for the VU's own (`http.cookieJar()`,
/// or no jar given), the native of a `new http.CookieJar()`.
fn jar_of<'js>(ctx: &Ctx<'js>, p: &Object<'js>) -> rquickjs::Result<Option<Class<'js, OwnJar>>> {
    let jar: Value = p.get("jar")?;
    let Some(obj) = jar.as_object() else {
        if jar.is_undefined() || jar.is_null() {
            return Ok(None);
        }
        return Err(Exception::throw_type(ctx, NOT_A_JAR));
    };
    if let Some(own) = obj.get::<_, Option<Class<OwnJar>>>("__jar")? {
        return Ok(Some(own));
    }
    let vu_jar = obj.get::<_, Value>("cookiesForURL")?.is_function();
    if vu_jar {
        Ok(None)
    } else {
        Err(Exception::throw_type(ctx, NOT_A_JAR))
    }
}

const NOT_A_JAR: &str =
    "k6/http: params.jar must be http.cookieJar() (the VU's jar) or a new http.CookieJar()";

/// A sent request's response for k6/http's `Response`: `[status, url,
/// body, error, error_code, headers, timings, method, requested url,
/// held, binary]`, where body, headers and timings are `undefined` until
/// read from `held` (a body is `null` with `responseType: 'none'`, an
/// ArrayBuffer when `binary`).
fn held<'js>(
    ctx: &Ctx<'js>,
    res: http::HeldResponse,
    kind: BodyKind,
    (method, url): (rquickjs::String<'js>, rquickjs::String<'js>),
) -> rquickjs::Result<Value<'js>> {
    let answered = match res.url() {
        Some(other) => other.into_js(ctx)?,
        None => url.clone().into_value(),
    };
    let body = match kind {
        BodyKind::None => Value::new_null(ctx.clone()),
        _ => Value::new_undefined(ctx.clone()),
    };
    let undefined = Value::new_undefined(ctx.clone());
    let fields = vec![
        res.status().into_js(ctx)?,
        answered,
        body,
        "".into_js(ctx)?,
        0.into_js(ctx)?,
        undefined.clone(),
        undefined,
        method.into_value(),
        url.into_value(),
        Class::instance(ctx.clone(), Held { res })?.into_value(),
        Value::new_bool(ctx.clone(), kind == BodyKind::Binary),
    ];
    array_of(ctx, fields)
}

/// `H.body(held)`: the body as a string, read from the host once.
fn held_body(held: Class<'_, Held>) -> String {
    String::from_utf8_lossy(&held.borrow().res.body()).into_owned()
}

/// `H.bodyBytes(held)`: the body as an ArrayBuffer (`responseType: 'binary'`).
fn held_body_bytes<'js>(ctx: Ctx<'js>, held: Class<'js, Held>) -> rquickjs::Result<Value<'js>> {
    let bytes = held.borrow().res.body();
    crate::binary::array_buffer(&ctx, bytes)
}

/// `H.headers(held)`: `[name, value, ...]`, names as k6 shows them.
fn held_headers<'js>(ctx: Ctx<'js>, held: Class<'js, Held>) -> rquickjs::Result<Value<'js>> {
    flat_headers(&ctx, &held.borrow().res.headers())
}

/// Headers as `Response` takes them: `[name, value, ...]`, names as k6
/// shows them.
fn flat_headers<'js>(ctx: &Ctx<'js>, headers: &[(String, String)]) -> rquickjs::Result<Value<'js>> {
    let mut flat = Vec::with_capacity(2 * headers.len());
    for (k, v) in headers {
        flat.push(canonical(k).into_js(ctx)?);
        flat.push(v.as_str().into_js(ctx)?);
    }
    array_of(ctx, flat)
}

/// `H.connection(held)`: `[proto, remote_ip, remote_port, tls_version,
/// tls_cipher_suite]`, empty strings for TLS over plain TCP, as in k6.
fn held_connection<'js>(ctx: Ctx<'js>, held: Class<'js, Held>) -> rquickjs::Result<Value<'js>> {
    let c = held.borrow().res.connection();
    let fields = vec![
        c.proto.into_js(&ctx)?,
        c.remote_ip.into_js(&ctx)?,
        c.remote_port.into_js(&ctx)?,
        c.tls_version.unwrap_or_default().into_js(&ctx)?,
        c.tls_cipher_suite.unwrap_or_default().into_js(&ctx)?,
    ];
    array_of(&ctx, fields)
}

/// `H.timings(held)`: the seven timings in milliseconds, in `TIMINGS`' order.
fn held_timings(held: Class<'_, Held>) -> Vec<f64> {
    phases_ms(&held.borrow().res.timings())
}

/// k6's timings in milliseconds, in the order of k6/http's `TIMINGS`.
fn phases_ms(t: &http::Timings) -> Vec<f64> {
    let phases = [
        t.duration,
        t.blocked,
        t.connecting,
        t.tls_handshaking,
        t.sending,
        t.waiting,
        t.receiving,
    ];
    phases.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// `http.batch`: items of `[method, url, body, params, judged]`, where
/// `judged` is the request's own response callback as `k6/http` checked
/// it (ranges, or null to judge nothing) or absent for the VU's.
fn batch<'js>(ctx: Ctx<'js>, items: Vec<Array<'js>>) -> rquickjs::Result<Array<'js>> {
    let mut reqs = Vec::with_capacity(items.len());
    let mut judged = Vec::with_capacity(items.len());
    let mut sent = Vec::with_capacity(items.len());
    for item in &items {
        let (req, s) = batch_item(&ctx, item)?;
        reqs.push(req);
        judged.push(judged_of(item.get(4)?)?);
        sent.push(s);
    }
    let jar = match sent.first() {
        Some(first) if sent.iter().all(|s| same_jar(&s.jar, &first.jar)) => first.jar.clone(),
        Some(_) => return Err(Exception::throw_message(&ctx, MIXED_JARS)),
        None => None,
    };
    let pairs: Vec<_> = reqs.into_iter().zip(judged).collect();
    let results = match &jar {
        Some(jar) => jar.borrow().0.within(|| http::batch_held(&pairs)),
        None => http::batch_held(&pairs),
    };
    let out = Array::new(ctx.clone())?;
    for (i, (r, s)) in results.into_iter().zip(sent).enumerate() {
        out.set(i, s.response(&ctx, r)?)?;
    }
    Ok(out)
}

/// Whether two requests use the same jar (none is the VU's).
fn same_jar<'js>(a: &Option<Class<'js, OwnJar>>, b: &Option<Class<'js, OwnJar>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.as_value() == b.as_value(),
        _ => false,
    }
}

const MIXED_JARS: &str = "k6/http: requests sent together (http.batch, or asyncRequest before the script waits) must use one cookie jar; loadtest does not send them from different jars yet";

/// A batched request's own judging: undefined is the VU's, null none,
/// else `[[min, max], ...]`.
fn judged_of(v: Value<'_>) -> rquickjs::Result<http::Judged> {
    if v.is_undefined() {
        return Ok(http::Judged::AsVu);
    }
    let ctx = v.ctx().clone();
    match Option::<Vec<Vec<u32>>>::from_js(&ctx, v)? {
        None => Ok(http::Judged::NotJudged),
        Some(rs) => Ok(http::Judged::By(
            rs.iter().filter_map(|r| pair(r)).collect(),
        )),
    }
}

/// One `[min, max]` of a response callback, as a status range.
fn pair(r: &[u32]) -> Option<(u16, u16)> {
    match r {
        [lo, hi] => Some(((*lo).min(999) as u16, (*hi).min(999) as u16)),
        _ => None,
    }
}

/// What a batched request's response is built with: the method and URL
/// as the script gave them, the URL sent, how to read its body.
struct Sent<'js> {
    method: rquickjs::String<'js>,
    url: rquickjs::String<'js>,
    kind: BodyKind,
    /// `params.jar` when it is a jar of the script's own.
    jar: Option<Class<'js, OwnJar>>,
}

impl<'js> Sent<'js> {
    fn response(
        self,
        ctx: &Ctx<'js>,
        r: Result<http::HeldResponse, http::HttpError>,
    ) -> rquickjs::Result<Value<'js>> {
        match r {
            Ok(res) => held(ctx, res, self.kind, (self.method, self.url)),
            Err(e) => failed(ctx, e, (self.method, self.url)),
        }
    }
}

/// One `[method, url, body, params]` of `http.batch` or `asyncRequest`.
fn batch_item<'js>(
    ctx: &Ctx<'js>,
    item: &Array<'js>,
) -> rquickjs::Result<(http::Request, Sent<'js>)> {
    let method: rquickjs::String = item.get(0)?;
    let url: rquickjs::String = item.get(1)?;
    let body: Option<Value> = item.get(2)?;
    let params: Option<Object> = item.get(3)?;
    let (m, u) = (method.to_string()?, url.to_string()?);
    let (req, kind) = request(ctx, &m, u, body, params.as_ref())?;
    let jar = params
        .as_ref()
        .map(|p| jar_of(ctx, p))
        .transpose()?
        .flatten();
    let sent = Sent {
        method,
        url,
        kind,
        jar,
    };
    Ok((req, sent))
}

/// Sends the requests `http.asyncRequest` queued, in parallel as
/// `http.batch` does, and settles each one's promise: with its response,
/// or rejected with why it could not be sent (its params, say). False if
/// none was queued. The event loop calls it when the script waits, and
/// `group()` at its edges, so a request counts in the group it was made in.
pub fn send_queued(ctx: &Ctx<'_>) -> rquickjs::Result<bool> {
    let queued = crate::event_loop::take_queued();
    if queued.is_empty() {
        return Ok(false);
    }
    let mut reqs = Vec::with_capacity(queued.len());
    let mut waiting: Vec<(Sent, Function, Function)> = Vec::with_capacity(queued.len());
    for q in queued {
        let (item, ok, fail) = (
            q.item.restore(ctx)?,
            q.ok.restore(ctx)?,
            q.fail.restore(ctx)?,
        );
        match batch_item(ctx, &item) {
            Ok((_, sent))
                if waiting
                    .first()
                    .is_some_and(|(w, ..)| !same_jar(&w.jar, &sent.jar)) =>
            {
                fail.call::<_, ()>((MIXED_JARS,))?
            }
            Ok((req, sent)) => {
                reqs.push(req);
                waiting.push((sent, ok, fail));
            }
            Err(rquickjs::Error::Exception) => fail.call::<_, ()>((ctx.catch(),))?,
            Err(e) => fail.call::<_, ()>((e.to_string(),))?,
        }
    }
    let Some(jar) = waiting.first().map(|(w, ..)| w.jar.clone()) else {
        return Ok(true);
    };
    let pairs: Vec<_> = reqs.into_iter().map(|r| (r, http::Judged::AsVu)).collect();
    let results = match &jar {
        Some(jar) => jar.borrow().0.within(|| http::batch_held(&pairs)),
        None => http::batch_held(&pairs),
    };
    for (r, (sent, ok, fail)) in results.into_iter().zip(waiting) {
        match sent.response(ctx, r) {
            Ok(response) => ok.call::<_, ()>((response,))?,
            // No response under `options.throw`: the promise rejects.
            Err(rquickjs::Error::Exception) => fail.call::<_, ()>((ctx.catch(),))?,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A k6 request's params: headers, cookies, tags (`name` names the
/// request), timeout, redirects, responseType; credentials in the URL
/// become Basic auth, as in k6.
fn request<'js>(
    ctx: &Ctx<'js>,
    method: &str,
    url: String,
    body: Option<Value<'js>>,
    params: Option<&Object<'js>>,
) -> rquickjs::Result<(http::Request, BodyKind)> {
    let (url, credentials) = match url.contains('@') {
        true => without_credentials(url),
        false => (url, None),
    };
    let mut r = http::Request::new(method, url);
    if let Some(c) = credentials {
        let basic = base64::engine::general_purpose::STANDARD.encode(c);
        r = r.header("Authorization", format!("Basic {basic}"));
    }
    let bytes = match body {
        Some(b) => Some(crate::binary::bytes_of(ctx, &b, "k6/http: a request body")?),
        None => None,
    };
    let mut agent = crate::options::user_agent();
    let Some(p) = params else {
        if let Some(b) = bytes {
            r = r.body(b);
        }
        if let Some(a) = agent {
            r = r.header("User-Agent", a);
        }
        return Ok((
            discard_if(r, crate::options::discard_bodies()),
            default_kind(),
        ));
    };
    unsupported_params(ctx, p)?;
    let bytes = match crate::compression::of_params(ctx, p)? {
        Some(codings) => {
            r = r.header("Content-Encoding", crate::compression::header(&codings));
            Some(crate::compression::encode(
                bytes.unwrap_or_default(),
                &codings,
            ))
        }
        None => bytes,
    };
    if let Some(b) = bytes {
        r = r.body(b);
    }
    let mut cookie = None;
    if let Some(headers) = p.get::<_, Option<Object>>("headers")? {
        for pair in headers.props::<String, Coerced<String>>() {
            let (k, v) = pair?;
            if k.eq_ignore_ascii_case("user-agent") {
                agent = None;
            }
            if k.eq_ignore_ascii_case("cookie") {
                cookie = Some(v.0);
                continue;
            }
            r = r.header(k, v.0);
        }
    }
    if let Some(c) = cookie_header(ctx, p, cookie)? {
        r = r.header("Cookie", c);
    }
    if let Some(a) = agent {
        r = r.header("User-Agent", a);
    }
    if let Some(tags) = p.get::<_, Option<Object>>("tags")? {
        for pair in tags.props::<String, Coerced<String>>() {
            let (k, v) = pair?;
            if k == "name" {
                r = r.name(v.0.clone());
            }
            r = r.tag(k, v.0);
        }
    }
    let timeout: Value = p.get("timeout")?;
    if !timeout.is_undefined() && !timeout.is_null() {
        r = r.timeout(duration(ctx, &timeout)?);
    }
    if let Some(n) = p.get::<_, Option<f64>>("redirects")? {
        r = r.max_redirects(n.max(0.0) as u32);
    }
    let kind = BodyKind::of(ctx, p)?;
    Ok((discard_if(r, kind == BodyKind::None), kind))
}

/// k6's `params.cookies` (`{ name: value }` or `{ name: { value } }`)
/// after a `Cookie` header the params gave, as one header; the VU's jar
/// adds its own after them.
fn cookie_header<'js>(
    ctx: &Ctx<'js>,
    p: &Object<'js>,
    given: Option<String>,
) -> rquickjs::Result<Option<String>> {
    let mut pairs: Vec<String> = given.into_iter().collect();
    if let Some(cookies) = p.get::<_, Option<Object>>("cookies")? {
        for pair in cookies.props::<String, Value>() {
            let (name, v) = pair?;
            let value = match v.as_object().filter(|o| !o.is_array()) {
                Some(o) => {
                    if o.get::<_, Option<bool>>("replace")? == Some(true) {
                        let m =
                            format!("k6/http: params.cookies.{name}.replace is not supported yet");
                        return Err(Exception::throw_message(ctx, &m));
                    }
                    o.get::<_, Coerced<String>>("value")?.0
                }
                None => Coerced::<String>::from_js(ctx, v)?.0,
            };
            pairs.push(format!("{name}={value}"));
        }
    }
    Ok((!pairs.is_empty()).then(|| pairs.join("; ")))
}

/// k6 params loadtest does not offer yet fail by name rather than being
/// ignored: `auth` other than basic (digest is answered in `k6/http`,
/// which leaves no `auth` here).
fn unsupported_params<'js>(ctx: &Ctx<'js>, p: &Object<'js>) -> rquickjs::Result<()> {
    let refuse = |what: &str| {
        let m = format!("k6/http: {what} is not supported yet");
        Err(Exception::throw_message(ctx, &m))
    };
    let auth: Value = p.get("auth")?;
    if !(auth.is_undefined() || auth.is_null()) {
        let kind: String = Coerced::<String>::from_js(ctx, auth)?.0;
        if kind != "basic" {
            return refuse(&format!(
                "params.auth `{kind}` (basic and digest, from credentials in the URL; digest not in http.batch)"
            ));
        }
    }
    Ok(())
}

/// The URL without `user:pass@`, and those credentials percent-decoded.
fn without_credentials(url: String) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url, None);
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let Some(at) = url[authority_start..authority_end].rfind('@') else {
        return (url, None);
    };
    let userinfo = percent_decoded(&url[authority_start..authority_start + at]);
    let bare = format!(
        "{}{}",
        &url[..authority_start],
        &url[authority_start + at + 1..]
    );
    (bare, Some(userinfo))
}

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// k6's durations: a number of milliseconds or a string like `10s`, `500ms`, `1m`.
pub(crate) fn duration<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> rquickjs::Result<Duration> {
    if let Some(ms) = v.as_number() {
        return Ok(Duration::from_micros((ms.max(0.0) * 1000.0) as u64));
    }
    let text: String = v.get()?;
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text.as_str(), "ms"), |i| (&text[..i], &text[i..]));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| Exception::throw_type(ctx, &format!("`{text}` is not a duration")))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => {
            return Err(Exception::throw_type(
                ctx,
                &format!("`{text}` is not a duration"),
            ));
        }
    };
    Ok(Duration::from_micros((ms.max(0.0) * 1000.0) as u64))
}

/// A request that got no response, as k6 shows it: status 0 with `error`
/// and `error_code`, or with k6's `throw` option an exception.
fn failed<'js>(
    ctx: &Ctx<'js>,
    e: http::HttpError,
    (method, url): (rquickjs::String<'js>, rquickjs::String<'js>),
) -> rquickjs::Result<Value<'js>> {
    let (code, message) = error_of(e);
    if crate::options::throws() {
        let m = method.to_string()?;
        let u = url.to_string()?;
        let text = format!("k6/http: {m} {u}: {message} (error_code {code}; options.throw is on)");
        return Err(Exception::throw_message(ctx, &text));
    }
    let fields = vec![
        0.into_js(ctx)?,
        url.clone().into_value(),
        Value::new_null(ctx.clone()),
        message.into_js(ctx)?,
        code.into_js(ctx)?,
        array_of(ctx, Vec::new())?,
        array_of(ctx, Vec::new())?,
        method.into_value(),
        url.into_value(),
    ];
    array_of(ctx, fields)
}

/// An array of `values`, allocated at its size at once: an empty array
/// filled an index at a time grows several times, and each growth frees a
/// block of one of QuickJS's small-object arenas and takes one of the next
/// size, which empties and refills whole arenas on every request.
fn array_of<'js>(ctx: &Ctx<'js>, values: Vec<Value<'js>>) -> rquickjs::Result<Value<'js>> {
    let c = ctx.as_raw().as_ptr();
    // SAFETY: each value gets a reference of its own for the array to take
    // over (`values` drop theirs: forgetting them would also keep their
    // context alive); JS_NewArrayFrom takes those and returns a value we
    // own.
    let raw: Vec<qjs::JSValue> = values
        .iter()
        .map(|v| unsafe { qjs::JS_DupValue(c, v.as_raw()) })
        .collect();
    drop(values);
    unsafe {
        let array = qjs::JS_NewArrayFrom(c, raw.len() as i32, raw.as_ptr());
        if qjs::JS_IsException(array) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), array))
    }
}

/// k6's error codes for the kinds the host reports.
fn error_of(e: http::HttpError) -> (u32, String) {
    use http::HttpError as E;
    let code = match &e {
        E::InvalidRequest(_) => 1020,
        E::Connect(_) => 1210,
        E::Timeout => 1050,
        E::Transport(_) => 1000,
        E::TooManyRedirects(_) => 1150,
        E::BodyTooLarge(_) => 1000,
    };
    (code, loadtest_sdk::Error::from(e).0)
}

/// `content-type` as k6 shows it: `Content-Type`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        out.push(if up { c.to_ascii_uppercase() } else { c });
        up = c == '-';
    }
    out
}

fn engine(name: &str) -> base64::engine::GeneralPurpose {
    use base64::engine::general_purpose as gp;
    match name {
        "rawstd" => gp::STANDARD_NO_PAD,
        "url" => gp::URL_SAFE,
        "rawurl" => gp::URL_SAFE_NO_PAD,
        _ => gp::STANDARD,
    }
}

fn b64encode<'js>(ctx: Ctx<'js>, input: Value<'js>, encoding: String) -> rquickjs::Result<String> {
    let bytes = crate::binary::bytes_of(&ctx, &input, "k6/encoding: b64encode's input")?;
    Ok(engine(&encoding).encode(bytes))
}

/// An ArrayBuffer of the decoded bytes, or a string when `text`.
fn b64decode<'js>(
    ctx: Ctx<'js>,
    input: String,
    encoding: String,
    text: bool,
) -> rquickjs::Result<Value<'js>> {
    let bytes = engine(&encoding)
        .decode(input.as_bytes())
        .map_err(|e| Exception::throw_type(&ctx, &format!("b64decode: {e}")))?;
    if text {
        return String::from_utf8_lossy(&bytes).into_js(&ctx);
    }
    crate::binary::array_buffer(&ctx, bytes)
}

/// `H.resolveUrl(base, href)`: `href` as a browser resolves it on the page
/// at `base`.
fn resolve_url(ctx: Ctx<'_>, base: String, href: String) -> rquickjs::Result<String> {
    resolve(&base, &browser_href(&href))
        .map_err(|e| Exception::throw_type(&ctx, &format!("k6/http: {e}")))
}

/// What browsers make of an href before resolving it: tabs and newlines
/// dropped, backslashes read as slashes, and spaces, non-ASCII and the
/// few other characters a URL may not hold percent-encoded.
fn browser_href(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    for c in href.trim().chars() {
        match c {
            '\t' | '\n' | '\r' => {}
            '\\' => out.push('/'),
            c if c.is_ascii_graphic() && !"\"<>`{}|^".contains(c) => out.push(c),
            c => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// `reference` resolved against the URL `base` (RFC 3986, section 5), as
/// the host resolves a remote module's imports, so both name it alike.
pub fn resolve(base: &str, reference: &str) -> Result<String, String> {
    use iri_string::types::{UriAbsoluteStr, UriReferenceStr};
    let page = base.split('#').next().unwrap_or_default();
    let base =
        UriAbsoluteStr::new(page).map_err(|e| format!("the URL `{page}` cannot be a base: {e}"))?;
    let reference = UriReferenceStr::new(reference)
        .map_err(|e| format!("`{reference}` is not a URL or a relative reference: {e}"))?;
    Ok(reference.resolve_against(base).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_are_read_as_browsers_read_them() {
        let page = "http://shop.test/a/b.html?q=1#top";
        let r = |h: &str| resolve(page, &browser_href(h)).unwrap();
        assert_eq!(r("c.html"), "http://shop.test/a/c.html");
        assert_eq!(r("../x y.html"), "http://shop.test/x%20y.html");
        assert_eq!(r(" /caf\u{e9}\\menu\n"), "http://shop.test/caf%C3%A9/menu");
        assert_eq!(r("?page=2"), "http://shop.test/a/b.html?page=2");
        assert_eq!(r("//cdn.test/s.js"), "http://cdn.test/s.js");
    }
}
