//! Plugins that ship inside the binary, so `builtin: http-steps` (and
//! `javascript`, which runs k6-style scripts) needs no
//! file at run time. build.rs embeds the components scripts/build-plugins.sh
//! produced (and stops the build when they are missing).

const HTTP_STEPS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/http_steps.wasm"));
const JAVASCRIPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/javascript.wasm"));

pub fn names() -> &'static [&'static str] {
    &["http-steps", "javascript"]
}

pub fn bytes(name: &str) -> Result<Vec<u8>, String> {
    let bytes = match name {
        "http-steps" => HTTP_STEPS,
        "javascript" => JAVASCRIPT,
        other => {
            return Err(format!(
                "`{other}` is not a builtin plugin; builtins: {}",
                names().join(", ")
            ));
        }
    };
    Ok(bytes.to_vec())
}
