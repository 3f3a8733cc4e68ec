#!/usr/bin/env bash
# k6 scripts on the builtin javascript runtime, against nginx next to wrk
# (not a test; prints tables):
#   1. ROUNDS pairs of wrk and `loadtest run` of a k6 script (`http.get` of
#      `/` and a `check` on the status), same connections/VUs and duration:
#      generator CPU per request and requests/s, each round's ratios to the
#      wrk run just before it, then their median and spread;
#   2. VUs that sleep: peak RSS of a run with N VUs over one with 1 VU,
#      per VU, and how long a VU took to start (instantiate + init, from
#      the engine's debug log), for each N.
# Usage: benches/k6.sh [rounds=3] [vus=50] [seconds=5] [sleeping VUs=1000,10000 (0: skip)]
# Past about 10,000 VUs a process needs more memory mappings than Linux
# allows by default (the run says so): sysctl -w vm.max_map_count=524288
# BASELINE=path/to/another/loadtest adds that binary to every round (the
# same script, right after this one), to compare two builds in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
vus=${2:-50}
secs=${3:-5}
idle=${4:-1000,10000}

bench_plugins=(rust)
. benches/lib.sh

cat >"$work/get.js" <<JS
import http from 'k6/http';
import { check } from 'k6';

export const options = { vus: $vus, duration: '${secs}s' };

export default function () {
  const res = http.get('http://127.0.0.1:$port/');
  check(res, { 'status is 200': (r) => r.status === 200 });
}
JS
# Compiles the builtin plugin into the on-disk cache, as any earlier run
# would have: the table compares generating load, not compiling.
"$bin" validate "$work/get.js" >/dev/null

echo "| round | wrk req/s | wrk CPU µs/req | loadtest req/s | loadtest CPU µs/req | CPU/req vs wrk | req/s vs wrk | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
[ -n "${BASELINE:-}" ] && "$BASELINE" validate "$work/get.js" >/dev/null
for r in $(seq "$rounds"); do
  read -r wu ws _ < <(timed wrk -t2 -c"$vus" -d"${secs}s" "http://127.0.0.1:$port/")
  wreqs=$(awk '/requests in/ {print $1}' "$work/out")
  for b in "$bin" ${BASELINE:-}; do
  label=$r
  [ "$b" = "$bin" ] || label="$r (baseline)"
  read -r lu ls lrss < <(timed "$b" run -q "$work/get.js" --json "$work/report.json")
  python3 - "$label" "$secs" "$wreqs" "$wu" "$ws" "$lu" "$ls" "$lrss" "$work/report.json" <<'PY' | tee -a "$work/rounds"
import json, sys
r, secs, wreqs, wu, ws, lu, ls, lrss, report = sys.argv[1:]
rep = json.load(open(report))
lreqs = rep["totals"]["requests"]
checks = rep["checks"]
assert checks and all(c["fails"] == 0 for c in checks.values()), f"failed checks: {checks}"
wcpu = (float(wu) + float(ws)) / int(wreqs) * 1e6
lcpu = (float(lu) + float(ls)) / lreqs * 1e6
secs = float(secs)
print(f"| {r} | {int(wreqs) / secs:,.0f} | {wcpu:.2f} | {lreqs / secs:,.0f} | {lcpu:.2f} "
      f"| {lcpu / wcpu:.2f}x | {lreqs / int(wreqs):.2f}x | {int(lrss) / 1024:.1f} MiB |")
PY
  done
done
# With 0 rounds (sleeping VUs only) no round wrote a row.
[ "$rounds" = 0 ] || python3 - "$work/rounds" <<'PY'
import statistics, sys
every = [l.split("|")[1:-1] for l in open(sys.argv[1])]
for label, rows in (("this build", [r for r in every if "baseline" not in r[0]]),
                    ("baseline", [r for r in every if "baseline" in r[0]])):
    if not rows:
        continue
    def col(i):
        vals = sorted(float(row[i].strip().rstrip("x").replace(",", "")) for row in rows)
        return f"{statistics.median(vals):.2f} ({vals[0]:.2f}–{vals[-1]:.2f})"
    print(f"\n{label}, median (range) over {len(rows)} rounds: CPU µs/req {col(4)}, "
          f"CPU/req vs wrk {col(5)}x, req/s vs wrk {col(6)}x")
PY

[ "$idle" = 0 ] && exit 0
# Peak RSS while N VUs sleep, sampled from /proc (GNU time's %M would
# include the compile of the first run).
sleeping() {
  local n=$1
  # k6/http imported as most scripts do: its module is part of a VU.
  cat >"$work/idle.js" <<JS
import http from 'k6/http';
import { sleep } from 'k6';
export const options = {
  scenarios: { idle: { executor: 'constant-vus', vus: $n, duration: '$((5 + n / 1000))s', gracefulStop: '0s' } },
};
export default function () { if (__ITER > 0) http.get('http://127.0.0.1:$port/'); sleep(3600); }
JS
  RUST_LOG=warn,loadtest_engine::workload::vu=debug,plugin=debug NO_COLOR=1 \
    "$bin" run -q "$work/idle.js" >/dev/null 2>"$work/idle.log" &
  local pid=$! peak=0 rss mapped="" pss peak_pss=0 avail
  # What the machine lost: RSS and PSS are the process's own accounts, the
  # fall of MemAvailable is memory gone (noisy with other work running).
  local avail0 least
  avail0=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
  least=$avail0
  while kill -0 "$pid" 2>/dev/null; do
    avail=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    [ "$avail" -lt "$least" ] && least=$avail
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    # RSS counts a page shared by N VUs' memory images N times; PSS once.
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    [ "${pss:-0}" -gt "$peak_pss" ] && peak_pss=$pss
    # Once every VU has started: where the resident memory is, by the
    # size of the mapping that holds it (a VU's linear memory, its fiber
    # stack and the host's heap have sizes of their own).
    if [ -z "$mapped" ] && [ "$(grep -c 'instantiated in' "$work/idle.log")" -ge "$n" ]; then
      mapped=1
      python3 - "$pid" "$n" >>"$work/mappings" <<'PY' || true
import collections, sys
pid, n = sys.argv[1], int(sys.argv[2])
by_size, size = collections.Counter(), 0
for line in open(f"/proc/{pid}/smaps"):
    f = line.split()
    if f[0] == "Size:":
        size = int(f[1])
    elif f[0] == "Rss:":
        by_size[size] += int(f[1])
total = sum(by_size.values())
print(f"{n:,} VUs: resident {total / 1024:,.0f} MiB; by mapping size (KiB), resident per VU:")
for size, kib in by_size.most_common(6):
    print(f"  mappings of {size:,} KiB: {kib / 1024:,.1f} MiB, {kib / n:,.1f} KiB per VU")
PY
    fi
    sleep 0.2
  done
  wait "$pid" || true
  echo "$peak $(grep -c 'instantiated in' "$work/idle.log") $peak_pss $((avail0 - least))"
  python3 - "$work/idle.log" <<'PY'
import re, statistics, sys
units = {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3, "s": 1e6}
starts = [float(a) * units[u] + float(b) * units[v] for a, u, b, v in
          re.findall(r"instantiated in ([\d.]+)(ns|µs|us|ms|s)\b, init took ([\d.]+)(ns|µs|us|ms|s)\b", open(sys.argv[1]).read())]
text = open(sys.argv[1]).read()
heap = [int(h) for h in re.findall(r"QuickJS heap (\d+) KiB", text)]
linear = [int(m) for m in re.findall(r"linear memory (\d+) KiB", text)]
med = lambda v: statistics.median(v) if v else 0
print(f"{med(starts):.0f} {max(starts, default=0):.0f} {med(heap):.0f} {med(linear):.0f}")
PY
}
{ read -r base_rss _ base_pss base_taken; read -r _; } < <(sleeping 1)
echo
echo "| sleeping VUs | started | peak RSS | RSS per VU over 1 VU | PSS per VU over 1 VU | MemAvailable fall per VU | QuickJS heap per VU | linear memory per VU | VU start, median (max) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in ${idle//,/ }; do
  { read -r rss started pss taken; read -r med max heap linear; } < <(sleeping "$n")
  python3 -c "
n, rss, base, pss, bpss, taken, btaken, started, med, mx, heap, lin = $n, $rss, $base_rss, $pss, $base_pss, $taken, $base_taken, $started, $med, $max, $heap, $linear
print(f'| {n:,} | {started:,} | {rss / 1024:,.0f} MiB | {(rss - base) / (n - 1):,.0f} KiB | {(pss - bpss) / (n - 1):,.0f} KiB | {(taken - btaken) / (n - 1):,.0f} KiB | {heap:,} KiB | {lin:,} KiB | {med:,.0f} µs ({mx:,.0f} µs) |')"
done
if [ -f "$work/mappings" ]; then echo; cat "$work/mappings"; fi
