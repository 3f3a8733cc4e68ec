//! The builtin javascript plugin, pre-initialised. Each VU of a script
//! used to build a QuickJS runtime and a context with all its intrinsics,
//! then the prelude and the k6 modules: most of a VU's start, most of the
//! memory it wrote, and the same bytes in every VU. Here one instance does
//! that once (`setup` with `{"preinit": true}`; the plugin's
//! `engine::warm_up`) and Wizer writes its memory and globals into a new
//! component as data. A VU instantiates that component, whose memory image
//! wasmtime maps copy-on-write: the VU starts past the work, and the pages
//! no VU writes stay shared between all of them. The component is kept in
//! the plugin cache under the plugin's digest, so a machine makes it once
//! per build of the plugin; `LOADTEST_PREINIT=0` turns it off.

use super::{EPOCH_TICK, Runtime, bindings::v02_lifecycle, cache};
use crate::config::PluginBytes;
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::{Instance, Linker, ResourceTable, WasmList};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The warm-up is the plugin's own code, but still never unbounded.
const LIMIT: Duration = Duration::from_secs(60);

/// Whether plugins with a warm-up are snapshotted (`LOADTEST_PREINIT=0`
/// turns it off, to compare or to rule it out).
pub(super) fn enabled() -> bool {
    std::env::var_os("LOADTEST_PREINIT").is_none_or(|v| v != "0")
}

/// The pre-initialised component of `plugin`: from the cache, or made now.
pub(super) fn javascript(runtime: &Runtime, plugin: &PluginBytes) -> Result<PluginBytes, String> {
    let name = format!("{}-preinit.wasm", plugin.digest);
    if let Some(bytes) = cache::read_derived(runtime.cache.as_deref(), &name) {
        return Ok(PluginBytes::new(bytes));
    }
    let start = Instant::now();
    // Its own thread and executor: `load` is called from inside tokio's
    // runtime, where blocking on another one is refused.
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(snapshot(runtime, &plugin.bytes))
                .map_err(|e| format!("{e:#}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the snapshot panicked".to_owned()))
    })?;
    tracing::debug!(
        "javascript: pre-initialised in {:?} ({} KiB)",
        start.elapsed(),
        made.len() / 1024
    );
    cache::keep_derived(runtime.cache.as_deref(), &name, &made);
    Ok(PluginBytes::new(made))
}

async fn snapshot(runtime: &Runtime, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer.instrument_component(wasm)?;
    let component = wasmtime::component::Component::new(&runtime.engine, &instrumented)?;
    // WASI for the guest's libc, with clocks that do not move so the
    // snapshot is the same bytes on every machine; any other import traps.
    let mut linker = Linker::new(&runtime.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    trap_the_hosts_imports(&mut linker, &component)?;
    let mut store = Store::new(&runtime.engine, Warming::new());
    let _ticking = runtime.ticker.busy();
    store.set_epoch_deadline((LIMIT.as_millis() / EPOCH_TICK.as_millis()) as u64);
    let instance = linker.instantiate_async(&mut store, &component).await?;
    let bindings = v02_lifecycle::ScenarioLifecycle::new(&mut store, &instance)?;
    bindings
        .loadtest_scenario_lifecycle()
        .call_setup(&mut store, r#"{"preinit":true}"#)
        .await?
        .map_err(|e| wasmtime::format_err!("the warm-up failed: {e}"))?;
    let mut access = Access {
        store: &mut store,
        instance,
    };
    wizer.snapshot_component(&cx, &mut access).await
}

/// Defines every import that is not WASI's as a function that fails: the
/// warm-up must not depend on a VU. (wasmtime's own
/// `define_unknown_imports_as_traps` would also shadow the WASI versions
/// the linker offers by semver, such as 0.2.6 served by 0.2.x.)
fn trap_the_hosts_imports(
    linker: &mut Linker<Warming>,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let engine = component.engine();
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(imported) = item.ty else {
            continue;
        };
        if name.starts_with("wasi:") {
            continue;
        }
        let mut instance = linker.instance(name)?;
        for (func, item) in imported.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let called = format!("{name}#{func}");
            instance.func_new(func, move |_, _, _, _| {
                Err(wasmtime::format_err!("the warm-up called `{called}`"))
            })?;
        }
    }
    Ok(())
}

/// The warming instance's state: WASI only.
struct Warming {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl Warming {
    fn new() -> Self {
        let wasi = WasiCtx::builder()
            .wall_clock(Still)
            .monotonic_clock(Still)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Warming {
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Warming {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock stopped at zero.
struct Still;

impl HostWallClock for Still {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Still {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// What Wizer reads the warmed instance's state through: the accessor
/// functions its instrumentation exported.
struct Access<'a> {
    store: &'a mut Store<Warming>,
    instance: Instance,
}

impl Access<'_> {
    /// Calls accessor `func` of exported instance `within`. Wizer's trait
    /// has no way to fail, and these functions are its own: a missing one
    /// is a bug in it, and panics on the snapshot's thread, which `javascript`
    /// turns into an error.
    async fn call<R>(&mut self, within: &str, func: &str) -> R
    where
        R: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
    {
        let store = &mut *self.store;
        let (_, parent) = self
            .instance
            .get_export(&mut *store, None, within)
            .expect("wizer's accessor instance");
        let (_, index) = self
            .instance
            .get_export(&mut *store, Some(&parent), func)
            .expect("wizer's accessor function");
        let f = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *store, index)
            .expect("wizer's accessor type");
        f.call_async(&mut *store, ())
            .await
            .expect("wizer's accessor call")
            .0
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let list: WasmList<u8> = self.call(instance, func).await;
        contents(list.as_le_slice(&*self.store));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).await.to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).await.to_bits()
    }
}
