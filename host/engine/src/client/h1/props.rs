//! Property tests of the response parser and framing: whatever a server
//! sends, an exchange ends with a response or an error (never a panic or
//! a hang), and well-formed bodies come back whole however they are cut.

use super::*;
use proptest::prelude::*;

/// A chunked encoding of `body`, cut at `cuts`, with `ext` as each
/// chunk's extension.
fn chunked(body: &[u8], cuts: &[usize], ext: &str) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (*cuts.next().unwrap_or(&1)).clamp(1, rest.len());
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\nx-trailer: t\r\n\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_end_in_a_response_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = exchange_in_memory(&bytes, false, 1 << 20);
    }

    #[test]
    fn a_head_with_any_header_lines_ends_in_a_response_or_an_error(
        status in 0u16..1000,
        lines in proptest::collection::vec("[ -~]{0,40}", 0..20),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = format!("HTTP/1.1 {status} X\r\n").into_bytes();
        for l in &lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&tail);
        let _ = exchange_in_memory(&bytes, false, 1 << 20);
    }

    #[test]
    fn chunked_bodies_come_back_whole(
        body in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(1usize..700, 1..8),
        ext in "(;[a-z]{1,8}(=[a-z0-9]{0,8})?){0,3}",
    ) {
        let got = exchange_in_memory(&chunked(&body, &cuts, &ext), false, 1 << 20);
        prop_assert_eq!(got, Ok((200, body.len() as u64, true)));
    }

    #[test]
    fn a_length_delimited_body_is_read_exactly(body in proptest::collection::vec(any::<u8>(), 0..3000), extra in 0usize..3) {
        let mut bytes = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(&body);
        bytes.extend(std::iter::repeat_n(b'!', extra));
        // Bytes past the body put the stream out of step: not reused.
        prop_assert_eq!(exchange_in_memory(&bytes, false, 1 << 20), Ok((200, body.len() as u64, extra == 0)));
    }

    #[test]
    fn a_body_past_the_cap_fails_on_every_framing(len in 101u64..5000, framing in 0u8..3) {
        let body = vec![b'x'; len as usize];
        let bytes = match framing {
            0 => [format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").into_bytes(), body].concat(),
            1 => chunked(&body, &[37], ""),
            _ => [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec(), body].concat(),
        };
        prop_assert_eq!(exchange_in_memory(&bytes, false, 100), Err("TooLarge(100)".to_string()));
    }

    #[test]
    fn content_length_is_digits_only(value in "[ +\\-0-9a-fx]{0,24}") {
        let digits = value.trim_ascii();
        let expect = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten();
        prop_assert_eq!(content_length(value.as_bytes()), expect);
    }
}
