#!/usr/bin/env python3
"""Leader failover on loopback: start 3 nodes (release build), then kill
the leader with SIGKILL N times (restarting it each time) and time how long
the survivors take to agree on a new leader. Also times the first election
of a fresh cluster. Not a test; prints a table.

Usage: benches/failover.py [kills=10] [election_timeout_ms=500]
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

kills = int(sys.argv[1]) if len(sys.argv) > 1 else 10
election_ms = sys.argv[2] if len(sys.argv) > 2 else "500"
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadtest"], cwd=root, check=True)
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
binary = os.path.join(target, "release", "loadtest")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

data = tempfile.mkdtemp()
nodes = [{"name": f"node-{i}", "raft": f"127.0.0.1:{free_port()}", "health": f"127.0.0.1:{free_port()}"} for i in (1, 2, 3)]
peers = ",".join(n["raft"] for n in nodes)

def start(n):
    env = dict(os.environ, CLUSTER_NODE_ID=n["name"], CLUSTER_BIND_ADDR=n["raft"], CLUSTER_HEALTH_ADDR=n["health"],
               CLUSTER_NODES=peers, CLUSTER_DATA_DIR=os.path.join(data, n["name"]), CLUSTER_ELECTION_TIMEOUT_MS=election_ms)
    n["proc"] = subprocess.Popen([binary, "node"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def health(n):
    try:
        with urllib.request.urlopen(f"http://{n['health']}/health/cluster", timeout=0.5) as r:
            return json.load(r)
    except Exception:
        return None

def agreed(alive, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        hs = [health(n) for n in alive]
        if all(hs) and sum(h["state"] == "leader" for h in hs) == 1 and len({(h["leader_id"], h["term"]) for h in hs}) == 1:
            return hs[0]["leader_id"]
        time.sleep(0.01)
    raise SystemExit("no agreement within the deadline")

try:
    t0 = time.time()
    for n in nodes: start(n)
    agreed(nodes)
    first = time.time() - t0
    times = []
    for _ in range(kills):
        leader = next(n for n in nodes if n["name"] == agreed(nodes))
        t = time.time()
        leader["proc"].send_signal(signal.SIGKILL); leader["proc"].wait()
        agreed([n for n in nodes if n is not leader])
        times.append(time.time() - t)
        start(leader)
        agreed(nodes)
    print(f"election timeout {election_ms} ms (max {2 * int(election_ms)} ms), {kills} leader kills")
    print(f"fresh 3-node cluster: first agreement after {first * 1000:.0f} ms (includes process start)")
    print(f"failover: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms")
    du = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(data) for f in fs)
    print(f"data dirs after the run: {du / 1024:.0f} KiB for 3 nodes")
finally:
    for n in nodes:
        if n.get("proc") and n["proc"].poll() is None:
            n["proc"].kill(); n["proc"].wait()
