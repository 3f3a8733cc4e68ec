//! Compiles the cluster's protobuf with a pure-Rust protobuf compiler, so
//! building needs no `protoc` on the machine, and embeds the builtin
//! plugins scripts/build-plugins.sh built (an empty placeholder when it has
//! not run yet; the binary then says how to fix that when one is used).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let builtin = "../target/components/http_steps.wasm";
    println!("cargo:rerun-if-changed={builtin}");
    std::fs::write(
        out.join("http_steps.wasm"),
        std::fs::read(builtin).unwrap_or_default(),
    )?;
    let proto = "../proto/cluster.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
