#!/usr/bin/env bash
# Prints the tools that build C guests into components, installing what
# is missing: Debian's clang (the version Debian's Rust links against, as
# /usr/bin/rust-clang names it; its LLVM has the wasm backend) with
# Debian's wasi-libc, wit-bindgen's C generator (cargo install, cached
# outside the repo), and wasm-component-ld, which comes with rustc: it
# links like wasm-ld, then makes the component and adds the WASI preview1
# reactor adapter.
# Usage: eval "$(scripts/c-toolchain.sh)"; $CLANG ...; $WASM_COMPONENT_LD ...
set -euo pipefail

clang=$(readlink /usr/bin/rust-clang 2>/dev/null || echo clang-22)
lld=$(readlink /usr/bin/rust-lld 2>/dev/null || echo lld-22)
if ! command -v "$clang" >/dev/null || [ ! -e /usr/lib/wasm32-wasi/libc.a ] || ! command -v "wasm-ld-${lld#lld-}" >/dev/null; then
  echo "installing $clang, $lld and wasi-libc for C guests..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "$clang" "$lld" wasi-libc >&2
fi
# compiler-rt's builtins for wasm32 (wasi-libc's number parsing needs __multi3).
if [ ! -e "$("$clang" --target=wasm32-wasip1 -print-libgcc-file-name)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "libclang-rt-${clang#clang-}-dev-wasm32" >&2
fi

tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/tools"
wit_bindgen="$tools/bin/wit-bindgen"
if [ ! -x "$wit_bindgen" ]; then
  echo "installing wit-bindgen's C generator into $tools (once)..." >&2
  cargo install --locked --quiet --root "$tools" wit-bindgen-cli@0.63.0 >&2 ||
    { echo "c-toolchain.sh: installing wit-bindgen-cli failed (the error is above)" >&2; exit 1; }
fi

host=$(rustc -vV | sed -n 's/^host: //p')
component_ld="$(rustc --print sysroot)/lib/rustlib/$host/bin/wasm-component-ld"
[ -x "$component_ld" ] || { echo "c-toolchain.sh: rustc has no wasm-component-ld at $component_ld (Rust 1.82 or later ships it)" >&2; exit 1; }

echo "CLANG=$(command -v "$clang"); WASM_LD=$(command -v "wasm-ld-${lld#lld-}"); WIT_BINDGEN=$wit_bindgen; WASM_COMPONENT_LD=$component_ld"
