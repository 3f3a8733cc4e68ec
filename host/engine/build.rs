//! Embeds the builtin plugins (the http-steps component) into the engine,
//! so `builtin: http-steps` needs no file at run time. They are WASM
//! components built by another toolchain, so a build without them stops
//! here with the command that makes them, instead of producing a binary
//! whose builtins fail at run time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let builtin = "../../target/components/http_steps.wasm";
    println!("cargo:rerun-if-changed={builtin}");
    let bytes = std::fs::read(builtin).map_err(|e| {
        format!(
            "the builtin http-steps plugin is missing ({builtin} relative to host/engine: {e}); \
             build it first with `scripts/build-plugins.sh rust` (or `scripts/build-plugins.sh`), then build again"
        )
    })?;
    std::fs::write(out.join("http_steps.wasm"), bytes)?;
    Ok(())
}
