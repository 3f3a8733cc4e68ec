use super::{Collector, Context, INTERVAL};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why an iteration failed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// loadtest itself panicked during the iteration: a bug of ours.
    Panic,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Trap => "trap",
            FailureKind::CpuLimit => "cpu_limit",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Panic => "panic",
        }
    }
}

/// One thing that happened in a VU.
#[derive(Debug, Clone)]
pub enum Event {
    Request {
        name: String,
        /// A standard method's name, or "OTHER".
        method: &'static str,
        status: Option<u16>,
        error: Option<&'static str>,
        /// Whether the VU expected this response ([`super::Expected`]);
        /// none when it judges nothing. Not expected counts as failed.
        expected: Option<bool>,
        micros: u64,
        /// Bytes read and written on the socket for it, under any TLS:
        /// k6's `data_received` and `data_sent`.
        bytes: u64,
        sent: u64,
        timings: super::PhaseMicros,
        ctx: Context,
    },
    Check {
        name: String,
        passed: bool,
        ctx: Context,
    },
    Counter {
        name: String,
        value: f64,
        ctx: Context,
    },
    Trend {
        name: String,
        value: f64,
        ctx: Context,
    },
    Gauge {
        name: String,
        value: f64,
        ctx: Context,
    },
    Rate {
        name: String,
        hit: bool,
        ctx: Context,
    },
    /// A group ended after `micros`.
    Group {
        group: Arc<str>,
        micros: u64,
    },
    Iteration {
        micros: u64,
        failure: Option<(FailureKind, String)>,
    },
    InitFailed {
        message: String,
    },
    /// An open-model start found no free VU and was skipped; `saturated`
    /// when the generator itself was short of CPU at that moment.
    Dropped {
        saturated: bool,
    },
    /// One second of the generator's own load (recorded by its probe).
    Generator(super::GeneratorSecond),
}

/// The shared destination of every VU's events.
pub type Sink = Arc<Mutex<Collector>>;

/// A VU's private event buffer. Every event in it belongs to one
/// interval; crossing into the next interval hands the buffer over first,
/// so each event is counted in the second it happened.
pub struct Recorder {
    scenario: Arc<str>,
    events: Vec<Event>,
    sink: Sink,
    epoch: Instant,
    interval: u64,
    boundary: Instant,
    /// Events recorded so far, for telling whether a span recorded any.
    recorded: u64,
}

/// A VU hands its events over in small batches, while they are still in
/// the cache: a second's worth (about 1,500 requests, 200 KiB) written
/// out and read back later cost page faults and cache misses on every
/// request (`Vec` growth and `Collector::apply`), for one lock taken per
/// 64 events instead of one a second.
const FLUSH_AT_LEN: usize = 64;

impl Recorder {
    pub fn new(scenario: Arc<str>, sink: Sink) -> Self {
        let epoch = sink.lock().unwrap_or_else(|p| p.into_inner()).epoch();
        let mut r = Recorder {
            scenario,
            // Grows to FLUSH_AT_LEN only in VUs that record: 64 events up front
            // cost a sleeping VU 2 KiB.
            events: Vec::with_capacity(16),
            sink,
            epoch,
            interval: 0,
            boundary: epoch,
            recorded: 0,
        };
        r.enter(Instant::now());
        r
    }

    fn enter(&mut self, now: Instant) {
        self.interval = Collector::interval_of(self.epoch, now);
        self.boundary = self.epoch + INTERVAL * (self.interval as u32 + 1);
    }

    /// The scenario this recorder's samples count under.
    pub fn scenario(&self) -> Arc<str> {
        self.scenario.clone()
    }

    /// Where this recorder flushes, for another recorder of the same VU.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// What an event recorded after this recorder is gone needs (a
    /// request cut off mid-flight, whose future is dropped with it).
    pub fn late_entry(&self) -> LateEntry {
        LateEntry {
            sink: self.sink.clone(),
            scenario: self.scenario.clone(),
            epoch: self.epoch,
        }
    }

    /// How many events this recorder has taken.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    pub fn record(&mut self, event: Event) {
        self.recorded += 1;
        let now = Instant::now();
        if now >= self.boundary {
            self.flush_at(now);
        }
        self.events.push(event);
        if self.events.len() >= FLUSH_AT_LEN {
            self.flush_at(now);
        }
    }

    /// Hands buffered events over if their interval has ended.
    pub fn maybe_flush(&mut self, now: Instant) {
        if now >= self.boundary {
            self.flush_at(now);
        }
    }

    pub fn flush(&mut self) {
        self.flush_at(Instant::now());
    }

    fn flush_at(&mut self, now: Instant) {
        if !self.events.is_empty() {
            let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
            sink.apply(self.interval, &self.scenario, self.events.drain(..));
        }
        self.enter(now);
    }
}

/// Records one event straight into the collector, in the interval it
/// happens in: for what happens while the VU's own recorder is dropped.
pub struct LateEntry {
    sink: Sink,
    scenario: Arc<str>,
    epoch: Instant,
}

impl LateEntry {
    pub fn record(&self, event: Event) {
        let idx = Collector::interval_of(self.epoch, Instant::now());
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        sink.apply(idx, &self.scenario, [event]);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}
