//! Measurements: each VU buffers raw events locally ([`Recorder`]) and hands
//! them over to the shared [`Metrics`] in small batches, so the request hot
//! path rarely takes a lock. Merging is exact (histogram addition), which
//! is also how a cluster will combine nodes.

mod collector;
mod expected;
mod hdr_v2;
mod recorder;
mod stats;
mod tags;
mod wire;

pub use collector::{Closed, Collector, INTERVAL, Row, row};
pub use expected::Expected;
pub use recorder::{Event, FailureKind, LateEntry, Recorder, Sink};
pub use stats::{
    CheckStats, GaugeStats, GeneratorSecond, GeneratorStats, GroupStats, Latency, Metrics, Phases,
    RateStats, RequestStats, ScenarioStats, Tagged, TrendStats, histogram,
};
pub use tags::{BUILTIN_TAGS, Context, Filters, TagFilter};

/// The scenario key of what runs outside every scenario: `setup` and
/// `teardown`. k6 gives their samples no `scenario` tag, so a threshold
/// on `{scenario:x}` does not count them, while one on the whole metric
/// does; a config may not name a scenario this way.
pub const NO_SCENARIO: &str = "";

/// A request's phases in microseconds, in the order of [`Phases::NAMES`]:
/// compact, because every request's sample carries them.
pub type PhaseMicros = [u32; 6];
