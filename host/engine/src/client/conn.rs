//! One VU's connections, one per origin, driven inside the VU's task.
//!
//! HTTP/1.1 goes through [`super::h1`], which writes and reads the socket
//! itself. HTTP/2 goes through hyper's connection-level API, which gives a
//! request handle and a connection future; instead of spawning that future
//! as a task (two cross-task wake-ups per request), the VU polls it itself
//! while it waits for its response, so the socket wakes the VU directly.

use super::h1::{self, Failure, H1, Io, Keep};
use super::wire::{Counted, Wire};
use super::{Client, Exchange, Incoming, Outgoing, Peer, RequestError, Reuse, error_chain};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::client::conn::http2;
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::Sleep;

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// Requests prepared and kept for reuse per VU; a scenario mostly repeats
/// a handful of requests.
const PREPARED: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

enum Link {
    H1(H1),
    H2 {
        sender: http2::SendRequest<Full<Bytes>>,
        /// The connection's I/O; `None` once it has ended.
        driver: Option<Driver>,
    },
}

struct Conn {
    origin: Origin,
    link: Link,
    /// How long opening it took: TCP connect, then TLS (and the HTTP/2
    /// handshake over TLS). Reported with the first request only.
    connecting: Duration,
    tls: Duration,
    peer: Peer,
}

impl Conn {
    fn dropped_while_idle(&mut self) -> bool {
        match &mut self.link {
            Link::H1(c) => c.dropped_while_idle(),
            Link::H2 { .. } => false,
        }
    }

    fn usable(&self) -> bool {
        match &self.link {
            Link::H1(c) => c.reusable(),
            Link::H2 { sender, driver } => driver.is_some() && !sender.is_closed(),
        }
    }
}

/// A request resolved and encoded once, kept while the guest repeats it:
/// resolving the URL and encoding the head cost more than the rest of the
/// host's work per request.
struct Prepared {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body_len: usize,
    verb: Method,
    uri: Uri,
    origin: Origin,
    /// The HTTP/1.1 request head, ready to write.
    h1: Vec<u8>,
}

impl Prepared {
    fn matches(&self, req: &Outgoing, body_len: usize) -> bool {
        self.body_len == body_len
            && self.url == req.url
            && self.method == req.method
            && self.headers == req.headers
    }
}

/// The connections of one VU.
pub struct Connections {
    links: Links,
    deadline: Deadline,
}

struct Links {
    client: Client,
    open: Vec<Conn>,
    prepared: Vec<Prepared>,
    /// Head and body together, for one write.
    scratch: Vec<u8>,
    /// What every connection of this VU read and wrote.
    wire: Wire,
}

impl Connections {
    pub fn new(client: Client) -> Connections {
        Connections {
            links: Links {
                client,
                open: Vec::new(),
                prepared: Vec::new(),
                scratch: Vec::new(),
                wire: Wire::default(),
            },
            deadline: Deadline { sleep: None },
        }
    }

    /// Closes every connection: the next request opens a fresh one.
    pub fn close_all(&mut self) {
        self.links.open.clear();
    }

    /// Sends `req` and reads the whole response, within its timeout. A
    /// request cut off by the timeout leaves its HTTP/1.1 connection marked
    /// unusable, so the next request opens a fresh one.
    pub async fn send(&mut self, req: &Outgoing) -> Exchange {
        let start = Instant::now();
        let timeout = req.timeout.unwrap_or(self.links.client.inner.timeout);
        let result = {
            let exchange = pin!(self.links.exchange(req, start));
            self.deadline
                .within(start + timeout, exchange)
                .await
                .unwrap_or(Err(RequestError::Timeout))
        };
        // Also what went out or came in before a timeout cut it off.
        let (received, sent) = self.links.wire.take();
        Exchange {
            result,
            elapsed: start.elapsed(),
            sent,
            received,
        }
    }
}

impl Links {
    async fn exchange(&mut self, req: &Outgoing, start: Instant) -> Result<Incoming, RequestError> {
        let i = self.prepare(req)?;
        let Links {
            client,
            open,
            prepared,
            scratch,
            wire,
        } = self;
        let p = &prepared[i];
        let body = req.body.as_deref().unwrap_or_default();
        let keep = Keep {
            headers: req.keep_headers,
            body: req.keep_body,
            max_body: client.inner.max_body,
        };
        let request = Outbound { p, body, keep };
        let mut opened = checkout(client, wire, open, &p.origin).await?;
        let mut ready = Instant::now();
        let mut idx = index_of(open, &p.origin);
        let mut result = request.send_on(&mut open[idx], scratch).await;
        if opened.is_none() && resendable(&result, &p.verb) {
            // The server closed an idle keep-alive connection under us; the
            // request was not answered, so send it again on a fresh one.
            // Boxed: a second set of awaits would double every request's future.
            open.remove(idx);
            let fresh = Box::pin(request.send_fresh(client, wire, open, scratch)).await?;
            (idx, result, opened, ready) = fresh;
        }
        if let Ok(incoming) = &mut result {
            incoming.peer = Some(open[idx].peer);
            let t = &mut incoming.timings;
            let (connecting, tls) = opened.unwrap_or_default();
            t.connecting = connecting;
            t.tls = tls;
            t.blocked = ready
                .saturating_duration_since(start)
                .saturating_sub(connecting + tls);
        }
        if result.is_err() || !open[idx].usable() || client.inner.reuse == Reuse::Never {
            open.remove(idx);
        }
        result.map_err(|f| match f {
            Failure::Unsent(m) | Failure::Unanswered(m) | Failure::Broken(m) => {
                RequestError::Transport(m)
            }
            Failure::Protocol(m) => RequestError::Protocol(m),
            Failure::TooLarge(max) => RequestError::BodyTooLarge(max),
        })
    }

    /// Finds `req` among the prepared requests, or prepares it.
    fn prepare(&mut self, req: &Outgoing) -> Result<usize, RequestError> {
        let body_len = req.body.as_ref().map_or(0, Vec::len);
        if let Some(i) = self.prepared.iter().position(|p| p.matches(req, body_len)) {
            return Ok(i);
        }
        let uri = self.client.resolve(&req.url)?;
        let origin = origin_of(&uri)?;
        let verb = Method::from_bytes(req.method.as_bytes())
            .or_else(|_| Method::from_bytes(req.method.to_ascii_uppercase().as_bytes()))
            .map_err(|_| {
                RequestError::Invalid(format!("`{}` is not an HTTP method", req.method))
            })?;
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = Vec::new();
        let closing;
        let headers = if self.client.inner.reuse == Reuse::Never {
            closing = [&req.headers[..], &[("connection".into(), "close".into())]].concat();
            &closing
        } else {
            &req.headers
        };
        h1::encode_head(
            &mut head,
            verb.as_str(),
            target,
            &host_header(&origin),
            headers,
            body_len,
        )
        .map_err(RequestError::Invalid)?;
        if self.prepared.len() == PREPARED {
            self.prepared.remove(0);
        }
        self.prepared.push(Prepared {
            method: req.method.clone(),
            url: req.url.clone(),
            headers: req.headers.clone(),
            body_len,
            verb,
            uri,
            origin,
            h1: head,
        });
        Ok(self.prepared.len() - 1)
    }
}

/// A request sent again on a new connection: where that connection is,
/// the outcome, its connect and TLS times, and when it was ready.
type Fresh = (usize, Result<Incoming, Failure>, Opened, Instant);

/// A newly opened connection's TCP connect and TLS handshake times;
/// `None` when an open connection was reused.
type Opened = Option<(Duration, Duration)>;

/// One request on its way: what was prepared, the body, what to keep.
struct Outbound<'a> {
    p: &'a Prepared,
    body: &'a [u8],
    keep: Keep,
}

impl Outbound<'_> {
    /// Sends on a newly opened connection; gives its index and the outcome.
    async fn send_fresh(
        &self,
        client: &Client,
        wire: &Wire,
        open: &mut Vec<Conn>,
        scratch: &mut Vec<u8>,
    ) -> Result<Fresh, RequestError> {
        let opened = checkout(client, wire, open, &self.p.origin).await?;
        let ready = Instant::now();
        let idx = index_of(open, &self.p.origin);
        Ok((
            idx,
            self.send_on(&mut open[idx], scratch).await,
            opened,
            ready,
        ))
    }

    async fn send_on(&self, conn: &mut Conn, scratch: &mut Vec<u8>) -> Result<Incoming, Failure> {
        match &mut conn.link {
            Link::H1(c) => {
                let bytes = if self.body.is_empty() {
                    &self.p.h1[..]
                } else {
                    scratch.clear();
                    scratch.extend_from_slice(&self.p.h1);
                    scratch.extend_from_slice(self.body);
                    &scratch[..]
                };
                c.exchange(bytes, self.p.verb == Method::HEAD, self.keep)
                    .await
            }
            // Boxed: hyper's futures would otherwise make every request's
            // future several times larger, and it is copied on each call.
            Link::H2 { sender, driver } => Box::pin(self.send_h2(sender, driver)).await,
        }
    }

    async fn send_h2(
        &self,
        sender: &mut http2::SendRequest<Full<Bytes>>,
        driver: &mut Option<Driver>,
    ) -> Result<Incoming, Failure> {
        let request = h2_request(self.p, self.body).map_err(Failure::Broken)?;
        let unanswered = |e: hyper::Error| {
            if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                Failure::Unanswered(error_chain(&e))
            } else {
                Failure::Broken(error_chain(&e))
            }
        };
        let start = Instant::now();
        drive(driver, sender.ready()).await.map_err(unanswered)?;
        let sent = Instant::now();
        let response = drive(driver, sender.send_request(request))
            .await
            .map_err(unanswered)?;
        let head = Instant::now();
        let status = response.status().as_u16();
        let mut meta = super::Meta::default();
        for (k, v) in response.headers() {
            meta.note(status, k.as_str().as_bytes(), v.as_bytes());
        }
        let headers = if self.keep.headers {
            let h = response.headers().iter();
            h.map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
        } else {
            Vec::new()
        };
        let (body, body_len) = read_body(driver, response.into_body(), self.keep).await?;
        let timings = super::Timings {
            sending: sent - start,
            waiting: head - sent,
            receiving: head.elapsed(),
            ..Default::default()
        };
        Ok(Incoming {
            status,
            headers,
            body,
            body_len,
            meta,
            timings,
            redirects: 0,
            final_url: None,
            peer: None,
        })
    }
}

/// Whether a request that failed on a reused connection may go again on a
/// fresh one: when it could not even be written, or when it was written
/// but not answered and its method is idempotent (RFC 9110 9.2.2; a POST
/// the server may have acted on is not repeated behind the guest's back).
fn resendable(result: &Result<Incoming, Failure>, verb: &Method) -> bool {
    match result {
        Err(Failure::Unsent(_)) => true,
        Err(Failure::Unanswered(_)) => verb.is_idempotent(),
        _ => false,
    }
}

fn index_of(open: &[Conn], origin: &Origin) -> usize {
    open.iter()
        .position(|c| &c.origin == origin)
        .expect("a connection was just checked out")
}

/// Makes sure a usable connection to `origin` is open. `None` means it
/// was already open (and so may have been closed by the server since).
async fn checkout(
    client: &Client,
    wire: &Wire,
    open: &mut Vec<Conn>,
    origin: &Origin,
) -> Result<Opened, RequestError> {
    if let Some(i) = open.iter().position(|c| &c.origin == origin) {
        if open[i].usable() && !open[i].dropped_while_idle() {
            return Ok(None);
        }
        open.remove(i);
    }
    // Boxed: the TLS and handshake states would otherwise make every
    // request's future (moved on each await) several times larger.
    let connect = Box::pin(connect(client, wire, origin.clone()));
    let conn = tokio::time::timeout(client.inner.connect_timeout, connect)
        .await
        .map_err(|_| {
            RequestError::Connect(format!(
                "no connection to {}:{} within the connect timeout",
                origin.host, origin.port
            ))
        })??;
    let times = (conn.connecting, conn.tls);
    open.push(conn);
    Ok(Some(times))
}

/// HTTP/2 takes the authority from the absolute URI, not from `Host`.
fn h2_request(p: &Prepared, body: &[u8]) -> Result<Request<Full<Bytes>>, String> {
    let mut builder = Request::builder().method(p.verb.clone()).uri(p.uri.clone());
    for (k, v) in &p.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())
}

/// `Host` as RFC 9110 wants it: IPv6 literals in brackets, the port unless
/// it is the scheme's default.
fn host_header(origin: &Origin) -> String {
    let host = if origin.host.contains(':') {
        format!("[{}]", origin.host)
    } else {
        origin.host.clone()
    };
    let default_port = if origin.https { 443 } else { 80 };
    if origin.port == default_port {
        host
    } else {
        format!("{host}:{}", origin.port)
    }
}

fn origin_of(uri: &Uri) -> Result<Origin, RequestError> {
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(RequestError::Invalid(format!(
                "`{uri}` is not an http:// or https:// URL"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| RequestError::Invalid(format!("`{uri}` has no host")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(Origin {
        https,
        host,
        port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
    })
}

async fn connect(client: &Client, wire: &Wire, origin: Origin) -> Result<Conn, RequestError> {
    let connect_err = |e: &dyn std::error::Error| RequestError::Connect(error_chain(e));
    let start = Instant::now();
    let addrs = client
        .inner
        .egress
        .resolve(&origin.host, origin.port, &client.inner.hosts)
        .await?;
    let tcp = TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| connect_err(&e))?;
    let connected = Instant::now();
    let connecting = connected - start;
    let _ = tcp.set_nodelay(true);
    let addr = tcp.peer_addr().map_err(|e| connect_err(&e))?;
    let tcp = Counted::new(tcp, wire.clone());
    let mut peer = Peer {
        addr,
        h2: false,
        tls: None,
    };
    let (io, h2): (Box<dyn Io>, bool) = if origin.https {
        let name = rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|e| {
            RequestError::Invalid(format!("`{}` is not a TLS server name: {e}", origin.host))
        })?;
        let tls = tokio_rustls::TlsConnector::from(client.inner.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| connect_err(&e))?;
        let session = tls.get_ref().1;
        peer.tls = tls_names(session);
        let h2 = session.alpn_protocol() == Some(b"h2");
        (Box::new(tls), h2)
    } else {
        (Box::new(tcp), client.inner.http2_prior_knowledge)
    };
    // The HTTP/2 preface and settings count as part of the handshake.
    let tls = if origin.https {
        connected.elapsed()
    } else {
        Duration::ZERO
    };
    peer.h2 = h2;
    if !h2 {
        return Ok(Conn {
            origin,
            link: Link::H1(H1::new(io)),
            connecting,
            tls,
            peer,
        });
    }
    let origin_https = origin.https;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| connect_err(&e))?;
    Ok(Conn {
        origin,
        link: Link::H2 {
            sender,
            driver: Some(Box::pin(conn)),
        },
        connecting,
        tls: if origin_https {
            connected.elapsed()
        } else {
            Duration::ZERO
        },
        peer,
    })
}

/// A TLS session's version and cipher suite as k6 names them (`tls1.3`,
/// and IANA's `TLS_AES_128_GCM_SHA256`).
fn tls_names(session: &rustls::ClientConnection) -> Option<(&'static str, &'static str)> {
    let version = match session.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "tls1.3",
        rustls::ProtocolVersion::TLSv1_2 => "tls1.2",
        _ => "unknown",
    };
    // rustls names TLS 1.3's suites `TLS13_...`; IANA (and Go) `TLS_...`.
    let suite = match session.negotiated_cipher_suite()?.suite().as_str() {
        Some("TLS13_AES_128_GCM_SHA256") => "TLS_AES_128_GCM_SHA256",
        Some("TLS13_AES_256_GCM_SHA384") => "TLS_AES_256_GCM_SHA384",
        Some("TLS13_CHACHA20_POLY1305_SHA256") => "TLS_CHACHA20_POLY1305_SHA256",
        Some(other) => other,
        None => "unknown",
    };
    Some((version, suite))
}

/// Polls the connection's I/O together with `fut` until `fut` is done.
/// The driver goes first, so a response it reads resolves `fut` in the
/// same poll. A driver that ends is dropped, which makes `fut` fail rather
/// than wait.
async fn drive<T>(driver: &mut Option<Driver>, fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Some(d) = driver.as_mut()
            && let Poll::Ready(r) = d.as_mut().poll(cx)
        {
            if let Err(e) = r {
                tracing::debug!("connection ended: {e}");
            }
            *driver = None;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Reads an HTTP/2 body frame by frame, keeping it when asked, and fails
/// as soon as it passes the cap.
async fn read_body(
    driver: &mut Option<Driver>,
    mut body: hyper::body::Incoming,
    keep: Keep,
) -> Result<(Bytes, u64), Failure> {
    let mut out = keep.body.then(bytes::BytesMut::new);
    let mut len = 0u64;
    while !body.is_end_stream() {
        let Some(frame) = drive(driver, body.frame()).await else {
            break;
        };
        let frame = frame.map_err(|e| Failure::Broken(error_chain(&e)))?;
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            if len > keep.max_body {
                return Err(Failure::TooLarge(keep.max_body));
            }
            if let Some(o) = &mut out {
                o.extend_from_slice(data);
            }
        }
    }
    Ok((out.map_or_else(Bytes::new, bytes::BytesMut::freeze), len))
}

/// One timer per VU for request timeouts. A tokio timer per request (an
/// insert into and a removal from the timer wheel) showed in profiles; this
/// one is re-armed only when a request's limit is earlier than where it is
/// armed, or when it fires before the current limit, which with a steady
/// timeout happens once per timeout period.
struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Runs `fut` until `limit`; `None` if the limit came first. Takes the
    /// future pinned where it is: moved in, it would be stored twice.
    async fn within<T>(
        &mut self,
        limit: Instant,
        mut fut: Pin<&mut impl Future<Output = T>>,
    ) -> Option<T> {
        let limit = tokio::time::Instant::from_std(limit);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(limit)));
        if sleep.deadline() > limit {
            sleep.as_mut().reset(limit);
        }
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            while sleep.as_mut().poll(cx).is_ready() {
                if tokio::time::Instant::now() >= limit {
                    return Poll::Ready(None);
                }
                sleep.as_mut().reset(limit);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_bracket_ipv6_and_drop_default_ports() {
        let o = |host: &str, port, https| Origin {
            https,
            host: host.into(),
            port,
        };
        assert_eq!(host_header(&o("example.com", 80, false)), "example.com");
        assert_eq!(
            host_header(&o("example.com", 443, false)),
            "example.com:443"
        );
        assert_eq!(host_header(&o("::1", 8080, false)), "[::1]:8080");
        assert_eq!(host_header(&o("::1", 443, true)), "[::1]");
        let uri: Uri = "http://[::1]:9/x".parse().unwrap();
        assert_eq!(host_header(&origin_of(&uri).unwrap()), "[::1]:9");
    }
}
