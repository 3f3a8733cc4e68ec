//! k6's `params.compression`: the request body compressed before it goes
//! out, with `Content-Encoding` saying how. Codings apply in the order
//! given (`'gzip, deflate'` gzips, then deflates the result), as that
//! header lists them.

use rquickjs::convert::Coerced;
use rquickjs::{Ctx, Exception, FromJs, Object, Value};
use std::io::Write;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Coding {
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped (RFC 9110), as k6 sends it.
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// The codings `params.compression` asks for, if it asks; one this
/// plugin cannot apply (`br`, `zstd`) fails by name.
pub fn of_params<'js>(ctx: &Ctx<'js>, p: &Object<'js>) -> rquickjs::Result<Option<Vec<Coding>>> {
    let given: Value = p.get("compression")?;
    if given.is_undefined() || given.is_null() {
        return Ok(None);
    }
    let text = Coerced::<String>::from_js(ctx, given)?.0;
    let mut codings = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        codings.push(match name.to_ascii_lowercase().as_str() {
            "gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            _ => {
                let m = format!(
                    "k6/http: params.compression `{name}` is not supported (gzip, deflate, or both as 'gzip, deflate')"
                );
                return Err(Exception::throw_message(ctx, &m));
            }
        });
    }
    Ok((!codings.is_empty()).then_some(codings))
}

/// `Content-Encoding` for `codings`.
pub fn header(codings: &[Coding]) -> String {
    codings
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `body` with each coding applied in turn.
pub fn encode(body: Vec<u8>, codings: &[Coding]) -> Vec<u8> {
    codings.iter().fold(body, |bytes, c| {
        let level = flate2::Compression::default();
        // Writing into a Vec cannot fail.
        match c {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                let _ = e.write_all(&bytes);
                e.finish().unwrap_or_default()
            }
            Coding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                let _ = e.write_all(&bytes);
                e.finish().unwrap_or_default()
            }
        }
    })
}
