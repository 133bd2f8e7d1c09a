"""Failover time of a three-node vecdb cluster: how long after `kill -9` of a shard leader
writes are accepted again.

Starts three nodes on 127.0.0.1 with the default Raft timing, creates a collection of 3 shards
with 3 replicas each, and then, each cycle, kills the node that leads the most shards while a
client on another node writes one point to every shard, back to back, with a 1-second timeout.
The failover time is from the kill to the first write after it that every shard accepted. The
killed node is restarted on its data directory and given time to catch up before the next cycle.

    python3 tests/bench/failover.py --bin target/release/vecdb --cycles 10
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SECRET = "failover-bench-secret"


def call(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)["result"]


class Node:
    def __init__(self, binary, root, n, api, p2p, seed):
        self.binary, self.api, self.p2p, self.seed = binary, api, p2p, seed
        self.dir = os.path.join(root, f"node{n}")
        self.url = f"http://127.0.0.1:{api}"
        self.proc = None

    def start(self, cluster=True):
        env = {**os.environ, "RUST_LOG": "error"}
        args = [self.binary, "--host", "127.0.0.1", "--port", str(self.api), "--grpc-port", "0", "--data-dir", self.dir]
        if cluster:
            env["VECDB__CLUSTER__SECRET"] = SECRET
            args += ["--p2p-port", str(self.p2p)]
        if cluster and self.seed:
            args += ["--bootstrap", f"http://127.0.0.1:{self.seed}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        for line in self.proc.stdout:
            if line.startswith("vecdb listening on"):
                return
        raise RuntimeError("vecdb exited before listening")

    def peer_id(self):
        return call("GET", f"{self.url}/cluster")["peer_id"]


def stop(nodes):
    for node in nodes:
        if node.proc and node.proc.poll() is None:
            node.proc.terminate()
            node.proc.wait()


def write_all_shards(url, ids):
    points = [{"id": i, "vector": [1.0, float(i)]} for i in ids]
    try:
        call("PUT", f"{url}/collections/f/points?wait=true&timeout=1", {"points": points}, timeout=2)
        return True
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/vecdb")
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    base = 17000 + os.getpid() % 1000 * 10
    with tempfile.TemporaryDirectory() as root:
        nodes = [Node(args.bin, root, n, base + n, base + 5 + n, None if n == 0 else base + 5) for n in range(3)]
        try:
            for node in nodes:
                node.start()
            time.sleep(2)
            call("PUT", f"{nodes[0].url}/collections/f",
                 {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 3, "replication_factor": 3})
            ids = list(range(30))  # ten points per shard, on average: every shard gets some
            times = []
            for cycle in range(args.cycles):
                shards = call("GET", f"{nodes[0].url}/collections/f/cluster")["shards"]
                leaders = [s["leader"] for s in shards]
                by_id = {n.peer_id(): n for n in nodes}
                victim_id = max(set(leaders), key=leaders.count)
                victim = by_id[victim_id]
                client = next(n for n in nodes if n is not victim)
                assert write_all_shards(client.url, ids), "the cluster does not take writes before the kill"
                victim.proc.kill()
                killed = time.monotonic()
                while not write_all_shards(client.url, ids):
                    pass
                took = time.monotonic() - killed
                times.append(took)
                led = leaders.count(victim_id)
                print(f"cycle {cycle}: killed peer {victim_id}, leader of {led} shard(s); "
                      f"writes accepted again after {took:.3f} s", flush=True)
                victim.proc.wait()
                victim.start()
                time.sleep(5)  # rejoin and catch up
            times.sort()
            print(json.dumps({"cycles": len(times), "p50_s": round(statistics.median(times), 3),
                              "max_s": round(max(times), 3), "min_s": round(min(times), 3)}))
        finally:
            stop(nodes)


if __name__ == "__main__":
    main()
