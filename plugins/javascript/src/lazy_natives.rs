//! Natives made on first use. A VU's `__host` has some fifty natives and
//! a script calls a handful, yet making one (a boxed closure in a class
//! object, with its `length`) cost about 1.5 µs: a tenth of a VU's start
//! went on functions most VUs never call. So each name starts as one of
//! QuickJS's function-list entries, which QuickJS itself makes only when
//! the property is first read, as a small C function; the first call of
//! that makes the real native, puts it on `__host` in its place, and
//! forwards the call. Later reads of `__host.name` get the real native,
//! with no detour; a caller that kept the first function pays one
//! property read per call.

use rquickjs::{Ctx, Exception, Function, Object, qjs};
use std::cell::Cell;
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

/// A native's name on `__host`, and how to make it.
pub struct Native {
    pub name: &'static CStr,
    pub make: for<'js> fn(&Ctx<'js>) -> rquickjs::Result<Function<'js>>,
}

thread_local! {
    /// The table `install` was given: an instance makes one context.
    static TABLE: Cell<&'static [Native]> = const { Cell::new(&[]) };
    /// Which of the table's natives are made (bit = index).
    static MADE: Cell<u128> = const { Cell::new(0) };
}

/// Defines every native of `table` on `obj`, none of them made yet.
pub fn install<'js>(
    ctx: &Ctx<'js>,
    obj: &Object<'js>,
    table: &'static [Native],
) -> rquickjs::Result<()> {
    assert!(table.len() <= 128, "MADE has a bit for 128 natives");
    TABLE.set(table);
    MADE.set(0);
    // QuickJS keeps pointers to the entries for as long as the properties
    // live: they are leaked, once per instance.
    let entries: &'static [qjs::JSCFunctionListEntry] =
        Box::leak(table.iter().enumerate().map(entry).collect());
    // SAFETY: a live context and object; the entries are 'static.
    let failed = unsafe {
        qjs::JS_SetPropertyFunctionList(
            ctx.as_raw().as_ptr(),
            obj.as_raw(),
            entries.as_ptr(),
            entries.len() as c_int,
        ) < 0
    };
    if failed {
        Err(rquickjs::Error::Exception)
    } else {
        Ok(())
    }
}

/// What `JS_CFUNC_MAGIC_DEF(name, 0, first_call, index)` makes in C.
fn entry((index, native): (usize, &Native)) -> qjs::JSCFunctionListEntry {
    qjs::JSCFunctionListEntry {
        name: native.name.as_ptr(),
        prop_flags: (qjs::JS_PROP_WRITABLE | qjs::JS_PROP_CONFIGURABLE) as u8,
        def_type: qjs::JS_DEF_CFUNC as u8,
        magic: index as i16,
        u: qjs::JSCFunctionListEntry__bindgen_ty_1 {
            func: qjs::JSCFunctionListEntry__bindgen_ty_1__bindgen_ty_1 {
                length: 0,
                cproto: qjs::JSCFunctionEnum_JS_CFUNC_generic_magic as u8,
                cfunc: qjs::JSCFunctionType {
                    generic_magic: Some(first_call),
                },
            },
        },
    }
}

/// The function QuickJS made for a name: makes the native (once) and
/// calls it with the same `this` and arguments.
unsafe extern "C" fn first_call(
    raw: *mut qjs::JSContext,
    this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    magic: c_int,
) -> qjs::JSValue {
    // SAFETY: QuickJS calls this with its live context.
    let ctx = unsafe { Ctx::from_raw(NonNull::new_unchecked(raw)) };
    match native(&ctx, magic as usize) {
        // SAFETY: the arguments are QuickJS's own, passed on unchanged;
        // JS_Call gives back a value the caller owns, as this must.
        Ok(f) => unsafe { qjs::JS_Call(raw, f.as_raw(), this, argc, argv) },
        Err(rquickjs::Error::Exception) => qjs::JS_EXCEPTION,
        Err(e) => {
            let _ = Exception::throw_internal(&ctx, &e.to_string());
            qjs::JS_EXCEPTION
        }
    }
}

/// Native `index`: made now and put on `__host`, or the one made before.
fn native<'js>(ctx: &Ctx<'js>, index: usize) -> rquickjs::Result<Function<'js>> {
    let table = TABLE.get();
    let Some(native) = table.get(index) else {
        return Err(Exception::throw_internal(ctx, "no such native"));
    };
    let name = native.name.to_str().unwrap_or_default();
    let host: Object = ctx.globals().get("__host")?;
    if MADE.get() & (1u128 << index) != 0 {
        return host.get(name);
    }
    let f = (native.make)(ctx)?;
    host.set(name, f.clone())?;
    MADE.set(MADE.get() | 1u128 << index);
    Ok(f)
}
