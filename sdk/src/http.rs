//! HTTP through the host. The host owns the connection pool and times
//! every request, so a scenario only describes what to send.

use crate::bindings::loadtest::scenario::http as wit;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How one request of [`batch_judged`] is judged: as the VU's others, by
/// its own ranges of statuses, or not at all (k6's `responseCallback`).
pub use wit::ConnectionInfo;
pub use wit::Error as HttpError;
pub use wit::Judged;

/// A request being built; [`Request::send`] hands it to the host.
#[derive(Debug, Clone)]
pub struct Request(wit::Request);

pub fn get(url: impl Into<String>) -> Request {
    Request::new("GET", url)
}
pub fn post(url: impl Into<String>) -> Request {
    Request::new("POST", url)
}
pub fn put(url: impl Into<String>) -> Request {
    Request::new("PUT", url)
}
pub fn delete(url: impl Into<String>) -> Request {
    Request::new("DELETE", url)
}

impl Request {
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request(wit::Request {
            method: method.to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            name: None,
            timeout_ms: None,
            discard_body: false,
            discard_headers: false,
            max_redirects: None,
            tags: Vec::new(),
        })
    }

    /// Follows at most `n` redirects (default: the config's
    /// `http.maxRedirects`, 10); 0 returns the 3xx response itself.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.0.max_redirects = Some(n);
        self
    }

    /// Tags this request's samples (thresholds can filter on them).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.tags.push((key.into(), value.into()));
        self
    }

    /// The name the request is recorded under (default `METHOD /path`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = Some(name.into());
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.0.body = Some(body.into());
        self
    }

    /// Serializes `value` as the body and sets `content-type: application/json`.
    pub fn json<T: Serialize>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout_ms = Some(timeout.as_millis().min(u32::MAX as u128) as u32);
        self
    }

    /// The host counts the body but does not copy it into the guest.
    pub fn discard_body(mut self) -> Self {
        self.0.discard_body = true;
        self
    }

    /// The response's headers are not copied into the guest.
    pub fn discard_headers(mut self) -> Self {
        self.0.discard_headers = true;
        self
    }

    pub fn send(&self) -> Result<Response, HttpError> {
        wit::send(&self.0).map(Response)
    }

    /// Sends like [`Request::send`], but the headers and body stay on the
    /// host until read ([`HeldResponse::headers`], [`HeldResponse::body`]):
    /// cheaper when a scenario mostly looks at the status.
    pub fn send_held(&self) -> Result<HeldResponse, HttpError> {
        wit::send_held(&self.0).map(|head| HeldResponse { head })
    }
}

/// A response whose headers and body the host keeps until they are read
/// (each read copies them again) or this is dropped.
#[derive(Debug)]
pub struct HeldResponse {
    head: wit::ResponseHead,
}

impl HeldResponse {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The URL that answered, when it differs from the request's URL as
    /// given: after a redirect, or a path joined to the target.
    pub fn url(&self) -> Option<&str> {
        self.head.url.as_deref()
    }

    /// Redirects followed to get here.
    pub fn redirects(&self) -> u32 {
        self.head.redirects
    }

    /// From send to the last body byte, over every redirect.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.head.duration_us)
    }

    pub fn timings(&self) -> Timings {
        Timings::of(&self.head.timings)
    }

    /// The headers, copied from the host.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.head.rest.headers()
    }

    /// The body, copied from the host.
    pub fn body(&self) -> Vec<u8> {
        self.head.rest.body()
    }

    /// The connection that answered: protocol, address, TLS version and
    /// cipher suite.
    pub fn connection(&self) -> ConnectionInfo {
        self.head.rest.connection()
    }
}

/// Sets the statuses this VU's requests are expected to answer with
/// (inclusive ranges; the default is 200–399): the others count as failed
/// and are tagged `expected_response: false`. `None` turns that off.
pub fn expect_statuses(ranges: Option<&[(u16, u16)]>) {
    wit::set_expected_statuses(ranges)
}

/// Sends every request at once from this VU (k6's `http.batch`): at most
/// `http.batch` in flight, `http.batchPerHost` per host. The results are
/// in the order of the requests.
pub fn batch(requests: &[Request]) -> Vec<Result<Response, HttpError>> {
    let reqs: Vec<wit::Request> = requests.iter().map(|r| r.0.clone()).collect();
    wit::batch(&reqs)
        .into_iter()
        .map(|r| r.map(Response))
        .collect()
}

/// [`batch`], each request judged its own way.
pub fn batch_judged(requests: &[(Request, Judged)]) -> Vec<Result<Response, HttpError>> {
    wit::batch_judged(&judged_pairs(requests))
        .into_iter()
        .map(|r| r.map(Response))
        .collect()
}

/// [`batch_judged`], each response's headers and body kept on the host
/// until read, as [`Request::send_held`] keeps them.
pub fn batch_held(requests: &[(Request, Judged)]) -> Vec<Result<HeldResponse, HttpError>> {
    wit::batch_held(&judged_pairs(requests))
        .into_iter()
        .map(|r| r.map(|head| HeldResponse { head }))
        .collect()
}

/// The batch as the WIT functions take it.
fn judged_pairs(requests: &[(Request, Judged)]) -> Vec<(wit::Request, Judged)> {
    requests
        .iter()
        .map(|(r, j)| (r.0.clone(), j.clone()))
        .collect()
}

/// Where a response's time went (the last hop's), as k6 splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub blocked: Duration,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
    pub sending: Duration,
    /// Time to first byte.
    pub waiting: Duration,
    pub receiving: Duration,
    /// sending + waiting + receiving.
    pub duration: Duration,
}

/// A response as the host received it.
#[derive(Debug, Clone)]
pub struct Response(pub wit::Response);

impl Response {
    pub fn status(&self) -> u16 {
        self.0.status
    }

    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, crate::Error> {
        Ok(serde_json::from_slice(&self.0.body)?)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// From send to the last body byte, over every redirect.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.0.duration_us)
    }

    /// The URL that answered, after redirects.
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// Redirects followed to get here.
    pub fn redirects(&self) -> u32 {
        self.0.redirects
    }

    pub fn timings(&self) -> Timings {
        Timings::of(&self.0.timings)
    }
}

impl Timings {
    fn of(t: &wit::Timings) -> Self {
        let d = Duration::from_micros;
        Timings {
            blocked: d(t.blocked_us),
            connecting: d(t.connecting_us),
            tls_handshaking: d(t.tls_handshaking_us),
            sending: d(t.sending_us),
            waiting: d(t.waiting_us),
            receiving: d(t.receiving_us),
            duration: d(t.duration_us),
        }
    }
}
