//! `k6/crypto`: hashes, HMACs and random bytes, natively (a hash in
//! interpreted JavaScript would cost more than the request it signs).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rquickjs::{ArrayBuffer, Ctx, Exception, Value};

const ALGORITHMS: &str = "md5, sha1, sha256, sha384, sha512, sha512_224, sha512_256";

/// `data`'s parts as bytes: strings as UTF-8, ArrayBuffers and typed
/// arrays as they are.
fn bytes_of<'js>(ctx: &Ctx<'js>, parts: &[Value<'js>]) -> rquickjs::Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in parts {
        out.extend(crate::binary::bytes_of(ctx, part, "k6/crypto: data")?);
    }
    Ok(out)
}

fn digest_of(algorithm: &str, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match algorithm {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        "sha512_224" => sha2::Sha512_224::digest(data).to_vec(),
        "sha512_256" => sha2::Sha512_256::digest(data).to_vec(),
        _ => return None,
    })
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m.finalize().into_bytes().to_vec())
}

fn hmac_of(algorithm: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        "md5" => mac::<Hmac<md5::Md5>>(key, data),
        "sha1" => mac::<Hmac<sha1::Sha1>>(key, data),
        "sha256" => mac::<Hmac<sha2::Sha256>>(key, data),
        "sha384" => mac::<Hmac<sha2::Sha384>>(key, data),
        "sha512" => mac::<Hmac<sha2::Sha512>>(key, data),
        "sha512_224" => mac::<Hmac<sha2::Sha512_224>>(key, data),
        "sha512_256" => mac::<Hmac<sha2::Sha512_256>>(key, data),
        _ => None,
    }
}

/// A digest in k6's output encodings; `binary` is an ArrayBuffer.
fn encoded<'js>(ctx: &Ctx<'js>, digest: Vec<u8>, encoding: &str) -> rquickjs::Result<Value<'js>> {
    use base64::engine::general_purpose as gp;
    let text = match encoding {
        "hex" => digest.iter().map(|b| format!("{b:02x}")).collect(),
        "base64" => gp::STANDARD.encode(&digest),
        "base64url" => gp::URL_SAFE.encode(&digest),
        "base64rawurl" => gp::URL_SAFE_NO_PAD.encode(&digest),
        "binary" => return crate::binary::array_buffer(ctx, digest),
        other => {
            return Err(Exception::throw_type(
                ctx,
                &format!(
                    "k6/crypto: `{other}` is not an output encoding (hex, base64, base64url, base64rawurl, binary)"
                ),
            ));
        }
    };
    rquickjs::String::from_str(ctx.clone(), &text).map(|s| s.into_value())
}

fn unknown(ctx: &Ctx<'_>, algorithm: &str) -> rquickjs::Error {
    Exception::throw_type(
        ctx,
        &format!("k6/crypto: `{algorithm}` is not supported (supported: {ALGORITHMS})"),
    )
}

/// `hash(algorithm, [data...], encoding)`.
pub fn hash<'js>(
    ctx: Ctx<'js>,
    algorithm: String,
    parts: Vec<Value<'js>>,
    encoding: String,
) -> rquickjs::Result<Value<'js>> {
    let data = bytes_of(&ctx, &parts)?;
    let digest = digest_of(&algorithm, &data).ok_or_else(|| unknown(&ctx, &algorithm))?;
    encoded(&ctx, digest, &encoding)
}

/// `hmac(algorithm, secret, [data...], encoding)`.
pub fn hmac<'js>(
    ctx: Ctx<'js>,
    algorithm: String,
    secret: Value<'js>,
    parts: Vec<Value<'js>>,
    encoding: String,
) -> rquickjs::Result<Value<'js>> {
    let key = bytes_of(&ctx, &[secret])?;
    let data = bytes_of(&ctx, &parts)?;
    let digest = hmac_of(&algorithm, &key, &data).ok_or_else(|| unknown(&ctx, &algorithm))?;
    encoded(&ctx, digest, &encoding)
}

/// `randomBytes(n)`: an ArrayBuffer of `n` random bytes.
pub fn random_bytes<'js>(ctx: Ctx<'js>, n: f64) -> rquickjs::Result<ArrayBuffer<'js>> {
    if !(0.0..=1_048_576.0).contains(&n) {
        return Err(Exception::throw_range(
            &ctx,
            "k6/crypto: randomBytes takes 0 to 1048576 bytes",
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    while out.len() < n as usize {
        out.extend_from_slice(&loadtest_sdk::vu::random().to_le_bytes());
    }
    out.truncate(n as usize);
    crate::intrinsics::typed_arrays(&ctx)?;
    ArrayBuffer::new(ctx, out)
}
