//! One VU's connections, one per origin, driven inside the VU's task.
//!
//! hyper's connection-level API gives a request handle and a connection
//! future. Instead of spawning that future as a task (which costs two
//! cross-task wake-ups per request), the VU polls it itself while it waits
//! for its response: the socket wakes the VU directly.

use super::{Client, Exchange, Incoming, Outgoing, RequestError, error_chain};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

struct Conn {
    origin: Origin,
    sender: Sender,
    /// The connection's I/O; `None` once it has ended.
    driver: Option<Driver>,
}

impl Conn {
    fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    fn usable(&self) -> bool {
        self.driver.is_some()
            && match &self.sender {
                Sender::H1(s) => !s.is_closed(),
                Sender::H2(s) => !s.is_closed(),
            }
    }
}

/// The connections of one VU.
pub struct Connections {
    client: Client,
    open: Vec<Conn>,
}

impl Connections {
    pub fn new(client: Client) -> Connections {
        Connections {
            client,
            open: Vec::new(),
        }
    }

    /// Sends `req` and reads the whole response, within its timeout.
    pub async fn send(&mut self, req: Outgoing) -> Exchange {
        let start = Instant::now();
        let timeout = req.timeout.unwrap_or(self.client.inner.timeout);
        let result = match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => {
                // The timed-out exchange left its connection mid-request.
                self.open.retain(|c| c.driver.is_none());
                Err(RequestError::Timeout)
            }
        };
        Exchange {
            result,
            elapsed: start.elapsed(),
        }
    }

    async fn exchange(&mut self, req: Outgoing) -> Result<Incoming, RequestError> {
        let uri = self.client.resolve(&req.url)?;
        let origin = origin_of(&uri)?;
        let method = hyper::Method::from_bytes(req.method.as_bytes())
            .or_else(|_| hyper::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes()))
            .map_err(|_| {
                RequestError::Invalid(format!("`{}` is not an HTTP method", req.method))
            })?;
        let body = req.body.map(Bytes::from).unwrap_or_default();
        let (keep_body, keep_headers) = (req.keep_body, req.keep_headers);
        let build =
            |h2: bool| build_request(&method, &uri, &origin, &req.headers, body.clone(), h2);

        let reused = self.checkout(&origin).await?;
        let mut idx = self.index_of(&origin);
        let request = build(self.open[idx].is_h2())?;
        let mut response = send_on(&mut self.open[idx], request).await;
        if reused
            && response
                .as_ref()
                .is_err_and(|e| e.is_canceled() || e.is_closed() || e.is_incomplete_message())
        {
            // The server closed an idle keep-alive connection under us; the
            // request was not processed, so send it again on a fresh one.
            self.open.remove(idx);
            self.checkout(&origin).await?;
            idx = self.index_of(&origin);
            let request = build(self.open[idx].is_h2())?;
            response = send_on(&mut self.open[idx], request).await;
        }
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.open.remove(idx);
                return Err(RequestError::Transport(error_chain(&e)));
            }
        };
        let conn = &mut self.open[idx];
        let status = response.status().as_u16();
        let headers = if keep_headers {
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
        let body = read_body(&mut conn.driver, response.into_body(), keep_body).await;
        if !conn.usable() {
            self.open.remove(idx);
        }
        let (body, body_len) = body.map_err(|e| RequestError::Transport(error_chain(&e)))?;
        Ok(Incoming {
            status,
            headers,
            body,
            body_len,
        })
    }

    fn index_of(&self, origin: &Origin) -> usize {
        self.open
            .iter()
            .position(|c| &c.origin == origin)
            .expect("a connection was just checked out")
    }

    /// Makes sure a usable connection to `origin` is open; says whether it
    /// was already open (and so may have been closed by the server since).
    async fn checkout(&mut self, origin: &Origin) -> Result<bool, RequestError> {
        if let Some(i) = self.open.iter().position(|c| &c.origin == origin) {
            if self.open[i].usable() {
                return Ok(true);
            }
            self.open.remove(i);
        }
        // Boxed: the TLS and handshake states would otherwise make every
        // request's future (moved on each await) several times larger.
        let connect = Box::pin(connect(&self.client, origin.clone()));
        let conn = tokio::time::timeout(self.client.inner.connect_timeout, connect)
            .await
            .map_err(|_| {
                RequestError::Connect(format!(
                    "no connection to {}:{} within the connect timeout",
                    origin.host, origin.port
                ))
            })??;
        self.open.push(conn);
        Ok(false)
    }
}

async fn send_on(
    conn: &mut Conn,
    request: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
    let Conn { sender, driver, .. } = conn;
    match sender {
        Sender::H1(s) => {
            drive(driver, s.ready()).await?;
            drive(driver, s.send_request(request)).await
        }
        Sender::H2(s) => {
            drive(driver, s.ready()).await?;
            drive(driver, s.send_request(request)).await
        }
    }
}

fn build_request(
    method: &hyper::Method,
    uri: &Uri,
    origin: &Origin,
    headers: &[(String, String)],
    body: Bytes,
    h2: bool,
) -> Result<Request<Full<Bytes>>, RequestError> {
    // HTTP/1.1 wants the path in the request line and the authority in
    // `Host`; HTTP/2 takes both from the absolute URI.
    let target = if h2 {
        uri.clone()
    } else {
        uri.path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()))
    };
    let mut builder = Request::builder().method(method.clone()).uri(target);
    let mut has_host = false;
    for (k, v) in headers {
        has_host |= k.eq_ignore_ascii_case("host");
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !h2 && !has_host {
        let default_port = if origin.https { 443 } else { 80 };
        let host = if origin.port == default_port {
            origin.host.clone()
        } else {
            format!("{}:{}", origin.host, origin.port)
        };
        let value =
            HeaderValue::from_str(&host).map_err(|e| RequestError::Invalid(e.to_string()))?;
        builder = builder.header(HOST, value);
    }
    builder
        .body(Full::new(body))
        .map_err(|e| RequestError::Invalid(format!("{e}")))
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

async fn connect(client: &Client, origin: Origin) -> Result<Conn, RequestError> {
    let connect_err = |e: &dyn std::error::Error| RequestError::Connect(error_chain(e));
    let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
        .await
        .map_err(|e| connect_err(&e))?;
    let _ = tcp.set_nodelay(true);
    let (io, h2): (Box<dyn Io>, bool) = if origin.https {
        let name = rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|e| {
            RequestError::Invalid(format!("`{}` is not a TLS server name: {e}", origin.host))
        })?;
        let tls = tokio_rustls::TlsConnector::from(client.inner.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| connect_err(&e))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        (Box::new(tls), h2)
    } else {
        (Box::new(tcp), client.inner.http2_prior_knowledge)
    };
    let io = TokioIo::new(io);
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| connect_err(&e))?;
        Ok(Conn {
            origin,
            sender: Sender::H2(sender),
            driver: Some(Box::pin(conn)),
        })
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(|e| connect_err(&e))?;
        Ok(Conn {
            origin,
            sender: Sender::H1(sender),
            driver: Some(Box::pin(conn)),
        })
    }
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

async fn read_body(
    driver: &mut Option<Driver>,
    mut body: hyper::body::Incoming,
    keep: bool,
) -> Result<(Bytes, u64), hyper::Error> {
    if keep {
        let bytes = drive(driver, body.collect()).await?.to_bytes();
        let len = bytes.len() as u64;
        return Ok((bytes, len));
    }
    let mut len = 0u64;
    while !body.is_end_stream() {
        match drive(driver, body.frame()).await {
            Some(frame) => {
                if let Some(data) = frame?.data_ref() {
                    len += data.len() as u64;
                }
            }
            None => break,
        }
    }
    Ok((Bytes::new(), len))
}
