# Shared by the bench scripts: build what is measured, start nginx (one
# worker, fixed small response) on a free loopback port, time commands.
# Sets: bin (the release loadtest), work (temp dir), port.

command -v wrk >/dev/null && [ -x /usr/sbin/nginx ] || {
  echo "installing wrk and nginx-light" >&2
  apt-get install -y -q wrk nginx-light >/dev/null
}
# A bench may name the guests it needs (bench_plugins); all of them otherwise.
scripts/build-plugins.sh ${bench_plugins[@]+"${bench_plugins[@]}"} >/dev/null
cargo build --release -q -p loadtest
bin="${CARGO_TARGET_DIR:-target}/release/loadtest"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "hello\n"; }
  }
}
CONF
/usr/sbin/nginx -c "$work/nginx.conf" -p "$work"
trap '/usr/sbin/nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null; rm -rf "$work"' EXIT

# Runs a command under GNU time; prints "user sys maxrss_kb".
timed() { /usr/bin/time -f "%U %S %M" -o "$work/time" "$@" >"$work/out" 2>&1; cat "$work/time"; }
