//! One VU's live instance of a plugin, and how its calls fail.

use super::bindings::{v02, v02_lifecycle};
use super::sandbox::{Meter, Violation};
use super::ticker::Ticker;
use super::{Limits, Plugin, VuHost};
use crate::metrics::FailureKind;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How much of a guest's stderr (panic messages) is kept for reports.
const STDERR_CAPACITY: usize = 4096;

pub struct StoreState {
    pub host: VuHost,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    meter: Meter,
    stderr: MemoryOutputPipe,
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.host.wasi_http,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub(super) fn new_store(engine: &Engine, mut host: VuHost, limits: Limits) -> Store<StoreState> {
    host.held.clear();
    host.held.limit = limits.memory_bytes;
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    // WASI without preopened directories, sockets or name lookups: the
    // guest reaches the outside only through the host's imports.
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let meter = Meter { limits, ticks: 0 };
    let mut store = Store::new(
        engine,
        StoreState {
            host,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            meter,
            stderr,
        },
    );
    store.limiter(|s| &mut s.meter);
    store.epoch_deadline_callback(|mut ctx| {
        let s = ctx.data_mut();
        // The first tick after an async import returns measured the wait,
        // not the guest, so it is not charged.
        if std::mem::take(&mut s.host.waited) {
            return Ok(UpdateDeadline::Yield(1));
        }
        s.meter.ticks += 1;
        if s.meter.ticks > s.meter.limits.cpu_ticks {
            let budget = super::EPOCH_TICK * s.meter.limits.cpu_ticks as u32;
            return Err(Violation::Cpu(budget).into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Why an export call did not succeed.
#[derive(Debug)]
pub enum CallFailure {
    /// The guest returned an error; the instance is still good.
    Guest(String),
    /// The guest trapped or hit a limit; the instance must be replaced.
    Fault(FailureKind, String),
}

pub struct VuInstance {
    store: Store<StoreState>,
    bindings: Bindings,
    /// The engine's epoch clock, kept ticking during each call.
    ticker: Arc<Ticker>,
}

enum Bindings {
    Plain(v02::Scenario),
    Lifecycle(v02_lifecycle::ScenarioLifecycle),
}

impl VuInstance {
    pub async fn new(
        runtime: &super::Runtime,
        plugin: &Plugin,
        host: VuHost,
        limits: Limits,
    ) -> Result<Self, (VuHost, String)> {
        if let Err(msg) = runtime.maps.admit() {
            return Err((host, msg));
        }
        let mut store = runtime.new_store(host, limits);
        let ticker = runtime.ticker.clone();
        let busy = ticker.busy();
        arm(&mut store);
        let bindings = match &plugin.pre {
            super::Pre::Plain(pre) => pre.instantiate_async(&mut store).await.map(Bindings::Plain),
            super::Pre::Lifecycle(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Bindings::Lifecycle),
        };
        drop(busy);
        match bindings {
            Ok(bindings) => Ok(VuInstance {
                store,
                bindings,
                ticker,
            }),
            Err(e) => {
                let msg = describe(&store, &e);
                let mut host = store.into_data().host;
                host.held.clear();
                Err((host, msg))
            }
        }
    }

    pub async fn init(&mut self, params: &str) -> Result<(), CallFailure> {
        let busy = self.ticker.busy();
        arm(&mut self.store);
        let r = match &self.bindings {
            Bindings::Plain(b) => b.call_init(&mut self.store, params).await,
            Bindings::Lifecycle(b) => b.call_init(&mut self.store, params).await,
        };
        drop(busy);
        self.settle(r)
    }

    pub async fn iteration(&mut self) -> Result<(), CallFailure> {
        let busy = self.ticker.busy();
        arm(&mut self.store);
        let r = match &self.bindings {
            Bindings::Plain(b) => b.call_iteration(&mut self.store).await,
            Bindings::Lifecycle(b) => b.call_iteration(&mut self.store).await,
        };
        drop(busy);
        self.settle(r)
    }

    /// Runs the component's `setup`: `Ok(None)` also when it has none.
    pub async fn setup(&mut self, params: &str) -> Result<Option<String>, CallFailure> {
        let Bindings::Lifecycle(b) = &self.bindings else {
            return Ok(None);
        };
        let busy = self.ticker.busy();
        arm(&mut self.store);
        let r = b
            .loadtest_scenario_lifecycle()
            .call_setup(&mut self.store, params)
            .await;
        drop(busy);
        self.settle(r)
    }

    /// Runs the component's `teardown`, if it has one.
    pub async fn teardown(&mut self, params: &str, data: Option<&str>) -> Result<(), CallFailure> {
        let Bindings::Lifecycle(b) = &self.bindings else {
            return Ok(());
        };
        let busy = self.ticker.busy();
        arm(&mut self.store);
        let r = b
            .loadtest_scenario_lifecycle()
            .call_teardown(&mut self.store, params, data)
            .await;
        drop(busy);
        self.settle(r)
    }

    pub fn host(&mut self) -> &mut VuHost {
        &mut self.store.data_mut().host
    }

    /// Gives back the VU's lasting state so a fresh instance can take over.
    pub fn into_host(self) -> VuHost {
        let mut host = self.store.into_data().host;
        host.held.clear();
        host
    }

    fn settle<T>(&mut self, r: wasmtime::Result<Result<T, String>>) -> Result<T, CallFailure> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(msg)) => Err(CallFailure::Guest(msg)),
            Err(e) => Err(CallFailure::Fault(classify(&e), describe(&self.store, &e))),
        }
    }
}

/// Resets the CPU meter before each export call.
fn arm(store: &mut Store<StoreState>) {
    let s = store.data_mut();
    s.meter.ticks = 0;
    s.host.waited = false;
    store.set_epoch_deadline(1);
}

fn classify(e: &wasmtime::Error) -> FailureKind {
    match e.downcast_ref::<Violation>() {
        Some(Violation::Memory { .. } | Violation::Held { .. } | Violation::Jars(_)) => {
            FailureKind::MemoryLimit
        }
        Some(Violation::Cpu(_)) => FailureKind::CpuLimit,
        None => FailureKind::Trap,
    }
}

/// The trap's cause plus whatever the guest printed to stderr (a Rust
/// panic message, say), on one line.
fn describe(store: &Store<StoreState>, e: &wasmtime::Error) -> String {
    let cause = match e.downcast_ref::<Violation>() {
        Some(v) => v.to_string(),
        None => match e.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => format!("wasm trap: {trap}"),
            None => format!("{e:#}"),
        },
    };
    let cause = if cause.contains("Cannot allocate memory") {
        format!("{cause} (the process may be out of memory mappings: raise vm.max_map_count)")
    } else {
        cause
    };
    let printed = String::from_utf8_lossy(&store.data().stderr.contents())
        .trim()
        .replace('\n', " | ");
    if printed.is_empty() {
        cause
    } else {
        format!("{cause} ({printed})")
    }
}
