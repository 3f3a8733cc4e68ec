#!/usr/bin/env bash
# How closely the constant-arrival-rate executor holds its rate against
# nginx on loopback: asked vs achieved starts per second, dropped starts,
# and the p99 latency measured from the schedule. Not a test; prints a table.
# Usage: benches/arrival.sh [seconds=10] [rates="1000 10000 50000"]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rates=${2:-"1000 10000 50000"}
. benches/lib.sh

printf "%-10s %12s %10s %10s %10s %12s\n" "asked/s" "achieved/s" "ratio" "dropped" "max VUs" "p99 (ms)"
for rate in $rates; do
  vus=$(( rate / 50 > 50 ? rate / 50 : 50 ))
  cat >"$work/arrival.yaml" <<YAML
target: http://127.0.0.1:$port
plugins:
  get: { path: $PWD/target/components/single_get.wasm }
scenarios:
  arrive:
    plugin: get
    executor: constant-arrival-rate
    rate: $rate
    duration: ${secs}s
    preAllocatedVUs: $vus
    maxVUs: $(( vus * 4 ))
YAML
  "$bin" run -q "$work/arrival.yaml" --json "$work/r.json" >/dev/null
  python3 - "$rate" "$secs" "$work/r.json" "$(( vus * 4 ))" <<'PY'
import json, sys
rate, secs, path, maxvus = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
s = json.load(open(path))["scenarios"]["arrive"]
done = s["iterations"]
p99 = s["requests"]["get"]["latency_ms"]["p99"] if s["requests"] else float("nan")
print(f"{rate:<10} {done / secs:>12.0f} {done / (rate * secs):>10.3f} {s['dropped_iterations']:>10} {maxvus:>10} {p99:>12.2f}")
PY
done
