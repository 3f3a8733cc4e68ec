#!/usr/bin/env bash
# Prints the tools that turn a Go (GOOS=wasip1) module into a component,
# installing what is missing into a cache outside the repo: wasm-tools
# (cargo install, only the component/print/parse parts) and the WASI
# preview1 reactor adapter, taken from the wasi-preview1-component-adapter-provider
# crate of the host's wasmtime version.
# Usage: eval "$(scripts/go-toolchain.sh)"; $WASM_TOOLS ...; $WASI_ADAPTER
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "go-toolchain.sh: Go 1.24 or later is needed for Go guests" >&2; exit 1; }
tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/tools"
wasm_tools="$tools/bin/wasm-tools"
if [ ! -x "$wasm_tools" ] || ! "$wasm_tools" parse --help >/dev/null 2>&1; then
  echo "installing wasm-tools into $tools (once)..." >&2
  cargo install --locked --quiet --force --root "$tools" wasm-tools@1.263.0 \
    --no-default-features --features component,validate,print,parse >&2 ||
    { echo "go-toolchain.sh: installing wasm-tools failed (the error is above)" >&2; exit 1; }
fi

wasmtime=$(sed -n '/^name = "wasmtime"$/{n;s/^version = "\(.*\)"$/\1/p;q}' Cargo.lock)
adapter="$tools/wasi-adapter-$wasmtime/wasi_snapshot_preview1.reactor.wasm"
if [ ! -f "$adapter" ]; then
  echo "fetching the WASI preview1 adapter of wasmtime $wasmtime (once)..." >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/src"
  cat >"$work/Cargo.toml" <<TOML
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
wasi-preview1-component-adapter-provider = "=$wasmtime"
[workspace]
TOML
  touch "$work/src/lib.rs"
  (cd "$work" && cargo fetch --quiet >&2)
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/wasi-preview1-component-adapter-provider-"$wasmtime".crate | head -1)
  mkdir -p "$(dirname "$adapter")"
  tar -xzf "$crate" -O "wasi-preview1-component-adapter-provider-$wasmtime/artefacts/wasi_snapshot_preview1.reactor.wasm" >"$adapter.tmp"
  mv "$adapter.tmp" "$adapter"
fi
echo "WASM_TOOLS=$wasm_tools; WASI_ADAPTER=$adapter"
