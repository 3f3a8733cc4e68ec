//! One QuickJS runtime per VU instance: the script evaluated as an ES
//! module, its k6 imports served from src/js, its local imports from the
//! files that travelled with it, and calls into its exports.

use loadtest_sdk::vu;
use rquickjs::loader::{Loader, Resolver};
use rquickjs::{Context, Ctx, Function, Module, Object, Runtime, Value};

/// The k6 modules this runtime provides, and their source.
const MODULES: &[(&str, &str)] = &[
    ("k6", include_str!("js/k6.js")),
    ("k6/http", include_str!("js/http.js")),
    ("k6/metrics", include_str!("js/metrics.js")),
    ("k6/data", include_str!("js/data.js")),
    ("k6/execution", include_str!("js/execution.js")),
    ("k6/encoding", include_str!("js/encoding.js")),
];

const PRELUDE: &str = include_str!("js/prelude.js");

/// Calls an export with the setup data; what the runner functions need.
const RUNNER: &str = r#"
globalThis.__call = (name) => {
  const f = globalThis.__ns[name];
  if (typeof f !== 'function') {
    throw new Error(`the script exports no function \`${name}\``);
  }
  return f(globalThis.__data);
};
globalThis.__callJson = (name) => {
  const v = globalThis.__call(name);
  return v === undefined ? 'null' : JSON.stringify(v);
};
globalThis.__describe = () => JSON.stringify({
  options: globalThis.__ns.options === undefined ? {} : globalThis.__ns.options,
  exports: Object.keys(globalThis.__ns).filter((k) => typeof globalThis.__ns[k] === 'function'),
});
"#;

pub struct Engine {
    _runtime: Runtime,
    context: Context,
}

impl Engine {
    /// Evaluates the script `main` (a file that travelled with it), with
    /// `env` as `__ENV`.
    pub fn load(main: &str, env: &serde_json::Value) -> Result<Engine, String> {
        let runtime = Runtime::new().map_err(|e| format!("starting QuickJS: {e}"))?;
        runtime.set_loader(Files, Files);
        let context = Context::full(&runtime).map_err(|e| format!("starting QuickJS: {e}"))?;
        let engine = Engine {
            _runtime: runtime,
            context,
        };
        let source = vu::file(main)
            .ok_or_else(|| format!("the script `{main}` did not travel with the config"))?;
        let env = env.to_string();
        engine.with(|ctx| {
            crate::host::install(ctx)?;
            let globals = ctx.globals();
            let json: Object = globals.get("JSON")?;
            let parse: Function = json.get("parse")?;
            let env: Value = parse.call((env,))?;
            globals.set("__ENV", env)?;
            ctx.eval::<(), _>(PRELUDE)?;
            ctx.eval::<(), _>(RUNNER)?;
            let (module, promise) = Module::declare(ctx.clone(), main, source)?.eval()?;
            promise.finish::<()>()?;
            globals.set("__ns", module.namespace()?)?;
            Ok(())
        })?;
        Ok(engine)
    }

    /// Parses setup's data once; every call of an export gets it.
    pub fn set_data(&self, data: Option<&str>) -> Result<(), String> {
        let text = data.unwrap_or("null").to_owned();
        self.with(|ctx| {
            let json: Object = ctx.globals().get("JSON")?;
            let parse: Function = json.get("parse")?;
            let value: Value = parse.call((text,))?;
            ctx.globals().set("__data", value)
        })
    }

    pub fn exports(&self, name: &str) -> Result<bool, String> {
        self.with(|ctx| {
            let ns: Object = ctx.globals().get("__ns")?;
            Ok(ns.get::<_, Value>(name)?.is_function())
        })
    }

    pub fn call(&self, name: &str) -> Result<(), String> {
        self.with(|ctx| {
            let call: Function = ctx.globals().get("__call")?;
            call.call::<_, Value>((name,))?;
            Ok(())
        })
    }

    /// Calls an export and gives its result as JSON.
    pub fn call_json(&self, name: &str) -> Result<String, String> {
        self.with(|ctx| {
            let call: Function = ctx.globals().get("__callJson")?;
            call.call((name,))
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

/// Resolves and loads modules: the k6 ones from this plugin, relative
/// paths from the files that travelled with the script.
struct Files;

impl Resolver for Files {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
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
        if !(name.starts_with("./") || name.starts_with("../")) {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                format!(
                    "`{name}`: only k6 modules and local files (`./x.js`) can be imported; copy a remote module next to the script"
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
        if let Some((_, source)) = MODULES.iter().find(|(m, _)| *m == name) {
            return Module::declare(ctx.clone(), name, *source);
        }
        match vu::file(name) {
            Some(source) => Module::declare(ctx.clone(), name, source),
            None => Err(rquickjs::Error::new_loading_message(
                name,
                "the module did not travel with the script (imports are collected from string literals)",
            )),
        }
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
