//! `[limits]`: every configurable limit refuses what exceeds it with a 400 naming the limit, and
//! the refused request changes nothing.

mod common;

use common::Server;
use serde_json::{json, Value};

fn error(s: &Server, method: &str, path: &str, body: Value) -> String {
    let (status, body) = s.call(method, path, Some(body));
    assert_eq!(status, 400, "{method} {path}: {body}");
    common::error(&body).to_string()
}

#[test]
fn configured_limits_refuse_larger_requests() {
    let dir = common::temp_dir();
    let s = Server::start_in(
        dir.path(),
        &[
            ("VECDB__LIMITS__MAX_POINTS_PER_REQUEST", "3"),
            ("VECDB__LIMITS__MAX_VECTOR_DIMENSION", "8"),
            ("VECDB__LIMITS__MAX_PAYLOAD_KB", "1"),
            ("VECDB__LIMITS__MAX_PAYLOAD_DEPTH", "3"),
            ("VECDB__LIMITS__MAX_FILTER_DEPTH", "2"),
            ("VECDB__LIMITS__MAX_LIMIT", "5"),
        ],
    );
    let msg = error(
        &s,
        "PUT",
        "/collections/big",
        json!({"vectors": {"size": 9, "distance": "Dot"}}),
    );
    assert!(msg.contains("max_vector_dimension"), "{msg}");
    s.create("l", json!({"vectors": {"size": 2, "distance": "Dot"}}));

    let p = |id: u64, payload: Value| json!({"id": id, "vector": [1.0, 0.0], "payload": payload});
    let four: Vec<Value> = (0..4).map(|i| p(i, json!({}))).collect();
    let msg = error(
        &s,
        "PUT",
        "/collections/l/points?wait=true",
        json!({"points": four}),
    );
    assert!(
        msg.contains("4 points") && msg.contains("max_points_per_request"),
        "{msg}"
    );
    let msg = error(
        &s,
        "POST",
        "/collections/l/points/delete?wait=true",
        json!({"points": [1, 2, 3, 4]}),
    );
    assert!(msg.contains("max_points_per_request"), "{msg}");
    let msg = error(
        &s,
        "POST",
        "/collections/l/points",
        json!({"ids": [1, 2, 3, 4]}),
    );
    assert!(msg.contains("max_points_per_request"), "{msg}");

    let deep = json!({"a": {"b": {"c": [1]}}});
    let msg = error(
        &s,
        "PUT",
        "/collections/l/points?wait=true",
        json!({"points": [p(1, deep.clone())]}),
    );
    assert!(msg.contains("max_payload_depth"), "{msg}");
    let msg = error(
        &s,
        "POST",
        "/collections/l/points/payload?wait=true",
        json!({"payload": deep, "points": [1]}),
    );
    assert!(msg.contains("max_payload_depth"), "{msg}");
    let big = json!({"text": "x".repeat(1100)});
    let msg = error(
        &s,
        "PUT",
        "/collections/l/points?wait=true",
        json!({"points": [p(1, big)]}),
    );
    assert!(msg.contains("max_payload_kb"), "{msg}");

    let (status, _) = s.call("POST", "/collections/l/points/count", Some(json!({})));
    assert_eq!(status, 200);
    assert_eq!(
        s.ok("POST", "/collections/l/points/count", Some(json!({})))["count"],
        0,
        "nothing applied"
    );

    // Within every limit: accepted.
    let three: Vec<Value> = (0..3).map(|i| p(i, json!({"a": {"b": [i]}}))).collect();
    s.ok(
        "PUT",
        "/collections/l/points?wait=true",
        Some(json!({"points": three})),
    );

    let nested = json!({"must": [{"must": [{"must": [{"has_id": [1]}]}]}]});
    let msg = error(
        &s,
        "POST",
        "/collections/l/points/count",
        json!({"filter": nested}),
    );
    assert!(msg.contains("max_filter_depth"), "{msg}");
    let msg = error(
        &s,
        "POST",
        "/collections/l/points/query",
        json!({"query": [1.0, 0.0], "limit": 4, "offset": 2}),
    );
    assert!(msg.contains("max_limit"), "{msg}");
    let msg = error(
        &s,
        "POST",
        "/collections/l/points/scroll",
        json!({"limit": 6}),
    );
    assert!(msg.contains("max_limit"), "{msg}");
    let ok = s.ok(
        "POST",
        "/collections/l/points/query",
        Some(json!({"query": [1.0, 0.0], "limit": 5})),
    );
    assert_eq!(ok["points"].as_array().unwrap().len(), 3);
}

#[test]
fn limits_outside_their_range_stop_the_server_at_start() {
    let dir = common::temp_dir();
    let stderr = common::start_failure(dir.path(), &[("VECDB__LIMITS__MAX_FILTER_DEPTH", "500")]);
    assert!(stderr.contains("limits.max_filter_depth"), "{stderr}");
}
