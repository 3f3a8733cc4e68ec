#!/usr/bin/env bash
# Prints the path of fake-gcs-server (a GCS emulator speaking the JSON
# API), building the pinned release from the Go module proxy the first
# time (cached outside the repo).
set -euo pipefail
version=1.56.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/fake-gcs-server-$version"
bin="$cache/fake-gcs-server"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "fake-gcs.sh: Go is needed to build fake-gcs-server (apt-get install golang-go, or a Go toolchain)" >&2; exit 1; }
echo "building fake-gcs-server $version from the Go module proxy (once; cached in $cache)" >&2
mkdir -p "$cache"
GOTOOLCHAIN=local GOBIN="$cache" go install -trimpath -ldflags "-s -w" \
  "github.com/fsouza/fake-gcs-server@v$version" >&2
echo "$bin"
