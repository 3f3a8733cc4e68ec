use super::Metrics;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why an iteration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// The scenario returned an error.
    Error,
    /// The plugin trapped (panic, unreachable, bad memory access...).
    Trap,
    /// The plugin used more CPU than `sandbox.cpuPerCall` allows.
    CpuLimit,
    /// The plugin tried to grow past `sandbox.memoryMb`.
    MemoryLimit,
    /// The iteration was still running when graceful stop ran out.
    Interrupted,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Trap => "trap",
            FailureKind::CpuLimit => "cpu_limit",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

/// One thing that happened in a VU.
#[derive(Debug, Clone)]
pub enum Event {
    Request {
        name: String,
        status: Option<u16>,
        error: Option<&'static str>,
        micros: u64,
        bytes: u64,
    },
    Check {
        name: String,
        passed: bool,
    },
    Counter {
        name: String,
        value: f64,
    },
    Trend {
        name: String,
        value: f64,
    },
    Iteration {
        micros: u64,
        failure: Option<(FailureKind, String)>,
    },
    InitFailed {
        message: String,
    },
}

/// The shared destination of every VU's events.
pub type Sink = Arc<Mutex<Metrics>>;

/// A VU's private event buffer.
pub struct Recorder {
    scenario: Arc<str>,
    events: Vec<Event>,
    sink: Sink,
    next_flush: Instant,
}

const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_AT_LEN: usize = 4096;

impl Recorder {
    pub fn new(scenario: Arc<str>, sink: Sink) -> Self {
        Recorder {
            scenario,
            events: Vec::with_capacity(16),
            sink,
            next_flush: Instant::now() + FLUSH_EVERY,
        }
    }

    pub fn record(&mut self, event: Event) {
        self.events.push(event);
        if self.events.len() >= FLUSH_AT_LEN {
            self.flush();
        }
    }

    /// Hands buffered events over if a second has passed since the last time.
    pub fn maybe_flush(&mut self, now: Instant) {
        if now >= self.next_flush {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        self.next_flush = Instant::now() + FLUSH_EVERY;
        if self.events.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        for event in self.events.drain(..) {
            sink.apply(&self.scenario, event);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}
