//! The builtin `javascript` plugin: k6-style scripts, run by QuickJS
//! inside a scenario component like any other plugin. The script and the
//! files it imports or opens travel in the Bundle as data files, so a
//! cluster runs it with nothing installed on the nodes. The k6 modules are
//! JavaScript (src/js) over a handful of native functions (`host.rs`) that
//! call the host's imports directly.
//!
//! Params, written by the host when it turns a script into a config:
//! `{ "main": "script.js", "env": { ... } }`; `"probe": "options"` makes
//! `setup` return the script's `options` and exports instead of running,
//! and `"probe": "summary"` with `"summary": data` makes it return what
//! the script's `handleSummary(data)` does.

/// Makes a Rust type a JavaScript class that only natives create: it
/// holds no JavaScript value, and scripts get no constructor. QuickJS
/// drops the Rust value with the last object holding it.
macro_rules! native_class {
    ($ty:ident, $name:literal) => {
        // SAFETY: the type holds no JavaScript value, so no lifetime to change.
        unsafe impl<'js> rquickjs::JsLifetime<'js> for $ty {
            type Changed<'to> = $ty;
        }

        impl<'js> rquickjs::class::Trace<'js> for $ty {
            fn trace<'a>(&self, _: rquickjs::class::Tracer<'a, 'js>) {}
        }

        impl<'js> rquickjs::class::JsClass<'js> for $ty {
            const NAME: &'static str = $name;
            type Mutable = rquickjs::class::Readable;

            fn constructor(
                _: &rquickjs::Ctx<'js>,
            ) -> rquickjs::Result<Option<rquickjs::function::Constructor<'js>>> {
                Ok(None)
            }
        }
    };
}

mod binary;
mod compression;
mod crypto;
mod engine;
mod event_loop;
mod host;
mod html;
mod intrinsics;
mod lazy_natives;
mod options;
mod random;
mod vu_tags;

use engine::Engine;
use loadtest_sdk::{Params, Result, Scenario, vu};

struct Script {
    engine: Engine,
}

fn load(params: &Params) -> Result<Engine> {
    let main = params
        .str("main")
        .ok_or("params.main: the script to run is missing")?;
    let mut env = match params.0.get("env") {
        Some(serde_json::Value::Object(e)) => e.clone(),
        _ => Default::default(),
    };
    // A scenario's own env (k6's `scenarios.<name>.env`) on top.
    if let Some(serde_json::Value::Object(own)) = params.0.get("scenarioEnv") {
        env.extend(own.clone());
    }
    let env = serde_json::Value::Object(env);
    options::set_test_options(params.0.get("testOptions").map(|o| o.to_string()));
    Ok(Engine::load(main, &env)?)
}

/// The script's options and exports, and the bytecode of every module
/// it compiled (base64): the host ships it so VUs do not parse.
fn describe(engine: &Engine) -> Result<String> {
    use base64::Engine as _;
    let mut described: serde_json::Value = serde_json::from_str(&engine.describe()?)?;
    let code = engine::recorded_bytecode().into_iter().map(|(name, code)| {
        let code = base64::engine::general_purpose::STANDARD.encode(code);
        (name, serde_json::Value::String(code))
    });
    described["bytecode"] = serde_json::Value::Object(code.collect());
    Ok(described.to_string())
}

impl Scenario for Script {
    fn init(params: &Params) -> Result<Self> {
        let engine = load(params)?;
        engine.set_data(vu::setup_data().as_deref())?;
        // Measuring walks the whole heap: a sample of VUs is enough.
        if vu::id() <= 3 {
            loadtest_sdk::log::debug(&engine.footprint());
        }
        Ok(Script { engine })
    }

    fn iteration(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let exec = vu::exec();
        let name = if exec.is_empty() { "default" } else { &exec };
        let result = self.engine.call(name);
        // k6's minIterationDuration: the VU sleeps off the rest, whether
        // the iteration passed or failed.
        if let Some(rest) = options::min_iteration().and_then(|m| m.checked_sub(started.elapsed()))
        {
            vu::sleep(rest);
        }
        Ok(result?)
    }

    fn setup(params: &Params) -> Result<Option<String>> {
        if params.str("probe") == Some("summary") {
            let engine = load(params)?;
            let data = params
                .0
                .get("summary")
                .map_or("{}".into(), |d| d.to_string());
            return Ok(Some(engine.handle_summary(&data)?));
        }
        let probe = params.str("probe") == Some("options");
        if probe {
            engine::record_bytecode();
        }
        let engine = load(params)?;
        if probe {
            engine.record_lazy_modules()?;
            return Ok(Some(describe(&engine)?));
        }
        if !engine.exports("setup")? {
            return Ok(None);
        }
        Ok(Some(engine.call_json("setup")?))
    }

    fn teardown(params: &Params, data: Option<&str>) -> Result<()> {
        if params.str("probe").is_some() {
            return Ok(());
        }
        let engine = load(params)?;
        if engine.exports("teardown")? {
            engine.set_data(data)?;
            engine.call("teardown")?;
        }
        Ok(())
    }
}

loadtest_sdk::export_scenario!(Script);
