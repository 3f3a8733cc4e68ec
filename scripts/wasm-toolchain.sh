#!/usr/bin/env bash
# Prints the cargo command that builds wasm32-wasip2 guests here, as two
# bash arrays, installing Debian's wasm-capable rustc when rustup lacks the
# target. The guest flags live inside WASM_CARGO (an `env ... cargo`
# prefix), never in the caller's environment: exported, they would reach
# every later host `cargo install`, whose build scripts then fail to link.
# Usage: out=$(scripts/wasm-toolchain.sh); eval "$out"
#        "${WASM_CARGO[@]}" build --target wasm32-wasip2 "${WASM_FLAGS[@]}" ...
set -euo pipefail

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo 'WASM_CARGO=(cargo); WASM_FLAGS=()'
  exit 0
fi

need_install=0
for f in /usr/bin/rustc /usr/lib/rustlib/src /usr/lib/wasm32-wasi/libc.a; do
  [ -e "$f" ] || need_install=1
done
if [ -e /usr/bin/rust-lld ] && [ ! -e "$(readlink -f /usr/bin/rust-lld)" ]; then need_install=1; fi
if [ "$need_install" = 1 ]; then
  echo "installing Debian's wasm-capable Rust toolchain (rustc-web)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q rustc-web cargo-web rust-web-src wasi-libc >&2
  # rust-lld points at a versioned lld that rustc-web does not pull in.
  lld=$(basename "$(readlink /usr/bin/rust-lld)")
  apt-get install -y -q "$lld" >&2
fi
rustup toolchain list | grep -q '^debian-wasm' || rustup toolchain link debian-wasm /usr >&2
echo 'WASM_CARGO=(env RUSTC_BOOTSTRAP=1 "RUSTFLAGS=-L /usr/lib/wasm32-wasi -Clink-self-contained=no" cargo +debian-wasm); WASM_FLAGS=(-Zbuild-std=std,panic_abort)'
