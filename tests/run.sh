#!/usr/bin/env bash
# Runs every vecdb test: Rust unit and HTTP integration tests (real server, port 0, temporary
# data directories), the official qdrant-client test suite in a virtual environment (over REST
# and over gRPC), and a bounded schemathesis run against the served OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi

venv=target/pyvenv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
export VECDB_BIN="$PWD/target/debug/vecdb"
# Every client test over both of Qdrant's APIs: REST, then gRPC (`prefer_grpc=True`), on one
# node and then on one node of a three-node cluster (6 shards, 3 replicas each).
for cluster in 0 3; do
  for grpc in 0 1; do
    echo "client tests: cluster=$cluster grpc=$grpc"
    VECDB_TEST_CLUSTER=$cluster VECDB_TEST_GRPC=$grpc "$venv/bin/python" -m pytest -q tests/python
  done
done
bash tests/schemathesis/run.sh "$venv/bin/python" "$PWD/target/debug/vecdb"
