"""Ingest and search of the benchmark dataset on one node against a three-node cluster.

Starts `--nodes` vecdb processes on 127.0.0.1 (1 or 3; all on this machine, so three nodes
share its cores), with `collection_defaults` making the collection `bench-http` creates have
`--shards` shards of `--replicas` replicas each (`--single`: one node not in cluster mode, the
baseline), then runs `vecdb bench-http` against the first
node with the remaining arguments, and stops the nodes.

    python3 tests/bench/cluster.py --single -- --data /tmp/vecdb-data --bulk ...
    python3 tests/bench/cluster.py --nodes 3 --shards 3 --replicas 3 -- \
        --data /tmp/vecdb-data --bulk --ef 32,64,128 --concurrency 8 --no-exact
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from failover import Node, stop


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/vecdb")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--single", action="store_true", help="one node, cluster mode off")
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="arguments of vecdb bench-http, after --")
    args = parser.parse_args()
    bench = [a for a in args.bench if a != "--"]
    if not args.single:  # (a build from before cluster mode would refuse these settings)
        os.environ["VECDB__COLLECTION_DEFAULTS__SHARD_NUMBER"] = str(args.shards)
        os.environ["VECDB__COLLECTION_DEFAULTS__REPLICATION_FACTOR"] = str(args.replicas)
    base = 18000 + os.getpid() % 1000 * 10
    with tempfile.TemporaryDirectory() as root:
        nodes = [Node(args.bin, root, n, base + n, base + 5 + n, None if n == 0 else base + 5)
                 for n in range(args.nodes)]
        try:
            if args.single:
                nodes = nodes[:1]
            for node in nodes:
                node.start(cluster=not args.single)
            time.sleep(2)  # every peer in the metadata group before the collection is placed
            run = [args.bin, "bench-http", "--url", nodes[0].url, *bench]
            shape = "1 node, single-node mode" if args.single else \
                f"{args.nodes} node(s), {args.shards} shard(s) x {args.replicas} replica(s)"
            print(f"{shape}: {' '.join(run)}", flush=True)
            sys.exit(subprocess.run(run).returncode)
        finally:
            stop(nodes)


if __name__ == "__main__":
    main()
