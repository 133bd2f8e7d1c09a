"""Starts the real vecdb binary on port 0 with a temporary data directory for each test module."""

import contextlib
import os
import pathlib
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_server(**env):
    """Yields the URL of a fresh vecdb; `env` adds variables such as VECDB__SERVICE__API_KEY."""
    binary = os.environ.get("VECDB_BIN", str(ROOT / "target" / "debug" / "vecdb"))
    with tempfile.TemporaryDirectory() as data_dir:
        proc = subprocess.Popen(
            [binary, "--port", "0", "--host", "127.0.0.1", "--data-dir", data_dir],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_LOG": "warn", **env},
        )
        try:
            url = None
            for line in proc.stdout:
                if line.startswith("vecdb listening on "):
                    url = line.split("vecdb listening on ", 1)[1].strip()
                    break
            assert url, "vecdb exited before listening"
            yield url
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0, "vecdb did not shut down cleanly on SIGTERM"


@pytest.fixture(scope="module")
def server_url():
    with running_server() as url:
        yield url
