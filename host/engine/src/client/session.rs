//! What a browser adds to one exchange, for every request path a guest has
//! (the `http` import and `wasi:http` alike): redirects followed hop by hop,
//! a cookie jar per VU, and bodies decoded. Each hop is its own request in
//! the metrics, so the report's count is what the server received.
//!
//! The common request (no cookies in the jar, no redirect, no encoding)
//! pays three branch tests here: URLs are parsed for the jar only when it
//! has cookies or a response sets one.

use super::decode::{DecodeError, decode};
use super::{Client, Connections, Exchange, Incoming, Outgoing, RequestError, Timings};
use cookie_store::CookieStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// One hop of a request, as it is recorded.
pub struct Hop<'a> {
    /// 0 for the request the guest sent, then 1, 2, ... for redirects.
    pub index: u32,
    pub method: &'a str,
    pub url: &'a str,
    pub status: Option<u16>,
    pub error: Option<&'static str>,
    pub elapsed: Duration,
    /// Bytes read and written on the sockets for this hop (under TLS,
    /// with the handshake of a connection it opened): k6's
    /// `data_received` and `data_sent`.
    pub bytes: u64,
    pub sent: u64,
    /// Zero for a hop that failed before a response.
    pub timings: Timings,
}

/// A VU's cookies (RFC 6265: domain, path, expiry, Secure, HttpOnly),
/// shared by its request paths. Locked only between awaits, and not at
/// all while it has never held a cookie since the last reset (the common
/// load test), which a flag outside the lock tells.
#[derive(Clone, Default)]
pub struct Jar(Arc<JarInner>);

#[derive(Default)]
struct JarInner {
    store: Mutex<CookieStore>,
    used: AtomicBool,
}

impl Jar {
    fn lock(&self) -> std::sync::MutexGuard<'_, CookieStore> {
        self.0.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_empty(&self) -> bool {
        !self.0.used.load(Ordering::Relaxed) || self.lock().iter_any().next().is_none()
    }

    /// The `Cookie` header value for a request to `url`, if any apply.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let store = self.lock();
        let pairs: Vec<String> = store
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Takes the `Set-Cookie` values a response to `url` carried; a
    /// cookie the rules refuse (another domain, Secure over http) is dropped.
    pub fn store(&self, url: &Url, set_cookie: &[String]) {
        self.0.used.store(true, Ordering::Relaxed);
        let mut store = self.lock();
        for raw in set_cookie {
            if let Ok(cookie) = cookie_store::RawCookie::parse(raw.as_str()) {
                let _ = store.insert_raw(&cookie.into_owned(), url);
            }
        }
    }

    /// The cookies a request to `url` would send, as (name, value).
    pub fn get(&self, url: &Url) -> Vec<(String, String)> {
        self.lock()
            .get_request_values(url)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    /// Stores one cookie the scenario sets, saying why when the rules
    /// refuse it.
    pub fn set(&self, url: &Url, raw: &str) -> Result<(), String> {
        let cookie = cookie_store::RawCookie::parse(raw)
            .map_err(|e| format!("`{raw}` is not a Set-Cookie value: {e}"))?;
        self.0.used.store(true, Ordering::Relaxed);
        self.lock()
            .insert_raw(&cookie.into_owned(), url)
            .map(|_| ())
            .map_err(|e| format!("`{raw}` cannot be set for {url}: {e}"))
    }

    pub fn clear(&self) {
        if self.0.used.swap(false, Ordering::Relaxed) {
            self.lock().clear();
        }
    }
}

/// A VU's connections and cookies.
pub struct Session {
    conns: Connections,
    client: Client,
    pub jar: Jar,
}

impl Session {
    pub fn new(client: Client, jar: Jar) -> Session {
        Session {
            conns: Connections::new(client.clone()),
            client,
            jar,
        }
    }

    /// Another session of the same VU: its own connections, the same jar
    /// (for requests in flight side by side).
    pub fn sibling(&self) -> Session {
        Session::new(self.client.clone(), self.jar.clone())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cookies a request to `url` (a path joins the target) would send.
    pub fn cookies_for(&self, url: &str) -> Result<Vec<(String, String)>, RequestError> {
        Ok(self.jar.get(&self.absolute(url)?))
    }

    /// Stores a cookie as if a response from `url` had set it.
    pub fn set_cookie(&self, url: &str, raw: &str) -> Result<(), String> {
        let url = self.absolute(url).map_err(|e| e.to_string())?;
        self.jar.set(&url, raw)
    }

    /// At an iteration's start: an empty jar, unless `http.noCookiesReset`,
    /// and no connection kept from the last, with `http.noVUConnectionReuse`.
    pub fn new_iteration(&mut self) {
        if self.client.inner.reset_cookies {
            self.jar.clear();
        }
        self.close_if_per_iteration();
    }

    /// With `http.noVUConnectionReuse`, closes this session's connections:
    /// also for the sessions a VU's batches use beside its own.
    pub fn close_if_per_iteration(&mut self) {
        if self.client.inner.reuse == super::Reuse::WithinIteration {
            self.conns.close_all();
        }
    }

    /// Sends `req`, following up to `max_redirects` redirects (the
    /// config's `http.maxRedirects` when `None`), and calls `on_hop` for
    /// every exchange that reached the network. The elapsed time returned
    /// covers every hop.
    pub async fn send(
        &mut self,
        mut req: Outgoing,
        max_redirects: Option<u32>,
        mut on_hop: impl FnMut(Hop<'_>),
    ) -> Exchange {
        let max = max_redirects.unwrap_or(self.client.inner.max_redirects);
        if let Some(rate) = &self.client.inner.rate {
            rate.wait().await;
        }
        let debug = self.client.inner.debug;
        if debug.on() {
            // What is printed must be kept, whatever the guest reads.
            req.keep_headers = true;
            req.keep_body |= debug == super::debug::HttpDebug::Full;
        }
        let mut elapsed = Duration::ZERO;
        let (mut sent, mut received) = (0, 0);
        let mut index = 0;
        loop {
            // A match, so the URL is not kept in the future across the send.
            match self.cookie_url(&req) {
                Ok(Some(url)) => self.add_cookies(&mut req, &url),
                Ok(None) => {}
                Err(e) => {
                    return Exchange {
                        result: Err(e),
                        elapsed,
                        sent,
                        received,
                    };
                }
            }
            let exchange = self.conns.send(&req).await;
            if debug.on() {
                debug.print(&req, &exchange.result);
            }
            elapsed += exchange.elapsed;
            sent += exchange.sent;
            received += exchange.received;
            let hop = |status, error, timings| Hop {
                index,
                method: &req.method,
                url: &req.url,
                status,
                error,
                elapsed: exchange.elapsed,
                bytes: exchange.received,
                sent: exchange.sent,
                timings,
            };
            let mut incoming = match exchange.result {
                Ok(incoming) => incoming,
                Err(e) => {
                    if !matches!(e, RequestError::Invalid(_)) {
                        on_hop(hop(None, Some(e.kind()), Timings::default()));
                    }
                    return Exchange {
                        result: Err(e),
                        elapsed,
                        sent,
                        received,
                    };
                }
            };
            if !incoming.meta.set_cookie.is_empty()
                && let Ok(url) = self.absolute(&req.url)
            {
                self.jar.store(&url, &incoming.meta.set_cookie);
            }
            let (status, timings) = (incoming.status, incoming.timings);
            let next = match redirect_of(&incoming) {
                Some(location) if max > 0 => Some(location.to_owned()),
                _ => None,
            };
            if let Some(location) = next {
                if index == max {
                    let e = RequestError::TooManyRedirects(max);
                    on_hop(hop(Some(status), Some(e.kind()), timings));
                    return Exchange {
                        result: Err(e),
                        elapsed,
                        sent,
                        received,
                    };
                }
                on_hop(hop(Some(status), None, timings));
                let from = req.url.clone();
                match self.follow(req, status, &from, &location) {
                    Ok(next) => req = next,
                    Err(e) => {
                        return Exchange {
                            result: Err(e),
                            elapsed,
                            sent,
                            received,
                        };
                    }
                }
                index += 1;
                continue;
            }
            let result = self.decoded(&mut incoming, req.keep_body);
            on_hop(hop(
                Some(status),
                result.as_ref().err().map(RequestError::kind),
                timings,
            ));
            incoming.redirects = index;
            incoming.final_url = Some(req.url);
            return Exchange {
                result: result.map(|()| incoming),
                elapsed,
                sent,
                received,
            };
        }
    }

    /// The request's absolute URL, when the jar must be asked about it.
    fn cookie_url(&self, req: &Outgoing) -> Result<Option<Url>, RequestError> {
        if self.jar.is_empty() {
            return Ok(None);
        }
        self.absolute(&req.url).map(Some)
    }

    /// `url` as a cookie jar reads it: a path joins the target.
    pub fn absolute(&self, url: &str) -> Result<Url, RequestError> {
        let uri = self.client.resolve(url)?;
        Url::parse(&uri.to_string()).map_err(|e| RequestError::Invalid(format!("`{url}`: {e}")))
    }

    /// Adds the jar's cookies to the guest's own `Cookie` header, if any.
    fn add_cookies(&self, req: &mut Outgoing, url: &Url) {
        let Some(jar) = self.jar.header_for(url) else {
            return;
        };
        match req
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        {
            Some((_, v)) => *v = format!("{v}; {jar}"),
            None => req.headers.push(("cookie".into(), jar)),
        }
    }

    /// The request for the next hop: 301/302/303 become a GET without a
    /// body (as browsers do; HEAD stays HEAD), 307/308 keep both; a new
    /// origin gets no credentials the guest set for the old one.
    fn follow(
        &self,
        mut req: Outgoing,
        status: u16,
        from: &str,
        location: &str,
    ) -> Result<Outgoing, RequestError> {
        let base = self.absolute(from)?;
        let next = base.join(location).map_err(|e| {
            RequestError::Transport(format!(
                "a redirect to `{location}`, which is not a URL: {e}"
            ))
        })?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(RequestError::Transport(format!(
                "a redirect to `{next}`, which is not http or https"
            )));
        }
        let body_headers = ["content-type", "content-length", "transfer-encoding"];
        if matches!(status, 301..=303) && req.method != "HEAD" {
            req.method = "GET".into();
            req.body = None;
            req.headers
                .retain(|(k, _)| !body_headers.iter().any(|h| k.eq_ignore_ascii_case(h)));
        }
        if next.origin() != base.origin() {
            req.headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("cookie")
            });
        } else {
            // The jar adds its own cookies again for the new URL.
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
        }
        req.url = next.into();
        Ok(req)
    }

    /// Undoes a `Content-Encoding` the host knows, within the body cap.
    fn decoded(&self, incoming: &mut Incoming, kept: bool) -> Result<(), RequestError> {
        let Some(encoding) = incoming.meta.content_encoding.as_deref() else {
            return Ok(());
        };
        if !kept || incoming.body.is_empty() {
            return Ok(());
        }
        match decode(encoding, &incoming.body, self.client.inner.max_body) {
            Ok(Some(body)) => {
                incoming.body = body.into();
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(DecodeError::TooLarge(max)) => Err(RequestError::BodyTooLarge(max)),
            Err(DecodeError::Malformed(m)) => Err(RequestError::Transport(m)),
        }
    }
}

fn redirect_of(incoming: &Incoming) -> Option<&str> {
    match incoming.status {
        301 | 302 | 303 | 307 | 308 => incoming.meta.location.as_deref(),
        _ => None,
    }
}
