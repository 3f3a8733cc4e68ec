#!/usr/bin/env bash
# Builds every guest component (plugins, examples, test plugins) into
# target/components/<crate>.wasm in the repository (even when
# CARGO_TARGET_DIR points elsewhere: configs and tests refer to them there).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-toolchain.sh)"

# Every guest crate of the workspace: a cdylib depending on the SDK.
guests=(http-steps quickstart single-get hostile)
args=()
for g in "${guests[@]}"; do args+=(-p "$g"); done

# A separate target dir keeps the guest toolchain's artifacts from
# invalidating the host's.
target_dir="${CARGO_TARGET_DIR:-target}/wasm"
$WASM_CARGO build --profile wasm --target wasm32-wasip2 $WASM_FLAGS --target-dir "$target_dir" "${args[@]}"

out=target/components
mkdir -p "$out"
for g in "${guests[@]}"; do
  f=${g//-/_}
  cp "$target_dir/wasm32-wasip2/wasm/$f.wasm" "$out/$f.wasm"
done
# JavaScript guests: componentize-js (SpiderMonkey inside the component),
# installed once into a cache outside the repository.
js_tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/js"
componentize="$js_tools/node_modules/.bin/componentize-js"
if [ ! -x "$componentize" ]; then
  echo "installing componentize-js into $js_tools" >&2
  mkdir -p "$js_tools"
  npm install --prefix "$js_tools" --no-audit --no-fund @bytecodealliance/componentize-js@0.23.0 >&2
fi
js_out="$out/js_quickstart.wasm"
if [ ! -f "$js_out" ] || [ examples/js/scenario.js -nt "$js_out" ] || [ wit/scenario.wit -nt "$js_out" ]; then
  "$componentize" examples/js/scenario.js --wit wit --world-name scenario --disable http fetch-event -o "$js_out"
fi
# The same with fetch(), through wasi:http (the scenario-http world).
fetch_out="$out/js_fetch.wasm"
if [ ! -f "$fetch_out" ] || [ examples/js/fetch.js -nt "$fetch_out" ] || [ wit/scenario.wit -nt "$fetch_out" ]; then
  "$componentize" examples/js/fetch.js --wit wit --world-name scenario-http --disable fetch-event -o "$fetch_out"
fi
# Python guests: componentize-py (CPython inside the component), installed
# once into a virtualenv in the same cache.
py_tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/py"
componentize_py="$py_tools/venv/bin/componentize-py"
if [ ! -x "$componentize_py" ]; then
  echo "installing componentize-py into $py_tools" >&2
  mkdir -p "$py_tools"
  python3 -m venv "$py_tools/venv" >&2
  "$py_tools/venv/bin/pip" install -q componentize-py==0.25.1 >&2
fi
py_out="$out/py_quickstart.wasm"
if [ ! -f "$py_out" ] || [ examples/python/scenario.py -nt "$py_out" ] || [ wit/scenario.wit -nt "$py_out" ]; then
  (cd examples/python && "$componentize_py" -d ../../wit -w scenario componentize scenario -o "$OLDPWD/$py_out" >&2)
fi
# The same through wasi:http (the scenario-http world).
py_http_out="$out/py_fetch.wasm"
if [ ! -f "$py_http_out" ] || [ examples/python-http/scenario.py -nt "$py_http_out" ] || [ wit/scenario.wit -nt "$py_http_out" ]; then
  (cd examples/python-http && "$componentize_py" -d ../../wit -w scenario-http componentize scenario -o "$OLDPWD/$py_http_out" >&2)
fi

# C guests: clang for wasm32-wasip1 with wasi-libc, bindings from
# wit-bindgen's C generator, linked into a component (WASI preview1
# reactor adapter included) by wasm-component-ld.
c_out="$out/c_quickstart.wasm"
if [ ! -f "$c_out" ] || [ examples/c/scenario.c -nt "$c_out" ] || [ wit/scenario.wit -nt "$c_out" ]; then
  eval "$(scripts/c-toolchain.sh)"
  c_tmp=$(mktemp -d)
  "$WIT_BINDGEN" c wit --world scenario --out-dir "$c_tmp" >/dev/null 2>&1
  cflags=(--target=wasm32-wasip1 --sysroot=/usr -isystem /usr/include/wasm32-wasi -I"$c_tmp" -O2 -Wall -Werror)
  "$CLANG" "${cflags[@]}" -c examples/c/scenario.c -o "$c_tmp/scenario.o"
  "$CLANG" "${cflags[@]}" -Wno-unused-function -c "$c_tmp/scenario.c" -o "$c_tmp/bindings.o"
  builtins=$("$CLANG" --target=wasm32-wasip1 -print-libgcc-file-name)
  "$WASM_COMPONENT_LD" --wasm-ld-path "$WASM_LD" --wasi-adapter reactor --no-entry -o "$c_out" \
    /usr/lib/wasm32-wasi/crt1-reactor.o "$c_tmp/scenario.o" "$c_tmp/bindings.o" \
    "$c_tmp/scenario_component_type.o" -L/usr/lib/wasm32-wasi -lc "$builtins"
  rm -rf "$c_tmp"
fi

# Go guests: GOOS=wasip1 -buildmode=c-shared with hand-written bindings
# (examples/go/abi.go); a small allocator for the WASI adapter is added to
# the module (scripts/go-adapter-realloc.py says why), then wasm-tools
# embeds the world and adapts WASI preview1 into a component.
go_out="$out/go_quickstart.wasm"
if [ ! -f "$go_out" ] || [ -n "$(find examples/go wit scripts/go-adapter-realloc.py -newer "$go_out" -type f | head -1)" ]; then
  eval "$(scripts/go-toolchain.sh)"
  go_tmp=$(mktemp -d)
  (cd examples/go && GOOS=wasip1 GOARCH=wasm GOFLAGS=-trimpath go build -buildmode=c-shared -o "$go_tmp/core.wasm" .)
  "$WASM_TOOLS" print "$go_tmp/core.wasm" -o "$go_tmp/core.wat"
  python3 scripts/go-adapter-realloc.py "$go_tmp/core.wasm" "$go_tmp/core.wat" "$go_tmp/adapted.wat"
  "$WASM_TOOLS" parse "$go_tmp/adapted.wat" -o "$go_tmp/adapted.wasm"
  "$WASM_TOOLS" component embed wit --world scenario "$go_tmp/adapted.wasm" -o "$go_tmp/embedded.wasm"
  "$WASM_TOOLS" component new "$go_tmp/embedded.wasm" \
    --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$go_out"
  rm -rf "$go_tmp"
fi

ls -l "$out"/*.wasm | awk '{print $5, $9}'
