#!/usr/bin/env python3
"""Leader failover on loopback: start 3 nodes (release build), then kill
the leader with SIGKILL N times (restarting it each time) and time how long
the survivors take to agree on a new leader. Also times the first election
of a fresh cluster. With --run, a test runs against the embedded target the
whole time, so metric batches flow through Raft while leaders die; at the
end the run is stopped and the report's request count is set against the
target's. Not a test; prints a table.

Usage: benches/failover.py [kills=20] [election_timeout_ms=node default] [--run] [--binary PATH]
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from binary import loadtest_binary

flags = sys.argv[1:]
valued = {i + 1 for i, a in enumerate(flags) if a == "--binary"}
args = [a for i, a in enumerate(flags) if not a.startswith("--") and i not in valued]
with_run = "--run" in flags
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

target = None
try:
    t0 = time.time()
    for n in nodes: start(n)
    agreed(nodes)
    first = time.time() - t0
    if with_run:
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
        out = cli("submit", cfg, "--node", peers, "--detach")
        assert out.returncode == 0, out.stderr
        end = time.time() + 60
        while (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests", 0) < 400:
            assert time.time() < end, "the run did not start"
            time.sleep(0.1)
    times = []
    settled()
    for _ in range(kills):
        leader = next(n for n in nodes if n["name"] == agreed(nodes))
        t = time.time()
        leader["proc"].send_signal(signal.SIGKILL); leader["proc"].wait()
        agreed([n for n in nodes if n is not leader])
        times.append(time.time() - t)
        start(leader)
        agreed(nodes)
        settled()
    shown = f"{election_ms} ms" if election_ms else "the default"
    print(f"election timeout {shown}, {kills} leader kills{' during a run at 200 requests/s' if with_run else ''}")
    print(f"fresh 3-node cluster: first agreement after {first * 1000:.0f} ms (includes process start)")
    ms = sorted(t * 1000 for t in times)
    print(f"failover: median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms, "
          f"p90 {ms[int(len(ms) * 0.9) - 1]:.0f} ms")
    print("all: " + " ".join(f"{t:.0f}" for t in ms))
    if with_run:
        cli("stop", "--node", peers)
        rep = os.path.join(data, "report.json")
        out = cli("report", "--node", peers, "--json", rep)
        report = json.load(open(rep)) if os.path.exists(rep) else {}
        seen = (get(f"http://127.0.0.1:{tport}/__stats") or {}).get("requests")
        got = report.get("totals", {}).get("requests")
        print(f"run: report counts {got} requests, the target {seen} (exit {out.returncode})")
    du = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(data) for f in fs)
    print(f"data dirs after the run: {du / 1024:.0f} KiB for 3 nodes")
finally:
    for n in nodes:
        if n.get("proc") and n["proc"].poll() is None:
            n["proc"].kill(); n["proc"].wait()
    if target:
        target.kill(); target.wait()
