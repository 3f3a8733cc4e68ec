//! Bytes between JavaScript and the host: request bodies and data given
//! as strings, ArrayBuffers or views of one (`Uint8Array`, `DataView`...),
//! and bodies and files handed back as ArrayBuffers.

use rquickjs::{ArrayBuffer, Ctx, Exception, Object, Value};

/// `value`'s bytes: a string as UTF-8, an ArrayBuffer whole, a view as
/// the part of its buffer it shows. Anything else is a TypeError that
/// names `what`.
pub fn bytes_of<'js>(ctx: &Ctx<'js>, value: &Value<'js>, what: &str) -> rquickjs::Result<Vec<u8>> {
    if let Some(s) = value.as_string() {
        return Ok(s.to_string()?.into_bytes());
    }
    if let Some(buf) = as_array_buffer(ctx, value) {
        return Ok(whole(&buf).to_vec());
    }
    if let Some(view) = view_of(value)? {
        return Ok(view);
    }
    Err(Exception::throw_type(
        ctx,
        &format!("{what} must be a string, an ArrayBuffer or a typed array"),
    ))
}

/// `value` as an ArrayBuffer, if it is one. QuickJS answers "is it one?"
/// by throwing a TypeError for any other object, which would be left
/// pending and surface as the error of whatever the script did next.
fn as_array_buffer<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Option<ArrayBuffer<'js>> {
    let buf = ArrayBuffer::from_value(value.clone());
    if buf.is_none() && value.is_object() {
        drop(ctx.catch());
    }
    buf
}

fn whole<'a>(buf: &'a ArrayBuffer<'_>) -> &'a [u8] {
    // SAFETY: no JavaScript runs while the slice is read (it is copied
    // before the caller returns to the script).
    unsafe { buf.as_bytes() }.unwrap_or_default()
}

/// The bytes a typed array or DataView shows of its buffer.
fn view_of(value: &Value<'_>) -> rquickjs::Result<Option<Vec<u8>>> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    let buf = obj.get::<_, Value>("buffer").ok();
    let Some(buf) = buf.and_then(|b| as_array_buffer(value.ctx(), &b)) else {
        return Ok(None);
    };
    let offset = number(obj, "byteOffset")?;
    let len = number(obj, "byteLength")?;
    let end = offset.saturating_add(len);
    Ok(whole(&buf).get(offset..end).map(<[u8]>::to_vec))
}

fn number(obj: &Object<'_>, name: &str) -> rquickjs::Result<usize> {
    Ok(obj.get::<_, Option<f64>>(name)?.unwrap_or(0.0).max(0.0) as usize)
}

/// `bytes` as a new ArrayBuffer.
pub fn array_buffer<'js>(ctx: &Ctx<'js>, bytes: Vec<u8>) -> rquickjs::Result<Value<'js>> {
    crate::intrinsics::typed_arrays(ctx)?;
    Ok(ArrayBuffer::new(ctx.clone(), bytes)?.into_value())
}

/// `H.multipart(parts)`: k6's multipart/form-data body, for a body object
/// holding an `http.file(...)`. Each part is `[name, data, filename,
/// contentType]`, a plain field with a null filename. Gives `[body,
/// boundary]`.
pub fn multipart<'js>(
    ctx: Ctx<'js>,
    parts: Vec<rquickjs::Array<'js>>,
) -> rquickjs::Result<Vec<Value<'js>>> {
    let boundary = format!("loadtest{:016x}", loadtest_sdk::vu::random());
    let mut body = Vec::new();
    for part in parts {
        let name: String = part.get(0)?;
        let data: Value = part.get(1)?;
        let filename: Option<String> = part.get(2)?;
        let content_type: Option<String> = part.get(3)?;
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", quoted(&name));
        if let Some(f) = &filename {
            disposition.push_str(&format!("; filename=\"{}\"", quoted(f)));
        }
        body.extend_from_slice(disposition.as_bytes());
        if let Some(t) = &content_type {
            body.extend_from_slice(format!("\r\nContent-Type: {}", single_line(t)).as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        let what = format!("k6/http: the multipart field `{name}`");
        body.extend(bytes_of(&ctx, &data, &what)?);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let boundary = rquickjs::String::from_str(ctx.clone(), &boundary)?.into_value();
    Ok(vec![array_buffer(&ctx, body)?, boundary])
}

/// A name or filename inside a quoted header parameter, as browsers
/// escape them (the HTML form-data encoding).
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn single_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}
