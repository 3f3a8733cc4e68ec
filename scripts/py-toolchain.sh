#!/usr/bin/env bash
# Prints the componentize-py command (CPython inside a component),
# installing the pinned wheel from PyPI once into a virtualenv in a cache
# outside the repo.
# Usage: out=$(scripts/py-toolchain.sh); eval "$out"; "$COMPONENTIZE_PY" ...
set -euo pipefail

command -v python3 >/dev/null || { echo "py-toolchain.sh: python3 (3.10 or later, with venv) is needed for Python guests" >&2; exit 1; }
py_tools="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/py"
componentize_py="$py_tools/venv/bin/componentize-py"
if [ ! -x "$componentize_py" ]; then
  echo "installing componentize-py into $py_tools (once)..." >&2
  rm -rf "$py_tools/venv"
  mkdir -p "$py_tools"
  python3 -m venv "$py_tools/venv" >&2
  "$py_tools/venv/bin/pip" install -q componentize-py==0.25.1 >&2
fi
echo "COMPONENTIZE_PY=$componentize_py"
