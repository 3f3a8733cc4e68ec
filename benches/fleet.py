#!/usr/bin/env python3
"""A fleet on one machine: N node processes on loopback (3 voters, the
rest learners, a static peer list), each running a small share of one
constant-arrival-rate test against the embedded target. Measures what
grows with the fleet: the leader's CPU per follower-second (idle, and
during the run with every node's metrics flowing), bytes and entries per
second into the Raft log, the replicated state's size, RSS per idle
node, and whether the report's request count equals the target's.
Not a test; prints a table.

Usage: benches/fleet.py [nodes=100] [seconds=60] [rate=400] [--binary PATH] [--kill]
  --kill   SIGKILL the leader halfway through the run (it runs no share)
  FLEET_ELECTION_MS=1500 sets the nodes' CLUSTER_ELECTION_TIMEOUT_MS
  FLEET_PERF=out.data records the leader with `perf record` (FLEET_PERF_HZ samples
    a second, 999 by default; DWARF call graphs:
    release builds keep no frame pointers) during the
    run's measured window (read it with `perf report -i out.data`);
    FLEET_PERF_GRAPH=none records no call graphs (a flat profile that
    perturbs the cluster far less)
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from binary import loadtest_binary

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = sys.argv[1:]
nodes_n = int(args[0]) if args else 100
seconds = int(args[1]) if len(args) > 1 else 60
rate = int(args[2]) if len(args) > 2 else 400
kill = "--kill" in flags
binary = loadtest_binary(flags)
tick = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks: s.close()
    return ports


data = tempfile.mkdtemp(prefix="fleet-")
ports = free_ports(2 * nodes_n + 1)
nodes = [{"name": f"node-{i:03}", "raft": f"127.0.0.1:{ports[2 * i]}", "health": f"127.0.0.1:{ports[2 * i + 1]}"}
         for i in range(nodes_n)]
peers = ",".join(n["raft"] for n in nodes)
env_base = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}
env_base["RUST_LOG"] = os.environ.get("FLEET_LOG", "warn")


def start(n):
    env = dict(env_base, CLUSTER_NODE_ID=n["name"], CLUSTER_BIND_ADDR=n["raft"], CLUSTER_HEALTH_ADDR=n["health"],
               CLUSTER_NODES=peers, CLUSTER_DATA_DIR=os.path.join(data, n["name"]), CLUSTER_MAX_VOTERS="3")
    if os.environ.get("FLEET_ELECTION_MS"):
        env["CLUSTER_ELECTION_TIMEOUT_MS"] = os.environ["FLEET_ELECTION_MS"]
    n["proc"] = subprocess.Popen([binary, "node"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(data, n["name"] + ".log"), "a"))


def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except Exception:
        return None


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_for(what, check, deadline):
    end = time.time() + deadline
    while time.time() < end:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise SystemExit(f"{what}: not within {deadline} s")


def leader():
    # A leader deposed while its peers could not reach it may still call
    # itself one in its old term: the newest term's leader is the one.
    found = []
    for n in nodes:
        if n["proc"].poll() is not None:
            continue
        st = get(f"http://{n['health']}/cluster/state")
        if st and st.get("state") == "leader":
            found.append((st.get("term", 0), n["name"], n, st))
    if len(found) > 1:
        print("  nodes calling themselves leader: " + ", ".join(f"{f[1]} (term {f[0]})" for f in found), file=sys.stderr)
    return max(found, key=lambda f: f[0])[2:] if found else None


def cli(*a, timeout=600):
    return subprocess.run([binary, *a], env=env_base, capture_output=True, text=True, timeout=timeout)


def table():
    shown = os.environ.get("FLEET_ELECTION_MS", "the default")
    print(f"fleet: {nodes_n} nodes on one machine, {rate} requests/s for {seconds} s, election timeout {shown}")
    width = max((len(r[0]) for r in rows), default=0)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


target = None
rows = []
finished = False
try:
    tport = free_ports(1)[0]
    target = subprocess.Popen([binary, "target", "--addr", f"127.0.0.1:{tport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("the target", lambda: get(f"http://127.0.0.1:{tport}/__stats"), 30)
    cfg = os.path.join(data, "fleet.yaml")
    with open(cfg, "w") as f:
        f.write(f"""name: fleet
target: http://127.0.0.1:{tport}
plugins: {{ steps: {{ builtin: http-steps }} }}
scenarios:
  s:
    plugin: steps
    executor: constant-arrival-rate
    rate: {rate}
    duration: {seconds}s
    preAllocatedVUs: {2 * nodes_n}
    maxVUs: {4 * nodes_n}
    params: {{ steps: [ {{ request: {{ path: / }} }} ] }}
""")
    # One standalone second first: the builtin plugin is compiled into the
    # shared cache once, not by 100 nodes at the same moment.
    warm = cfg.replace("fleet.yaml", "warm.yaml")
    with open(warm, "w") as f:
        f.write(open(cfg).read().replace(f"duration: {seconds}s", "duration: 1s"))
    assert cli("run", warm, "--quiet").returncode in (0, 99)
    t0 = time.time()
    for n in nodes: start(n)
    def all_members():
        # A node that exits while the fleet forms (a port the bench picked
        # was taken by then) would leave it one short until the deadline.
        for n in nodes:
            if n["proc"].poll() is not None:
                with open(os.path.join(data, n["name"] + ".log")) as f:
                    last = (f.read().strip().splitlines() or ["(no output)"])[-1]
                raise SystemExit(f"{n['name']} exited while the fleet formed: {last}")
        got = leader()
        if got and len(got[1]["voters"]) + len(got[1]["learners"]) == nodes_n:
            return got
    lead, st = wait_for("every node a member", all_members, 300)
    rows.append(("nodes (voters + learners)", f"{len(st['voters'])} + {len(st['learners'])}"))
    rows.append(("time to a full membership", f"{time.time() - t0:.1f} s"))
    time.sleep(5)
    followers = [n for n in nodes if n is not lead]
    rss = sorted(rss_kib(n["proc"].pid) for n in nodes)
    rows.append(("RSS per idle node, median (min-max)", f"{statistics.median(rss) / 1024:.1f} MiB ({rss[0] / 1024:.1f}-{rss[-1] / 1024:.1f})"))
    idle = 10
    c0, l0 = cpu_s(lead["proc"].pid), get(f"http://{lead['health']}/cluster/state").get("log_bytes", 0)
    f0 = [cpu_s(n["proc"].pid) for n in followers]
    time.sleep(idle)
    c1, l1 = cpu_s(lead["proc"].pid), get(f"http://{lead['health']}/cluster/state").get("log_bytes", 0)
    f1 = [cpu_s(n["proc"].pid) for n in followers]
    idle_rate = (c1 - c0) / idle
    rows.append(("leader CPU idle", f"{idle_rate * 100:.1f}% of a core = {(c1 - c0) / idle / len(followers) * 1000:.3f} ms per follower-second"))
    rows.append(("follower CPU idle, median", f"{statistics.median(b - a for a, b in zip(f0, f1)) / idle * 100:.2f}% of a core"))
    rows.append(("log bytes/s idle", f"{(l1 - l0) / idle:.0f}"))

    before = (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0)
    out = cli("submit", cfg, "--node", lead["raft"], "--detach")
    assert out.returncode == 0, out.stderr
    wait_for("the run's first requests", lambda: (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0) > rate, 120)
    time.sleep(5)
    window = max(10, seconds // 2 - 10)
    now, _ = wait_for("a leader", leader, 60)
    if now is not lead:
        rows.append(("LEADER CHANGED before the window", f"{lead['name']} -> {now['name']}: measuring the new one"))
        lead = now
        followers = [n for n in nodes if n is not lead]
    s0 = get(f"http://{lead['health']}/cluster/state")
    c0 = cpu_s(lead["proc"].pid)
    f0 = [cpu_s(n["proc"].pid) for n in followers]
    perf = None
    if os.environ.get("FLEET_PERF"):
        graph = os.environ.get("FLEET_PERF_GRAPH", "dwarf,16384")
        graph = ["--call-graph", graph] if graph != "none" else []
        perf = subprocess.Popen(["perf", "record", "-F", os.environ.get("FLEET_PERF_HZ", "999"), *graph, "-p", str(lead["proc"].pid),
                                 "-o", os.environ["FLEET_PERF"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(window)
    if perf:
        perf.send_signal(signal.SIGINT); perf.wait(timeout=60)
    s1 = get(f"http://{lead['health']}/cluster/state") or {}
    if s1.get("state") != "leader":
        rows.append(("LEADER CHANGED during the window", f"now {s1.get('leader')}: the CPU figures mix leading and following"))
    c1 = cpu_s(lead["proc"].pid)
    f1 = [cpu_s(n["proc"].pid) for n in followers]
    run_rate = (c1 - c0) / window
    fn = len(followers)
    rows.append(("leader CPU during the run", f"{run_rate * 100:.1f}% of a core = {run_rate / fn * 1000:.3f} ms per follower-second"))
    rows.append(("  of which the metrics path (run - idle)", f"{(run_rate - idle_rate) / fn * 1000:.3f} ms per follower-second"))
    rows.append(("leader RSS at the window's end", f"{rss_kib(lead['proc'].pid) / 1024:.1f} MiB"))
    rss = sorted(rss_kib(n["proc"].pid) for n in followers if n["proc"].poll() is None)
    rows.append(("follower RSS at the window's end, median (max)", f"{statistics.median(rss) / 1024:.1f} MiB ({rss[-1] / 1024:.1f})"))
    rows.append(("Raft term at the window's start and end", f"{s0.get('term')} and {s1.get('term')}"))
    rows.append(("follower CPU during the run, median", f"{statistics.median(b - a for a, b in zip(f0, f1)) / window * 100:.2f}% of a core"))
    rows.append(("log during the run", f"{(s1.get('log_bytes', 0) - s0.get('log_bytes', 0)) / window:.0f} bytes/s, "
                 f"{(s1.get('last_log_index', 0) - s0.get('last_log_index', 0)) / window:.1f} entries/s"))
    if kill:
        t = time.time()
        lead["proc"].send_signal(signal.SIGKILL); lead["proc"].wait()
        new, _ = wait_for("a new leader", leader, 60)
        rows.append(("leader SIGKILL mid-run: new leader after", f"{(time.time() - t) * 1000:.0f} ms"))
        lead = new
    rep = os.path.join(data, "report.json")
    out = cli("report", "--node", lead["raft"], "--json", rep, timeout=seconds + 180)
    report = json.load(open(rep)) if os.path.exists(rep) else {}
    seen = (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0) - before
    got = report.get("totals", {}).get("requests")
    rows.append(("report requests vs the target's", f"{got} vs {seen} ({'equal' if got == seen else 'DIFFERENT'})"))
    spread = report.get("cluster", {}).get("start_spread_ms")
    rows.append(("start spread: the nodes' first iterations", f"{spread} ms"))
    st = get(f"http://{lead['health']}/cluster/state")
    rows.append(("replicated state after the run", f"{st.get('state_bytes', 0) / 1024:.0f} KiB"))
    du = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(data, lead["name"])) for f in fs)
    rows.append(("leader's data dir after the run", f"{du / 1024:.0f} KiB"))
    died = [f"{n['name']} (exit {n['proc'].returncode})" for n in nodes
            if n is not lead and n["proc"].poll() is not None and not (kill and n["proc"].returncode == -signal.SIGKILL)]
    rows.append(("nodes that died on their own", ", ".join(died) or "none"))
    finished = True
finally:
    # What was measured is printed also when a step failed or timed out.
    table()
    for n in nodes:
        if n.get("proc") and n["proc"].poll() is None:
            n["proc"].kill(); n["proc"].wait()
    if target:
        target.kill(); target.wait()
    # The nodes' logs and data stay for a look when a step failed.
    if finished:
        shutil.rmtree(data, ignore_errors=True)
    else:
        print(f"  nodes' logs and data kept in {data}")
