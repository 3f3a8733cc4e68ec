#!/usr/bin/env bash
# Prints the componentize-js command (SpiderMonkey inside a component),
# installing the pinned release from npm once into a cache outside the repo.
# Usage: out=$(scripts/js-toolchain.sh); eval "$out"; "$COMPONENTIZE_JS" ...
set -euo pipefail

command -v npm >/dev/null || { echo "js-toolchain.sh: npm (Node.js 18 or later) is needed for JavaScript guests" >&2; exit 1; }
js_tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/js"
componentize="$js_tools/node_modules/.bin/componentize-js"
if [ ! -x "$componentize" ]; then
  echo "installing componentize-js into $js_tools (once)..." >&2
  mkdir -p "$js_tools"
  npm install --prefix "$js_tools" --no-audit --no-fund @bytecodealliance/componentize-js@0.23.0 >&2
fi
echo "COMPONENTIZE_JS=$componentize"
