#!/usr/bin/env bash
# The quickstart scenario in every guest language, side by side: component
# size, `validate` time (compile + one VU), and iterations/s with 10 VUs on one tokio worker pinned to core 0, the
# embedded target on core 1. Not a test; prints a table. Needs a release
# build (cargo build --release -p loadtest) and scripts/build-plugins.sh.
# Usage: benches/languages.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin="${CARGO_TARGET_DIR:-target}/release/loadtest"
[ -x "$bin" ] || { echo "build it first: cargo build --release -p loadtest" >&2; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 1 "$bin" target --addr "127.0.0.1:$port" >/dev/null 2>&1 &
target=$!
trap 'kill $target 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/__stats" >/dev/null; do sleep 0.1; done

echo "| language | component | validate (compile + one VU) | iterations/s |"
echo "|---|---|---|---|"
for lang in rust:quickstart js:js_quickstart python:py_quickstart c:c_quickstart go:go_quickstart; do
  name=${lang%%:*}
  wasm="$PWD/target/components/${lang#*:}.wasm"
  cat >"$work/$name.yaml" <<YAML
target: http://127.0.0.1:$port
plugins:
  p: { path: $wasm }
scenarios:
  s: { plugin: p, executor: constant-vus, vus: 10, duration: ${secs}s }
YAML
  start=$(date +%s.%N)
  "$bin" validate "$work/$name.yaml" >/dev/null
  validate=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f} s')")
  TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin" run -q "$work/$name.yaml" --json "$work/$name.json" >/dev/null 2>&1
  python3 - "$wasm" "$work/$name.json" "$name" "$validate" <<'PY'
import json, os, sys
wasm, report, name, validate = sys.argv[1:]
r = json.load(open(report))
its = r["scenarios"]["s"]["iterations"] / r["duration_secs"]
size = os.path.getsize(wasm)
size = f"{size/1e6:.1f} MB" if size > 1e6 else f"{size/1e3:.0f} KB"
print(f"| {name} | {size} | {validate} | {its:,.0f} |")
PY
done
