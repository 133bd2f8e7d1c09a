//! Service endpoints: identity, probes, metrics (including lock and queue waits), telemetry,
//! the committed OpenAPI document and the offline docs page.

mod common;

use common::Server;
use serde_json::json;

#[test]
fn probes_and_identity() {
    let (s, _dir) = Server::start();
    let (status, root) = s.call("GET", "/", None);
    assert_eq!(status, 200);
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(root["qdrant_api_version"], "1.18");
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(s.call("GET", probe, None).0, 200, "{probe}");
    }
    let (status, body) = s.call("GET", "/no/such/thing", None);
    assert_eq!(status, 404);
    assert!(body["status"]["error"].is_string());
}

#[test]
fn metrics_expose_requests_writes_and_waits() {
    let (s, _dir) = Server::start();
    s.create("m", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    s.upsert("m", json!([{"id": 1, "vector": [1, 0]}]));
    s.ok(
        "POST",
        "/collections/m/points/query",
        Some(json!({"query": [1, 0]})),
    );
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for needle in [
        "vecdb_http_requests_total{route=\"/collections/{name}/points/query\",method=\"POST\",status=\"200\"}",
        "vecdb_http_request_duration_seconds_bucket",
        "vecdb_searches_total{collection=\"m\"} 1",
        "vecdb_points_upserted_total{collection=\"m\"} 1",
        "vecdb_snapshot_generation{collection=\"m\"}",
        "vecdb_snapshot_publish_seconds_bucket",
        "vecdb_writer_batch_operations",
        "vecdb_rocksdb_write_seconds_bucket{synced=\"true\"",
        "vecdb_lock_acquisitions_total{lock=\"writer_queue\",collection=\"m\"}",
        "vecdb_lock_acquisitions_total{lock=\"search_slots\"}",
        "vecdb_lock_acquisitions_total{lock=\"collections_admin\"}",
        "# HELP vecdb_lock_wait_seconds",
        "# HELP vecdb_lock_contended_total",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}\n{text}");
    }
}

#[test]
fn telemetry_counts_per_collection() {
    let (s, _dir) = Server::start();
    s.create("t", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    s.upsert(
        "t",
        json!([{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}]),
    );
    s.ok(
        "POST",
        "/collections/t/points/query",
        Some(json!({"query": [1, 0]})),
    );
    let t = s.ok("GET", "/telemetry", None);
    let c = &t["collections"][0];
    assert_eq!(
        (c["name"].as_str(), c["points"].as_u64()),
        (Some("t"), Some(2))
    );
    assert_eq!(
        (c["searches"].as_u64(), c["points_upserted"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(c["segments"], 1);
}

#[test]
fn served_openapi_matches_the_committed_document_and_docs_render() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let generated = vecdb::api::docs::openapi_json();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    let (s, _dir) = Server::start();
    let served: serde_json::Value = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        served,
        serde_json::from_str::<serde_json::Value>(&generated).unwrap()
    );
    assert!(served["paths"]["/collections/{name}/points/query"]["post"].is_object());
    let html = s
        .client
        .get(format!("{}/docs/", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
}

#[test]
fn wrong_methods_and_array_bodies_get_json_errors() {
    let (s, _dir) = Server::start();
    let (status, body) = s.call("DELETE", "/healthz", None);
    assert_eq!(status, 405, "{body}");
    assert!(common::error(&body).contains("DELETE"), "{body}");
    // A bad `timeout` on a method the route lacks is still a 405, not a 400.
    let (status, _) = s.call("PATCH", "/collections/x/points/search?timeout=0", None);
    assert_eq!(status, 405);

    s.create(
        "a",
        serde_json::json!({"vectors": {"size": 2, "distance": "Dot"}}),
    );
    let (status, body) = s.raw(
        "POST",
        "/collections/a/points/count",
        b"[null, null, null]".to_vec(),
    );
    assert_eq!(
        status, 400,
        "an array is not read as a struct's fields: {body}"
    );
    assert!(
        common::error(&body).contains("expected a JSON object"),
        "{body}"
    );
}
