#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets in fuzz/ (cargo-fuzz, libFuzzer)
# for a given time each, and prints what each found. Crashing inputs land
# in fuzz/artifacts/<target>/; turn each into a regression test next to
# the property tests of the same parser before fixing it.
#
# Usage: benches/fuzz.sh [seconds per target=600] [target ...]
#   targets: h1_response config threshold wire_decode (default: all)
#   FUZZ_JOBS=2 runs two targets at once (one per core).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(h1_response config threshold wire_decode)
jobs=${FUZZ_JOBS:-1}

cache="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest"
tools="$cache/tools"
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into $tools (once)..." >&2
    cargo install --locked --quiet --root "$tools" cargo-fuzz --version 0.13.2
fi
export PATH="$tools/bin:$PATH"
# libFuzzer's instrumentation uses unstable compiler flags; the stable
# compiler takes them with RUSTC_BOOTSTRAP. The fuzz build has a target
# dir of its own: instrumented artifacts never mix with the main build.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$cache/fuzz-target"
# The engine embeds the builtin plugins.
[ -f target/components/http_steps.wasm ] || scripts/build-plugins.sh rust >/dev/null

cargo fuzz build --fuzz-dir fuzz -O

run() {
    local t=$1 log="fuzz/$1.log"
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    cargo fuzz run --fuzz-dir fuzz -O "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 && status=ok || status="FOUND A CRASH"
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    printf '%-12s %6ss  %12s runs  coverage %6s  %s\n' "$t" "$secs" "$execs" "$cov" "$status"
}

printf '%-12s %7s  %17s  %15s  %s\n' target time runs "" result
running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
if find fuzz/artifacts -type f 2>/dev/null | grep -q .; then
    echo "crashing inputs:"
    find fuzz/artifacts -type f
    exit 1
fi
