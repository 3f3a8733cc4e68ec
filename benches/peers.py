#!/usr/bin/env python3
"""The benchmark against the peers (not a test): nginx (one worker, fixed
small response) on loopback; every available generator runs with the same
connections/VUs and duration, one after another; for each: requests/s,
generator CPU per request (user+sys of its process / requests), peak RSS,
p99, and ratios to wrk. Then loadtest's memory for VUs that sleep.
Writes the tables to docs/BENCHMARKS.md.

Then, unless BENCH_CLUSTER=0, the cluster figures of benches/cluster.py
and benches/failover.py.

Usage: benches/peers.py [connections=50] [seconds=10] [vu counts=1000,10000,50000,100000 (0: skip)]
Peers found on PATH or in ~/.cache/loadtest-bench/bin are used; missing
ones are listed as such (install: wrk, hey from Debian; oha with cargo
install; k6 and vegeta with go install; locust with pip).
"""
import datetime, json, os, re, shutil, socket, subprocess, sys, tempfile, time

conns = int(sys.argv[1]) if len(sys.argv) > 1 else 50
secs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
vu_counts = [int(v) for v in (sys.argv[3] if len(sys.argv) > 3 else "1000,10000,50000,100000").split(",") if int(v) > 0]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
extra_bin = os.path.expanduser("~/.cache/loadtest-bench/bin")
os.environ["PATH"] = os.environ["PATH"] + os.pathsep + extra_bin
work = tempfile.mkdtemp()

subprocess.run([os.path.join(root, "scripts/build-plugins.sh")], cwd=root, check=True, stdout=subprocess.DEVNULL)
subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadtest"], cwd=root, check=True)
loadtest = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")), "release", "loadtest")
component = os.path.join(root, "target/components/single_get.wasm")
# The JavaScript scenario, built with the componentize-js build-plugins.sh installed.
js_source = os.path.join(root, "benches/single_get.js")
js_component = os.path.join(root, "target/components/js_single_get.wasm")
if not os.path.exists(js_component) or os.path.getmtime(js_component) < os.path.getmtime(js_source):
    componentize = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                "loadtest/js/node_modules/.bin/componentize-js")
    subprocess.run([componentize, js_source, "--wit", "wit/v0.1", "--world-name", "scenario",
                    "--disable", "http", "fetch-event", "-o", js_component], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

port = free_port()
url = f"http://127.0.0.1:{port}/"
with open(os.path.join(work, "nginx.conf"), "w") as f:
    f.write(f"""worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 8192; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hello\\n"; }} }} }}
""")
subprocess.run(["/usr/sbin/nginx", "-c", f"{work}/nginx.conf", "-p", work], check=True)

def timed(cmd, **kw):
    """Runs cmd under GNU time; returns (stdout+stderr, cpu seconds, peak RSS KiB)."""
    tfile = os.path.join(work, "time")
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tfile] + cmd, capture_output=True, text=True, **kw)
    user, sys_, rss = open(tfile).read().split()[-3:]
    return p.stdout + p.stderr, float(user) + float(sys_), int(rss)

def ms(text):
    m = re.match(r"([\d.]+)\s*(us|µs|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit in ("us", "µs") else v * 1000 if unit == "s" else v

def run_wrk():
    out, cpu, rss = timed(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency", url])
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    return reqs, cpu, rss, ms(re.search(r"99%\s+(\S+)", out).group(1))

def run_hey():
    out, cpu, rss = timed(["hey", "-c", str(conns), "-z", f"{secs}s", url])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000
    return int(rate * secs), cpu, rss, p99

def run_oha():
    out, cpu, rss = timed(["oha", "-c", str(conns), "-z", f"{secs}s", "--no-tui", "--output-format", "json", url])
    j = json.loads(out[out.index("{"):])
    reqs = sum(j.get("statusCodeDistribution", {}).values())
    return reqs, cpu, rss, j["latencyPercentiles"]["p99"] * 1000

def run_k6():
    script = os.path.join(work, "k6.js")
    with open(script, "w") as f:
        f.write(f"import http from 'k6/http';\nexport const options = {{ vus: {conns}, duration: '{secs}s', summaryTrendStats: ['p(99)'] }};\nexport default function () {{ http.get('{url}'); }}\n")
    summary = os.path.join(work, "k6.json")
    out, cpu, rss = timed(["k6", "run", "-q", "--summary-export", summary, script])
    m = json.load(open(summary))["metrics"]
    return int(m["http_reqs"]["count"]), cpu, rss, m["http_req_duration"]["p(99)"]

def run_locust():
    script = os.path.join(work, "locustfile.py")
    with open(script, "w") as f:
        f.write("from locust import task\nfrom locust.contrib.fasthttp import FastHttpUser\n"
                "class U(FastHttpUser):\n    @task\n    def get(self):\n        self.client.get('/')\n")
    prefix = os.path.join(work, "locust")
    out, cpu, rss = timed(["locust", "-f", script, "--headless", "-u", str(conns), "-r", str(conns), "-t", f"{secs}s",
                           "--host", url.rstrip("/"), "--csv", prefix, "--only-summary"])
    rows = open(prefix + "_stats.csv").read().splitlines()
    header, agg = rows[0].split(","), [r for r in rows if ",Aggregated," in r][0].split(",")
    row = dict(zip(header, agg))
    return int(row["Request Count"]), cpu, rss, float(row["99%"])

def run_vegeta():
    attack = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", os.path.join(work, "time"), "vegeta", "attack",
                               "-rate=0", f"-workers={conns}", f"-max-workers={conns}", f"-duration={secs}s",
                               f"-output={work}/vegeta.bin"], stdin=subprocess.PIPE, text=True)
    attack.communicate(f"GET {url}\n")
    user, sys_, rss = open(os.path.join(work, "time")).read().split()[-3:]
    j = json.loads(subprocess.run(["vegeta", "report", "-type=json", f"{work}/vegeta.bin"],
                                  capture_output=True, text=True, check=True).stdout)
    return int(j["requests"]), float(user) + float(sys_), int(rss), j["latencies"]["99th"] / 1e6

def run_loadtest(plugin=None, params=""):
    cfg = os.path.join(work, "lt.yaml")
    plugin = plugin or f"{{ path: {component} }}"
    with open(cfg, "w") as f:
        f.write(f"target: {url}\nplugins:\n  get: {plugin}\nscenarios:\n"
                f"  get: {{ plugin: get, executor: constant-vus, vus: {conns}, duration: {secs}s{params} }}\n")
    report = os.path.join(work, "lt.json")
    # Compiles the plugin into the on-disk cache first, as any earlier run
    # would have: the table compares generating load, not compiling.
    subprocess.run([loadtest, "validate", cfg], check=True, capture_output=True)
    _, cpu, rss = timed([loadtest, "run", "-q", cfg, "--json", report])
    r = json.load(open(report))
    return r["totals"]["requests"], cpu, rss, r["scenarios"]["get"]["requests"]["get"]["latency_ms"]["p99"]

tools = [("wrk", "wrk", run_wrk), ("hey", "hey", run_hey), ("oha", "oha", run_oha), ("k6", "k6", run_k6),
         ("vegeta", "vegeta", run_vegeta),
         ("locust (FastHttpUser, 1 process)", "locust", run_locust), ("loadtest (Rust scenario)", None, run_loadtest),
         ("loadtest (JavaScript scenario)", None, lambda: run_loadtest(f"{{ path: {js_component} }}")),
         ("loadtest (http-steps)", None, lambda: run_loadtest("{ builtin: http-steps }",
                                                             ", params: { steps: [{ request: { path: /, name: get } }] }"))]
results, missing = [], []
for name, exe, fn in tools:
    if exe and not shutil.which(exe):
        missing.append(name); continue
    try:
        reqs, cpu, rss, p99 = fn()
        results.append((name, reqs, cpu, rss, p99))
        print(f"{name}: {reqs / secs:.0f} req/s", file=sys.stderr)
    except Exception as e:  # a peer's output we could not read: say so, keep going
        missing.append(f"{name} (failed: {e})")

base = next((r for r in results if r[0] == "wrk"), results[0])
base_rate, base_cpu = base[1] / secs, base[2] / base[1]
per_cpu = {name: reqs / cpu for name, reqs, cpu, _, _ in results}
k6 = per_cpu.get("k6")
locust = next((v for k, v in per_cpu.items() if k.startswith("locust")), None)
vs = lambda v, peer: f"{v / peer:.1f}x" if peer else "-"
lines = [f"| tool | req/s | CPU µs/req | peak RSS | p99 (ms) | req/s vs wrk | CPU/req vs wrk | req per CPU-s | per CPU-s vs k6 | vs locust |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for name, reqs, cpu, rss, p99 in results:
    rate, cpr = reqs / secs, cpu / reqs
    lines.append(f"| {name} | {rate:.0f} | {cpr * 1e6:.2f} | {rss / 1024:.1f} MiB | {p99:.2f} | {rate / base_rate:.2f}x "
                 f"| {cpr / base_cpu:.2f}x | {reqs / cpu:.0f} | {vs(reqs / cpu, k6)} | {vs(reqs / cpu, locust)} |")

# The targets, checked against this run.
def target(label, ok):
    return f"- {'met' if ok else '**not met**'}: {label}"
got = {name: (reqs / secs / base_rate, (cpu / reqs) / base_cpu, reqs / cpu) for name, reqs, cpu, _, _ in results}
checks = []
if "loadtest (Rust scenario)" in got:
    t, c, _ = got["loadtest (Rust scenario)"]
    checks.append(target(f"Rust scenario at least 0.9x wrk's throughput ({t:.2f}x) and at most 1.5x its CPU per request ({c:.2f}x)", t >= 0.9 and c <= 1.5))
if "loadtest (http-steps)" in got:
    t = got["loadtest (http-steps)"][0]
    checks.append(target(f"http-steps at least 0.7x wrk's throughput ({t:.2f}x)", t >= 0.7))
for name, (_, _, pc) in got.items():
    if name.startswith("loadtest") and k6 and locust:
        checks.append(target(f"{name}: at least 3x k6's requests per CPU-second ({pc / k6:.1f}x) and 10x locust's ({pc / locust:.1f}x)",
                             pc >= 3 * k6 and pc >= 10 * locust))

# Memory for VUs that sleep (think time longer than the run: no requests).
mem = ["| VUs | peak RSS | RSS per VU | init time per VU |", "|---|---|---|---|"]
old_maps = open("/proc/sys/vm/max_map_count").read().strip()
try:
    subprocess.run(["sysctl", "-qw", f"vm.max_map_count={max(int(old_maps), max(vu_counts) * 8 + 10000)}"], check=False)
    for n in vu_counts:
        cfg = os.path.join(work, "idle.yaml")
        with open(cfg, "w") as f:
            f.write(f"target: {url}\nplugins:\n  get: {{ path: {component} }}\nscenarios:\n"
                    f"  idle: {{ plugin: get, executor: constant-vus, vus: {n}, duration: 3s, gracefulStop: 0s, params: {{ think_ms: 60000 }} }}\n")
        out, _, rss = timed([loadtest, "run", "-q", cfg], env=dict(os.environ, RUST_LOG="loadtest=info"))
        m = re.search(r"initialised (\d+) VUs in ([\d.]+)(ms|s|µs)", out)
        init_ms = float(m.group(2)) * (1000 if m.group(3) == "s" else 0.001 if m.group(3) == "µs" else 1) if m else float("nan")
        mem.append(f"| {n} | {rss / 1024:.0f} MiB | {rss / n:.0f} KiB | {init_ms * 1000 / n:.0f} µs |")
        print(f"{n} idle VUs: {rss / 1024:.0f} MiB", file=sys.stderr)
        if n == max(vu_counts) and n >= 100_000:
            checks.append(target(f"{n} sleeping VUs in one process at most 64 KiB each ({rss / n:.0f} KiB)", rss / n <= 64))
finally:
    subprocess.run(["sysctl", "-qw", f"vm.max_map_count={old_maps}"], check=False)
    subprocess.run(["/usr/sbin/nginx", "-c", f"{work}/nginx.conf", "-p", work, "-s", "stop"], check=False)

cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
doc = [f"# Benchmarks", "", f"Generated by `benches/peers.py {conns} {secs} {','.join(map(str, vu_counts))}` on "
       f"{datetime.date.today()}; {os.cpu_count()} cores ({cpu_model}), generator and nginx (one worker) sharing them. "
       "One run: these machines are shared and noisy, so read the ratios, not the third digit.", "",
       f"## Throughput: {conns} connections/VUs, {secs} s, one GET of a 6-byte body", ""] + lines + [
       "", "CPU is user+sys of the generator process (GNU time). Each loadtest row is preceded by `loadtest validate`, "
       "which compiles the plugin into the on-disk cache as any earlier run would have, so the row measures generating load, not compiling."]
if missing:
    doc += ["", "Not measured: " + "; ".join(missing) + "."]
doc += ["", "## Memory: VUs that sleep through the run", "", "loadtest does not change `vm.max_map_count` itself: it warns before a run that needs more, and VUs past the cap fail to start with the sysctl to run. This run raised it (each VU takes about 6 mappings).", ""] + mem
doc += ["", "## Targets", ""] + checks

# Cluster figures, from their own scripts (each starts its own nodes).
if os.environ.get("BENCH_CLUSTER", "1") != "0":
    for script, title in [("cluster.py", "Cluster: distribution, start skew, aggregation"),
                          ("failover.py", "Cluster: election and failover")]:
        out = subprocess.run([sys.executable, os.path.join(root, "benches", script)], cwd=root,
                             capture_output=True, text=True)
        body = out.stdout.strip() if out.returncode == 0 else f"failed: {out.stderr.strip()[-400:]}"
        # Plain lines become list items so markdown keeps them apart.
        body = "\n".join(l if l.startswith("|") or not l.strip() else f"- {l}" for l in body.splitlines())
        doc += ["", f"## {title}", "", f"From `benches/{script}`:", "", body]
        print(f"{script}: done", file=sys.stderr)

os.makedirs(os.path.join(root, "docs"), exist_ok=True)
with open(os.path.join(root, "docs/BENCHMARKS.md"), "w") as f:
    f.write("\n".join(doc) + "\n")
print("\n".join(doc))
