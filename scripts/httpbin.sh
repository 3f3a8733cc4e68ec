#!/usr/bin/env bash
# Prints the path of gunicorn in a virtualenv that has httpbin (a real
# third-party HTTP test server: cookies, redirects, compression), installing
# the pinned releases from PyPI the first time (cached outside the repo).
# Serve it with: "$(scripts/httpbin.sh)" -b 127.0.0.1:PORT httpbin:app
set -euo pipefail
dir="${XDG_CACHE_HOME:-$HOME/.cache}/loadtest/httpbin-0.10.4"
bin="$dir/venv/bin/gunicorn"
if [ -x "$bin" ] && "$dir/venv/bin/python" -c 'import httpbin' 2>/dev/null; then
  echo "$bin"
  exit 0
fi
command -v python3 >/dev/null || { echo "httpbin.sh: python3 (with venv) is needed for httpbin" >&2; exit 1; }
echo "installing httpbin and gunicorn into $dir (once)..." >&2
rm -rf "$dir/venv"
mkdir -p "$dir"
python3 -m venv "$dir/venv" >&2
"$dir/venv/bin/pip" install -q httpbin==0.10.4 gunicorn==27.0.1 >&2
echo "$bin"
