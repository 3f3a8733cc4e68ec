//! Bodies sent with `Content-Encoding`, decoded for the guest. The decoded
//! size is capped like the wire size, so a small compressed body cannot
//! expand into the host's memory (a compression bomb stops at the cap).

use std::io::Read;

pub enum DecodeError {
    TooLarge(u64),
    Malformed(String),
}

/// Decodes `body` as `encoding` says (a list, applied in order, so undone
/// in reverse); `None` when there is nothing to undo (identity, or an
/// encoding this host does not know, which is passed on as is).
pub fn decode(encoding: &str, body: &[u8], max: u64) -> Result<Option<Vec<u8>>, DecodeError> {
    let codings: Vec<String> = encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() || !codings.iter().all(|c| known(c)) {
        return Ok(None);
    }
    let mut bytes = body.to_vec();
    for coding in codings.iter().rev() {
        bytes = decode_one(coding, &bytes, max)?;
    }
    Ok(Some(bytes))
}

fn known(coding: &str) -> bool {
    matches!(coding, "gzip" | "x-gzip" | "deflate" | "br" | "zstd")
}

fn decode_one(coding: &str, body: &[u8], max: u64) -> Result<Vec<u8>, DecodeError> {
    match coding {
        "gzip" | "x-gzip" => read_capped(flate2::read::MultiGzDecoder::new(body), coding, max),
        // RFC 9110 says zlib-wrapped; some servers send raw deflate.
        "deflate" => {
            read_capped(flate2::read::ZlibDecoder::new(body), coding, max).or_else(|e| match e {
                DecodeError::Malformed(_) => {
                    read_capped(flate2::read::DeflateDecoder::new(body), coding, max)
                }
                e => Err(e),
            })
        }
        "br" => read_capped(
            brotli_decompressor::Decompressor::new(body, 4096),
            coding,
            max,
        ),
        "zstd" => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(body)
                .map_err(|e| DecodeError::Malformed(format!("a malformed zstd body: {e}")))?;
            read_capped(decoder, coding, max)
        }
        _ => unreachable!("only known codings get here"),
    }
}

fn read_capped(reader: impl Read, coding: &str, max: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Malformed(format!("a malformed {coding} body: {e}")))?;
    if out.len() as u64 > max {
        return Err(DecodeError::TooLarge(max));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn ok(encoding: &str, body: &[u8], max: u64) -> Option<Vec<u8>> {
        decode(encoding, body, max).unwrap_or_else(|_| panic!("{encoding} failed"))
    }

    #[test]
    fn gzip_and_both_deflates_decode_and_identity_passes() {
        assert_eq!(ok("gzip", &gzip(b"hello"), 100).unwrap(), b"hello");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib").unwrap();
        assert_eq!(ok("deflate", &z.finish().unwrap(), 100).unwrap(), b"zlib");
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"raw").unwrap();
        assert_eq!(ok("deflate", &raw.finish().unwrap(), 100).unwrap(), b"raw");
        assert_eq!(ok("identity", b"x", 100), None);
        assert_eq!(
            ok("compress", b"x", 100),
            None,
            "unknown codings pass through"
        );
        // Applied gzip then gzip: undone twice.
        assert_eq!(ok("gzip, gzip", &gzip(&gzip(b"two")), 100).unwrap(), b"two");
    }

    #[test]
    fn zstd_decodes() {
        let packed = ruzstd::encoding::compress_to_vec(
            &b"zstd zstd zstd"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(ok("zstd", &packed, 100).unwrap(), b"zstd zstd zstd");
        assert!(matches!(
            decode("zstd", &packed, 4),
            Err(DecodeError::TooLarge(4))
        ));
    }

    #[test]
    fn a_compression_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20 << 10, "10 MiB of zeros packs small");
        assert!(matches!(
            decode("gzip", &bomb, 1 << 20),
            Err(DecodeError::TooLarge(_))
        ));
        assert!(matches!(
            decode("gzip", b"not gzip", 100),
            Err(DecodeError::Malformed(_))
        ));
    }
}
