//! HTTP for the VUs. Every VU owns its connections (as in k6), and drives
//! them inside its own task: no shared pool, no lock, no hand-off to a
//! connection task per request. What the VUs share is the configuration
//! here: base URL, timeouts, TLS roots. Timing is taken around the whole
//! exchange, so the number a user sees is what their server cost, body
//! included.

mod conn;
pub mod debug;
mod decode;
pub mod egress;
mod h1;
pub mod hosts;
pub mod pace;
mod session;
mod wire;

#[doc(hidden)]
pub use h1::exchange_in_memory;

pub use conn::Connections;
pub use session::{Hop, Jar, Session};

use bytes::Bytes;
use hyper::Uri;
use std::sync::Arc;
use std::time::Duration;

/// Why a request produced no response; the kinds are what reports group by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Invalid(String),
    Connect(String),
    Timeout,
    Transport(String),
    /// The response broke HTTP's framing rules or a limit no sound
    /// server reaches: a hostile or broken server, not a network fault.
    Protocol(String),
    /// The body (on the wire, or decoded) passed `http.maxBodyBytes`.
    BodyTooLarge(u64),
    /// Still redirected after the limit (`http.maxRedirects`).
    TooManyRedirects(u32),
    /// The destination is off limits (`sandbox.blockIPs`, ...): nothing
    /// was sent.
    Blocked(String),
}

impl RequestError {
    /// Short stable name used as the error kind in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Invalid(_) => "invalid_request",
            RequestError::Connect(_) => "connect",
            RequestError::Timeout => "timeout",
            RequestError::Transport(_) => "transport",
            RequestError::Protocol(_) => "protocol",
            RequestError::BodyTooLarge(_) => "body_too_large",
            RequestError::TooManyRedirects(_) => "too_many_redirects",
            RequestError::Blocked(_) => "blocked",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Invalid(m) => write!(f, "invalid request: {m}"),
            RequestError::Connect(m) => write!(f, "connect: {m}"),
            RequestError::Timeout => f.write_str("timeout"),
            RequestError::Transport(m) => write!(f, "transport: {m}"),
            RequestError::Protocol(m) => write!(f, "protocol: {m}"),
            RequestError::BodyTooLarge(n) => write!(
                f,
                "the response body is larger than http.maxBodyBytes ({n} bytes)"
            ),
            RequestError::TooManyRedirects(n) => {
                write!(f, "stopped after {n} redirects (http.maxRedirects)")
            }
            RequestError::Blocked(m) => write!(f, "blocked by the sandbox: {m}"),
        }
    }
}

pub struct Outgoing {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub keep_body: bool,
    pub keep_headers: bool,
}

impl Outgoing {
    /// A plain GET of `url`, keeping everything (for tests and tools).
    pub fn get(url: &str) -> Outgoing {
        Outgoing {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            keep_body: true,
            keep_headers: true,
        }
    }
}

pub struct Incoming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub body_len: u64,
    /// The headers the session itself acts on, kept even when the guest
    /// asked for no headers.
    pub meta: Meta,
    pub timings: Timings,
    /// Redirects the session followed, and the URL that answered (set by
    /// the session).
    pub redirects: u32,
    pub final_url: Option<String>,
    /// The connection that answered (set when the exchange ends).
    pub peer: Option<Peer>,
}

/// Who answered on a connection, as k6's response tells it (`proto`,
/// `remote_ip`, `remote_port`, `tls_version`, `tls_cipher_suite`). Known
/// once the connection is open and copied into each of its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub h2: bool,
    /// The TLS version and cipher suite, in k6's and IANA's names.
    pub tls: Option<(&'static str, &'static str)>,
}

/// Where one exchange's time went, in k6's phases. A reused connection
/// has no connecting or TLS time; `blocked` is what came before the
/// exchange could start (preparing the request, checking the connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub blocked: Duration,
    pub connecting: Duration,
    pub tls: Duration,
    pub sending: Duration,
    /// Request written to response head read: time to first byte.
    pub waiting: Duration,
    pub receiving: Duration,
}

impl Timings {
    /// sending + waiting + receiving, k6's `http_req_duration`.
    pub fn duration(&self) -> Duration {
        self.sending + self.waiting + self.receiving
    }
}

/// What a browser-like session reads of every response: where a redirect
/// goes, the cookies set, how the body is encoded. Empty (no allocation)
/// for the common response that has none of them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meta {
    pub location: Option<String>,
    pub set_cookie: Vec<String>,
    pub content_encoding: Option<String>,
}

impl Meta {
    /// Keeps `name: value` if it is one of the headers a session acts on.
    pub fn note(&mut self, status: u16, name: &[u8], value: &[u8]) {
        let text = || String::from_utf8_lossy(value).into_owned();
        if name.eq_ignore_ascii_case(b"set-cookie") {
            self.set_cookie.push(text());
        } else if name.eq_ignore_ascii_case(b"location") && (300..400).contains(&status) {
            self.location = Some(text());
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            self.content_encoding = Some(text());
        }
    }
}

/// The outcome of one exchange, timed.
pub struct Exchange {
    pub result: Result<Incoming, RequestError>,
    pub elapsed: Duration,
    /// Bytes written to and read from the sockets (under any TLS) while
    /// it ran, as k6 counts `data_sent` and `data_received`: a request
    /// sent again on a fresh connection counts twice, a handshake with
    /// the request that opened the connection.
    pub sent: u64,
    pub received: u64,
}

/// What every VU's connections share.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    base: Option<Uri>,
    timeout: Duration,
    max_body: u64,
    max_redirects: u32,
    reset_cookies: bool,
    batch: Batching,
    connect_timeout: Duration,
    http2_prior_knowledge: bool,
    tls: Arc<rustls::ClientConfig>,
    egress: egress::Egress,
    hosts: hosts::Hosts,
    reuse: Reuse,
    rate: Option<pace::RateLimit>,
    debug: debug::HttpDebug,
}

/// How long a VU keeps a connection for later requests (k6's
/// `noConnectionReuse` and `noVUConnectionReuse`): tests of how a server
/// bears new connections (handshakes, accept queues) need them fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reuse {
    /// For as long as the server keeps it open.
    #[default]
    Always,
    /// Within one iteration; the next starts with none.
    WithinIteration,
    /// Never: every request on a new connection, sent with `Connection: close`.
    Never,
}

/// How many requests of one batch are in flight at once, in all and per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub total: u32,
    pub per_host: u32,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            total: 20,
            per_host: 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub base: Option<String>,
    pub timeout: Duration,
    /// Largest response body read (on the wire, and again decoded).
    pub max_body: u64,
    /// Redirects a session follows per request unless the request says.
    pub max_redirects: u32,
    /// Whether a VU's cookie jar is emptied at each iteration's start.
    pub reset_cookies: bool,
    pub batch: Batching,
    pub connect_timeout: Duration,
    pub http2_prior_knowledge: bool,
    pub insecure_skip_tls_verify: bool,
    pub egress: egress::Egress,
    pub hosts: hosts::Hosts,
    pub reuse: Reuse,
    /// Requests per second at most, over every VU sharing the client
    /// (k6's `rps`); 0 for no cap.
    pub rps: f64,
    pub debug: debug::HttpDebug,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> anyhow::Result<Client> {
        let base = opts
            .base
            .as_deref()
            .map(parse_base_url)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        Ok(Client {
            inner: Arc::new(Shared {
                base,
                timeout: opts.timeout,
                max_body: opts.max_body,
                max_redirects: opts.max_redirects,
                reset_cookies: opts.reset_cookies,
                batch: Batching {
                    total: opts.batch.total.max(1),
                    per_host: opts.batch.per_host.max(1),
                },
                connect_timeout: opts.connect_timeout,
                http2_prior_knowledge: opts.http2_prior_knowledge,
                tls: Arc::new(tls_config(opts.insecure_skip_tls_verify)?),
                egress: opts.egress.clone(),
                hosts: opts.hosts.clone(),
                reuse: opts.reuse,
                rate: pace::RateLimit::new(opts.rps),
                debug: opts.debug,
            }),
        })
    }

    pub fn max_body(&self) -> u64 {
        self.inner.max_body
    }

    pub fn batching(&self) -> Batching {
        self.inner.batch
    }

    /// Joins a path to the base URL; absolute URLs pass through.
    pub fn resolve(&self, url: &str) -> Result<Uri, RequestError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return url
                .parse()
                .map_err(|e| RequestError::Invalid(format!("`{url}`: {e}")));
        }
        let base = self.inner.base.as_ref().ok_or_else(|| {
            RequestError::Invalid(format!(
                "`{url}` is a path but the config has no `target` to join it to"
            ))
        })?;
        let path = if url.starts_with('/') {
            url.to_owned()
        } else {
            format!("/{url}")
        };
        let scheme = base.scheme_str().unwrap_or("http");
        let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
        let prefix = base.path().trim_end_matches('/');
        format!("{scheme}://{authority}{prefix}{path}")
            .parse()
            .map_err(|e| RequestError::Invalid(format!("`{url}`: {e}")))
    }
}

/// TLS with the system's roots (or, when asked, no verification at all),
/// offering HTTP/2 and HTTP/1.1 by ALPN. A machine without a CA store can
/// still test plain HTTP.
fn tls_config(insecure: bool) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::debug!("no system CA certificates found; https targets will fail verification");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecureSkipTLSVerify`: accepts any certificate, but still checks
/// that the handshake signatures are valid for the certificate presented.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// Checks a base URL: absolute http(s) with a host.
pub fn parse_base_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(format!(
            "`{s}` must be an absolute http:// or https:// URL, like http://127.0.0.1:8080"
        )),
    }
}

/// The name a request is recorded under when the guest gives none:
/// method and path without the query, so ids in query strings don't
/// explode the number of series.
pub fn default_name(method: &str, url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.contains("://") {
        without_scheme
            .find('/')
            .map_or("/", |i| &without_scheme[i..])
    } else {
        url
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    format!(
        "{} {}",
        method.to_ascii_uppercase(),
        if path.is_empty() { "/" } else { path }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_drop_query_and_host() {
        assert_eq!(default_name("get", "/a/b?x=1"), "GET /a/b");
        assert_eq!(default_name("POST", "http://h:1/p#f"), "POST /p");
        assert_eq!(default_name("GET", "https://h"), "GET /");
    }

    #[test]
    fn base_urls_must_be_absolute_http() {
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
        assert!(parse_base_url("ftp://x").is_err());
    }
}
