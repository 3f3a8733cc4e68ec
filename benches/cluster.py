#!/usr/bin/env python3
"""Distributed runs on loopback (release build), not a test; prints tables.

1. Distribution: a leader and 2 or 4 followers; a plugin padded to 1 MiB
   and to 20 MiB (fresh bytes each time, so no node has the digest yet) is
   submitted; the time from accepting the config to every follower having
   compiled it is read from the run's events.
2. Start skew: the spread of the nodes' first iterations, from the reports.
3. Aggregation: 2 followers x 20 VUs for 20 s against the embedded target;
   the leader's CPU time over the run, per follower-second.

Usage: benches/cluster.py
"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["scripts/build-plugins.sh"], cwd=root, check=True, stdout=subprocess.DEVNULL)
subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadtest"], cwd=root, check=True)
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
binary = os.path.join(target_dir, "release", "loadtest")
component = os.path.join(root, "target", "components", "quickstart.wasm")
work = tempfile.mkdtemp()
tick = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def padded(size, salt):
    """The quickstart component with a custom section making it `size` bytes."""
    base = open(component, "rb").read()
    name = b"padding"
    body_len = size - len(base) - 1 - 5 - 1 - len(name)
    body = bytes([len(name)]) + name + (salt.to_bytes(8, "little") * (body_len // 8 + 1))[:body_len]
    n, leb = len(body), b""
    for i in range(5):  # fixed 5-byte LEB128, so the size is exact
        leb += bytes([(n >> (7 * i)) & 0x7f | (0x80 if i < 4 else 0)])
    path = os.path.join(work, f"plugin-{size}-{salt}.wasm")
    open(path, "wb").write(base + b"\x00" + leb + body)
    return path


def config(plugin, executor, url):
    path = os.path.join(work, "test.yaml")
    open(path, "w").write(
        f"name: bench\ntarget: {url}\nplugins:\n  shop: {{ path: {plugin} }}\n"
        f"scenarios:\n  browse:\n    plugin: shop\n{executor}\n    params: {{ think_ms: 0 }}\n")
    return path


class Cluster:
    def __init__(self, n):
        self.nodes = [{"name": f"node-{i}", "raft": f"127.0.0.1:{free_port()}",
                       "health": f"127.0.0.1:{free_port()}"} for i in range(n)]
        peers = ",".join(x["raft"] for x in self.nodes)
        for x in self.nodes:
            env = dict(os.environ, CLUSTER_NODE_ID=x["name"], CLUSTER_BIND_ADDR=x["raft"],
                       CLUSTER_HEALTH_ADDR=x["health"], CLUSTER_NODES=peers,
                       CLUSTER_DATA_DIR=os.path.join(work, x["name"] + str(time.time())),
                       CLUSTER_ELECTION_TIMEOUT_MS="500")
            x["proc"] = subprocess.Popen([binary, "node"], env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        self.leader = self.await_members(n)

    def health(self, x):
        try:
            with urllib.request.urlopen(f"http://{x['health']}/cluster/state", timeout=0.5) as r:
                return json.load(r)
        except Exception:
            return None

    def await_members(self, n, deadline=60):
        end = time.time() + deadline
        while time.time() < end:
            hs = [self.health(x) for x in self.nodes]
            if all(hs) and all(len(h["voters"]) + len(h["learners"]) == n for h in hs):
                leaders = [x for x, h in zip(self.nodes, hs) if h["state"] == "leader"]
                if len(leaders) == 1:
                    return leaders[0]
            time.sleep(0.05)
        raise SystemExit("the cluster did not form")

    def stop(self):
        for x in self.nodes:
            x["proc"].kill(); x["proc"].wait()


def submit(cfg, node):
    out = os.path.join(work, "report.json")
    subprocess.run([binary, "submit", cfg, "--node", node, "--json", out, "-q"], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return json.load(open(out))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


target = subprocess.Popen([binary, "target", "--addr", f"127.0.0.1:{free_port()}"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = target.stdout.readline().strip().removeprefix("listening on ")
tiny = "    executor: constant-arrival-rate\n    rate: 10\n    duration: 1s\n    preAllocatedVUs: 2"
rows, spreads = [], []
try:
    salt = int(time.time())
    for followers in (2, 4):
        c = Cluster(followers + 1)
        for size in (1 << 20, 20 << 20):
            salt += 1
            r = submit(config(padded(size, salt), tiny, url), c.leader["raft"])
            event = next(e for e in r["cluster"]["events"] if "distributed" in e)
            ms = int(event.split(" in ")[1].split(" ")[0])
            rows.append((followers, size >> 20, ms))
            spreads.append(r["cluster"]["start_spread_ms"])
        c.stop()

    c = Cluster(3)
    vus = "    executor: constant-vus\n    vus: 20\n    duration: 20s"
    pid = c.leader["proc"].pid
    before = cpu_seconds(pid)
    r = submit(config(component, vus, url), c.leader["raft"])
    used = cpu_seconds(pid) - before
    spreads.append(r["cluster"]["start_spread_ms"])
    c.stop()
finally:
    target.kill()

print("| followers | plugin | distributed and compiled in |")
print("|---|---|---|")
for f, mib, ms in rows:
    print(f"| {f} | {mib} MiB | {ms} ms |")
print(f"\nstart spread over {len(spreads)} runs: max {max(spreads)} ms, values {spreads}")
node_seconds = 2 * r["duration_secs"]
print(f"leader CPU during a 2-node, {r['duration_secs']:.1f} s run of {r['totals']['requests']} requests: "
      f"{used * 1000:.0f} ms = {used * 1000 / node_seconds:.2f} ms per node per second")
