//! The standard library a VU's context starts with. QuickJS makes every
//! intrinsic when a context is made, a third of a VU's start and of its
//! heap, and most scripts never touch typed arrays, `Proxy`, `WeakRef`,
//! `Map`... So those globals start as accessors (one small native
//! function each, getter and setter both) that make their intrinsic the
//! first time the script reads or writes one of its names, then give way
//! to the real globals. Base objects, eval, RegExp, JSON and Promise are
//! made up front: QuickJS itself needs them (module evaluation, regular
//! expression literals). `__ENV` is made the same way: parsing the
//! machine's environment took a twentieth of a VU's start, for scripts
//! that mostly read it in init, if at all.

use rquickjs::context::intrinsic::{Eval, Json, Promise, RegExp, RegExpCompiler};
use rquickjs::{Context, Ctx, Runtime, qjs};
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int};

type Add = unsafe extern "C" fn(*mut qjs::JSContext) -> c_int;
/// A native function with a magic number, and the plain kind QuickJS's
/// constructor takes it as.
type Magic = unsafe extern "C" fn(
    *mut qjs::JSContext,
    qjs::JSValue,
    c_int,
    *mut qjs::JSValue,
    c_int,
) -> qjs::JSValue;
type Generic = unsafe extern "C" fn(
    *mut qjs::JSContext,
    qjs::JSValue,
    c_int,
    *mut qjs::JSValue,
) -> qjs::JSValue;

/// An intrinsic made on first use, and the globals it defines (this
/// build's QuickJS has no `Atomics`: no threads in the guest).
struct Group {
    names: &'static [&'static CStr],
    add: Add,
}

const TYPED_ARRAYS: usize = 3;

const GROUPS: &[Group] = &[
    Group {
        names: &[c"Date"],
        add: qjs::JS_AddIntrinsicDate,
    },
    Group {
        names: &[c"Proxy"],
        add: qjs::JS_AddIntrinsicProxy,
    },
    Group {
        names: &[c"Map", c"Set", c"WeakMap", c"WeakSet"],
        add: qjs::JS_AddIntrinsicMapSet,
    },
    Group {
        names: &[
            c"ArrayBuffer",
            c"SharedArrayBuffer",
            c"Uint8ClampedArray",
            c"Int8Array",
            c"Uint8Array",
            c"Int16Array",
            c"Uint16Array",
            c"Int32Array",
            c"Uint32Array",
            c"BigInt64Array",
            c"BigUint64Array",
            c"Float16Array",
            c"Float32Array",
            c"Float64Array",
            c"DataView",
        ],
        add: qjs::JS_AddIntrinsicTypedArrays,
    },
    Group {
        names: &[c"WeakRef", c"FinalizationRegistry"],
        add: qjs::JS_AddIntrinsicWeakRef,
    },
    Group {
        names: &[c"DOMException", c"btoa", c"atob"],
        add: qjs::JS_AddIntrinsicAToB,
    },
    Group {
        names: &[c"performance"],
        add: qjs::JS_AddPerformance,
    },
    Group {
        names: &[c"__ENV"],
        add: add_env,
    },
];

/// A name's place in `GROUPS`, as the accessor's magic number.
const PER_GROUP: c_int = 32;

thread_local! {
    /// The groups this instance's context has made: an instance makes one
    /// context (`Engine::load` once per instance), so one set will do.
    static MADE: Cell<u32> = const { Cell::new(0) };
    /// Set while an accessor runs: it must not run itself again (a frozen
    /// global object keeps the accessor where the real global should go).
    static IN_ACCESSOR: Cell<bool> = const { Cell::new(false) };
    /// `__ENV` as JSON, zero-terminated, until the script first names it.
    static ENV: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What `__ENV` will be: `json`, an object of strings.
pub fn set_env(json: String) {
    let mut bytes = json.into_bytes();
    bytes.push(0);
    ENV.set(bytes);
}

/// Defines `__ENV` from the JSON [`set_env`] kept.
unsafe extern "C" fn add_env(ctx: *mut qjs::JSContext) -> c_int {
    let text = ENV.take();
    let Some((&0, json)) = text.split_last() else {
        // SAFETY: a live context.
        unsafe { qjs::JS_ThrowInternalError(ctx, c"__ENV was not set".as_ptr()) };
        return -1;
    };
    // SAFETY: `text` is zero-terminated, as JS_ParseJSON requires; the
    // parsed value is handed to JS_DefinePropertyValueStr, which takes it.
    unsafe {
        let value = qjs::JS_ParseJSON(
            ctx,
            json.as_ptr().cast(),
            json.len() as _,
            c"__ENV".as_ptr(),
        );
        if qjs::JS_IsException(value) {
            return -1;
        }
        let global = qjs::JS_GetGlobalObject(ctx);
        let flags = qjs::JS_PROP_C_W_E as c_int;
        let done = qjs::JS_DefinePropertyValueStr(ctx, global, c"__ENV".as_ptr(), value, flags);
        qjs::JS_FreeValue(ctx, global);
        if done < 0 { -1 } else { 0 }
    }
}

/// A context with the eager intrinsics and an accessor for every other
/// global.
pub fn context(runtime: &Runtime) -> rquickjs::Result<Context> {
    MADE.set(0);
    let context = Context::custom::<(Eval, RegExpCompiler, RegExp, Json, Promise)>(runtime)?;
    context.with(|ctx| install_accessors(&ctx))?;
    Ok(context)
}

/// Makes typed arrays before native code makes an ArrayBuffer: it takes
/// its prototype from the context.
pub fn typed_arrays(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    // SAFETY: the context is alive for `ctx`'s lifetime.
    if unsafe { make(ctx.as_raw().as_ptr(), TYPED_ARRAYS) } {
        Ok(())
    } else {
        Err(rquickjs::Error::Exception)
    }
}

fn install_accessors(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let lazy: Magic = lazy;
    // SAFETY: plain QuickJS calls on a live context; every value made is
    // handed to `JS_DefinePropertyGetSet`, which takes it, or freed.
    unsafe {
        let global = qjs::JS_GetGlobalObject(raw);
        let mut failed = false;
        'all: for (g, group) in GROUPS.iter().enumerate() {
            for (n, name) in group.names.iter().enumerate() {
                let magic = g as c_int * PER_GROUP + n as c_int;
                // A magic C function has the generic pointer type here;
                // QuickJS calls it by the `cproto` given with it.
                let f = qjs::JS_NewCFunction2(
                    raw,
                    Some(std::mem::transmute::<Magic, Generic>(lazy)),
                    name.as_ptr(),
                    1,
                    qjs::JSCFunctionEnum_JS_CFUNC_generic_magic,
                    magic,
                );
                if qjs::JS_IsException(f) {
                    failed = true;
                    break 'all;
                }
                let atom = qjs::JS_NewAtom(raw, name.as_ptr());
                let setter = qjs::JS_DupValue(raw, f);
                let flags = qjs::JS_PROP_CONFIGURABLE as c_int;
                failed = qjs::JS_DefinePropertyGetSet(raw, global, atom, f, setter, flags) < 0;
                qjs::JS_FreeAtom(raw, atom);
                if failed {
                    break 'all;
                }
            }
        }
        qjs::JS_FreeValue(raw, global);
        if failed {
            return Err(rquickjs::Error::Exception);
        }
    }
    Ok(())
}

/// The accessor of every lazy global: makes its group, then reads (no
/// argument) or writes (one) the real global.
unsafe extern "C" fn lazy(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    magic: c_int,
) -> qjs::JSValue {
    let (g, n) = ((magic / PER_GROUP) as usize, (magic % PER_GROUP) as usize);
    let name = GROUPS[g].names[n];
    // SAFETY: QuickJS calls this with a live context and `argc` values.
    unsafe {
        if IN_ACCESSOR.replace(true) {
            let message = c"this global cannot be made: the global object is frozen";
            return qjs::JS_ThrowTypeError(ctx, message.as_ptr());
        }
        let out = access(ctx, g, name, argc, argv);
        IN_ACCESSOR.set(false);
        out
    }
}

/// Makes group `g`, then reads or writes the real global `name`.
unsafe fn access(
    ctx: *mut qjs::JSContext,
    g: usize,
    name: &CStr,
    argc: c_int,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    // SAFETY: as `lazy`'s.
    unsafe {
        if !make(ctx, g) {
            return qjs::JS_EXCEPTION;
        }
        let global = qjs::JS_GetGlobalObject(ctx);
        let out = if argc >= 1 {
            let value = qjs::JS_DupValue(ctx, *argv);
            if qjs::JS_SetPropertyStr(ctx, global, name.as_ptr(), value) < 0 {
                qjs::JS_EXCEPTION
            } else {
                qjs::JS_UNDEFINED
            }
        } else {
            qjs::JS_GetPropertyStr(ctx, global, name.as_ptr())
        };
        qjs::JS_FreeValue(ctx, global);
        out
    }
}

/// Makes group `g` once: its accessors go, its real globals come. False
/// with an exception pending when QuickJS could not (out of memory).
unsafe fn make(ctx: *mut qjs::JSContext, g: usize) -> bool {
    let bit = 1 << g;
    if MADE.get() & bit != 0 {
        return true;
    }
    MADE.set(MADE.get() | bit);
    // SAFETY: as the caller's.
    unsafe {
        let global = qjs::JS_GetGlobalObject(ctx);
        for name in GROUPS[g].names {
            let atom = qjs::JS_NewAtom(ctx, name.as_ptr());
            qjs::JS_DeleteProperty(ctx, global, atom, 0);
            qjs::JS_FreeAtom(ctx, atom);
        }
        qjs::JS_FreeValue(ctx, global);
        (GROUPS[g].add)(ctx) == 0
    }
}
