#!/usr/bin/env bash
# Starts a 3-node cluster on loopback, prints each node's health once a
# leader is elected, and stops the nodes on Ctrl-C.
# Usage: examples/cluster/start-local.sh [base-port=7100]
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:-7100}
cargo build --release -q -p loadtest
bin="${CARGO_TARGET_DIR:-target}/release/loadtest"
data=$(mktemp -d)
peers="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT INT TERM

for i in 1 2 3; do
  CLUSTER_ENABLED=true CLUSTER_NODE_ID="node-$i" \
  CLUSTER_BIND_ADDR="127.0.0.1:$((base + i))" CLUSTER_HEALTH_ADDR="127.0.0.1:$((base + 10 + i))" \
  CLUSTER_NODES="$peers" CLUSTER_DATA_DIR="$data/node-$i" \
    "$bin" node 2>"$data/node-$i.log" &
  pids+=($!)
done

for _ in $(seq 100); do
  curl -sf "127.0.0.1:$((base + 11))/health/cluster" | grep -q '"leader_id":"' && break
  sleep 0.1
done
for i in 1 2 3; do
  echo "node-$i: $(curl -s "127.0.0.1:$((base + 10 + i))/health/cluster")"
done
echo "logs in $data; Ctrl-C stops the cluster"
wait
