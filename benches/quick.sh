#!/usr/bin/env bash
# A first look at generator cost: loadtest (Rust scenario, one GET per
# iteration) next to wrk, same connections and duration, against nginx
# (one worker, fixed small response) on loopback. Not a test; prints a table.
# Usage: benches/quick.sh [connections=50] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-50}
secs=${2:-10}

. benches/lib.sh

read -r wu ws wrss < <(timed wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/")
wreqs=$(awk '/requests in/ {print $1}' "$work/out")
wp99=$(awk '$1=="99%" {print $2}' "$work/out")

cat >"$work/bench.yaml" <<YAML
target: http://127.0.0.1:$port
plugins:
  get: { path: $PWD/target/components/single_get.wasm }
scenarios:
  get:
    plugin: get
    executor: constant-vus
    vus: $conns
    duration: ${secs}s
YAML
read -r lu ls lrss < <(timed "$bin" run -q "$work/bench.yaml" --json "$work/report.json")
read -r lreqs lp99 < <(python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
print(r["totals"]["requests"], r["scenarios"]["get"]["requests"]["get"]["latency_ms"]["p99"])' "$work/report.json")

python3 - "$secs" "$wreqs" "$wu" "$ws" "$wrss" "$wp99" "$lreqs" "$lu" "$ls" "$lrss" "$lp99" <<'PY'
import sys
secs = float(sys.argv[1])
w = dict(reqs=int(sys.argv[2]), cpu=float(sys.argv[3]) + float(sys.argv[4]), rss=int(sys.argv[5]), p99=sys.argv[6])
l = dict(reqs=int(sys.argv[7]), cpu=float(sys.argv[8]) + float(sys.argv[9]), rss=int(sys.argv[10]), p99=f"{float(sys.argv[11]):.2f}ms")
print(f"{'tool':<22} {'req/s':>10} {'CPU us/req':>11} {'peak RSS':>10} {'p99':>9} {'req/s vs wrk':>13} {'CPU/req vs wrk':>15}")
for name, t in [("wrk", w), ("loadtest (rust)", l)]:
    rate = t["reqs"] / secs
    cpu = t["cpu"] / t["reqs"] * 1e6
    print(f"{name:<22} {rate:>10.0f} {cpu:>11.2f} {t['rss']/1024:>8.1f}MB {t['p99']:>9} "
          f"{rate / (w['reqs'] / secs):>12.2f}x {cpu / (w['cpu'] / w['reqs'] * 1e6):>14.2f}x")
PY
