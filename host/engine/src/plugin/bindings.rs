//! Host-side bindings of the `scenario` world, in every version the host
//! runs. HTTP and sleep are async so thousands of VUs can wait on I/O
//! without a thread each. The 0.2 imports are the implementation; 0.1's
//! are translated into them (see `host_v01`).

/// `loadtest:scenario@0.2.0`.
pub mod v02 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scenario",
        imports: {
            "loadtest:scenario/http.send": async,
            "loadtest:scenario/http.batch": async,
            "loadtest:scenario/http.batch-judged": async,
            "loadtest:scenario/http.send-held": async | trappable,
            "loadtest:scenario/http.batch-held": async | trappable,
            "loadtest:scenario/vu.sleep": async,
            "loadtest:scenario/cookies.[constructor]jar": trappable,
        },
        exports: { default: async },
    });
}

/// The 0.2 world with `setup` and `teardown`: only its exports are used,
/// its imports are those of [`v02`].
pub mod v02_lifecycle {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scenario-lifecycle",
        with: {
            "loadtest:scenario/http": super::v02::loadtest::scenario::http,
            "loadtest:scenario/cookies": super::v02::loadtest::scenario::cookies,
            "loadtest:scenario/metrics": super::v02::loadtest::scenario::metrics,
            "loadtest:scenario/vu": super::v02::loadtest::scenario::vu,
            "loadtest:scenario/log": super::v02::loadtest::scenario::log,
        },
        exports: { default: async },
    });
}

/// `loadtest:scenario@0.1.0`, which components built before 0.2 import.
pub mod v01 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "scenario",
        imports: {
            "loadtest:scenario/http.send": async,
            "loadtest:scenario/vu.sleep": async,
        },
        exports: { default: async },
    });
}
