#!/usr/bin/env bash
# The main job, end to end: build the example scenario and the host, start
# the embedded target on a free loopback port, run examples/quickstart.yaml
# against it and print the summary. Extra arguments go to `loadtest run`
# (e.g. --json report.json).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-plugins.sh quickstart >/dev/null
cargo build --release -q -p loadtest
bin="${CARGO_TARGET_DIR:-target}/release/loadtest"

addr_file=$(mktemp)
"$bin" target --addr 127.0.0.1:0 >"$addr_file" &
target_pid=$!
trap 'kill $target_pid 2>/dev/null; rm -f "$addr_file"' EXIT

for _ in $(seq 100); do
  grep -q '^listening on ' "$addr_file" && break
  kill -0 $target_pid 2>/dev/null || { echo "the embedded target failed to start" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$addr_file")
[ -n "$url" ] || { echo "the embedded target did not report its address" >&2; exit 1; }
echo "embedded target at $url"

LOADTEST_TARGET="$url" "$bin" run examples/quickstart.yaml "$@"
