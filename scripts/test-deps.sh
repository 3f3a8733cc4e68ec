#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the wasm guest toolchain and
# Debian's Chromium (the HTML report is checked in a headless browser), and
# curl (the TLS test reads the HTTPS target's count with it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/wasm-toolchain.sh >/dev/null
if ! command -v curl >/dev/null; then
  apt-get update -q >&2 && apt-get install -y -q curl >&2
fi
if ! command -v chromium >/dev/null; then
  echo "installing chromium for the HTML report test" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q chromium >&2
fi
