//! `loadtest:scenario@0.1.0` for components built before 0.2: every call
//! is translated into its 0.2 counterpart, so both versions share one
//! implementation. What 0.2 added (request tags, per-request redirects)
//! takes its default; 0.2's new errors reach a 0.1 guest as `transport`,
//! with their message, as they did before 0.2 named them.

use super::VuHost;
use super::bindings::v01::loadtest::scenario::{http, log, metrics, vu};
use super::bindings::v02::loadtest::scenario as v02;

impl http::Host for VuHost {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::Error> {
        let req = v02::http::Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            name: req.name,
            timeout_ms: req.timeout_ms,
            discard_body: req.discard_body,
            discard_headers: req.discard_headers,
            max_redirects: None,
            tags: Vec::new(),
        };
        match v02::http::Host::send(self, req).await {
            Ok(r) => Ok(http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
                duration_us: r.duration_us,
            }),
            Err(e) => Err(match e {
                v02::http::Error::InvalidRequest(m) => http::Error::InvalidRequest(m),
                v02::http::Error::Connect(m) => http::Error::Connect(m),
                v02::http::Error::Timeout => http::Error::Timeout,
                v02::http::Error::Transport(m) => http::Error::Transport(m),
                v02::http::Error::TooManyRedirects(n) => http::Error::Transport(
                    crate::client::RequestError::TooManyRedirects(n).to_string(),
                ),
                v02::http::Error::BodyTooLarge(n) => {
                    http::Error::Transport(crate::client::RequestError::BodyTooLarge(n).to_string())
                }
            }),
        }
    }
}

impl metrics::Host for VuHost {
    fn check(&mut self, name: String, passed: bool) {
        v02::metrics::Host::check(self, name, passed)
    }

    fn counter_add(&mut self, name: String, value: f64) {
        v02::metrics::Host::counter_add(self, name, value)
    }

    fn trend_add(&mut self, name: String, value: f64) {
        v02::metrics::Host::trend_add(self, name, value)
    }
}

impl vu::Host for VuHost {
    fn id(&mut self) -> u32 {
        v02::vu::Host::id(self)
    }

    fn iteration(&mut self) -> u64 {
        v02::vu::Host::iteration(self)
    }

    fn scenario(&mut self) -> String {
        v02::vu::Host::scenario(self)
    }

    fn exec(&mut self) -> String {
        v02::vu::Host::exec(self)
    }

    async fn sleep(&mut self, ms: u32) {
        v02::vu::Host::sleep(self, ms).await
    }

    fn now_ms(&mut self) -> u64 {
        v02::vu::Host::now_ms(self)
    }

    fn monotonic_us(&mut self) -> u64 {
        v02::vu::Host::monotonic_us(self)
    }

    fn random_u64(&mut self) -> u64 {
        v02::vu::Host::random_u64(self)
    }

    fn file(&mut self, name: String) -> Option<Vec<u8>> {
        v02::vu::Host::file(self, name)
    }
}

impl log::Host for VuHost {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => v02::log::Level::Trace,
            log::Level::Debug => v02::log::Level::Debug,
            log::Level::Info => v02::log::Level::Info,
            log::Level::Warn => v02::log::Level::Warn,
            log::Level::Error => v02::log::Level::Error,
        };
        v02::log::Host::log(self, level, message)
    }
}
