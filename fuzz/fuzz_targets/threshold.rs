//! Threshold keys and expressions, as a config or a k6 script writes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (key, expr) = text.split_once('\n').unwrap_or((text, "p(95)<1"));
        let _ = loadtest_engine::threshold::parse_selector(key);
        let _ = loadtest_engine::threshold::parse_expr(expr);
    }
});
