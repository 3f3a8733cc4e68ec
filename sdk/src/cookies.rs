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
