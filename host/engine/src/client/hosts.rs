//! Names answered without asking DNS (k6's `hosts` option, the config's
//! `http.hosts`): how a script written for `shop.example.com` is pointed
//! at a staging address or a local copy, with the `Host` header and the
//! TLS server name still those of the URL.
//!
//! Keys are `name`, `name:port` or `*.suffix` (every name under
//! `suffix`); values are an address, `ip` or `ip:port`. The most specific
//! key wins: `name:port`, then `name`, then the longest `*.suffix`. A
//! value without a port keeps the URL's.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hosts {
    /// (lowercase name or `*.suffix`, port if the key names one) → where.
    entries: Vec<(String, Option<u16>, Where)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl Hosts {
    /// An error names the entry that is wrong and what would be right.
    pub fn new(map: &BTreeMap<String, String>) -> Result<Hosts, String> {
        let entries = map
            .iter()
            .map(|(key, value)| {
                let (name, port) = parse_key(key)?;
                Ok((name, port, parse_value(key, value)?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Hosts { entries })
    }

    /// Where `host:port` goes instead of what DNS says, if a key covers it.
    pub fn get(&self, host: &str, port: u16) -> Option<SocketAddr> {
        if self.entries.is_empty() {
            return None;
        }
        let host = super::egress::normalise(host);
        let exact = |p: Option<u16>| {
            self.entries
                .iter()
                .find(|(n, kp, _)| *n == host && *kp == p)
        };
        let wildcard = || {
            self.entries
                .iter()
                .filter(|(n, kp, _)| kp.is_none_or(|kp| kp == port) && covers(n, &host))
                .max_by_key(|(n, kp, _)| (n.len(), kp.is_some()))
        };
        let (_, _, to) = exact(Some(port))
            .or_else(|| exact(None))
            .or_else(wildcard)?;
        Some(match *to {
            Where::Ip(ip) => SocketAddr::new(ip, port),
            Where::Addr(a) => a,
        })
    }
}

/// Whether the pattern `*.suffix` covers `host` (a subdomain of `suffix`).
fn covers(pattern: &str, host: &str) -> bool {
    pattern.strip_prefix("*.").is_some_and(|suffix| {
        host.strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
    })
}

fn parse_key(key: &str) -> Result<(String, Option<u16>), String> {
    let bad =
        || format!("key `{key}` is not a host name, `name:port` or a `*.example.com` pattern");
    let k = key.trim().to_ascii_lowercase();
    // Not `normalise`: a key's port comes off before its trailing dot.
    let (name, port) = match k.rsplit_once(':') {
        Some((n, p)) => (n.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?)),
        None => (k, None),
    };
    let plain = name.strip_prefix("*.").unwrap_or(&name);
    let valid = !plain.is_empty()
        && plain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !valid {
        return Err(bad());
    }
    Ok((name.trim_end_matches('.').to_owned(), port))
}

fn parse_value(key: &str, value: &str) -> Result<Where, String> {
    let v = value.trim();
    v.parse::<SocketAddr>()
        .map(Where::Addr)
        .or_else(|_| {
            v.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map(Where::Ip)
        })
        .map_err(|_| {
            format!(
                "`{key}`: `{value}` is not an address; give an IP (`10.0.0.5`) or an IP and port (`10.0.0.5:8443`, `[::1]:8443`)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(pairs: &[(&str, &str)]) -> Result<Hosts, String> {
        Hosts::new(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_most_specific_key_wins_and_a_bare_ip_keeps_the_port() {
        let h = hosts(&[
            ("shop.test", "10.0.0.1"),
            ("shop.test:443", "10.0.0.2:8443"),
            ("*.shop.test", "10.0.0.3"),
            ("*.eu.shop.test", "10.0.0.4:81"),
            ("v6.test", "[::1]"),
        ])
        .unwrap();
        assert_eq!(h.get("shop.test", 80), addr("10.0.0.1:80"));
        assert_eq!(h.get("SHOP.test.", 443), addr("10.0.0.2:8443"));
        assert_eq!(h.get("api.shop.test", 8080), addr("10.0.0.3:8080"));
        assert_eq!(h.get("a.eu.shop.test", 80), addr("10.0.0.4:81"));
        assert_eq!(h.get("v6.test", 80), addr("[::1]:80"));
        // A pattern covers subdomains only, not a name that merely ends alike.
        assert_eq!(h.get("myshop.test", 80), None);
        assert_eq!(h.get("other.test", 80), None);
    }

    #[test]
    fn a_key_with_a_port_covers_that_port_only() {
        let h = hosts(&[("shop.test:8080", "127.0.0.1:9000")]).unwrap();
        assert_eq!(h.get("shop.test", 8080), addr("127.0.0.1:9000"));
        assert_eq!(h.get("shop.test", 80), None);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = hosts(&[("shop.test", "staging.internal")]).unwrap_err();
        assert!(
            e.contains("`shop.test`") && e.contains("is not an address"),
            "{e}"
        );
        let e = hosts(&[("shop.test:http", "10.0.0.1")]).unwrap_err();
        assert!(e.contains("`shop.test:http`"), "{e}");
        let e = hosts(&[("http://shop.test", "10.0.0.1")]).unwrap_err();
        assert!(e.contains("is not a host name"), "{e}");
    }
}
