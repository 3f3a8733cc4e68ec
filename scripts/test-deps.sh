#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the wasm guest toolchain and
# Debian's Chromium (the HTML report is checked in a headless browser), and
# curl (the TLS test reads the HTTPS target's count with it), iproute2
# (the partition test builds network namespaces), dig (Consul's DNS) and a
# real Consul agent, a GCS emulator (fake-gcs-server) and Prometheus
# (built once from the Go module proxy, cached outside the repo), and
# httpbin under gunicorn (PyPI, in a cached virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/wasm-toolchain.sh >/dev/null
scripts/consul.sh >/dev/null
scripts/fake-gcs.sh >/dev/null
scripts/httpbin.sh >/dev/null
scripts/prometheus.sh >/dev/null
for tool in curl:curl ip:iproute2 dig:dnsutils; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    apt-get update -q >&2 && apt-get install -y -q "${tool##*:}" >&2
  fi
done
if ! command -v chromium >/dev/null; then
  echo "installing chromium for the HTML report test" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q chromium >&2
fi
