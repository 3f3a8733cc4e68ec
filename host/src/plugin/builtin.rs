//! Plugins that ship inside the binary, so `builtin: http-steps` needs no
//! file at run time. build.rs embeds the components scripts/build-plugins.sh
//! produced; a binary built before them says so instead of failing oddly.

const HTTP_STEPS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/http_steps.wasm"));

pub fn names() -> &'static [&'static str] {
    &["http-steps"]
}

pub fn bytes(name: &str) -> Result<Vec<u8>, String> {
    let bytes = match name {
        "http-steps" => HTTP_STEPS,
        other => {
            return Err(format!(
                "`{other}` is not a builtin plugin; builtins: {}",
                names().join(", ")
            ));
        }
    };
    if bytes.is_empty() {
        return Err(format!(
            "this loadtest binary was built without its builtin `{name}` plugin: run scripts/build-plugins.sh, then build loadtest again"
        ));
    }
    Ok(bytes.to_vec())
}
