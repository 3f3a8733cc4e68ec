//! Panics are bugs. The process says so in words a user can act on, counts
//! them, and the part that panicked is contained where it ran (a VU's
//! iteration, a node's task) so the run and its data go on. A debug build
//! also has failpoints, so the tests can prove that containment.

use std::sync::atomic::{AtomicU64, Ordering};

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Replaces the default hook (a bare "thread panicked at" line) with an
/// error that names the place and asks for a report, and counts it.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "an unknown place".into());
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let trace = match std::env::var_os("RUST_BACKTRACE") {
            Some(v) if v != "0" => format!("\n{}", std::backtrace::Backtrace::force_capture()),
            _ => String::new(),
        };
        tracing::error!(
            "loadtest hit a bug: a panic at {place} (thread {thread}): {}. Where it can, \
             loadtest contains it and keeps the run's data; please report this message{}{trace}",
            message(info.payload()),
            if trace.is_empty() {
                " (RUST_BACKTRACE=1 adds a backtrace)"
            } else {
                ""
            }
        );
    }));
}

/// Panics seen by this process so far.
pub fn seen() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// A panic's message, from its payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Test-only faults, armed by `LOADTEST_FAILPOINT` in debug builds (never
/// in a release build): `iteration-panic=N` panics in the host during
/// every VU's iteration number N (0-based), `init-panic` during every
/// VU's start.
#[cfg(debug_assertions)]
pub mod failpoint {
    use std::sync::OnceLock;

    fn armed() -> &'static str {
        static ARMED: OnceLock<String> = OnceLock::new();
        ARMED.get_or_init(|| std::env::var("LOADTEST_FAILPOINT").unwrap_or_default())
    }

    pub fn iteration(n: u64) {
        if let Some(at) = armed().strip_prefix("iteration-panic=")
            && at == n.to_string()
        {
            panic!("failpoint iteration-panic={n}");
        }
    }

    pub fn init() {
        if armed() == "init-panic" {
            panic!("failpoint init-panic");
        }
    }
}
