#!/usr/bin/env bash
# The quickstart scenario in every guest language, side by side: component
# size, `validate` time (compile + one VU), instantiation per VU (the
# engine's debug log, averaged over the VUs), and iterations/s with 10 VUs on one tokio worker pinned to core 0, the
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

echo "| language | component | validate (compile + one VU) | instantiate (mean of 10 VUs) | iterations/s |"
echo "|---|---|---|---|---|"
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
  RUST_LOG=warn,loadtest::engine::vu=debug NO_COLOR=1 TOKIO_WORKER_THREADS=1 taskset -c 0 \
    "$bin" run -q "$work/$name.yaml" --json "$work/$name.json" >/dev/null 2>"$work/$name.log"
  python3 - "$wasm" "$work/$name.json" "$work/$name.log" "$name" "$validate" <<'PY'
import json, os, re, sys
wasm, report, log, name, validate = sys.argv[1:]
units = {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3, "s": 1e6}
times = [float(v) * units[u] for v, u in re.findall(r"instantiated in ([\d.]+)(ns|µs|us|ms|s)\b", open(log).read())]
inst = f"{sum(times) / len(times):,.0f} µs" if times else "?"
r = json.load(open(report))
its = r["scenarios"]["s"]["iterations"] / r["duration_secs"]
size = os.path.getsize(wasm)
size = f"{size/1e6:.1f} MB" if size > 1e6 else f"{size/1e3:.0f} KB"
print(f"| {name} | {size} | {validate} | {inst} | {its:,.0f} |")
PY
done
