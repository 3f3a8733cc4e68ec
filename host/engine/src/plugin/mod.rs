//! Running scenario components: wasmtime with the component model on
//! tokio, one compile per plugin digest, one instance per VU, and a sandbox
//! (CPU budget per call, memory cap per instance, no filesystem or sockets)
//! so a plugin can fail its own iterations but never the process.

mod batch;
mod bindings;
pub mod builtin;
mod cache;
mod held;
mod host;
mod host_v01;
mod instance;
mod jars;
mod log_budget;
pub mod maps;
mod sandbox;
mod shared_arrays;
mod ticker;
mod wasi_http;

pub use host::{Files, Progress, RunProgress, VuHost};
pub use instance::{CallFailure, VuInstance};
pub use log_budget::LogBudget;
pub use sandbox::Limits;
pub use shared_arrays::SharedArrays;

use crate::config::PluginBytes;
use bindings::{v01, v02, v02_lifecycle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

/// How often the engine's epoch advances: the granularity of CPU budgets
/// and of yielding a busy guest back to the scheduler.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// A plugin compiled and linked, ready to instantiate cheaply per VU.
pub struct Plugin {
    pub name: String,
    pub digest: String,
    pub compile_time: Duration,
    pre: Pre,
}

/// A linked component. `init` and `iteration` are the same in every
/// version of the world, so a 0.1 component's exports are found as 0.2's;
/// the versions differ in what they import, which the linker offers both of.
enum Pre {
    Plain(v02::ScenarioPre<instance::StoreState>),
    /// With the `lifecycle` export (setup and teardown).
    Lifecycle(v02_lifecycle::ScenarioLifecyclePre<instance::StoreState>),
}

impl Plugin {
    /// Whether it exports `setup` and `teardown`.
    pub fn has_lifecycle(&self) -> bool {
        matches!(self.pre, Pre::Lifecycle(_))
    }
}

/// A plugin that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{name}`: {message}")]
pub struct PluginError {
    pub name: String,
    pub message: String,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<instance::StoreState>,
    compiled: Mutex<HashMap<String, Arc<Plugin>>>,
    /// Where compiled plugins are kept between runs, if anywhere.
    cache: Option<std::path::PathBuf>,
    maps: maps::Budget,
    ticker: Arc<ticker::Ticker>,
}

impl Runtime {
    pub fn new() -> wasmtime::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        // Many small instances: reserve little address space per memory and
        // let it move when it grows, instead of 4 GiB + guard per instance.
        config.memory_reservation(0);
        config.memory_guard_size(64 << 10);
        config.memory_reservation_for_growth(1 << 20);
        // Each mapping counts against vm.max_map_count, which is what caps
        // VUs per process; the guard region in front of each memory is
        // one per VU, and the one behind it already catches overruns.
        config.guard_before_linear_memory(false);
        config.async_stack_size(1 << 20);
        config.max_wasm_stack(512 << 10);
        // Lets `perf report` name the guest's functions (benches, profiling).
        if std::env::var_os("LOADTEST_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let ticker = ticker::Ticker::start(&engine, EPOCH_TICK);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        v02::Scenario::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s: &mut instance::StoreState| &mut s.host,
        )?;
        v01::Scenario::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s: &mut instance::StoreState| &mut s.host,
        )?;
        Ok(Runtime {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            cache: cache::dir(),
            maps: maps::Budget::new(maps::limit()),
            ticker,
        })
    }

    /// Compiles (once per digest) and links a plugin, or says precisely why
    /// it cannot serve as a scenario.
    pub fn load(&self, name: &str, plugin: &PluginBytes) -> Result<Arc<Plugin>, PluginError> {
        if let Some(p) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&plugin.digest)
        {
            return Ok(p.clone());
        }
        let err = |message: String| PluginError {
            name: name.to_owned(),
            message,
        };
        check_header(&plugin.bytes).map_err(err)?;
        let start = Instant::now();
        let component = self.compile(plugin).map_err(err)?;
        let compile_time = start.elapsed();
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            err(format!(
                "needs an import this host does not provide: {e:#}. The host offers the \
                 loadtest:scenario world's imports and WASI 0.2 without filesystem or sockets"
            ))
        })?;
        let pre = link(instance_pre).map_err(err)?;
        let compiled = Arc::new(Plugin {
            name: name.to_owned(),
            digest: plugin.digest.clone(),
            compile_time,
            pre,
        });
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plugin.digest.clone(), compiled.clone());
        Ok(compiled)
    }

    /// Forgets the compiled plugins whose digest is not in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d, _| keep.contains(d));
    }

    /// What a component imports and exports, for `loadtest inspect`; a file
    /// that is not a component at all is an error.
    pub fn describe(&self, name: &str, plugin: &PluginBytes) -> Result<Description, PluginError> {
        let err = |message: String| PluginError {
            name: name.to_owned(),
            message,
        };
        check_header(&plugin.bytes).map_err(err)?;
        let component = self.compile(plugin).map_err(err)?;
        let ty = component.component_type();
        let list = |items: &mut dyn Iterator<
            Item = (&str, wasmtime::component::types::ComponentItem),
        >| { items.map(|(n, item)| (n.to_owned(), kind(&item))).collect() };
        Ok(Description {
            imports: list(&mut ty.imports(&self.engine).map(|(n, e)| (n, e.ty))),
            exports: list(&mut ty.exports(&self.engine).map(|(n, e)| (n, e.ty))),
            fits: self.load(name, plugin).map(|_| ()).map_err(|e| e.message),
        })
    }

    fn compile(&self, plugin: &PluginBytes) -> Result<Component, String> {
        cache::compile(
            &self.engine,
            self.cache.as_deref(),
            &plugin.bytes,
            &plugin.digest,
        )
        .map_err(|e| format!("is not a valid component: {e:#}"))
    }

    pub(crate) fn new_store(&self, host: VuHost, limits: Limits) -> Store<instance::StoreState> {
        instance::new_store(&self.engine, host, limits)
    }
}

/// Links the exports: the scenario's, and the lifecycle's when it has them.
fn link(
    instance_pre: wasmtime::component::InstancePre<instance::StoreState>,
) -> Result<Pre, String> {
    if let Ok(pre) = v02_lifecycle::ScenarioLifecyclePre::new(instance_pre.clone()) {
        return Ok(Pre::Lifecycle(pre));
    }
    v02::ScenarioPre::new(instance_pre)
        .map(Pre::Plain)
        .map_err(|e| {
            format!(
                "does not implement the loadtest:scenario world ({e:#}); it must export \
             `init: func(params: string) -> result<_, string>` and \
             `iteration: func() -> result<_, string>`"
            )
        })
}

/// A component's interface, as `loadtest inspect` prints it.
pub struct Description {
    pub imports: Vec<(String, &'static str)>,
    pub exports: Vec<(String, &'static str)>,
    /// `Ok` when it can run as a scenario, else why not.
    pub fits: Result<(), String>,
}

fn kind(item: &wasmtime::component::types::ComponentItem) -> &'static str {
    use wasmtime::component::types::ComponentItem as I;
    match item {
        I::ComponentFunc(_) => "function",
        I::CoreFunc(_) => "core function",
        I::Module(_) => "core module",
        I::Component(_) => "component",
        I::ComponentInstance(_) => "interface",
        I::Type(_) => "type",
        I::Resource(_) => "resource",
    }
}

/// Tells a core module or a non-wasm file apart from a component up front,
/// because wasmtime's own message for those is hard to act on.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("is not a WebAssembly file (no `\\0asm` header); point `path` at the .wasm a guest build produced".into());
    }
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    if layer == 0 {
        return Err(
            "is a core WebAssembly module, not a component; build the guest for wasm32-wasip2 \
                    or wrap it with `wasm-tools component new`"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_modules_components_and_junk_apart() {
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
    }
}
