//! k6's `http.batch`: a VU's requests sent side by side. Each lane is a
//! session of its own (connections kept between batches, the VU's cookie
//! jar shared) working through one host's queue; a host gets at most
//! `http.batchPerHost` lanes, and a semaphore keeps `http.batch` requests
//! in flight in all.

use crate::client::Client;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

pub(super) struct Lanes {
    /// The host each lane serves.
    pub hosts: Vec<String>,
    /// Per host, the indexes of the requests still to send.
    queues: Mutex<BTreeMap<String, VecDeque<usize>>>,
    pub permits: tokio::sync::Semaphore,
}

impl Lanes {
    /// Lanes for requests to `urls` (paths join the target; a URL that
    /// does not parse gets a lane too, and fails there as invalid).
    pub fn new<'a>(client: &Client, urls: impl Iterator<Item = &'a str>) -> Lanes {
        let limits = client.batching();
        let mut queues: BTreeMap<String, VecDeque<usize>> = BTreeMap::new();
        for (i, url) in urls.enumerate() {
            let host = client
                .resolve(url)
                .ok()
                .and_then(|u| u.authority().map(|a| a.to_string()))
                .unwrap_or_default();
            queues.entry(host).or_default().push_back(i);
        }
        let hosts = queues
            .iter()
            .flat_map(|(h, q)| {
                std::iter::repeat_n(h.clone(), q.len().min(limits.per_host as usize))
            })
            .collect();
        Lanes {
            hosts,
            queues: Mutex::new(queues),
            permits: tokio::sync::Semaphore::new(limits.total as usize),
        }
    }

    /// The next request for a lane serving `host`.
    pub fn next(&self, host: &str) -> Option<usize> {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(host)?
            .pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Batching, ClientOptions};
    use std::time::Duration;

    #[test]
    fn each_host_gets_at_most_its_share_of_lanes_and_every_request_one_turn() {
        let client = Client::new(&ClientOptions {
            base: Some("http://a.test".into()),
            timeout: Duration::from_secs(1),
            max_body: 1 << 20,
            max_redirects: 0,
            reset_cookies: true,
            batch: Batching {
                total: 4,
                per_host: 3,
            },
            connect_timeout: Duration::from_secs(1),
            http2_prior_knowledge: false,
            insecure_skip_tls_verify: false,
            egress: Default::default(),
            hosts: Default::default(),
            reuse: Default::default(),
            rps: 0.0,
            debug: Default::default(),
        })
        .unwrap();
        let urls = [
            "/1",
            "/2",
            "/3",
            "/4",
            "/5",
            "http://b.test/x",
            "http://b.test/y",
        ];
        let lanes = Lanes::new(&client, urls.iter().copied());
        let on = |h: &str| lanes.hosts.iter().filter(|x| *x == h).count();
        assert_eq!((on("a.test"), on("b.test")), (3, 2));
        assert_eq!(lanes.permits.available_permits(), 4);
        let mut taken: Vec<usize> = std::iter::from_fn(|| lanes.next("a.test")).collect();
        taken.extend(std::iter::from_fn(|| lanes.next("b.test")));
        assert_eq!(taken, vec![0, 1, 2, 3, 4, 5, 6]);
    }
}
