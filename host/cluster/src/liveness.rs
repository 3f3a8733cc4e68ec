//! When each peer was last heard from, on the leader: a hello answered,
//! or a Raft call answered. A learner hears from the leader at least
//! every keepalive and a voter every heartbeat, so during a run and at
//! rest the Raft traffic already proves each member alive; the leader
//! greets only the peers it has not heard from lately (one call a second
//! per member less, at 100 nodes about a third of the leader's calls).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Liveness {
    heard: Mutex<HashMap<String, Instant>>,
}

impl Liveness {
    fn heard(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `peer` answered a call just now.
    pub fn answered(&self, peer: &str) {
        let now = Instant::now();
        let mut heard = self.heard();
        match heard.get_mut(peer) {
            Some(t) => *t = now,
            None => {
                heard.insert(peer.to_owned(), now);
            }
        }
    }

    pub fn answered_all<'a>(&self, peers: impl Iterator<Item = &'a String>) {
        let now = Instant::now();
        let mut heard = self.heard();
        for p in peers {
            heard.insert(p.clone(), now);
        }
    }

    /// A new leader's record: every peer counts as having answered now,
    /// so nothing heard long ago makes a live peer look gone, and a dead
    /// one counts as silent the full time later.
    pub fn start_afresh(&self, peers: &[String]) {
        let now = Instant::now();
        let mut heard = self.heard();
        heard.clear();
        heard.extend(peers.iter().map(|p| (p.clone(), now)));
    }

    /// Whether a peer that used to answer has been silent for `after`
    /// (one never heard from is not known to be gone).
    pub fn silent(&self, peer: &str, after: Duration) -> bool {
        self.heard().get(peer).is_some_and(|t| t.elapsed() >= after)
    }

    /// Whether `peer` answered something within `within`.
    pub fn heard_within(&self, peer: &str, within: Duration) -> bool {
        self.heard().get(peer).is_some_and(|t| t.elapsed() < within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_silent_only_after_it_answered_once() {
        let l = Liveness::default();
        let a = "127.0.0.1:1".to_owned();
        assert!(!l.silent(&a, Duration::ZERO));
        assert!(!l.heard_within(&a, Duration::from_secs(5)));
        l.answered(&a);
        assert!(l.heard_within(&a, Duration::from_secs(5)));
        assert!(l.silent(&a, Duration::ZERO));
        assert!(!l.silent(&a, Duration::from_secs(5)));
    }

    #[test]
    fn a_new_record_forgets_peers_not_listed() {
        let l = Liveness::default();
        let (a, b) = ("127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned());
        l.answered(&a);
        l.start_afresh(std::slice::from_ref(&b));
        assert!(!l.heard_within(&a, Duration::from_secs(5)));
        assert!(l.heard_within(&b, Duration::from_secs(5)));
    }
}
