//! Where a plugin's requests may go (`sandbox.blockHostnames`,
//! `sandbox.blockIPs`, `sandbox.allowIPs`, like k6's `blockHostnames` and
//! `blacklistIPs`).
//!
//! A node runs plugins it did not write, often inside a cloud network
//! whose metadata server hands out credentials to anyone who asks. So
//! link-local addresses and the metadata names are blocked unless a
//! config allows them. The check runs on the addresses a name resolves
//! to, and the connection goes to an address that passed, so a name that
//! resolves somewhere else on a second lookup cannot slip through; every
//! redirect hop opens its connection here too.

use super::RequestError;
use super::hosts::Hosts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// Blocked unless `allowIPs` says otherwise: link-local (the metadata
/// servers of AWS, GCP and Azure live at 169.254.169.254) and AWS's IPv6
/// metadata address.
const DEFAULT_BLOCKED_NETS: [&str; 3] = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];
const DEFAULT_BLOCKED_HOSTS: [&str; 2] = ["metadata.google.internal", "metadata.goog"];

#[derive(Debug, Clone)]
pub struct Egress {
    hosts: Vec<String>,
    blocked: Vec<IpNet>,
    allowed: Vec<IpNet>,
}

impl Default for Egress {
    fn default() -> Self {
        Egress::new(&[], &[], &[]).expect("the defaults parse")
    }
}

impl Egress {
    /// `hosts` are names or `*.suffix` patterns; `block` and `allow` are
    /// addresses or CIDR ranges. An error names the entry that is wrong.
    pub fn new(hosts: &[String], block: &[String], allow: &[String]) -> Result<Egress, String> {
        let nets = |list: &[String], what: &str| -> Result<Vec<IpNet>, String> {
            list.iter().map(|e| parse_net(e, what)).collect()
        };
        let mut blocked = nets(block, "sandbox.blockIPs")?;
        blocked.extend(
            DEFAULT_BLOCKED_NETS
                .iter()
                .map(|n| n.parse::<IpNet>().expect("valid")),
        );
        let mut names: Vec<String> = hosts.iter().map(|h| normalise(h)).collect();
        if let Some(bad) = names.iter().find(|h| h.is_empty() || h.contains('/')) {
            return Err(format!(
                "sandbox.blockHostnames entry `{bad}` is not a host name or a `*.example.com` pattern"
            ));
        }
        names.extend(DEFAULT_BLOCKED_HOSTS.iter().map(|h| h.to_string()));
        Ok(Egress {
            hosts: names,
            blocked,
            allowed: nets(allow, "sandbox.allowIPs")?,
        })
    }

    /// Why `host` may not be asked for by name, if it may not.
    fn host_blocked(&self, host: &str) -> Option<&str> {
        let host = normalise(host);
        self.hosts
            .iter()
            .find(|p| match p.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with('.')),
                None => host == **p,
            })
            .map(String::as_str)
    }

    /// The range that blocks `ip`, unless an allowed range holds it.
    fn ip_blocked(&self, ip: IpAddr) -> Option<&IpNet> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        self.blocked.iter().find(|n| n.contains(&ip))
    }

    /// The addresses `host:port` may be connected to, in resolver order:
    /// from `hosts` when it names one (k6's `hosts`), else from DNS. An
    /// address given in `hosts` is checked like one DNS gave.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        hosts: &Hosts,
    ) -> Result<Vec<SocketAddr>, RequestError> {
        if let Some(p) = self.host_blocked(host) {
            return Err(RequestError::Blocked(format!(
                "`{host}` is blocked (sandbox.blockHostnames `{p}`)"
            )));
        }
        let found: Vec<SocketAddr> = match hosts.get(host, port) {
            Some(addr) => vec![addr],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| RequestError::Connect(format!("resolving `{host}`: {e}")))?
                .collect(),
        };
        let mut why = None;
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| match self.ip_blocked(a.ip()) {
                Some(net) => {
                    why.get_or_insert(format!("{} is in the blocked range {net}", a.ip()));
                    false
                }
                None => true,
            })
            .collect();
        match (allowed.is_empty(), why) {
            (true, Some(why)) => Err(RequestError::Blocked(format!(
                "`{host}`: {why} (sandbox.blockIPs, or allow it with sandbox.allowIPs)"
            ))),
            (true, None) => Err(RequestError::Connect(format!(
                "`{host}` resolves to no address"
            ))),
            (false, _) => Ok(allowed),
        }
    }
}

/// A host name as the checks compare it: trimmed, lower case, without a
/// trailing dot or IPv6 brackets.
pub(super) fn normalise(host: &str) -> String {
    host.trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn parse_net(entry: &str, what: &str) -> Result<IpNet, String> {
    let e = entry.trim();
    e.parse::<IpNet>()
        .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "{what} entry `{entry}` is not an address or a range like 10.0.0.0/8 or fd00::/8"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_addresses_are_blocked_by_default_and_can_be_allowed() {
        let e = Egress::default();
        assert!(e.ip_blocked(ip("169.254.169.254")).is_some());
        assert!(e.ip_blocked(ip("::ffff:169.254.169.254")).is_some());
        assert!(e.ip_blocked(ip("fd00:ec2::254")).is_some());
        assert!(e.ip_blocked(ip("127.0.0.1")).is_none());
        assert!(e.host_blocked("Metadata.Google.Internal.").is_some());
        let lab = Egress::new(&[], &[], &["169.254.10.0/24".into()]).unwrap();
        assert!(lab.ip_blocked(ip("169.254.10.7")).is_none());
        assert!(lab.ip_blocked(ip("169.254.169.254")).is_some());
    }

    #[test]
    fn configured_hosts_and_ranges_are_blocked() {
        let e = Egress::new(
            &["*.internal.example".into(), "admin.test".into()],
            &["10.0.0.0/8".into(), "127.0.0.2".into()],
            &[],
        )
        .unwrap();
        assert!(e.host_blocked("api.internal.example").is_some());
        assert!(e.host_blocked("internal.example").is_some());
        assert!(e.host_blocked("notinternal.example").is_none());
        assert!(e.host_blocked("ADMIN.test").is_some());
        assert!(e.ip_blocked(ip("10.1.2.3")).is_some());
        assert!(e.ip_blocked(ip("127.0.0.2")).is_some());
        assert!(e.ip_blocked(ip("127.0.0.1")).is_none());
        let err = Egress::new(&[], &["10.0.0.0/33".into()], &[]).unwrap_err();
        assert!(
            err.contains("sandbox.blockIPs entry `10.0.0.0/33`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_blocked_address_is_refused_before_any_connection() {
        let e = Egress::new(&[], &["127.0.0.2".into()], &[]).unwrap();
        let none = Hosts::default();
        let err = e.resolve("127.0.0.2", 80, &none).await.unwrap_err();
        assert_eq!(err.kind(), "blocked");
        assert!(
            err.to_string().contains("blocked range 127.0.0.2/32"),
            "{err}"
        );
        assert_eq!(e.resolve("127.0.0.1", 80, &none).await.unwrap().len(), 1);
        let err = e
            .resolve("metadata.google.internal", 80, &none)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "blocked");
    }

    #[tokio::test]
    async fn an_address_from_hosts_is_checked_like_one_from_dns() {
        let e = Egress::new(&[], &["127.0.0.2".into()], &[]).unwrap();
        let map = [
            ("shop.test".to_string(), "127.0.0.2".to_string()),
            ("ok.test".to_string(), "127.0.0.1:9".to_string()),
        ];
        let hosts = Hosts::new(&map.into_iter().collect()).unwrap();
        let err = e.resolve("shop.test", 80, &hosts).await.unwrap_err();
        assert_eq!(err.kind(), "blocked");
        let ok = e.resolve("ok.test", 80, &hosts).await.unwrap();
        assert_eq!(ok, vec!["127.0.0.1:9".parse().unwrap()]);
    }
}
