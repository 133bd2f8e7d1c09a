//! Graphs per tenant through the real server: built by a background job for keyword fields
//! indexed with `is_tenant`, walked by the planner for one tenant's filter with the results of
//! an exact search, kept across restarts in `<id>.tg`, dropped with the flag.

mod common;

use std::collections::BTreeSet;

use common::{segment_companions, Server};
use serde_json::{json, Value};

const C: &str = "/collections/ten";
const DIM: usize = 8;

/// Segments of about 500 points; values above 64 points (`full_scan_threshold` of 2 KiB at 8
/// dimensions) and at most half a segment get graphs of their own.
fn create(server: &Server) {
    server.create(
        "ten",
        json!({
            "vectors": {"size": DIM, "distance": "Dot"},
            "hnsw_config": {"full_scan_threshold": 2, "m": 8, "ef_construct": 64},
            "optimizers_config": {"indexing_threshold": 16}
        }),
    );
}

fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * (d as u64 + 3)) as f32 * 0.173).sin())
        .collect()
}

/// `a` for 40% of the points, `b` for 30%, and twenty small tenants of 1.5% each.
fn tenant(i: u64) -> String {
    match i % 10 {
        0..4 => "a".into(),
        4..7 => "b".into(),
        _ => format!("s{}", (i / 10) % 20),
    }
}

fn upsert(server: &Server, ids: std::ops::Range<u64>) {
    let points: Vec<Value> = ids
        .map(|i| json!({"id": i, "vector": vector(i), "payload": {"tenant": tenant(i), "n": i % 100}}))
        .collect();
    for chunk in points.chunks(500) {
        server.upsert("ten", json!(chunk));
    }
}

fn index(server: &Server, field: &str, schema: Value) {
    let body = json!({"field_name": field, "field_schema": schema});
    let result = server.ok("PUT", &format!("{C}/index?wait=true"), Some(body));
    assert_eq!(result["status"], "completed", "{result}");
}

fn query(server: &Server, q: u64, filter: &Value, params: Value) -> Value {
    let body =
        json!({"query": vector(q * 7919 + 1), "filter": filter, "limit": 10, "params": params});
    let (status, value) = server.call(
        "POST",
        &format!("{C}/points/query?explain=true"),
        Some(body),
    );
    assert_eq!(status, 200, "{value}");
    value
}

fn ids(result: &Value) -> BTreeSet<u64> {
    let points = result["result"]["points"].as_array().expect("points");
    points
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect()
}

/// The plans of the sealed segments that hold points.
fn plans(result: &Value) -> Vec<String> {
    let segments = result["explain"]["segments"].as_array().expect("explain");
    segments
        .iter()
        .filter(|s| s["live_points"].as_u64() > Some(0) && s["has_payload_indexes"] == true)
        .map(|s| s["plan"].as_str().unwrap().to_string())
        .collect()
}

/// Recall@10 of the planner's answers against exact search over 20 queries, after checking
/// that each segment used `plan` and that every hit passes `holds`.
fn recall(
    server: &Server,
    filter: &Value,
    params: Value,
    plan: &str,
    holds: impl Fn(u64) -> bool,
) -> f64 {
    let mut found = 0;
    for q in 0..20 {
        let result = query(server, q, filter, params.clone());
        let used = plans(&result);
        assert!(
            !used.is_empty() && used.iter().all(|p| p == plan),
            "{filter}: {used:?}"
        );
        let got = ids(&result);
        assert!(got.iter().all(|&id| holds(id)), "{filter}: {got:?}");
        let want = ids(&query(server, q, filter, json!({"exact": true})));
        assert_eq!(got.len(), want.len(), "{filter}");
        found += got.intersection(&want).count();
    }
    found as f64 / 200.0
}

fn telemetry(server: &Server) -> Value {
    server.ok("GET", "/telemetry", None)["collections"][0].clone()
}

#[test]
fn tenants_get_graphs_that_answer_their_filters_and_persist() {
    let (server, dir) = Server::start();
    create(&server);
    index(
        &server,
        "tenant",
        json!({"type": "keyword", "is_tenant": true}),
    );
    index(&server, "n", json!("integer"));
    upsert(&server, 0..2000);
    server.wait_green("ten");
    let graphs = telemetry(&server)["tenant_graphs"].as_u64().unwrap();
    let segments = segment_companions(&server.data_dir, "tg").len() as u64;
    // `a` and `b` in every sealed segment; the small tenants are scanned.
    assert_eq!(graphs, 2 * segments, "{}", telemetry(&server));
    assert!(telemetry(&server)["tenant_graph_memory_bytes"].as_u64() > Some(0));

    let is_a = |id: u64| tenant(id) == "a";
    let a = json!({"must": [{"key": "tenant", "match": {"value": "a"}}]});
    // Sign-code ranking would win on segments this small: `acorn` asks for a walk.
    let walk = json!({"acorn": {"max_selectivity": 0.0}});
    let r = recall(&server, &a, walk.clone(), "indexed_tenant_graph", is_a);
    assert!(r >= 0.95, "tenant a: recall {r}");
    // Part of a tenant: its graph walked, routed by code estimates past the rest.
    let b_low = json!({"must": [{"key": "n", "range": {"lt": 50}}, {"key": "tenant", "match": {"value": "b"}}]});
    let holds = |id: u64| tenant(id) == "b" && id % 100 < 50;
    let r = recall(&server, &b_low, walk.clone(), "indexed_tenant_graph", holds);
    assert!(r >= 0.9, "half of tenant b: recall {r}");
    // A small tenant has no graph: its points are scored one by one.
    let small = json!({"must": [{"key": "tenant", "match": {"value": "s3"}}]});
    let r = recall(&server, &small, walk.clone(), "indexed_scan", |id| {
        tenant(id) == "s3"
    });
    assert_eq!(r, 1.0);
    // Not a `must` condition: nothing says every match is in one tenant.
    let either = json!({"should": [{"key": "tenant", "match": {"value": "a"}}]});
    let used = plans(&query(&server, 0, &either, walk.clone()));
    assert!(used.iter().all(|p| p == "indexed_graph"), "{used:?}");

    // Deleted members are not returned.
    let gone: Vec<u64> = (0..600).filter(|&i| is_a(i)).collect();
    server.ok(
        "POST",
        &format!("{C}/points/delete?wait=true"),
        Some(json!({"points": gone})),
    );
    // Deletes may start a vacuum, whose segment gets its graphs from a job of its own.
    server.wait_green("ten");
    let r = recall(&server, &a, walk.clone(), "indexed_tenant_graph", |id| {
        is_a(id) && id >= 600
    });
    assert!(r >= 0.95, "tenant a after deletes: recall {r}");
    // More points: a build extending the segment carries its graphs over to the new one, and
    // a job extends them with the points added.
    upsert(&server, 2000..3000);
    server.wait_green("ten");
    let graphs = telemetry(&server)["tenant_graphs"].as_u64().unwrap();
    let segments = segment_companions(&server.data_dir, "tg").len() as u64;
    assert_eq!(graphs, 2 * segments, "{}", telemetry(&server));
    let r = recall(&server, &a, walk.clone(), "indexed_tenant_graph", |id| {
        is_a(id) && id >= 600
    });
    assert!(r >= 0.95, "tenant a after more points: recall {r}");

    // A restart reads the graphs from their files instead of building them again.
    let data_dir = server.data_dir.clone();
    server.terminate();
    let before = segment_companions(&data_dir, "tg");
    let server = Server::start_in(dir.path(), &[]);
    assert_eq!(segment_companions(&server.data_dir, "tg"), before);
    assert_eq!(telemetry(&server)["tenant_graphs"].as_u64(), Some(graphs));
    let r = recall(&server, &a, walk.clone(), "indexed_tenant_graph", |id| {
        is_a(id) && id >= 600
    });
    assert!(r >= 0.95, "tenant a after a restart: recall {r}");

    // Without the flag the graphs go, and the filter walks the segment's graph.
    index(&server, "tenant", json!("keyword"));
    assert_eq!(telemetry(&server)["tenant_graphs"].as_u64(), Some(0));
    let used = plans(&query(&server, 0, &a, walk.clone()));
    assert!(used.iter().all(|p| p == "indexed_graph"), "{used:?}");
    // With it again, a job builds them again.
    index(
        &server,
        "tenant",
        json!({"type": "keyword", "is_tenant": true}),
    );
    server.wait_green("ten");
    assert_eq!(telemetry(&server)["tenant_graphs"].as_u64(), Some(graphs));
    let r = recall(&server, &a, walk, "indexed_tenant_graph", |id| {
        is_a(id) && id >= 600
    });
    assert!(r >= 0.95, "tenant a rebuilt: recall {r}");
    server.terminate();
}
