//! HTTP/1.1 on one connection, for the hot path.
//!
//! hyper's client connection hands each request to its connection task
//! through a channel, answers through another, and builds a `HeaderMap`
//! for every response. A load generator sends one request at a time per
//! connection and mostly ignores the response headers, so this side does
//! what wrk does instead: the request head is encoded once and written as
//! is, and the response is parsed in place with `httparse` (hyper's own
//! parser) into a stack array, allocating only what the guest asked to
//! keep. The body framing follows RFC 9112 section 6.3.

use super::Incoming as Response;
use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A byte stream: TCP, or TLS over TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// More headers than this in one response is refused as malformed.
const MAX_HEADERS: usize = 128;
/// A response head larger than this is refused as malformed.
const MAX_HEAD: usize = 64 << 10;
const READ_CHUNK: usize = 16 << 10;
/// More interim (1xx) answers than this to one request is refused.
const MAX_INTERIM: usize = 16;
/// A chunk-size line (with its extensions) longer than this is refused:
/// parsing a partial one again after every read would be quadratic.
const MAX_CHUNK_LINE: usize = 4 << 10;

/// Why an exchange failed. `Unanswered` means not one byte of a response
/// arrived: on a reused connection that is the server having closed it
/// while idle, and the request can be sent again on a fresh one.
#[derive(Debug)]
pub(super) enum Failure {
    /// The request could not be written, and nothing came back.
    Unsent(String),
    Unanswered(String),
    Broken(String),
    /// The response broke HTTP/1.1's rules or one of the limits a sound
    /// server never reaches (head size, interim answers, chunk lines).
    Protocol(String),
    /// The body passed the size cap (the limit, in bytes).
    TooLarge(u64),
}

/// What the guest wants kept of a response.
#[derive(Clone, Copy)]
pub(super) struct Keep {
    pub headers: bool,
    pub body: bool,
    /// Largest body read, kept or not: past it the exchange fails.
    pub max_body: u64,
}

/// How the response body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

pub(super) struct H1 {
    io: Box<dyn Io>,
    buf: BytesMut,
    /// Cleared by a response that ends the connection, or a broken one.
    reusable: bool,
    /// When the last exchange ended.
    idle_since: Instant,
}

/// A connection idle this long is looked at before it is reused.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl H1 {
    pub fn new(io: Box<dyn Io>) -> H1 {
        H1 {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            reusable: true,
            idle_since: Instant::now(),
        }
    }

    /// Whether the server closed the connection (or wrote unasked) while
    /// it sat idle. Servers drop idle keep-alive connections; finding out
    /// before writing keeps a request from going into a dead connection,
    /// where an unanswered POST could not be sent again. One non-blocking
    /// read, and only after a second of idleness.
    pub fn dropped_while_idle(&mut self) -> bool {
        use futures_util::FutureExt;
        if self.idle_since.elapsed() < IDLE_CHECK {
            return false;
        }
        self.buf.reserve(1);
        match self.io.read_buf(&mut self.buf).now_or_never() {
            None => false,
            Some(_) => {
                self.reusable = false;
                true
            }
        }
    }

    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Writes `request` (a whole encoded request) and reads the response.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_only: bool,
        keep: Keep,
    ) -> Result<Response, Failure> {
        self.reusable = false;
        let start = Instant::now();
        let mut sent = start;
        let written = match self.write_without_waiting(request) {
            Ok(n) if n == request.len() => Ok(true),
            Ok(n) => self.write_watching(&request[n..]).await,
            Err(e) => Err(e),
        };
        let (mut response, framing, mut reusable) = match written {
            Ok(true) => {
                sent = Instant::now();
                self.read_head(head_only, keep).await?
            }
            // An answer came while the request was still being written:
            // the server will read no more of it.
            Ok(false) => {
                sent = Instant::now();
                let (response, framing, _) = self.read_head(head_only, keep).await?;
                (response, framing, false)
            }
            // A server may answer before it has read the whole request (a
            // 413, then close): that answer is the response, and the
            // request is not sent again.
            Err(e) => match self.read_head(head_only, keep).await {
                Ok((response, framing, _)) => (response, framing, false),
                Err(_) => return Err(Failure::Unsent(format!("writing the request: {e}"))),
            },
        };
        let head = Instant::now();
        let framing = if head_only { Framing::None } else { framing };
        let (body, len) = self.read_body(framing, keep).await?;
        let end = Instant::now();
        response.body = body;
        response.body_len = len;
        response.timings.sending = sent - start;
        response.timings.waiting = head - sent;
        response.timings.receiving = end - head;
        // Bytes after the response were not asked for: the stream is out
        // of step, so it is not used again.
        reusable &= self.buf.is_empty();
        self.reusable = reusable;
        self.idle_since = end;
        Ok(response)
    }

    /// Writes what the connection takes at once, and says how much. Most
    /// requests go whole; the rest of one that does not is written while
    /// watching for an early answer. (A write that is not ready writes
    /// nothing, so giving it up loses no bytes.)
    fn write_without_waiting(&mut self, request: &[u8]) -> io::Result<usize> {
        use futures_util::FutureExt;
        let mut n = 0;
        while n < request.len() {
            match self.io.write(&request[n..]).now_or_never() {
                Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Some(Ok(k)) => n += k,
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(n)
    }

    /// Writes the rest of a request while listening: a server that answers
    /// before it has read it all (a 413) and then stops reading would
    /// otherwise leave the write waiting until the request's timeout.
    /// `Ok(false)` means an answer began before the write ended.
    async fn write_watching(&mut self, request: &[u8]) -> io::Result<bool> {
        let H1 { io, buf, .. } = self;
        let (mut rd, mut wr) = tokio::io::split(io);
        buf.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            written = wr.write_all(request) => written.map(|()| true),
            read = rd.read_buf(buf) => match read {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the server closed the connection while the request was being written",
                )),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// Reads more into the buffer; 0 means the peer closed.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        self.io.read_buf(&mut self.buf).await
    }

    async fn read_head(
        &mut self,
        head_only: bool,
        keep: Keep,
    ) -> Result<(Response, Framing, bool), Failure> {
        let mut answered = false;
        let mut interim = 0;
        loop {
            if !self.buf.is_empty() {
                answered = true;
                if let Some((head, len)) = parse_head(&self.buf, keep.headers, head_only)? {
                    self.buf.advance(len);
                    // 1xx (but 101) is an interim answer: the real one follows.
                    if (100..200).contains(&head.0.status) && head.0.status != 101 {
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(Failure::Protocol(format!(
                                "more than {MAX_INTERIM} interim (1xx) responses"
                            )));
                        }
                        continue;
                    }
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(Failure::Protocol(format!(
                        "the response head is larger than {} KiB",
                        MAX_HEAD >> 10
                    )));
                }
            }
            match self.fill().await {
                Ok(0) if answered => {
                    return Err(Failure::Broken(
                        "the server closed the connection in the middle of the response head"
                            .into(),
                    ));
                }
                Ok(0) => {
                    return Err(Failure::Unanswered(
                        "the server closed the connection before responding".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if answered => return Err(Failure::Broken(e.to_string())),
                Err(e) => return Err(Failure::Unanswered(e.to_string())),
            }
        }
    }

    async fn read_body(&mut self, framing: Framing, keep: Keep) -> Result<(Bytes, u64), Failure> {
        let mut out = keep.body.then(BytesMut::new);
        let max = keep.max_body;
        let len = match framing {
            Framing::None => 0,
            Framing::Length(n) if n > max => return Err(Failure::TooLarge(max)),
            Framing::Length(n) => {
                self.take(n, &mut out).await?;
                n
            }
            Framing::Chunked => self.read_chunked(&mut out, max).await?,
            Framing::UntilClose => self.read_to_close(&mut out, max).await?,
        };
        Ok((out.map_or_else(Bytes::new, BytesMut::freeze), len))
    }

    /// Moves `n` body bytes out of the stream, into `out` when kept.
    async fn take(&mut self, mut n: u64, out: &mut Option<BytesMut>) -> Result<(), Failure> {
        while n > 0 {
            if self.buf.is_empty() && self.fill_body().await? == 0 {
                return Err(Failure::Broken(format!(
                    "the server closed the connection with {n} body bytes still to come"
                )));
            }
            let step = (self.buf.len() as u64).min(n) as usize;
            match out {
                Some(o) if o.is_empty() => *o = self.buf.split_to(step),
                Some(o) => {
                    o.extend_from_slice(&self.buf[..step]);
                    self.buf.advance(step);
                }
                None => self.buf.advance(step),
            }
            n -= step as u64;
        }
        Ok(())
    }

    async fn fill_body(&mut self) -> Result<usize, Failure> {
        self.fill()
            .await
            .map_err(|e| Failure::Broken(format!("reading the response body: {e}")))
    }

    async fn read_chunked(&mut self, out: &mut Option<BytesMut>, max: u64) -> Result<u64, Failure> {
        let mut total = 0u64;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() > MAX_CHUNK_LINE => {
                        return Err(Failure::Protocol(format!(
                            "a chunk-size line longer than {} KiB",
                            MAX_CHUNK_LINE >> 10
                        )));
                    }
                    Ok(httparse::Status::Partial) => self.more_chunked().await?,
                    Err(_) => return Err(Failure::Protocol("a malformed chunk size".into())),
                }
            };
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(total);
            }
            total += size;
            if total > max {
                return Err(Failure::TooLarge(max));
            }
            self.take(size, out).await?;
            self.expect_crlf().await?;
        }
    }

    async fn more_chunked(&mut self) -> Result<(), Failure> {
        match self.fill_body().await? {
            0 => Err(Failure::Broken(
                "the server closed the connection in the middle of a chunked body".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn expect_crlf(&mut self) -> Result<(), Failure> {
        while self.buf.len() < 2 {
            self.more_chunked().await?;
        }
        if &self.buf[..2] != b"\r\n" {
            return Err(Failure::Protocol(
                "a chunk is longer than its size says".into(),
            ));
        }
        self.buf.advance(2);
        Ok(())
    }

    /// Trailer fields are read and dropped, up to the empty line; all of
    /// them together may be as large as a response head.
    async fn skip_trailers(&mut self) -> Result<(), Failure> {
        let mut seen = 0;
        loop {
            let line = self.buf.windows(2).position(|w| w == b"\r\n");
            if seen + line.unwrap_or(self.buf.len()) > MAX_HEAD {
                return Err(Failure::Protocol(format!(
                    "the chunked trailers are too large (over {} KiB)",
                    MAX_HEAD >> 10
                )));
            }
            match line {
                Some(0) => {
                    self.buf.advance(2);
                    return Ok(());
                }
                Some(i) => {
                    self.buf.advance(i + 2);
                    seen += i + 2;
                }
                None => self.more_chunked().await?,
            }
        }
    }

    async fn read_to_close(
        &mut self,
        out: &mut Option<BytesMut>,
        max: u64,
    ) -> Result<u64, Failure> {
        let mut total = 0u64;
        loop {
            total += self.buf.len() as u64;
            if total > max {
                return Err(Failure::TooLarge(max));
            }
            if let Some(o) = out {
                o.extend_from_slice(&self.buf);
            }
            self.buf.clear();
            if self.fill_body().await? == 0 {
                return Ok(total);
            }
        }
    }
}

type Head = (Response, Framing, bool);

/// Parses a response head at the start of `buf`: `None` while incomplete,
/// else the response, its framing, whether the connection stays open, and
/// the head's length.
fn parse_head(
    buf: &[u8],
    keep_headers: bool,
    head_only: bool,
) -> Result<Option<(Head, usize)>, Failure> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Protocol(format!("a malformed response head: {e}"))),
    };
    let status = parsed.code.unwrap_or(0);
    let mut reusable = parsed.version == Some(1);
    let (mut length, mut chunked, mut coded) = (None, false, false);
    let mut headers = Vec::new();
    let mut meta = super::Meta::default();
    for h in parsed.headers.iter() {
        meta.note(status, h.name.as_bytes(), h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value)
                .ok_or_else(|| Failure::Protocol("a malformed content-length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(Failure::Protocol(
                    "conflicting content-length headers".into(),
                ));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                reusable = false;
            } else if has_token(h.value, b"keep-alive") {
                reusable = true;
            }
        }
        if keep_headers {
            headers.push((
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            ));
        }
    }
    // RFC 9112 6.3: Transfer-Encoding wins over Content-Length, and a
    // response with both may be a smuggling attempt: it is read, and the
    // connection retired. A coding that does not end in chunked runs to
    // the close.
    if coded && length.is_some() {
        reusable = false;
    }
    let framing = if head_only || matches!(status, 100..=199 | 204 | 304) {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if coded {
        reusable = false;
        Framing::UntilClose
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        reusable = false;
        Framing::UntilClose
    };
    if status == 101 {
        reusable = false;
    }
    let response = Response {
        status,
        headers,
        body: Bytes::new(),
        body_len: 0,
        meta,
        timings: Default::default(),
        redirects: 0,
        final_url: None,
        peer: None,
    };
    Ok(Some(((response, framing, reusable), len)))
}

/// A Content-Length value: digits only (no sign, no space inside), as
/// RFC 9110 8.6 has it; `u64::from_str` would take `+5`.
fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token(value: &[u8]) -> &[u8] {
    tokens(value).last().unwrap_or_default()
}

/// Encodes a request head: request line, `Host` unless given, the guest's
/// headers (names lowercased, as hyper sends them) and a `content-length`
/// when there is a body or the method expects one. Names and values are
/// checked as hyper checks them, so a bad one is the guest's error.
pub(super) fn encode_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> Result<(), String> {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let (mut has_host, mut has_length) = (false, false);
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("`{k}` is not a valid header name"))?;
        HeaderValue::from_str(v).map_err(|_| format!("the value of header `{k}` is not valid"))?;
        has_host |= name == hyper::header::HOST;
        has_length |=
            name == hyper::header::CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING;
        put_header(out, name.as_str(), v);
    }
    if !has_host {
        put_header(out, "host", host);
    }
    if !has_length && (body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH")) {
        put_header(out, "content-length", &body_len.to_string());
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn put_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;

/// One exchange with a peer that answers `response` and closes, in
/// memory: what fuzzing and property tests drive the parser and the
/// framing with. `Ok` holds the status, the body length and whether the
/// connection would be reused.
#[doc(hidden)]
pub fn exchange_in_memory(
    response: &[u8],
    head_only: bool,
    max_body: u64,
) -> Result<(u16, u64, bool), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, mut server) = tokio::io::duplex(64 << 10);
        let response = response.to_vec();
        let peer = tokio::spawn(async move {
            let _ = server.write_all(&response).await;
            let _ = server.shutdown().await;
            // Drain the request so the client's write never waits.
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink).await;
        });
        let mut h1 = H1::new(Box::new(client));
        let keep = Keep {
            headers: true,
            body: true,
            max_body,
        };
        let got = h1
            .exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", head_only, keep)
            .await
            .map(|r| (r.status, r.body_len, h1.reusable()))
            .map_err(|f| format!("{f:?}"));
        drop(h1);
        let _ = peer.await;
        got
    })
}
