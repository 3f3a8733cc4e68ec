#!/usr/bin/env python3
"""Leader failover on loopback: start 3 nodes (release build), then kill
the leader with SIGKILL N times (restarting it each time) and time how long
the survivors take to agree on a new leader. Also times the first election
of a fresh cluster. With --run, a test runs against the embedded target the
whole time, so metric batches flow through Raft while leaders die; at the
end the run is stopped and the report's request count is set against the
target's. With --runs, each kill falls in a run of its own, started just
before it (so the leader runs no share, as at any run's start): it times
how long until the series the new leader has committed is whole up to the
kill (every share's seconds up to the kill merged), next to the same lag
taken just before the kill, and sets each run's report against the
target's count for that run. Not a test; prints a table.

Usage: benches/failover.py [kills=20] [election_timeout_ms=node default] [--run | --runs] [--binary PATH]
"""
import json, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from binary import loadtest_binary

flags = sys.argv[1:]
valued = {i + 1 for i, a in enumerate(flags) if a == "--binary"}
args = [a for i, a in enumerate(flags) if not a.startswith("--") and i not in valued]
with_run = "--run" in flags
per_kill = "--runs" in flags
kills = int(args[0]) if args else 20
election_ms = args[1] if len(args) > 1 else None
binary = loadtest_binary(flags)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

data = tempfile.mkdtemp()
nodes = [{"name": f"node-{i}", "raft": f"127.0.0.1:{free_port()}", "health": f"127.0.0.1:{free_port()}"} for i in (1, 2, 3)]
peers = ",".join(n["raft"] for n in nodes)
env_base = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}

def start(n):
    env = dict(env_base, CLUSTER_NODE_ID=n["name"], CLUSTER_BIND_ADDR=n["raft"], CLUSTER_HEALTH_ADDR=n["health"],
               CLUSTER_NODES=peers, CLUSTER_DATA_DIR=os.path.join(data, n["name"]))
    if election_ms:
        env["CLUSTER_ELECTION_TIMEOUT_MS"] = election_ms
    n["proc"] = subprocess.Popen([binary, "node"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(data, n["name"] + ".log"), "a"))

def get(url, timeout=0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except Exception:
        return None

def agreed(alive, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        hs = [get(f"http://{n['health']}/health/cluster") for n in alive]
        if all(hs) and sum(h["state"] == "leader" for h in hs) == 1 and len({(h["leader_id"], h["term"]) for h in hs}) == 1:
            return hs[0]["leader_id"]
        time.sleep(0.01)
    raise SystemExit("no agreement within the deadline")

def settled(deadline=30):
    """Every node has applied the same log index (a restarted node has
    caught up), then a second more: the kills hit a steady cluster, not
    one whose last member is still replaying."""
    end = time.time() + deadline
    while time.time() < end:
        st = [get(f"http://{n['health']}/cluster/state") for n in nodes]
        if all(st) and len({x.get("last_applied_index") for x in st}) == 1:
            time.sleep(1)
            return
        time.sleep(0.05)
    raise SystemExit("the nodes did not catch up within the deadline")

def cli(*a):
    return subprocess.run([binary, *a], env=env_base, capture_output=True, text=True, timeout=300)

def status(addr):
    out = subprocess.run([binary, "status", "--node", addr, "--json"], env=env_base,
                         capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None

def leader_now():
    return next(n for n in nodes if n["name"] == agreed(nodes))

def series_whole(leader, at_ms, deadline=60):
    """Seconds from `at_ms` until the series `leader` has committed is whole
    up to `at_ms`: every share of the run has its seconds up to then
    merged (a share's second i is the run's second i, from the plan's
    start, and closes two seconds after its end for stragglers). Also
    the number of shares."""
    end = time.time() + deadline
    st = None
    while time.time() < end:
        st = status(leader["raft"])
        if st and st.get("plan") and st.get("leader") == leader["name"] and st["progress"]:
            start_ms = st["plan"]["start_at_ms"]
            if all(start_ms + p["next"] * 1000 >= at_ms and not a["lost"] for a, p in st["progress"]):
                return time.time() - at_ms / 1000, len(st["progress"])
        time.sleep(0.05)
    raise SystemExit(f"the merged series did not reach {at_ms} within the deadline: {st}")

def requests_seen():
    return (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0)

def submit():
    out = cli("submit", cfg, "--node", peers, "--detach")
    assert out.returncode == 0, out.stderr

def report_count():
    """Stops the run and returns the merged report's request count."""
    cli("stop", "--node", peers)
    rep = os.path.join(data, "report.json")
    if os.path.exists(rep):
        os.remove(rep)
    out = cli("report", "--node", peers, "--json", rep)
    report = json.load(open(rep)) if os.path.exists(rep) else {}
    return report.get("totals", {}).get("requests"), out.returncode

def kill_leader():
    """SIGKILLs the leader; returns it, the survivors' new leader and the
    seconds until every survivor knew it."""
    leader = leader_now()
    t = time.time()
    leader["proc"].send_signal(signal.SIGKILL); leader["proc"].wait()
    new = next(n for n in nodes if n["name"] == agreed([n for n in nodes if n is not leader]))
    return leader, new, t, time.time() - t

def revive(node):
    start(node)
    agreed(nodes)
    settled()

def one_run_one_kill():
    """A run, a leader kill once its series flows, the run's report
    against the target's count. Returns (agreement, series whole, lag
    just before, shares, report, target)."""
    before = requests_seen()
    submit()
    end = time.time() + 60
    while True:
        st = status(leader_now()["raft"]) or {}
        if st.get("plan", {}).get("status") == "running" and any(p["next"] > 3 for _, p in st.get("progress", [])):
            break
        assert time.time() < end, f"the run did not start: {st}"
        time.sleep(0.2)
    # Moments anywhere in their second: a poll's answer comes just after
    # a commit, which the closes of seconds time.
    time.sleep(random.random())
    lag, _ = series_whole(leader_now(), time.time() * 1000)
    time.sleep(random.random())
    leader, new, t, agreement = kill_leader()
    whole, shares = series_whole(new, t * 1000)
    revive(leader)
    got, rc = report_count()
    assert rc == 0, f"report exited {rc}"
    return agreement, whole, lag, shares, got, requests_seen() - before

target = None
try:
    t0 = time.time()
    for n in nodes: start(n)
    agreed(nodes)
    first = time.time() - t0
    if with_run or per_kill:
        tport = free_port()
        target = subprocess.Popen([binary, "target", "--addr", f"127.0.0.1:{tport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        cfg = os.path.join(data, "run.yaml")
        with open(cfg, "w") as f:
            f.write(f"""name: failover
target: http://127.0.0.1:{tport}
plugins: {{ steps: {{ builtin: http-steps }} }}
scenarios:
  s:
    plugin: steps
    executor: constant-arrival-rate
    rate: 200
    duration: 30m
    preAllocatedVUs: 20
    maxVUs: 60
    params: {{ steps: [ {{ request: {{ path: / }} }} ] }}
""")
    if with_run:
        out = cli("submit", cfg, "--node", peers, "--detach")
        assert out.returncode == 0, out.stderr
        end = time.time() + 60
        while requests_seen() < 400:
            assert time.time() < end, "the run did not start"
            time.sleep(0.1)
    times, runs = [], []
    settled()
    for _ in range(kills):
        if per_kill:
            runs.append(one_run_one_kill())
            times.append(runs[-1][0])
            continue
        leader, _, _, agreement = kill_leader()
        times.append(agreement)
        revive(leader)
    shown = f"{election_ms} ms" if election_ms else "the default"
    during = " during a run at 200 requests/s" if with_run else " each in a run of its own at 200 requests/s" if per_kill else ""
    print(f"election timeout {shown}, {kills} leader kills{during}")
    print(f"fresh 3-node cluster: first agreement after {first * 1000:.0f} ms (includes process start)")
    ms = sorted(t * 1000 for t in times)
    print(f"failover: median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms, "
          f"p90 {ms[int(len(ms) * 0.9) - 1]:.0f} ms")
    print("all: " + " ".join(f"{t:.0f}" for t in ms))
    for name, col in (("series whole to the kill", 1), ("the same lag just before the kill", 2)):
        xs = sorted(r[col] * 1000 for r in runs)
        if xs:
            print(f"{name}: median {statistics.median(xs):.0f} ms, max {xs[-1]:.0f} ms, min {xs[0]:.0f} ms, "
                  f"p90 {xs[int(len(xs) * 0.9) - 1]:.0f} ms")
            print("all: " + " ".join(f"{x:.0f}" for x in xs))
    if runs:
        added = sorted((r[1] - r[2]) * 1000 for r in runs)
        print(f"series whole minus the lag before, per kill: median {statistics.median(added):.0f} ms, "
              f"max {added[-1]:.0f} ms, min {added[0]:.0f} ms")
        exact = sum(r[4] == r[5] for r in runs)
        print(f"runs: {exact} of {len(runs)} reports equal the target's count; shares per run {sorted({r[3] for r in runs})}")
        for r in runs:
            if r[4] != r[5]:
                print(f"  report {r[4]}, target {r[5]}")
    if with_run:
        got, rc = report_count()
        print(f"run: report counts {got} requests, the target {requests_seen()} (exit {rc})")
    du = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(data) for f in fs)
    print(f"data dirs after the run: {du / 1024:.0f} KiB for 3 nodes")
finally:
    for n in nodes:
        if n.get("proc") and n["proc"].poll() is None:
            n["proc"].kill(); n["proc"].wait()
    if target:
        target.kill(); target.wait()
    shutil.rmtree(data, ignore_errors=True)
