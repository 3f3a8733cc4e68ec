//! A script's verdicts on the whole test: a request to end it (k6's
//! `exec.test.abort()`), whose first reason is kept and whoever runs the
//! test (standalone, or a cluster node's worker) woken to stop it; and a
//! mark that it failed (`exec.test.fail()`), which lets it run on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default, Clone)]
pub struct TestAbort {
    reason: TestFail,
    asked: Arc<Notify>,
    /// Read before every iteration by every VU: a lock there would be
    /// taken millions of times a second for an event that happens once.
    is_asked: Arc<AtomicBool>,
}

impl TestAbort {
    /// Asks for the test to end; only the first reason counts. True for
    /// the first ask.
    pub fn ask(&self, reason: String) -> bool {
        if !self.reason.mark(reason) {
            return false;
        }
        self.is_asked.store(true, Ordering::Release);
        self.asked.notify_waiters();
        true
    }

    /// Whether a script has asked: a VU then starts no more iterations,
    /// even before whoever runs the test has stopped it.
    pub fn is_asked(&self) -> bool {
        self.is_asked.load(Ordering::Acquire)
    }

    /// Why the test was aborted, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.reason()
    }

    /// Waits until a script asks, and gives its reason.
    pub async fn asked(&self) -> String {
        loop {
            let notified = self.asked.notified();
            if let Some(r) = self.reason() {
                return r;
            }
            notified.await;
        }
    }
}

/// A script marked the test failed (k6's `exec.test.fail()`): the run
/// goes on, and its report and exit code say so. The first reason is kept
/// (an abort keeps its reason the same way).
#[derive(Default, Clone)]
pub struct TestFail(Arc<Mutex<Option<String>>>);

impl TestFail {
    /// True for the first mark.
    pub fn mark(&self, reason: String) -> bool {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_some() {
            return false;
        }
        *r = Some(reason);
        true
    }

    /// Why the test was marked failed, if it was.
    pub fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wakes_the_waiter_and_later_ones_are_ignored() {
        let abort = TestAbort::default();
        let waiter = tokio::spawn({
            let abort = abort.clone();
            async move { abort.asked().await }
        });
        assert!(!abort.is_asked());
        assert!(abort.ask("login failed".into()));
        assert!(abort.is_asked());
        assert!(!abort.ask("second".into()));
        assert_eq!(waiter.await.unwrap(), "login failed");
        // Asked before anyone waits: the wait returns at once.
        assert_eq!(abort.asked().await, "login failed");
    }

    #[test]
    fn a_fail_mark_keeps_the_first_reason() {
        let fail = TestFail::default();
        assert_eq!(fail.reason(), None);
        assert!(fail.mark("checkout broke".into()));
        assert!(!fail.clone().mark("later".into()));
        assert_eq!(fail.reason().as_deref(), Some("checkout broke"));
    }
}
