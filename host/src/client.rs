//! The one HTTP client every VU shares: pooled hyper connections, rustls
//! for TLS, and timing taken around the whole exchange so the number a
//! user sees is what their server cost, body included.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

/// Why a request produced no response; the kinds are what reports group by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Invalid(String),
    Connect(String),
    Timeout,
    Transport(String),
}

impl RequestError {
    /// Short stable name used as the error kind in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Invalid(_) => "invalid_request",
            RequestError::Connect(_) => "connect",
            RequestError::Timeout => "timeout",
            RequestError::Transport(_) => "transport",
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
}

pub struct Incoming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub body_len: u64,
}

/// The outcome of one exchange, timed.
pub struct Exchange {
    pub result: Result<Incoming, RequestError>,
    pub elapsed: Duration,
}

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: Option<Uri>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub base: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub http2_prior_knowledge: bool,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> anyhow::Result<Client> {
        let base = opts
            .base
            .as_deref()
            .map(parse_base_url)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(opts.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .or_else(|_| {
                // A machine without a CA store can still test plain HTTP.
                Ok::<_, std::io::Error>(
                    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    ),
                )
            })?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(usize::MAX);
        if opts.http2_prior_knowledge {
            builder.http2_only(true);
        }
        Ok(Client {
            inner: builder.build(https),
            base,
            timeout: opts.timeout,
        })
    }

    /// Sends `req` and reads the whole response, within its timeout.
    pub async fn send(&self, req: Outgoing) -> Exchange {
        let timeout = req.timeout.unwrap_or(self.timeout);
        let keep_body = req.keep_body;
        let start = Instant::now();
        let request = match self.build(req) {
            Ok(r) => r,
            Err(e) => {
                return Exchange {
                    result: Err(e),
                    elapsed: Duration::ZERO,
                };
            }
        };
        let result = match tokio::time::timeout(timeout, self.exchange(request, keep_body)).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout),
        };
        Exchange {
            result,
            elapsed: start.elapsed(),
        }
    }

    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
        keep_body: bool,
    ) -> Result<Incoming, RequestError> {
        let response = self.inner.request(request).await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = response.into_body();
        let (bytes, len) = if keep_body {
            let b = body
                .collect()
                .await
                .map_err(|e| RequestError::Transport(e.to_string()))?
                .to_bytes();
            let len = b.len() as u64;
            (b, len)
        } else {
            let mut len = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| RequestError::Transport(e.to_string()))?;
                if let Some(data) = frame.data_ref() {
                    len += data.len() as u64;
                }
                if body.is_end_stream() {
                    break;
                }
            }
            (Bytes::new(), len)
        };
        Ok(Incoming {
            status,
            headers,
            body: bytes,
            body_len: len,
        })
    }

    fn build(&self, req: Outgoing) -> Result<hyper::Request<Full<Bytes>>, RequestError> {
        let uri = self.resolve(&req.url)?;
        let method = hyper::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                RequestError::Invalid(format!("`{}` is not an HTTP method", req.method))
            })?;
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
            .body(Full::new(req.body.map(Bytes::from).unwrap_or_default()))
            .map_err(|e| RequestError::Invalid(e.to_string()))
    }

    /// Joins a path to the base URL; absolute URLs pass through.
    pub fn resolve(&self, url: &str) -> Result<Uri, RequestError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return url
                .parse()
                .map_err(|e| RequestError::Invalid(format!("`{url}`: {e}")));
        }
        let base = self.base.as_ref().ok_or_else(|| {
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

fn classify(e: hyper_util::client::legacy::Error) -> RequestError {
    let detail = error_chain(&e);
    if e.is_connect() {
        RequestError::Connect(detail)
    } else {
        RequestError::Transport(detail)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
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
