"""Starts the real vecdb binary on port 0 with a temporary data directory for each test module.

With VECDB_TEST_CLUSTER=N (N >= 2), each server is instead one node of an N-node cluster on
127.0.0.1 whose collections default to 6 shards of N replicas; the tests talk to the last
node to join, so most requests are forwarded to other peers."""

import contextlib
import os
import pathlib
import struct
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = int(os.environ.get("VECDB_TEST_CLUSTER", "0") or 0)


# With VECDB_TEST_GRPC=1 the clients the tests make with `connect` speak gRPC (Python's
# `prefer_grpc=True`); tests/run.sh runs the suite both ways.
GRPC = os.environ.get("VECDB_TEST_GRPC", "0") == "1"

# The gRPC port of each running server, by its REST URL.
GRPC_PORTS = {}


def cluster_mode():
    return CLUSTER >= 2


def grpc_port(url):
    """The gRPC port of the server whose REST API is at `url`."""
    return GRPC_PORTS[url]


def connect(url, prefer_grpc=None, **kwargs):
    """A client of the server at `url`: over gRPC when the run says so (or `prefer_grpc`)."""
    from qdrant_client import QdrantClient

    grpc = GRPC if prefer_grpc is None else prefer_grpc
    kwargs.setdefault("timeout", 60)
    return QdrantClient(
        url=url, grpc_port=grpc_port(url), prefer_grpc=grpc, check_compatibility=False, **kwargs
    )


# The gRPC status codes Qdrant answers where its REST API answers these HTTP statuses.
_GRPC_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    422: "INVALID_ARGUMENT",
    503: "UNAVAILABLE",
}


def client_errors():
    """The exceptions a client raises for an error answer, over either transport."""
    import grpc
    from qdrant_client.http.exceptions import UnexpectedResponse

    return (UnexpectedResponse, grpc.RpcError)


def assert_error(error, status, text=None):
    """Asserts that a client's exception is the answer `status` (an HTTP status, or over gRPC
    the status code Qdrant maps it to), whose message contains `text`."""
    from qdrant_client.http.exceptions import UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        assert error.status_code == status, error
        message = error.content.decode()
    else:
        assert error.code().name == _GRPC_CODES[status], (error.code(), error.details())
        message = error.details()
    if text is not None:
        assert text in message, message


def as_f32(x):
    """`x` rounded to a 32-bit float and widened back, as a gRPC client reads a vector."""
    return struct.unpack("f", struct.pack("f", x))[0]


def store_args(url):
    """The connection arguments of framework stores (LangChain, LlamaIndex) for `url`."""
    return {"url": url, "grpc_port": grpc_port(url), "prefer_grpc": GRPC}


def _start(data_dir, env, wanted="vecdb listening on "):
    """Starts one process; returns it and the URLs it printed, up to the `wanted` line."""
    binary = os.environ.get("VECDB_BIN", str(ROOT / "target" / "debug" / "vecdb"))
    proc = subprocess.Popen(
        [binary, "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "warn", **env},
    )
    urls = {}
    for line in proc.stdout:
        for prefix in ("vecdb p2p listening on ", "vecdb grpc listening on ", "vecdb listening on "):
            if line.startswith(prefix):
                urls[prefix] = line.split(prefix, 1)[1].strip()
        if wanted in urls:
            break
    assert wanted in urls, "vecdb exited before listening"
    rest, grpc = urls["vecdb listening on "], urls["vecdb grpc listening on "]
    GRPC_PORTS[rest] = int(grpc.rsplit(":", 1)[1])
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
