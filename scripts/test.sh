#!/usr/bin/env bash
# Runs every test: builds the guest components the tests load, then the
# unit and integration tests of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh
scripts/build-plugins.sh
cargo test --workspace --locked "$@"
