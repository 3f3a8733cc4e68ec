#!/usr/bin/env bash
# Checks the install path a fresh machine takes.
#
# scripts/check-install.sh            the cheap part (CI runs it every time):
#   the guest build flags stay inside the guest cargo command: after taking
#   wasm-toolchain.sh's output, the shell has no guest flag in its
#   environment and a host crate with a build script still builds and links.
# scripts/check-install.sh --fresh    the whole path: every toolchain script,
#   without build variables and with an empty tool cache (a new XDG_CACHE_HOME),
#   must install its tools and print them; fails on the first that does not.
#   Takes a quarter of an hour on two cores (it builds Consul and cargo tools).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

hygiene() {
  mkdir -p "$work/hostcrate/src"
  cat >"$work/hostcrate/Cargo.toml" <<'TOML'
[package]
name = "hostcrate"
version = "0.0.0"
edition = "2021"
build = "build.rs"
[workspace]
TOML
  echo 'fn main() { println!("cargo:rustc-env=BUILT_BY=build-script"); }' >"$work/hostcrate/build.rs"
  echo 'fn main() { println!("{}", env!("BUILT_BY")); }' >"$work/hostcrate/src/main.rs"
  (
    toolchain=$("$root/scripts/wasm-toolchain.sh")
    eval "$toolchain"
    "${WASM_CARGO[@]}" --version >/dev/null
    for var in RUSTFLAGS RUSTC_BOOTSTRAP CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET; do
      if [ -n "${!var+x}" ]; then
        echo "check-install: wasm-toolchain.sh leaked $var=${!var} into the caller's environment" >&2
        exit 1
      fi
    done
    cd "$work/hostcrate"
    out=$(CARGO_TARGET_DIR="$work/hostcrate/target" cargo run -q 2>&1) || {
      echo "check-install: a host crate with a build script fails to build after wasm-toolchain.sh:" >&2
      echo "$out" >&2
      exit 1
    }
    [ "$out" = build-script ] || { echo "check-install: the host crate printed '$out'" >&2; exit 1; }
  )
  echo "check-install: guest flags stay inside the guest cargo command; host builds link"
}

fresh() {
  local cache="$work/cache"
  mkdir -p "$cache"
  # A clean environment: this machine's own (network and CA settings that
  # registries need included), without any build variable a caller may
  # have set, and with an empty tool cache.
  local clean=(env -u RUSTFLAGS -u RUSTC_BOOTSTRAP -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS
    -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR -u CC -u CFLAGS -u WASM_CARGO -u WASM_FLAGS
    "XDG_CACHE_HOME=$cache")
  local script start
  for script in wasm-toolchain quickjs-toolchain js-toolchain py-toolchain c-toolchain go-toolchain consul fake-gcs httpbin; do
    start=$SECONDS
    echo "check-install: scripts/$script.sh with an empty cache..." >&2
    if ! "${clean[@]}" bash "$root/scripts/$script.sh" >"$work/$script.out" 2>"$work/$script.err"; then
      echo "check-install: scripts/$script.sh failed:" >&2
      tail -40 "$work/$script.err" >&2
      exit 1
    fi
    echo "check-install: scripts/$script.sh ok in $((SECONDS - start)) s: $(tr '\n' ' ' <"$work/$script.out")" >&2
  done
  # What the toolchain scripts printed must name tools that run.
  (
    for script in wasm-toolchain quickjs-toolchain js-toolchain py-toolchain c-toolchain go-toolchain; do
      eval "$(cat "$work/$script.out")"
    done
    "${WASM_CARGO[@]}" --version
    "$COMPONENTIZE_JS" --help >/dev/null
    "$COMPONENTIZE_PY" --version
    "$WIT_BINDGEN" --version
    "$WASM_TOOLS" --version
    "$CLANG" --version | head -1
    env "${QJS_ENV[@]}" sh -c '"$CC_wasm32_wasip2" --version | head -1; "$AR_wasm32_wasip2" --version | head -1'
    test -f "$WASI_ADAPTER"
  ) >&2
  "$(cat "$work/consul.out")" version | head -1 >&2
  test -x "$(cat "$work/fake-gcs.out")"
  "$(dirname "$(cat "$work/httpbin.out")")/python" -c 'import httpbin' >&2
  echo "check-install: every toolchain script installed its tools from an empty cache"
}

case "${1:-}" in
  "") hygiene ;;
  --fresh) hygiene && fresh ;;
  *) echo "usage: scripts/check-install.sh [--fresh]" >&2; exit 2 ;;
esac
