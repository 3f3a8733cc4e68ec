//! Giving freed memory back, without giving it back on every free.
//!
//! glibc's malloc keeps what a burst freed in the arena of the thread that
//! freed it (a catch-up after a stall, a batch of VUs made at once):
//! measured on a node, 89 MiB held against 17 MiB in use, so a long run's
//! resident memory only ever rose. Asking it to trim now and then returns
//! those pages; live data is untouched.
//!
//! The opposite waste is at its defaults: a block over 128 KiB (a
//! latency histogram is 188 KiB) comes from its own `mmap` and goes back
//! when freed, and an arena whose free top passes its trim threshold
//! hands it back to the kernel at once; the next such block then faults
//! every page in again, zeroed. On a 100-node cluster's leader, which
//! decodes and merges a histogram per node per second, those faults and
//! their zeroing were about a tenth of its CPU. So blocks up to 4 MiB
//! come from the arenas, which keep up to 16 MiB of free top between the
//! periodic trims, and the trim every 20 s is what returns memory.

/// Often enough that a burst's leftovers do not outlive a minute, rarely
/// enough that the trim (a walk over every arena) costs nothing a run
/// would notice.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// Blocks up to this size come from the arenas, not from `mmap`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

/// Free top an arena keeps between trims.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 16 << 20;

/// Sets malloc's thresholds (unless the environment sets its own) and
/// starts the background trim; does nothing where malloc is not glibc's.
pub fn start_trimming() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if !thresholds_set_by_environment() {
            // SAFETY: mallopt only changes malloc's own parameters, under
            // malloc's own lock.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        }
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EVERY);
                    // SAFETY: malloc_trim only takes malloc's own locks.
                    unsafe { libc::malloc_trim(0) };
                }
            });
        if let Err(e) = spawned {
            tracing::debug!("no memory trimming thread: {e}");
        }
    }
}

/// An operator tuning malloc through its environment variables keeps
/// their values.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn thresholds_set_by_environment() -> bool {
    std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."))
}
