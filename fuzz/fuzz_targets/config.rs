//! Whatever text a config holds, parsing and validation end in a config
//! or an error, and an accepted one can be turned into a Bundle's parts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loadtest_engine::config::parse_with_env(std::path::Path::new("f.yaml"), text, |_| None);
    }
});
