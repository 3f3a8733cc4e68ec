#!/usr/bin/env bash
# Prints, as a bash array QJS_ENV, the environment that builds rquickjs-sys
# (QuickJS's C sources, for the builtin javascript plugin) for
# wasm32-wasip2 with Debian's clang and wasi-libc instead of a wasi-sdk
# download, installing clang and llvm-ar when they are missing. The
# variables are target-qualified, so the host's own C builds are untouched.
# Usage: out=$(scripts/quickjs-toolchain.sh); eval "$out"
#        env "${QJS_ENV[@]}" <guest cargo command> ...
set -euo pipefail

clang=$(readlink /usr/bin/rust-clang 2>/dev/null || echo clang-22)
version=${clang#clang-}
if ! command -v "$clang" >/dev/null || ! command -v "llvm-ar-$version" >/dev/null || [ ! -e /usr/lib/wasm32-wasi/libc.a ]; then
  echo "installing $clang, llvm-$version and wasi-libc for the javascript plugin's QuickJS..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "$clang" "llvm-$version" wasi-libc >&2
fi
resource=$("$clang" -print-resource-dir)
# -D__SANITIZE_ADDRESS__ is the only switch rquickjs's QuickJS has for its
# small-block arenas (it sends every allocation to malloc under ASan): a VU's
# heap is small, so its 31 size classes' 4 KiB arenas stood mostly empty,
# 79 KiB of a sleeping VU's 215. Off, a VU is 68 KiB lighter and a request
# costs the same (docs/BENCHMARKS.md). Nothing else in QuickJS, wasi-libc or
# clang's headers reads the macro; no sanitizer is enabled by it.
cflags="-nostdlibinc -isystem /usr/include/wasm32-wasi -isystem $resource/include -O2 -D__SANITIZE_ADDRESS__"
printf 'QJS_ENV=(RQUICKJS_SYS_NO_WASI_SDK=1 CC_wasm32_wasip2=%q AR_wasm32_wasip2=%q %q)\n' \
  "$clang" "llvm-ar-$version" "CFLAGS_wasm32_wasip2=$cflags"
