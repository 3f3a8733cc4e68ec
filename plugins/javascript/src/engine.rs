//! One QuickJS runtime per VU instance: the script evaluated as an ES
//! module, its k6 imports served from src/js, its local imports from the
//! files that travelled with it, and calls into its exports.

use loadtest_sdk::vu;
use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Function, Module, Object, Persistent, Runtime, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// The k6 modules this runtime provides, and their source.
const MODULES: &[(&str, &str)] = &[
    ("k6", include_str!("js/k6.js")),
    ("k6/http", include_str!("js/http.js")),
    ("k6/metrics", include_str!("js/metrics.js")),
    ("k6/data", include_str!("js/data.js")),
    ("k6/execution", include_str!("js/execution.js")),
    ("k6/encoding", include_str!("js/encoding.js")),
    ("k6/crypto", include_str!("js/crypto.js")),
    ("k6/html", include_str!("js/html.js")),
    ("k6/timers", include_str!("js/k6-timers.js")),
];

/// Modules of the plugin's own that its k6 modules load when first needed
/// (`H.importModule`), so that a VU that never needs them does not hold
/// their bytecode.
const INTERNAL: &[(&str, &str)] = &[("loadtest/http-more", include_str!("js/http-more.js"))];

/// The globals every script sees, and what the plugin asks a script for
/// when it reads its options: a module, so that it travels as bytecode
/// too.
const PRELUDE: &str = concat!(include_str!("js/prelude.js"), include_str!("js/runner.js"));
const PRELUDE_NAME: &str = "loadtest/prelude";

/// Among the script's files, where the bytecode of module `name` travels.
pub fn bytecode_file(name: &str) -> String {
    format!(".bytecode/{name}")
}

/// FNV-1a, usable in a const: fingerprints the sources compiled into this
/// plugin.
const fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const fn sources() -> u64 {
    let mut h = fnv(0xcbf2_9ce4_8422_2325, PRELUDE.as_bytes());
    let mut i = 0;
    while i < MODULES.len() {
        h = fnv(h, MODULES[i].1.as_bytes());
        i += 1;
    }
    let mut i = 0;
    while i < INTERNAL.len() {
        h = fnv(h, INTERNAL[i].1.as_bytes());
        i += 1;
    }
    h
}

/// Bytecode is read only by the build that wrote it (QuickJS's format
/// changes between versions, and reading foreign bytecode is unsafe): a
/// node running another build parses the source instead.
fn stamp() -> &'static str {
    /// Computed when the plugin is compiled: at run time, hashing 35 KB
    /// of sources took a tenth of every VU's start.
    const SOURCES: u64 = sources();
    static STAMP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAMP.get_or_init(|| {
        format!(
            "loadtest-javascript {} rquickjs 0.14 {SOURCES:016x}\n",
            env!("CARGO_PKG_VERSION"),
        )
    })
}

thread_local! {
    /// Set while probing: every module compiled from source is written
    /// out as bytecode, for the host to ship to the VUs.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static WRITTEN: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Makes the next loads record the bytecode of what they compile.
pub fn record_bytecode() {
    RECORDING.set(true);
}

/// The recorded bytecode, stamped, by module name.
pub fn recorded_bytecode() -> BTreeMap<String, Vec<u8>> {
    let stamp = stamp();
    WRITTEN.with_borrow(|w| {
        w.iter()
            .map(|(name, code)| (name.clone(), [stamp.as_bytes(), code].concat()))
            .collect()
    })
}

/// Module `name`: from the bytecode that travelled with the script when
/// this build wrote it (a VU then does not parse at all), else compiled
/// from `source`.
fn declare<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: impl FnOnce() -> Option<Vec<u8>>,
) -> rquickjs::Result<Option<Module<'js, Declared>>> {
    if let Some(module) = from_bytecode(ctx, name) {
        loadtest_sdk::log::debug(&format!("javascript: `{name}` loaded from bytecode"));
        return Ok(Some(module));
    }
    let Some(source) = source() else {
        return Ok(None);
    };
    let module = Module::declare(ctx.clone(), name, source)?;
    loadtest_sdk::log::debug(&format!("javascript: `{name}` compiled from source"));
    if RECORDING.get() {
        // Without each function's source text, which QuickJS otherwise
        // copies into every VU's heap (a class's whole text, then each
        // method's again) for `Function.prototype.toString` alone.
        let strip = WriteOptions {
            strip_source: true,
            ..WriteOptions::default()
        };
        let code = module.write(strip)?;
        WRITTEN.with_borrow_mut(|w| w.insert(name.to_owned(), code));
    }
    Ok(Some(module))
}

fn from_bytecode<'js>(ctx: &Ctx<'js>, name: &str) -> Option<Module<'js, Declared>> {
    let code = vu::file(&bytecode_file(name))?;
    let code = code.strip_prefix(stamp().as_bytes())?;
    // SAFETY: the stamp says this build's QuickJS wrote these bytes from
    // the script (see `stamp`). QuickJS copies what it reads (its
    // `JS_READ_OBJ_ROM_DATA` is 0, asserted below), so the bytes can go.
    let Ok(module) = (unsafe { Module::load(ctx.clone(), code) }) else {
        // Parse the source instead, with no exception left pending.
        drop(ctx.catch());
        return None;
    };
    Some(module)
}

/// Reading bytecode in place (ROM data) would tie its buffer to the
/// runtime's life; this QuickJS always copies, so a VU keeps no second
/// copy of its modules.
const _: () = assert!(rquickjs::qjs::JS_READ_OBJ_ROM_DATA == 0);

pub struct Engine {
    /// The script's exported functions and setup's data, looked up once:
    /// an iteration then calls the function with no name lookups. Declared
    /// before the runtime, so they are freed before it.
    calls: RefCell<BTreeMap<String, Persistent<Function<'static>>>>,
    data: RefCell<Option<Persistent<Value<'static>>>>,
    context: Context,
    runtime: Runtime,
}

impl Drop for Engine {
    /// Timers hold JavaScript values, which must go before the runtime.
    fn drop(&mut self) {
        crate::event_loop::reset();
    }
}

impl Engine {
    /// Evaluates the script `main` (a file that travelled with it), with
    /// `env` as `__ENV`.
    pub fn load(main: &str, env: &serde_json::Value) -> Result<Engine, String> {
        let runtime = Runtime::new().map_err(|e| format!("starting QuickJS: {e}"))?;
        runtime.set_loader(Files, Files);
        runtime.set_host_promise_rejection_tracker(Some(Box::new(crate::event_loop::track)));
        let context =
            crate::intrinsics::context(&runtime).map_err(|e| format!("starting QuickJS: {e}"))?;
        crate::random::reset();
        let engine = Engine {
            calls: RefCell::default(),
            data: RefCell::default(),
            context,
            runtime,
        };
        crate::intrinsics::set_env(env.to_string());
        engine.with(|ctx| {
            crate::host::install(ctx)?;
            crate::event_loop::install(ctx)?;
            let globals = ctx.globals();
            let prelude = declare(ctx, PRELUDE_NAME, || Some(PRELUDE.into()))?
                .ok_or_else(|| rquickjs::Exception::throw_message(ctx, "the prelude is missing"))?;
            prelude.eval()?.1.finish::<()>()?;
            let module = declare(ctx, main, || vu::file(main))?.ok_or_else(|| {
                rquickjs::Exception::throw_message(
                    ctx,
                    &format!("the script `{main}` did not travel with the config"),
                )
            })?;
            let (module, promise) = module.eval()?;
            promise.finish::<()>()?;
            let ns = module.namespace()?;
            let options: Value = ns.get("options")?;
            crate::options::apply(ctx, options.into_object())?;
            globals.set("__ns", ns)?;
            Ok(())
        })?;
        Ok(engine)
    }

    /// What this VU holds: QuickJS's heap (bytes allocated, and the
    /// engine's own count of what is in use) and the instance's linear
    /// memory, which never shrinks, so a peak while parsing stays.
    pub fn footprint(&self) -> String {
        let m = self.runtime.memory_usage();
        #[cfg(target_arch = "wasm32")]
        let linear = core::arch::wasm32::memory_size(0) * 64;
        #[cfg(not(target_arch = "wasm32"))]
        let linear = 0;
        format!(
            "javascript: QuickJS heap {} KiB allocated ({} KiB in use, {} objects), linear memory {linear} KiB",
            m.malloc_size / 1024,
            m.memory_used_size / 1024,
            m.obj_count
        )
    }

    /// Parses setup's data once; every call of an export gets it.
    pub fn set_data(&self, data: Option<&str>) -> Result<(), String> {
        let text = data.unwrap_or("null").to_owned();
        self.with(|ctx| {
            let value = ctx.json_parse(text)?;
            *self.data.borrow_mut() = Some(Persistent::save(ctx, value));
            Ok(())
        })
    }

    /// The exported function `name`, found once.
    fn export<'js>(&self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
        if let Some(f) = self.calls.borrow().get(name) {
            return f.clone().restore(ctx);
        }
        let ns: Object = ctx.globals().get("__ns")?;
        let Some(f) = ns.get::<_, Value>(name)?.into_function() else {
            let message = format!("the script exports no function `{name}`");
            return Err(rquickjs::Exception::throw_message(ctx, &message));
        };
        let saved = Persistent::save(ctx, f.clone());
        self.calls.borrow_mut().insert(name.to_owned(), saved);
        Ok(f)
    }

    pub fn exports(&self, name: &str) -> Result<bool, String> {
        self.with(|ctx| {
            let ns: Object = ctx.globals().get("__ns")?;
            Ok(ns.get::<_, Value>(name)?.is_function())
        })
    }

    pub fn call(&self, name: &str) -> Result<(), String> {
        self.with(|ctx| self.invoke(ctx, name).map(drop))
    }

    /// Calls an export and gives its result as JSON.
    pub fn call_json(&self, name: &str) -> Result<String, String> {
        self.with(|ctx| {
            let value = self.invoke(ctx, name)?;
            match ctx.json_stringify(value)? {
                Some(text) => text.to_string(),
                None => Ok("null".to_owned()),
            }
        })
    }

    /// Calls export `name` with setup's data (undefined before any).
    fn invoke<'js>(&self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Value<'js>> {
        let f = self.export(ctx, name)?;
        let data = match &*self.data.borrow() {
            Some(d) => d.clone().restore(ctx)?,
            None => Value::new_undefined(ctx.clone()),
        };
        crate::event_loop::reset();
        let value = match f.call((data,)) {
            Err(rquickjs::Error::Exception) => return Err(crate::event_loop::after_throw(ctx)),
            other => other?,
        };
        crate::event_loop::settle(ctx, value)
    }

    /// Calls the script's `handleSummary(data)` (`data` as JSON) and gives
    /// what it returned, `{ "where": { "text": ... } | { "base64": ... } }`
    /// as JSON: k6 takes a string or an ArrayBuffer for each destination.
    pub fn handle_summary(&self, data: &str) -> Result<String, String> {
        self.set_data(Some(&self.time_trends_marked(data)?))?;
        self.with(|ctx| {
            let value = self.invoke(ctx, "handleSummary")?;
            // Nothing returned: nothing to write, as in k6.
            if value.is_undefined() || value.is_null() {
                return Ok("{}".to_owned());
            }
            let Some(outputs) = value.into_object().filter(|o| !o.is_array()) else {
                let message = "handleSummary() must return an object such as { stdout: '...', 'summary.json': JSON.stringify(data) }";
                return Err(rquickjs::Exception::throw_type(ctx, message));
            };
            let mut out = serde_json::Map::new();
            for pair in outputs.props::<String, Value>() {
                let (at, v) = pair?;
                out.insert(at.clone(), output(ctx, &at, v)?);
            }
            Ok(serde_json::Value::Object(out).to_string())
        })
    }

    /// `data` with `contains: "time"` on the trends the script made with
    /// `new Trend(name, true)` (the host knows a trend by its samples
    /// alone), and on the series its thresholds narrowed from them.
    fn time_trends_marked(&self, data: &str) -> Result<String, String> {
        let names: Vec<String> = self.with(|ctx| {
            let marked: Option<Object> = ctx.globals().get("__timeTrends")?;
            marked.map_or(Ok(Vec::new()), |o| o.keys().collect())
        })?;
        if names.is_empty() {
            return Ok(data.to_owned());
        }
        let mut v: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("the summary data: {e}"))?;
        if let Some(metrics) = v["metrics"].as_object_mut() {
            for (key, m) in metrics.iter_mut() {
                let base = key.split('{').next().unwrap_or(key);
                if m["type"] == "trend" && names.iter().any(|n| n == base) {
                    m["contains"] = "time".into();
                }
            }
        }
        Ok(v.to_string())
    }

    /// Compiles, without running, the modules a script can reach without
    /// importing them (`Response.html()` loads `k6/html` on first use,
    /// `k6/http` its rarer parts), so that their bytecode travels with the
    /// script's.
    pub fn record_lazy_modules(&self) -> Result<(), String> {
        const LAZY: &[&str] = &["k6/html", "loadtest/http-more"];
        self.with(|ctx| {
            for name in LAZY {
                if WRITTEN.with_borrow(|w| w.contains_key(*name)) {
                    continue;
                }
                let source = MODULES
                    .iter()
                    .chain(INTERNAL)
                    .find(|(m, _)| m == name)
                    .map(|(_, s)| *s);
                declare(ctx, name, || source.map(|s| s.as_bytes().to_vec()))?;
            }
            Ok(())
        })
    }

    /// The script's `options` and exported functions, as JSON.
    pub fn describe(&self) -> Result<String, String> {
        self.with(|ctx| {
            let describe: Function = ctx.globals().get("__describe")?;
            describe.call(())
        })
    }

    /// Runs `f` in the context, turning a thrown exception into its
    /// message and stack (file, line and column included).
    fn with<T>(
        &self,
        f: impl for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<T>,
    ) -> Result<T, String> {
        self.context.with(|ctx| {
            let r = f(&ctx);
            r.map_err(|e| describe(&ctx, e))
        })
    }
}

/// One destination's content from `handleSummary()`'s result.
fn output<'js>(ctx: &Ctx<'js>, at: &str, v: Value<'js>) -> rquickjs::Result<serde_json::Value> {
    use base64::Engine as _;
    if let Some(s) = v.as_string() {
        return Ok(serde_json::json!({ "text": s.to_string()? }));
    }
    let what = format!("handleSummary()'s `{at}`");
    let bytes = crate::binary::bytes_of(ctx, &v, &what)?;
    let code = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(serde_json::json!({ "base64": code }))
}

fn describe(ctx: &Ctx<'_>, e: rquickjs::Error) -> String {
    if !matches!(e, rquickjs::Error::Exception) {
        return e.to_string();
    }
    let thrown = ctx.catch();
    if let Some(ex) = thrown.as_exception() {
        let message = ex.message().unwrap_or_default();
        let stack = ex.stack().unwrap_or_default();
        let stack = stack.trim_end();
        return if stack.is_empty() {
            message
        } else {
            format!("{message}\n{stack}")
        };
    }
    match thrown.as_string().and_then(|s| s.to_string().ok()) {
        Some(s) => s,
        None => format!("{thrown:?}"),
    }
}

/// A module imported by URL: the host fetched it when it bundled the
/// script, and it travelled under its URL.
fn is_url(name: &str) -> bool {
    name.starts_with("https://") || name.starts_with("http://")
}

/// Resolves and loads modules: the k6 ones from this plugin, relative
/// paths and URLs from the files that travelled with the script.
struct Files;

impl Resolver for Files {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        if INTERNAL.iter().any(|(m, _)| *m == name) {
            return Ok(name.to_owned());
        }
        if name == "k6" || name.starts_with("k6/") {
            if MODULES.iter().any(|(m, _)| *m == name) {
                return Ok(name.to_owned());
            }
            let known: Vec<&str> = MODULES.iter().map(|(m, _)| *m).collect();
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                format!(
                    "`{name}` is not supported by loadtest's JavaScript runtime yet (supported: {})",
                    known.join(", ")
                ),
            ));
        }
        if is_url(name) {
            return Ok(name.to_owned());
        }
        if is_url(base) {
            return crate::host::resolve(base, name)
                .map_err(|e| rquickjs::Error::new_resolving_message(base, name, e));
        }
        if !(name.starts_with("./") || name.starts_with("../")) {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                format!(
                    "`{name}`: only k6 modules, local files (`./x.js`) and URLs (`https://...`) can be imported"
                ),
            ));
        }
        Ok(join(base, name))
    }
}

impl Loader for Files {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, rquickjs::module::Declared>> {
        let builtin = MODULES.iter().chain(INTERNAL).find(|(m, _)| *m == name);
        let source = || match builtin {
            Some((_, source)) => Some(source.as_bytes().to_vec()),
            None => vu::file(name),
        };
        declare(ctx, name, source)?.ok_or_else(|| {
            rquickjs::Error::new_loading_message(
                name,
                "the module did not travel with the script (imports are collected from string literals)",
            )
        })
    }
}

/// `name` (relative) from the directory of module `base`, normalised the
/// way the host names the files it collects.
pub fn join(base: &str, name: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in name.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}
