"""Starts the real vecdb binary on port 0 with a temporary data directory for each test module.

With VECDB_TEST_CLUSTER=N (N >= 2), each server is instead one node of an N-node cluster on
127.0.0.1 whose collections default to 6 shards of N replicas; the tests talk to the last
node to join, so most requests are forwarded to other peers."""

import contextlib
import os
import pathlib
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = int(os.environ.get("VECDB_TEST_CLUSTER", "0") or 0)


def cluster_mode():
    return CLUSTER >= 2


def _start(data_dir, env, wanted="vecdb listening on "):
    """Starts one process; returns it and the URLs it printed, up to the `wanted` line."""
    binary = os.environ.get("VECDB_BIN", str(ROOT / "target" / "debug" / "vecdb"))
    proc = subprocess.Popen(
        [binary, "--port", "0", "--host", "127.0.0.1", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "warn", **env},
    )
    urls = {}
    for line in proc.stdout:
        for prefix in ("vecdb p2p listening on ", "vecdb listening on "):
            if line.startswith(prefix):
                urls[prefix] = line.split(prefix, 1)[1].strip()
        if wanted in urls:
            break
    assert wanted in urls, "vecdb exited before listening"
    return proc, urls


def _stop(procs):
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(timeout=60) == 0, "vecdb did not shut down cleanly on SIGTERM"


@contextlib.contextmanager
def running_server(**env):
    """Yields the URL of a fresh vecdb; `env` adds variables such as VECDB__SERVICE__API_KEY."""
    with contextlib.ExitStack() as stack:
        # Entered first, so removed last: after the processes stopped.
        root = stack.enter_context(tempfile.TemporaryDirectory())
        procs = []
        stack.callback(_stop, procs)
        if not cluster_mode():
            proc, urls = _start(root, env)
            procs.append(proc)
            yield urls["vecdb listening on "]
            return
        env = {
            "VECDB__CLUSTER__P2P_PORT": "0",
            "VECDB__CLUSTER__SECRET": "python-cluster-secret",
            "VECDB__COLLECTION_DEFAULTS__SHARD_NUMBER": "6",
            "VECDB__COLLECTION_DEFAULTS__REPLICATION_FACTOR": str(CLUSTER),
            **env,
        }
        seed = None
        url = None
        for n in range(CLUSTER):
            data_dir = os.path.join(root, f"node{n}")
            joining = {"VECDB__CLUSTER__BOOTSTRAP": seed} if seed else {}
            proc, urls = _start(data_dir, {**env, **joining})
            procs.append(proc)
            seed = seed or urls["vecdb p2p listening on "]
            url = urls["vecdb listening on "]
        yield url


@pytest.fixture(scope="module")
def server_url():
    with running_server() as url:
        yield url
