//! The VU's cookie jar. Cookies the server sets are kept and sent back on
//! their own (domain, path, expiry, Secure as RFC 6265 has them); this is
//! for reading them, and for adding one the server did not set. The jar
//! is emptied at each iteration's start unless `http.noCookiesReset`.

use crate::bindings::loadtest::scenario::cookies as wit;

/// The cookies a request to `url` would send, as (name, value).
pub fn for_url(url: &str) -> Vec<(String, String)> {
    wit::for_url(url)
}

/// One cookie's value for `url`, if the jar has it.
pub fn get(url: &str, name: &str) -> Option<String> {
    for_url(url)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Stores a cookie as if `url` had set it: `set_cookie` is a
/// `Set-Cookie` value such as `sid=abc; Path=/; Secure`.
pub fn set(url: &str, set_cookie: &str) -> crate::Result<()> {
    wit::set(url, set_cookie).map_err(crate::Error)
}

pub fn clear() {
    wit::clear()
}

/// A cookie jar of the scenario's own (k6's `new http.CookieJar()`),
/// beside the VU's: kept across iterations until dropped. Requests use it
/// inside [`Jar::within`]. A VU may hold at most 1,024 at once.
pub struct Jar(wit::Jar);

impl Default for Jar {
    fn default() -> Self {
        Jar::new()
    }
}

impl Jar {
    pub fn new() -> Jar {
        Jar(wit::Jar::new())
    }

    /// The cookies a request to `url` would send from this jar.
    pub fn for_url(&self, url: &str) -> Vec<(String, String)> {
        self.0.for_url(url)
    }

    /// Stores a cookie in this jar as if `url` had set it.
    pub fn set(&self, url: &str, set_cookie: &str) -> crate::Result<()> {
        self.0.set(url, set_cookie).map_err(crate::Error)
    }

    pub fn clear(&self) {
        self.0.clear()
    }

    /// Runs `f` with this jar in place of the VU's: the requests it sends
    /// (redirects and batches too) send and store their cookies here.
    pub fn within<T>(&self, f: impl FnOnce() -> T) -> T {
        wit::use_jar(Some(&self.0));
        let out = f();
        wit::use_jar(None);
        out
    }
}
