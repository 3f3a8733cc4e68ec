#!/usr/bin/env bash
# Prints the path of a real Consul binary, building the pinned release
# from the Go module proxy the first time (cached outside the repo).
# `go install github.com/hashicorp/consul@v...` refuses because Consul's
# go.mod replaces its own submodules with local paths, so it is built as
# a dependency of a throwaway wrapper module pinning those submodules.
set -euo pipefail
version=1.22.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/consul-$version"
bin="$cache/consul"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "consul.sh: Go is needed to build Consul (apt-get install golang-go, or a Go toolchain)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Consul's own go.mod, through Go's module download (and its proxy settings).
modfile=$(cd "$work" && go mod download -json "github.com/hashicorp/consul@v$version" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
mod=$(cat "$modfile")
pin() { printf '%s\n' "$mod" | awk -v m="github.com/hashicorp/consul/$1" '$1 == m && $2 != "=>" { print $2; exit }'; }
excludes=$(printf '%s\n' "$mod" | awk '/^exclude \(/ { on = 1; next } on && /^\)/ { on = 0 } on { print }')
cat >"$work/go.mod" <<MOD
module consulbuild

go 1.23

require (
	github.com/hashicorp/consul v$version
	github.com/hashicorp/consul/api $(pin api)
	github.com/hashicorp/consul/sdk $(pin sdk)
	github.com/hashicorp/consul/proto-public $(pin proto-public)
	github.com/hashicorp/consul/envoyextensions $(pin envoyextensions)
	github.com/hashicorp/consul/troubleshoot $(pin troubleshoot)
)

exclude (
$excludes
)
MOD
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/hashicorp/consul"
GO
echo "building Consul $version from the Go module proxy (once; cached in $cache)" >&2
(
  cd "$work"
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local
  # The checksum database answers 404 for some of Consul's own submodules
  # (envoyextensions@v0.9.0 here); everything else is still checked.
  export GONOSUMDB=github.com/hashicorp/consul
  go mod tidy -e >/dev/null 2>&1 || true
  go get "github.com/hashicorp/consul@v$version" >&2
  mkdir -p "$cache"
  go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/hashicorp/consul >&2
)
mv "$bin.tmp" "$bin"
echo "$bin"
