//! Plugins that ship inside the binary, so `builtin: http-steps` needs no
//! file at run time. build.rs embeds the components scripts/build-plugins.sh
//! produced (and stops the build when they are missing).

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
    Ok(bytes.to_vec())
}
