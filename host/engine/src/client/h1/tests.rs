//! The framing rules against a real socket: a loopback server writes a
//! scripted response, in as many pieces as the case needs.

use super::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n";
const ALL: Keep = Keep {
    headers: true,
    body: true,
    max_body: 1 << 20,
};

/// A server that, for each request it reads, writes the next script's
/// pieces one by one, then closes after the last script.
/// Reads a request's head byte by byte; false if the client closed first.
async fn read_head(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    let mut seen = Vec::new();
    while !seen.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap() == 0 {
            return false;
        }
        seen.push(b[0]);
    }
    true
}

async fn server(scripts: Vec<Vec<&'static [u8]>>) -> H1 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        for pieces in scripts {
            if !read_head(&mut s).await {
                return;
            }
            for piece in pieces {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        }
    });
    H1::new(Box::new(TcpStream::connect(addr).await.unwrap()))
}

fn body(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[tokio::test]
async fn a_length_delimited_body_arrives_in_pieces_and_the_connection_is_kept() {
    let mut c = server(vec![
        vec![
            b"HTTP/1.1 200 OK\r\nConte",
            b"nt-Length: 5\r\nX-A: 1\r\n\r\nhe",
            b"llo",
        ],
        vec![b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"],
    ])
    .await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!((r.status, body(&r), r.body_len), (200, "hello", 5));
    assert!(r.headers.contains(&("x-a".into(), "1".into())));
    assert!(c.reusable());
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!((r.status, body(&r)), (201, "ok"));
}

#[tokio::test]
async fn a_chunked_body_with_extensions_and_trailers_is_decoded() {
    let response: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5;ext=1\r\nhel",
        b"lo\r\n6\r\n world\r",
        b"\n0\r\nX-Trailer: t\r\n\r\n",
    ];
    let mut c = server(vec![response.clone(), response]).await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!((body(&r), r.body_len), ("hello world", 11));
    assert!(c.reusable(), "the trailers were read to their end");
    let discard = Keep {
        headers: false,
        body: false,
        max_body: 1 << 20,
    };
    let r = c.exchange(GET, false, discard).await.unwrap();
    assert_eq!((r.body.len(), r.body_len, r.headers.len()), (0, 11, 0));
}

#[tokio::test]
async fn interim_responses_are_skipped_and_head_has_no_body() {
    let mut c = server(vec![
        vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"],
        vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"],
    ])
    .await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!((r.status, body(&r)), (200, "abc"));
    let r = c.exchange(HEAD, true, ALL).await.unwrap();
    assert_eq!((r.status, r.body_len), (200, 0));
    assert!(c.reusable());
}

#[tokio::test]
async fn a_body_without_length_runs_to_close_and_ends_the_connection() {
    let mut c = server(vec![vec![b"HTTP/1.1 200 OK\r\n\r\nuntil", b" close"]]).await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!(body(&r), "until close");
    assert!(!c.reusable());
}

#[tokio::test]
async fn connection_close_and_http_1_0_end_the_connection() {
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
    ]])
    .await;
    c.exchange(GET, false, ALL).await.unwrap();
    assert!(!c.reusable());
    let mut c = server(vec![vec![b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"]]).await;
    c.exchange(GET, false, ALL).await.unwrap();
    assert!(!c.reusable());
}

#[tokio::test]
async fn a_close_before_any_answer_is_unanswered_and_mid_body_is_broken() {
    let mut c = server(vec![vec![]]).await;
    let e = c.exchange(GET, false, ALL).await.err().unwrap();
    assert!(matches!(e, Failure::Unanswered(_)), "{e:?}");
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc",
    ]])
    .await;
    match c.exchange(GET, false, ALL).await.err().unwrap() {
        Failure::Broken(m) => assert!(m.contains("6 body bytes"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert!(!c.reusable());
}

#[tokio::test]
async fn malformed_responses_are_refused() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP\r\n\r\n",
    ] {
        let mut c = server(vec![vec![bad]]).await;
        let e = c.exchange(GET, false, ALL).await.err().unwrap();
        assert!(matches!(e, Failure::Protocol(_)), "{e:?}");
    }
}

#[test]
fn heads_are_encoded_with_host_and_length_and_bad_names_refused() {
    let mut out = Vec::new();
    let headers = vec![("X-Id".to_string(), "7".to_string())];
    encode_head(&mut out, "POST", "/p?q=1", "h:8080", &headers, 0).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "POST /p?q=1 HTTP/1.1\r\nx-id: 7\r\nhost: h:8080\r\ncontent-length: 0\r\n\r\n"
    );
    let own_host = vec![("Host".to_string(), "other".to_string())];
    encode_head(&mut out, "GET", "/", "h", &own_host, 0).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "GET / HTTP/1.1\r\nhost: other\r\n\r\n"
    );
    let bad = vec![("bad name".to_string(), "v".to_string())];
    assert!(encode_head(&mut out, "GET", "/", "h", &bad, 0).is_err());
    let bad = vec![("x".to_string(), "a\r\nb".to_string())];
    assert!(encode_head(&mut out, "GET", "/", "h", &bad, 0).is_err());
}

#[tokio::test]
async fn a_body_past_the_cap_fails_as_too_large_however_it_is_framed() {
    let small = Keep {
        headers: false,
        body: true,
        max_body: 4,
    };
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    ]])
    .await;
    assert!(matches!(
        c.exchange(GET, false, small).await,
        Err(Failure::TooLarge(4))
    ));
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
    ]])
    .await;
    assert!(matches!(
        c.exchange(GET, false, small).await,
        Err(Failure::TooLarge(4))
    ));
    let mut c = server(vec![vec![b"HTTP/1.1 200 OK\r\n\r\n", b"abc", b"def"]]).await;
    assert!(matches!(
        c.exchange(GET, false, small).await,
        Err(Failure::TooLarge(4))
    ));
    // At the cap exactly is fine.
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcd",
    ]])
    .await;
    assert_eq!(body(&c.exchange(GET, false, small).await.unwrap()), "abcd");
}

#[tokio::test]
async fn redirects_cookies_and_encodings_are_noted_even_when_headers_are_discarded() {
    let discard = Keep {
        headers: false,
        body: false,
        max_body: 1 << 20,
    };
    let mut c = server(vec![vec![
        b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: a=1; Path=/\r\nset-cookie: b=2\r\nContent-Encoding: gzip\r\ncontent-length: 0\r\n\r\n",
    ]])
    .await;
    let r = c.exchange(GET, false, discard).await.unwrap();
    assert!(r.headers.is_empty());
    assert_eq!(r.meta.location.as_deref(), Some("/next"));
    assert_eq!(r.meta.set_cookie, ["a=1; Path=/", "b=2"]);
    assert_eq!(r.meta.content_encoding.as_deref(), Some("gzip"));
}

/// The message of a response refused for breaking the protocol's rules.
fn broken(r: Result<Response, Failure>) -> String {
    match r {
        Err(Failure::Protocol(m)) => m,
        Err(e) => panic!("not a protocol error: {e:?}"),
        Ok(r) => panic!("answered {}", r.status),
    }
}

#[tokio::test]
async fn content_length_takes_digits_only() {
    for bad in [&b"+5"[..], b"-5", b"5 5", b"0x5", b""] {
        let head = [
            &b"HTTP/1.1 200 OK\r\ncontent-length: "[..],
            bad,
            b"\r\n\r\nhello",
        ]
        .concat();
        let head: &'static [u8] = Box::leak(head.into_boxed_slice());
        let mut c = server(vec![vec![head]]).await;
        let m = broken(c.exchange(GET, false, ALL).await);
        assert!(m.contains("content-length"), "{m}");
    }
}

#[tokio::test]
async fn transfer_encoding_wins_over_content_length_and_retires_the_connection() {
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]])
    .await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!(body(&r), "abc");
    assert!(!c.reusable(), "a response with both may be smuggling");
    // A coding that does not end in chunked runs to the close.
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 2\r\n\r\nabcdef",
    ]])
    .await;
    let r = c.exchange(GET, false, ALL).await.unwrap();
    assert_eq!(body(&r), "abcdef");
    assert!(!c.reusable());
}

#[tokio::test]
async fn a_flood_of_interim_responses_is_refused() {
    let flood: &'static [u8] = Box::leak(
        b"HTTP/1.1 100 Continue\r\n\r\n"
            .repeat(MAX_INTERIM + 1)
            .into_boxed_slice(),
    );
    let mut c = server(vec![vec![
        flood,
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    ]])
    .await;
    let m = broken(c.exchange(GET, false, ALL).await);
    assert!(m.contains("interim"), "{m}");
    // As many as the limit are skipped.
    let some: &'static [u8] = Box::leak(
        b"HTTP/1.1 100 Continue\r\n\r\n"
            .repeat(MAX_INTERIM)
            .into_boxed_slice(),
    );
    let mut c = server(vec![vec![
        some,
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    ]])
    .await;
    assert_eq!(c.exchange(GET, false, ALL).await.unwrap().status, 200);
}

#[tokio::test]
async fn an_endless_chunk_extension_is_refused() {
    let ext: &'static [u8] = Box::leak(
        [&b"5;x="[..], &vec![b'a'; 3 * MAX_CHUNK_LINE]]
            .concat()
            .into_boxed_slice(),
    );
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        ext,
    ]])
    .await;
    let m = broken(c.exchange(GET, false, ALL).await);
    assert!(m.contains("chunk-size line"), "{m}");
}

#[tokio::test]
async fn trailers_past_the_head_limit_are_refused_however_short_each_line() {
    let lines: &'static [u8] = Box::leak(b"x-t: t\r\n".repeat(2 * MAX_HEAD / 8).into_boxed_slice());
    let mut c = server(vec![vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n",
        lines,
    ]])
    .await;
    let m = broken(c.exchange(GET, false, ALL).await);
    assert!(m.contains("trailers are too large"), "{m}");
}

#[tokio::test]
async fn a_connection_the_server_dropped_while_idle_is_noticed_before_reuse() {
    let mut c = server(vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]]).await;
    c.exchange(GET, false, ALL).await.unwrap();
    assert!(c.reusable());
    assert!(!c.dropped_while_idle(), "not looked at while freshly used");
    // The script ends, so the server closes; the check runs after a second idle.
    tokio::time::sleep(IDLE_CHECK + std::time::Duration::from_millis(200)).await;
    assert!(c.dropped_while_idle());
    assert!(!c.reusable());
}

/// Plays a server that answers 413 once it has the request's head, reads
/// nothing more, and holds the connection open until `done`.
async fn answer_after_the_head(
    mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    if !read_head(&mut s).await {
        return;
    }
    s.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!")
        .await
        .unwrap();
    let _ = done.await;
}

/// POSTs `len` bytes to a server playing [`answer_after_the_head`]: the
/// answer is the response, at once, and the connection is retired.
async fn posted_into_an_early_answer(
    mut c: H1,
    len: usize,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let mut request =
        format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n").into_bytes();
    request.resize(request.len() + len, b'x');
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        c.exchange(&request, false, ALL),
    )
    .await
    .expect("the early answer ends the write instead of waiting for the timeout")
    .unwrap();
    assert_eq!((r.status, body(&r)), (413, "big!"));
    assert!(!c.reusable(), "the rest of the request was never sent");
    let _ = done.send(());
}

#[tokio::test]
async fn an_answer_while_a_large_body_is_written_ends_the_write_and_retires_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        answer_after_the_head(s, done_rx).await;
    });
    let c = H1::new(Box::new(TcpStream::connect(addr).await.unwrap()));
    posted_into_an_early_answer(c, 32 << 20, done_tx).await;
}

/// A request small enough to have been written blindly before, on a
/// connection that takes only 4 KiB.
#[tokio::test]
async fn an_answer_while_a_small_body_waits_for_room_ends_the_write_too() {
    let (client, server) = tokio::io::duplex(4 << 10);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(answer_after_the_head(server, done_rx));
    posted_into_an_early_answer(H1::new(Box::new(client)), 64 << 10, done_tx).await;
}
