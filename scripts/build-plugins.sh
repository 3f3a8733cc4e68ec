#!/usr/bin/env bash
# Builds guest components into target/components/<name>.wasm in the
# repository (even when CARGO_TARGET_DIR points elsewhere: configs and
# tests refer to them there).
#
# Usage: scripts/build-plugins.sh [WHAT...]   (no argument: everything)
#   rust         every Rust guest crate (plugins, examples, test plugins)
#   <crate>      one Rust guest crate, e.g. quickstart
#   js python c go
#                the example scenarios in that language (their toolchain is
#                installed on first use, into a cache outside the repo)
# http-steps and javascript are built with any Rust guest: the host binary embeds them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Rust guest crate of the workspace: a cdylib depending on the SDK.
rust_guests=(http-steps javascript quickstart single-get hostile features)
languages=(rust js python c go)
out=target/components
mkdir -p "$out"

usage() {
  echo "usage: scripts/build-plugins.sh [rust|js|python|c|go|<rust guest crate>...]" >&2
  echo "  Rust guest crates: ${rust_guests[*]}" >&2
  exit 2
}

# newer OUT INPUT...: true when OUT is missing or older than any input.
stale() {
  local o=$1; shift
  [ ! -f "$o" ] || [ -n "$(find "$@" -newer "$o" -type f | head -1)" ]
}

build_rust() {
  local toolchain
  toolchain=$(scripts/wasm-toolchain.sh)
  eval "$toolchain"
  local args=() g
  for g in "$@"; do args+=(-p "$g"); done
  # A separate target dir keeps the guest toolchain's artifacts from
  # invalidating the host's.
  local target_dir="${CARGO_TARGET_DIR:-target}/wasm"
  # The javascript plugin compiles QuickJS's C for the guest.
  local qjs
  qjs=$(scripts/quickjs-toolchain.sh)
  eval "$qjs"
  env "${QJS_ENV[@]}" "${WASM_CARGO[@]}" build --profile wasm --target wasm32-wasip2 "${WASM_FLAGS[@]}" \
    --target-dir "$target_dir" "${args[@]}"
  # Copied only when changed: the host embeds http_steps.wasm and rebuilds
  # whenever its mtime moves.
  local f
  for g in "$@"; do
    f=${g//-/_}.wasm
    cmp -s "$target_dir/wasm32-wasip2/wasm/$f" "$out/$f" || cp "$target_dir/wasm32-wasip2/wasm/$f" "$out/$f"
  done
}

# The JavaScript, Python, C and Go examples are built against
# loadtest:scenario@0.1.0 (wit/v0.1): they are the proof, rebuilt from
# source every time, that components of the first version still run.

# JavaScript guests: componentize-js (SpiderMonkey inside the component).
build_js() {
  local toolchain
  toolchain=$(scripts/js-toolchain.sh)
  eval "$toolchain"
  if stale "$out/js_quickstart.wasm" examples/js/scenario.js wit/v0.1; then
    "$COMPONENTIZE_JS" examples/js/scenario.js --wit wit/v0.1 --world-name scenario \
      --disable http fetch-event -o "$out/js_quickstart.wasm"
  fi
  # The same with fetch(), through wasi:http (the scenario-http world).
  if stale "$out/js_fetch.wasm" examples/js/fetch.js wit/v0.1; then
    "$COMPONENTIZE_JS" examples/js/fetch.js --wit wit/v0.1 --world-name scenario-http \
      --disable fetch-event -o "$out/js_fetch.wasm"
  fi
}

# Python guests: componentize-py (CPython inside the component).
build_python() {
  local toolchain
  toolchain=$(scripts/py-toolchain.sh)
  eval "$toolchain"
  if stale "$out/py_quickstart.wasm" examples/python/scenario.py wit/v0.1; then
    (cd examples/python && "$COMPONENTIZE_PY" -d ../../wit/v0.1 -w scenario componentize scenario \
      -o "$OLDPWD/$out/py_quickstart.wasm" >&2)
  fi
  # The same through wasi:http (the scenario-http world).
  if stale "$out/py_fetch.wasm" examples/python-http/scenario.py wit/v0.1; then
    (cd examples/python-http && "$COMPONENTIZE_PY" -d ../../wit/v0.1 -w scenario-http componentize scenario \
      -o "$OLDPWD/$out/py_fetch.wasm" >&2)
  fi
}

# C guests: clang for wasm32-wasip1 with wasi-libc, bindings from
# wit-bindgen's C generator, linked into a component (WASI preview1
# reactor adapter included) by wasm-component-ld.
build_c() {
  local c_out="$out/c_quickstart.wasm"
  stale "$c_out" examples/c wit/v0.1 || return 0
  local toolchain
  toolchain=$(scripts/c-toolchain.sh)
  eval "$toolchain"
  local c_tmp
  c_tmp=$(mktemp -d)
  "$WIT_BINDGEN" c wit/v0.1 --world scenario --out-dir "$c_tmp" >/dev/null
  local cflags=(--target=wasm32-wasip1 --sysroot=/usr -isystem /usr/include/wasm32-wasi -I"$c_tmp" -O2 -Wall -Werror)
  "$CLANG" "${cflags[@]}" -c examples/c/scenario.c -o "$c_tmp/scenario.o"
  "$CLANG" "${cflags[@]}" -Wno-unused-function -c "$c_tmp/scenario.c" -o "$c_tmp/bindings.o"
  local builtins
  builtins=$("$CLANG" --target=wasm32-wasip1 -print-libgcc-file-name)
  "$WASM_COMPONENT_LD" --wasm-ld-path "$WASM_LD" --wasi-adapter reactor --no-entry -o "$c_out" \
    /usr/lib/wasm32-wasi/crt1-reactor.o "$c_tmp/scenario.o" "$c_tmp/bindings.o" \
    "$c_tmp/scenario_component_type.o" -L/usr/lib/wasm32-wasi -lc "$builtins"
  rm -rf "$c_tmp"
}

# Go guests: GOOS=wasip1 -buildmode=c-shared with hand-written bindings
# (examples/go/abi.go); a small allocator for the WASI adapter is added to
# the module (scripts/go-adapter-realloc.py says why), then wasm-tools
# embeds the world and adapts WASI preview1 into a component.
build_go() {
  local go_out="$out/go_quickstart.wasm"
  stale "$go_out" examples/go wit/v0.1 scripts/go-adapter-realloc.py || return 0
  local toolchain
  toolchain=$(scripts/go-toolchain.sh)
  eval "$toolchain"
  local go_tmp
  go_tmp=$(mktemp -d)
  (cd examples/go && GOOS=wasip1 GOARCH=wasm GOFLAGS=-trimpath go build -buildmode=c-shared -o "$go_tmp/core.wasm" .)
  "$WASM_TOOLS" print "$go_tmp/core.wasm" -o "$go_tmp/core.wat"
  python3 scripts/go-adapter-realloc.py "$go_tmp/core.wasm" "$go_tmp/core.wat" "$go_tmp/adapted.wat"
  "$WASM_TOOLS" parse "$go_tmp/adapted.wat" -o "$go_tmp/adapted.wasm"
  "$WASM_TOOLS" component embed wit/v0.1 --world scenario "$go_tmp/adapted.wasm" -o "$go_tmp/embedded.wasm"
  "$WASM_TOOLS" component new "$go_tmp/embedded.wasm" \
    --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$go_out"
  rm -rf "$go_tmp"
}

[ $# -gt 0 ] || set -- "${languages[@]}"
crates=()
langs=()
for what in "$@"; do
  case "$what" in
    rust) crates+=("${rust_guests[@]}") ;;
    js | python | c | go) langs+=("$what") ;;
    -h | --help) usage ;;
    *)
      if [[ " ${rust_guests[*]} " == *" $what "* ]]; then
        crates+=("$what")
      else
        echo "build-plugins.sh: \`$what\` is neither a language nor a Rust guest crate" >&2
        usage
      fi
      ;;
  esac
done
if [ ${#crates[@]} -gt 0 ]; then
  # The host embeds http-steps and javascript, so any Rust build brings them along.
  mapfile -t crates < <(printf '%s\n' http-steps javascript "${crates[@]}" | awk '!seen[$0]++')
  build_rust "${crates[@]}"
fi
for lang in "${langs[@]+"${langs[@]}"}"; do
  "build_$lang"
done

ls -l "$out"/*.wasm | awk '{print $5, $9}'
