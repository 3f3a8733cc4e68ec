//! Embeds the builtin plugins (the http-steps and javascript components)
//! into the engine, so `builtin: http-steps` needs no file at run time.
//! They are WASM components built by another toolchain, so a build
//! without them stops here with the command that makes them, instead of
//! producing a binary whose builtins fail at run time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for (name, file) in [
        ("http-steps", "http_steps.wasm"),
        ("javascript", "javascript.wasm"),
    ] {
        let builtin = format!("../../target/components/{file}");
        println!("cargo:rerun-if-changed={builtin}");
        let bytes = std::fs::read(&builtin).map_err(|e| {
            format!(
                "the builtin {name} plugin is missing ({builtin} relative to host/engine: {e}); \
                 build it first with `scripts/build-plugins.sh rust` (or `scripts/build-plugins.sh`), then build again"
            )
        })?;
        std::fs::write(out.join(file), bytes)?;
    }
    Ok(())
}
