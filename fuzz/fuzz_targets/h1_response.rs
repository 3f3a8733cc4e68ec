//! Whatever a server sends, one exchange ends in a response or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head_only = data.first().is_some_and(|b| b & 1 == 1);
    let _ = loadtest_engine::client::exchange_in_memory(data, head_only, 1 << 16);
});
