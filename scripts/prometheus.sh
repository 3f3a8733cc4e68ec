#!/usr/bin/env bash
# Prints the path of a real Prometheus binary, building the pinned release
# from the Go module proxy the first time (cached outside the repo).
# Prometheus 3.x is published as module versions v0.3xx.y (v0.316.0 is
# Prometheus 3.16). Older releases' go.mod carries exclude and replace
# directives, which `go install pkg@version` refuses, so it is built as a
# dependency of a throwaway wrapper module that copies those directives.
# Only the HTTP API is needed, so the web UI assets are not embedded.
set -euo pipefail
version=0.316.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/prometheus-$version"
bin="$cache/prometheus"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "prometheus.sh: Go is needed to build Prometheus (apt-get install golang-go, or a Go toolchain)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Prometheus's own go.mod, through Go's module download (and its proxy settings).
modfile=$(cd "$work" && go mod download -json "github.com/prometheus/prometheus@v$version" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
mod=$(cat "$modfile")
goversion=$(printf '%s\n' "$mod" | awk '$1 == "go" { print $2; exit }')
# Its exclude and replace directives (one-line or blocks), less any
# replace by a local path, which could not resolve outside its tree.
directives=$(printf '%s\n' "$mod" | awk '
  /^(exclude|replace)[[:space:]]*\(/ { on = 1; print; next }
  on { print; if (/^\)/) on = 0; next }
  /^(exclude|replace)[[:space:]]/ { print }
' | grep -v '=>[[:space:]]*\.\.\?/' || true)
cat >"$work/go.mod" <<MOD
module prometheusbuild

go ${goversion:-1.23}

require github.com/prometheus/prometheus v$version

$directives
MOD
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
GO
echo "building Prometheus $version from the Go module proxy (once; cached in $cache)" >&2
(
  cd "$work"
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local
  go mod tidy -e >/dev/null 2>&1 || true
  go get "github.com/prometheus/prometheus@v$version" >&2
  mkdir -p "$cache"
  go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/prometheus/prometheus/cmd/prometheus >&2
)
mv "$bin.tmp" "$bin"
echo "$bin"
