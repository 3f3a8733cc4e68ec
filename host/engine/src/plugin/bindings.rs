//! Host-side bindings of the `scenario` world. HTTP and sleep are async so
//! thousands of VUs can wait on I/O without a thread each.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "scenario",
    imports: {
        "loadtest:scenario/http.send": async,
        "loadtest:scenario/vu.sleep": async,
    },
    exports: { default: async },
});
