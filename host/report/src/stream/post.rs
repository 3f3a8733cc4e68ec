//! The outputs' HTTP POST: one pooled plain-HTTP client, a time limit on
//! every request, and the receiver's own words when it refuses.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a push did not land.
pub enum Failed {
    /// Worth sending again later (no answer, 5xx, 429).
    Retry(String),
    /// The receiver refused the content (another 4xx): sending it again
    /// would be refused again, and hold back every later second.
    Refused(String),
}

/// The longest a receiver may take to answer one push.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client(Hyper<HttpConnector, Full<Bytes>>);

impl Client {
    pub fn new() -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        Client(Hyper::builder(TokioExecutor::new()).build(connector))
    }

    /// POSTs `body`; an error says what the receiver answered.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<(), Failed> {
        let mut req = hyper::Request::post(url).header(hyper::header::CONTENT_TYPE, content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failed::Refused(format!("bad URL {url}: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, self.0.request(req))
            .await
            .map_err(|_| Failed::Retry(format!("no answer from {url} within {TIMEOUT:?}")))?
            .map_err(|e| Failed::Retry(format!("cannot reach {url}: {}", chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(500)])
            .trim()
            .to_string();
        let why = format!("{url} answered {status}: {text}");
        if status.is_client_error() && status != hyper::StatusCode::TOO_MANY_REQUESTS {
            Err(Failed::Refused(why))
        } else {
            Err(Failed::Retry(why))
        }
    }
}

/// An error with its causes ("client error (Connect): tcp connect error:
/// Connection refused"), which hyper's own text leaves out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}
