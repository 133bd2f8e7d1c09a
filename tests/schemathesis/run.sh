#!/usr/bin/env bash
# Hostile-input run: schemathesis generates requests from the served OpenAPI document against the
# real server and fails on any 5xx, a response that breaks the documented schema, status code,
# content type or headers (so every error must be the JSON envelope), or a response slower than
# 5 s. Bounded by a fixed seed and example count. Usage: run.sh VENV_PYTHON VECDB_BIN
set -euo pipefail
python=$1
bin=$2
here="$(cd "$(dirname "$0")" && pwd)"
work=$(mktemp -d)
# Stops the server and waits for it before removing its data (it writes while shutting down),
# keeping the run's own exit status.
cleanup() {
  local status=$?
  if [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work" || true
  exit "$status"
}
trap cleanup EXIT

RUST_LOG=warn "$bin" --port 0 --grpc-port 0 --host 127.0.0.1 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
  url=$(sed -n 's/^vecdb listening on //p' "$work/out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/err"; echo "vecdb did not start"; exit 1; }

seed() {
  curl -sf -X PUT "$url/collections/test" -H 'content-type: application/json' \
    -d '{"vectors": {"size": 4, "distance": "Cosine"}}' >/dev/null || true
  curl -sf -X PUT "$url/collections/test/points?wait=true" -H 'content-type: application/json' \
    -d '{"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "payload": {"color": "red", "n": 1}},
                    {"id": 2, "vector": [0.4, 0.3, 0.2, 0.1], "payload": {"color": "blue", "n": 2}},
                    {"id": 3, "vector": [0.5, 0.5, 0.5, 0.5], "payload": {"tags": ["a", "b"]}}]}' >/dev/null
}
seed

# Deleting the seeded collection would turn every later case into a 404; delete is covered by
# the HTTP tests. Checks that judge the document's looseness rather than the server's answers
# (whole-number floats for integers, payload key syntax, a deleted collection's `exists`) are off.
# Run from the temporary folder: schemathesis keeps a cache in its working directory.
st="$(cd "$(dirname "$python")" && pwd)/st"
(cd "$work" && "$st" --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,unsupported_method,allow_header_conformance \
  --max-response-time 5 --request-timeout 10 \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" --seed 42 --workers 1 --generation-database none \
  --exclude-name 'DELETE /collections/{name}' \
  --output-sanitize false --no-color)

kill -0 "$pid" || { cat "$work/err"; echo "vecdb died during the run"; exit 1; }
echo "schemathesis: server alive after the run"
