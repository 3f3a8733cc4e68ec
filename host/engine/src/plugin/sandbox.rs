//! The limits a guest runs under, and the errors that say it hit one.

use std::time::Duration;
use wasmtime::ResourceLimiter;

/// Per-VU-instance limits, from the config's `sandbox` section.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: usize,
    /// Epoch ticks of guest execution allowed per export call.
    pub cpu_ticks: u64,
    /// Wall-clock limit of instantiate + `init`, and of `setup` and `teardown`.
    pub start_timeout: Duration,
}

impl Limits {
    pub fn new(memory_mb: u32, cpu_per_call: Duration) -> Self {
        let ticks = (cpu_per_call.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64;
        Limits {
            memory_bytes: (memory_mb as usize) << 20,
            cpu_ticks: ticks,
            start_timeout: Duration::from_secs(60),
        }
    }

    /// The config's `sandbox` section.
    pub fn of(s: &crate::config::SandboxOptions) -> Self {
        Limits {
            start_timeout: s.init_timeout.0,
            ..Limits::new(s.memory_mb, s.cpu_per_call.0)
        }
    }
}

/// A guest went over a limit; raised as the trap's error so the caller can
/// tell it from an ordinary trap.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    #[error(
        "plugin tried to grow its memory to {desired} bytes, over the limit of {limit} bytes (sandbox.memoryMb)"
    )]
    Memory { desired: usize, limit: usize },
    #[error(
        "plugin holds {held} bytes in {responses} responses it has not dropped (send-held), over the memory limit of {limit} bytes (sandbox.memoryMb); drop responses once read, or raise the limit"
    )]
    Held {
        held: usize,
        responses: usize,
        limit: usize,
    },
    #[error(
        "plugin holds {0} cookie jars it has not dropped (k6: `new http.CookieJar()`), the most a VU may; drop jars it no longer uses"
    )]
    Jars(usize),
    #[error(
        "plugin ran for more than {0:?} of CPU in one call (sandbox.cpuPerCall); endless loop?"
    )]
    Cpu(Duration),
}

/// Tracks memory growth and guest CPU ticks for one instance.
pub struct Meter {
    pub limits: Limits,
    pub ticks: u64,
}

impl ResourceLimiter for Meter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(Violation::Memory {
                desired,
                limit: self.limits.memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}
