#!/usr/bin/env python3
"""A soak: one long run at a steady arrival rate against the embedded
target, standalone or on a 3-node cluster on loopback, sampling once a
minute what a long run accumulates: RSS and open files of every loadtest
process, the disk use of the nodes' data dirs, the replicated state and
the Raft log. At the end: the report's request count against the
target's, and the growth of each figure after the warm-up minutes.
Not a test; prints a table.

Usage: benches/soak.py standalone|cluster [minutes=30] [rate=200] [--binary PATH]
                      [--wrap 'heaptrack -o /tmp/heap-{name}'] [--fixed-pool N] [--smaps]
--wrap runs every loadtest process under a command (a heap profiler):
{name} becomes the process's name; the figures are the wrapped process's.
--smaps prints, per process, which mappings' resident memory grew between
the warm-up minute and the end (malloc's arenas, wasm linear memories,
thread stacks, ...): growth without a live-heap leak shows up there.
--fixed-pool N makes all N VUs up front (preAllocatedVUs = maxVUs = N):
an arrival rate's pool otherwise grows after a hiccup (a VU is about
1.7 MiB) and keeps its VUs, as k6's does, which is not a leak.
"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request
from binary import loadtest_binary

flags = sys.argv[1:]
valued = {i + 1 for i, a in enumerate(flags) if a in ("--binary", "--wrap", "--fixed-pool")}
args = [a for i, a in enumerate(flags) if not a.startswith("--") and i not in valued]
wrap = flags[flags.index("--wrap") + 1].split() if "--wrap" in flags else []
smaps = "--smaps" in flags
pool = int(flags[flags.index("--fixed-pool") + 1]) if "--fixed-pool" in flags else None
pre_vus, max_vus = (pool, pool) if pool else (20, 100)
mode = args[0] if args else "standalone"
minutes = int(args[1]) if len(args) > 1 else 30
rate = int(args[2]) if len(args) > 2 else 200
# The cluster keeps every second of the last 10 minutes in its replicated
# state before folding them into minutes: that state fills for 10 minutes.
warmup = min(2 if mode == "standalone" else 11, minutes - 1)
binary = loadtest_binary(flags)


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks: s.close()
    return ports


def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except Exception:
        return None


def wrapped(name, argv):
    return [w.replace("{name}", name) for w in wrap] + argv


def real_pid(p):
    """The loadtest process itself, under a --wrap command's processes."""
    if not wrap:
        return p.pid
    todo = [p.pid]
    while todo:
        pid = todo.pop()
        try:
            if os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(binary):
                return pid
            for t in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return p.pid


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory_parts(pid):
    """Anonymous and file-backed resident MiB, and plugin instances: each
    maps its compiled component's memory image, so the mappings of
    compiled files count the instances (VUs) alive."""
    parts = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                parts[line.split(":")[0]] = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/maps") as f:
        instances = sum(1 for line in f if line.rstrip().endswith(".cwasm"))
    return parts.get("RssAnon", 0.0), parts.get("RssFile", 0.0), instances


def mappings(pid):
    """Resident KiB per mapping, keyed by its start address (an arena's
    mapping grows at its end), with its size in KiB and name."""
    out, key = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                key = head[0].split("-")[0]
                out[key] = [(hi - lo) // 1024, head[5] if len(head) > 5 else "[anon]", 0]
            elif head[0] == "Rss:" and key:
                out[key][2] = int(head[1])
    return out


def kind_of(size_kib, name):
    """What a mapping most likely is, from its name and size."""
    if name != "[anon]":
        return name.rsplit("/", 1)[-1]
    if size_kib >= 1 << 20:
        return "anon >= 1 GiB (wasm linear memory reservation)"
    if size_kib <= 64 << 10 and size_kib % 4 == 0 and size_kib >= 1 << 10:
        return f"anon {size_kib >> 10} MiB (malloc arena heap or thread stack)"
    return f"anon {size_kib} KiB"


def grown(before, after, top=8):
    """The mappings whose resident memory grew most, by kind."""
    rows = []
    for key, (size, name, rss) in after.items():
        was = before.get(key, (size, name, 0))[2]
        if rss != was:
            rows.append((rss - was, key, size, name, was, rss))
    rows.sort(reverse=True)
    by_kind = {}
    for d, _, size, name, _, _ in rows:
        by_kind[kind_of(size, name)] = by_kind.get(kind_of(size, name), 0) + d
    return rows[:top], by_kind


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def du_kib(path):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs) / 1024


def wait_for(what, check, deadline):
    end = time.time() + deadline
    while time.time() < end:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise SystemExit(f"{what}: not within {deadline} s")


data = tempfile.mkdtemp(prefix=f"soak-{mode}-")
env_base = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}
env_base["RUST_LOG"] = "warn"
procs = []
tport = free_ports(1)[0]
target = subprocess.Popen([binary, "target", "--addr", f"127.0.0.1:{tport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
procs.append(target)
stats = lambda: (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0)
cfg = os.path.join(data, "soak.yaml")
with open(cfg, "w") as f:
    f.write(f"""name: soak
target: http://127.0.0.1:{tport}
plugins: {{ steps: {{ builtin: http-steps }} }}
scenarios:
  s:
    plugin: steps
    executor: constant-arrival-rate
    rate: {rate}
    duration: {minutes}m
    preAllocatedVUs: {pre_vus}
    maxVUs: {max_vus}
    params: {{ steps: [ {{ request: {{ path: / }}, assert: [ {{ status: 200 }} ] }} ] }}
""")
smaps_at = {}  # name -> mappings at the warm-up minute
samples = []  # (minute, {name: (rss, fds)}, disk_kib, state_kib, log_kib)
report_path = os.path.join(data, "report.json")
try:
    wait_for("the target", lambda: get(f"http://127.0.0.1:{tport}/__stats"), 30)
    before = stats()
    if mode == "standalone":
        run = subprocess.Popen(wrapped("run", [binary, "run", "-q", cfg, "--json", report_path]), env=env_base,
                               stdout=open(os.path.join(data, "run.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(run)
        watched = {"run": run}
        nodes = []
    else:
        ports = free_ports(6)
        nodes = [{"name": f"node-{i}", "raft": f"127.0.0.1:{ports[2 * i]}", "health": f"127.0.0.1:{ports[2 * i + 1]}"}
                 for i in range(3)]
        peers = ",".join(n["raft"] for n in nodes)
        for n in nodes:
            env = dict(env_base, CLUSTER_NODE_ID=n["name"], CLUSTER_BIND_ADDR=n["raft"], CLUSTER_HEALTH_ADDR=n["health"],
                       CLUSTER_NODES=peers, CLUSTER_DATA_DIR=os.path.join(data, n["name"]))
            n["proc"] = subprocess.Popen(wrapped(n["name"], [binary, "node"]), env=env, stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(data, n["name"] + ".log"), "w"))
            procs.append(n["proc"])
        def leader():
            for n in nodes:
                st = get(f"http://{n['health']}/cluster/state")
                if st and st.get("state") == "leader" and len(st.get("voters", [])) == 3:
                    return n
        lead = wait_for("a leader of 3", leader, 60)
        out = subprocess.run([binary, "submit", cfg, "--node", lead["raft"], "--detach"], env=env_base,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        watched = {n["name"]: n["proc"] for n in nodes}
    t0 = time.time()
    for minute in range(1, minutes + 1):
        time.sleep(max(0, t0 + 60 * minute - time.time()))
        pids = {k: real_pid(p) for k, p in watched.items() if p.poll() is None}
        per = {k: (rss_mib(pid), open_files(pid), *memory_parts(pid)) for k, pid in pids.items()}
        disk = sum(du_kib(os.path.join(data, n["name"])) for n in nodes)
        state = log = 0
        for n in nodes:
            st = get(f"http://{n['health']}/cluster/state")
            if st and st.get("state") == "leader":
                state, log = st.get("state_bytes", 0) / 1024, st.get("log_bytes", 0) / 1024
        samples.append((minute, per, disk, state, log))
        if smaps and minute in (max(warmup, 1), minutes):
            for k, pid in pids.items():
                m = mappings(pid)
                if k in smaps_at:
                    top, by_kind = grown(smaps_at[k], m)
                    print(f"  {k}: resident memory that changed over minutes {max(warmup, 1)}-{minute}, by kind (KiB):"
                          f" {json.dumps(dict(sorted(by_kind.items(), key=lambda kv: -kv[1])))}")
                    for d, key, size, name, was, now in top:
                        print(f"    {d:+7d} KiB  {was} -> {now}  at {key} ({size} KiB, {kind_of(size, name)})")
                smaps_at[k] = m
        cells = "  ".join(f"{k} {r:.1f} MiB (anon {a:.1f}, file {fl:.1f}, {n} mapped images) {fd} fds"
                          for k, (r, fd, a, fl, n) in per.items())
        print(f"  min {minute:>3}  {cells}  disk {disk:.0f} KiB  state {state:.0f} KiB  log {log:.0f} KiB", flush=True)
    if mode == "standalone":
        code = run.wait(timeout=120)
    else:
        out = subprocess.run([binary, "report", "--node", lead["raft"], "--json", report_path], env=env_base,
                             capture_output=True, text=True, timeout=300)
        code = out.returncode
    report = json.load(open(report_path)) if os.path.exists(report_path) else {}
    got = report.get("totals", {}).get("requests")
    seen = stats() - before
    print(f"soak ({mode}): {rate} requests/s for {minutes} min, exit {code}")
    print(f"  report requests vs the target's: {got} vs {seen} ({'equal' if got == seen else 'DIFFERENT'}),"
          f" scheduled {rate * 60 * minutes}, dropped {report.get('totals', {}).get('dropped_iterations')}")
    base = samples[warmup - 1] if warmup > 0 else samples[0]
    last = samples[-1]
    span = last[0] - base[0]
    for k in base[1]:
        if k in last[1]:
            r0, f0 = base[1][k][:2]
            r1, f1 = last[1][k][:2]
            peak = max(s[1][k][0] for s in samples[warmup - 1:] if k in s[1])
            print(f"  {k}: RSS {r0:.1f} -> {r1:.1f} MiB (peak {peak:.1f}) over minutes {base[0]}-{last[0]},"
                  f" {(r1 - r0) / max(span, 1) * 1024:.0f} KiB/min; open files {f0} -> {f1}")
    if nodes:
        print(f"  data dirs: {base[2]:.0f} -> {last[2]:.0f} KiB; replicated state: {base[3]:.0f} -> {last[3]:.0f} KiB;"
              f" log: {base[4]:.0f} -> {last[4]:.0f} KiB (minutes {base[0]}-{last[0]})")
    print(f"  generator: {json.dumps(report.get('generator'))}")
finally:
    for p in procs:
        if p.poll() is None:
            # A wrapped process is asked to end, so its profiler can finish.
            if wrap:
                os.kill(real_pid(p), 15)
                try:
                    p.wait(timeout=60)
                    continue
                except subprocess.TimeoutExpired:
                    pass
            p.kill(); p.wait()
