//! Exit codes, documented in the README.

pub const OK: u8 = 0;
/// Bad config, bad plugin, or another error that stopped the run.
pub const ERROR: u8 = 1;
/// Some VUs could not start (instantiate or `init` failed).
pub const INIT_FAILED: u8 = 3;
/// A threshold failed (k6 uses the same code).
pub const THRESHOLDS_FAILED: u8 = 99;
/// The script ended the test (`exec.test.abort()`; k6 uses the same code).
pub const SCRIPT_ABORTED: u8 = 108;
/// The script marked the test failed (`exec.test.fail()`) and nothing
/// above says more (k6 uses the same code).
pub const MARKED_FAILED: u8 = 110;
/// Stopped by Ctrl-C or SIGTERM (the reports still cover what ran).
pub const INTERRUPTED: u8 = 130;
