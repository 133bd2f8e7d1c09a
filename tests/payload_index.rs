//! Payload indexes through the real server: creation and errors, `payload_schema` counts,
//! the planner using them (`?explain=true`, `/telemetry`), persistence across restarts, and
//! exactness under concurrent upserts, payload edits and deletes.

mod common;

use std::collections::BTreeSet;

use common::{error, segment_companions, Server};
use serde_json::{json, Value};

const C: &str = "/collections/idx";

/// A collection whose segments are sealed and indexed after a few hundred points, and which
/// is not searched exactly as a whole (so the planner's choices show).
fn create(server: &Server) {
    server.create(
        "idx",
        json!({
            "vectors": {"size": 4, "distance": "Dot"},
            "hnsw_config": {"full_scan_threshold": 1, "m": 8, "ef_construct": 64},
            "optimizers_config": {"indexing_threshold": 8}
        }),
    );
}

fn vector(i: u64) -> Vec<f32> {
    let x = i as f32;
    vec![(x * 0.37).sin(), (x * 0.11).cos(), (x * 0.05).sin(), 1.0]
}

fn payload(i: u64, round: u64) -> Value {
    json!({
        "cat": format!("c{}", (i + round) % 7),
        "n": (i * 7 + round) % 50,
        "flag": (i + round).is_multiple_of(3),
        "loc": {"lat": (i % 90) as f64 * 0.5, "lon": (i % 180) as f64 * 0.5},
        "at": format!("2024-01-{:02}T00:00:00Z", (i + round) % 28 + 1),
    })
}

fn upsert_range(server: &Server, ids: std::ops::Range<u64>, round: u64) {
    let points: Vec<Value> = ids
        .map(|i| json!({"id": i, "vector": vector(i), "payload": payload(i, round)}))
        .collect();
    for chunk in points.chunks(500) {
        server.upsert("idx", json!(chunk));
    }
}

fn index(server: &Server, field: &str, schema: Value) {
    let body = json!({"field_name": field, "field_schema": schema});
    let result = server.ok("PUT", &format!("{C}/index?wait=true"), Some(body));
    assert_eq!(result["status"], "completed", "{result}");
}

/// Ids of every point the filter matches, by exact search with a limit above the collection.
fn exact_ids(server: &Server, filter: &Value) -> BTreeSet<u64> {
    let body = json!({"query": [0.0, 0.0, 0.0, 1.0], "filter": filter, "limit": 5000, "params": {"exact": true}});
    let result = server.ok("POST", &format!("{C}/points/query"), Some(body));
    ids(&result["points"])
}

fn ids(points: &Value) -> BTreeSet<u64> {
    let list = points.as_array().expect("points");
    list.iter().map(|p| p["id"].as_u64().expect("id")).collect()
}

/// Every live point's payload, by scrolling.
fn all_payloads(server: &Server) -> Vec<(u64, Value)> {
    let body = json!({"limit": 10000, "with_payload": true});
    let result = server.ok("POST", &format!("{C}/points/scroll"), Some(body));
    let points = result["points"].as_array().expect("points").clone();
    points
        .into_iter()
        .map(|p| (p["id"].as_u64().unwrap(), p["payload"].clone()))
        .collect()
}

/// The filters checked, with the predicate each stands for (written here independently).
#[allow(clippy::type_complexity)]
fn filters() -> Vec<(Value, Box<dyn Fn(&Value) -> bool>)> {
    vec![
        (
            json!({"must": [{"key": "cat", "match": {"value": "c3"}}]}),
            Box::new(|p: &Value| p["cat"] == "c3"),
        ),
        (
            json!({"must": [{"key": "n", "range": {"gte": 10, "lt": 20}}]}),
            Box::new(|p: &Value| p["n"].as_u64().is_some_and(|n| (10..20).contains(&n))),
        ),
        (
            json!({"must": [{"key": "flag", "match": {"value": true}}, {"key": "cat", "match": {"any": ["c1", "c2"]}}]}),
            Box::new(|p: &Value| p["flag"] == true && (p["cat"] == "c1" || p["cat"] == "c2")),
        ),
        (
            json!({"must_not": [{"key": "cat", "match": {"except": ["c0", "c5"]}}]}),
            // A point without `cat` has no value outside the list, so must_not keeps it.
            Box::new(|p: &Value| p.get("cat").is_none() || p["cat"] == "c0" || p["cat"] == "c5"),
        ),
        (
            json!({"should": [{"key": "n", "match": {"value": 7}}, {"key": "at", "range": {"gte": "2024-01-27T00:00:00Z"}}]}),
            Box::new(|p: &Value| {
                p["n"] == 7 || p["at"].as_str().is_some_and(|a| a >= "2024-01-27")
            }),
        ),
        (
            json!({"must": [{"key": "loc", "geo_bounding_box": {"top_left": {"lat": 20.0, "lon": 0.0}, "bottom_right": {"lat": 10.0, "lon": 30.0}}}]}),
            Box::new(|p: &Value| {
                let (lat, lon) = (p["loc"]["lat"].as_f64(), p["loc"]["lon"].as_f64());
                lat.zip(lon)
                    .is_some_and(|(lat, lon)| lat < 20.0 && lat > 10.0 && lon > 0.0 && lon < 30.0)
            }),
        ),
    ]
}

/// Checks every filter's exact result against the predicate over scrolled payloads.
fn check_filters(server: &Server, when: &str) {
    let payloads = all_payloads(server);
    for (filter, holds) in filters() {
        let want: BTreeSet<u64> = payloads
            .iter()
            .filter(|(_, p)| holds(p))
            .map(|(id, _)| *id)
            .collect();
        assert!(
            !want.is_empty(),
            "{when}: {filter} matches nothing; a weak check"
        );
        assert_eq!(exact_ids(server, &filter), want, "{when}: {filter}");
        // The planner's own choice (graph plans included) returns only matching points, and
        // as many as asked for.
        let body = json!({"query": [0.3, 0.2, 0.1, 1.0], "filter": filter, "limit": 10});
        let found = ids(&server.ok("POST", &format!("{C}/points/query"), Some(body))["points"]);
        assert_eq!(found.len(), want.len().min(10), "{when}: {filter}");
        assert!(found.is_subset(&want), "{when}: {filter}: {found:?}");
    }
}

fn plans(server: &Server, filter: &Value) -> Vec<String> {
    plans_with(server, filter, json!({}))
}

/// The plans of sealed segments that hold points, for a query with search `params`.
fn plans_with(server: &Server, filter: &Value, params: Value) -> Vec<String> {
    let body =
        json!({"query": [0.3, 0.2, 0.1, 1.0], "filter": filter, "limit": 10, "params": params});
    let (status, value) = server.call(
        "POST",
        &format!("{C}/points/query?explain=true"),
        Some(body),
    );
    assert_eq!(status, 200, "{value}");
    let segments = value["explain"]["segments"].as_array().expect("explain");
    // The segment new writes go to has no payload indexes; its payloads are always read.
    segments
        .iter()
        .filter(|s| s["live_points"].as_u64() > Some(0) && s["has_payload_indexes"] == true)
        .map(|s| s["plan"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn indexes_are_listed_counted_used_and_kept_across_restarts() {
    let (server, dir) = Server::start();
    create(&server);
    upsert_range(&server, 0..3000, 0);
    server.wait_green("idx");
    let cat = json!({"must": [{"key": "cat", "match": {"value": "c3"}}]});
    assert!(plans(&server, &cat)
        .iter()
        .all(|p| p.starts_with("payload")));

    index(&server, "cat", json!("keyword"));
    index(&server, "n", json!({"type": "integer", "range": true}));
    index(&server, "flag", json!("bool"));
    index(&server, "loc", json!("geo"));
    index(&server, "at", json!("datetime"));
    let info = server.ok("GET", C, None);
    let schema = &info["payload_schema"];
    assert_eq!(
        schema["cat"],
        json!({"data_type": "keyword", "points": 3000})
    );
    assert_eq!(schema["n"]["params"]["range"], json!(true));
    assert_eq!(schema["loc"]["points"], 3000);
    let unindexed = || {
        let telemetry = server.ok("GET", "/telemetry", None);
        telemetry["collections"][0]["unindexed_filter_searches"].clone()
    };
    let before = unindexed();
    assert!(
        before.as_u64() > Some(0),
        "the unindexed search was not counted"
    );
    check_filters(&server, "indexed");
    // A filter without conditions needs no index either.
    let everything = plans(&server, &json!({"must": []}));
    assert!(
        everything.iter().all(|p| p == "indexed_graph"),
        "{everything:?}"
    );
    assert_eq!(unindexed(), before, "indexed filters counted as unindexed");
    let used = plans(&server, &cat);
    assert!(used.iter().all(|p| p.starts_with("indexed")), "{used:?}");
    // A third of each segment: the plain filtered walk by default, two-hop when asked for.
    let flag = json!({"must": [{"key": "flag", "match": {"value": true}}]});
    let walk = plans_with(&server, &flag, json!({}));
    assert!(walk.iter().all(|p| p == "indexed_graph"), "{walk:?}");
    let two_hop = plans_with(
        &server,
        &flag,
        json!({"acorn": {"enable": true, "max_selectivity": 1.0}}),
    );
    assert!(
        two_hop.iter().all(|p| p == "indexed_graph_sparse"),
        "{two_hop:?}"
    );
    let off = plans_with(
        &server,
        &flag,
        json!({"acorn": {"enable": false, "max_selectivity": 1.0}}),
    );
    assert!(off.iter().all(|p| p == "indexed_graph"), "{off:?}");
    let body = json!({"query": [0.0, 0.0, 0.0, 1.0], "params": {"acorn": {"max_selectivity": 2}}});
    let (status, value) = server.call("POST", &format!("{C}/points/query"), Some(body));
    assert_eq!(status, 400);
    assert!(
        error(&value).contains("params.acorn.max_selectivity must be between 0 and 1"),
        "{value}"
    );
    let telemetry = server.ok("GET", "/telemetry", None);
    let counts = &telemetry["collections"][0]["search_plans"];
    assert!(counts["indexed_scan"].as_u64() > Some(0), "{telemetry}");

    // A point without the field, and one deleted: counts follow.
    let bare = json!([{"id": 5000, "vector": vector(1), "payload": {"other": 1}}]);
    server.upsert("idx", bare);
    let del = json!({"points": [0, 1]});
    server.ok("POST", &format!("{C}/points/delete?wait=true"), Some(del));
    let info = server.ok("GET", C, None);
    assert_eq!(info["payload_schema"]["cat"]["points"], 2998);

    server.terminate();
    // Every segment file has its index file beside it.
    let written = segment_companions(dir.path(), "idx");
    assert!(!written.is_empty());
    let server = Server::start_in(dir.path(), &[]);
    let info = server.ok("GET", C, None);
    assert_eq!(info["payload_schema"]["cat"]["points"], 2998);
    assert_eq!(info["payload_schema"]["at"]["data_type"], "datetime");
    check_filters(&server, "after restart");
    let used = plans(&server, &cat);
    assert!(used.iter().all(|p| p.starts_with("indexed")), "{used:?}");
    // The indexes were read, not rebuilt: a rebuild writes its file again.
    assert_eq!(segment_companions(dir.path(), "idx"), written);

    // One index file damaged, another of a future format: both are rebuilt from payloads,
    // and written again.
    server.terminate();
    let (damaged, future) = (&written[0].0, &written[written.len() - 1].0);
    let mut bytes = std::fs::read(damaged).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(damaged, &bytes).unwrap();
    let mut bytes = std::fs::read(future).unwrap();
    bytes[8..12].copy_from_slice(&999u32.to_le_bytes()); // the header's format version
    std::fs::write(future, &bytes).unwrap();
    let before = segment_companions(dir.path(), "idx");
    let server = Server::start_in(dir.path(), &[]);
    check_filters(&server, "after index files were damaged");
    let after = segment_companions(dir.path(), "idx");
    for (path, bytes, _) in &after {
        let was = before
            .iter()
            .find(|(p, _, _)| p == path)
            .expect("same files");
        let rewritten = path == damaged || path == future;
        assert_eq!(&was.1 != bytes, rewritten, "{}", path.display());
        assert_eq!(bytes[8..12], 1u32.to_le_bytes(), "{}", path.display());
    }

    let gone = server.ok("DELETE", &format!("{C}/index/cat?wait=true"), None);
    assert_eq!(gone["status"], "completed");
    let info = server.ok("GET", C, None);
    assert!(info["payload_schema"].get("cat").is_none(), "{info}");
    assert!(plans(&server, &cat)
        .iter()
        .all(|p| p.starts_with("payload")));
    check_filters(&server, "cat dropped");
    // Dropping the index wrote the files anew: the next start reads them as they are.
    server.terminate();
    let dropped = segment_companions(dir.path(), "idx");
    let server = Server::start_in(dir.path(), &[]);
    check_filters(&server, "cat dropped, after restart");
    assert_eq!(segment_companions(dir.path(), "idx"), dropped);
}

#[test]
fn bad_index_requests_say_what_is_wrong_and_change_nothing() {
    let (server, _dir) = Server::start();
    create(&server);
    let cases = [
        (
            json!({"field_name": "a", "field_schema": "words"}),
            "field_schema: unknown index type \"words\"",
        ),
        (json!({"field_name": "a"}), "field_schema is required"),
        (
            json!({"field_name": "a", "field_schema": {"type": "bool", "range": true}}),
            "field_schema.range: not a parameter of bool indexes",
        ),
        (
            json!({"field_name": "a[", "field_schema": "keyword"}),
            "field_name: ",
        ),
        (
            json!({"field_name": "a", "field_schema": "keyword", "extra": 1}),
            "unknown field `extra`",
        ),
    ];
    for (body, message) in cases {
        let (status, value) = server.call("PUT", &format!("{C}/index"), Some(body.clone()));
        assert_eq!(status, 400, "{body} -> {value}");
        assert!(error(&value).contains(message), "{body} -> {value}");
    }
    let (status, _) = server.call(
        "PUT",
        "/collections/none/index",
        Some(json!({"field_name": "a", "field_schema": "keyword"})),
    );
    assert_eq!(status, 404);
    let info = server.ok("GET", C, None);
    assert_eq!(info["payload_schema"], json!({}));
}

#[test]
fn indexes_stay_exact_under_concurrent_writes() {
    let (server, _dir) = Server::start();
    create(&server);
    upsert_range(&server, 0..1500, 0);
    for (field, schema) in [
        ("cat", "keyword"),
        ("n", "integer"),
        ("flag", "bool"),
        ("loc", "geo"),
        ("at", "datetime"),
    ] {
        index(&server, field, json!(schema));
    }
    std::thread::scope(|s| {
        for writer in 0..3u64 {
            let server = &server;
            // Each writer owns 500 ids: it re-creates a window of them, edits the payload of
            // some it just wrote, and deletes others, so its edits never miss a point.
            s.spawn(move || {
                let own = writer * 500;
                for round in 1..=12u64 {
                    let start = own + (round * 37) % 380;
                    upsert_range(server, start..start + 120, round + writer);
                    let ids: Vec<u64> = (0..40).map(|k| start + k * 3).collect();
                    let set = json!({"payload": {"cat": format!("c{}", round % 7), "n": round}, "points": ids});
                    server.ok("POST", &format!("{C}/points/payload?wait=true"), Some(set));
                    let gone: Vec<u64> = (0..15).map(|k| own + (start + 1 + k * 29) % 500).collect();
                    let del = json!({"points": gone});
                    server.ok("POST", &format!("{C}/points/delete?wait=true"), Some(del));
                }
            });
        }
        s.spawn(|| {
            for _ in 0..60 {
                for (filter, _) in filters() {
                    let body =
                        json!({"query": [0.1, 0.2, 0.3, 1.0], "filter": filter, "limit": 10});
                    server.ok("POST", &format!("{C}/points/query"), Some(body));
                }
            }
        });
    });
    check_filters(&server, "right after the writes");
    server.wait_green("idx");
    check_filters(&server, "after merges");
    let live = all_payloads(&server).len();
    let info = server.ok("GET", C, None);
    assert_eq!(info["payload_schema"]["cat"]["points"], live);
}

#[test]
fn text_index_tokenizers_apply_to_every_segment() {
    let (server, _dir) = Server::start();
    create(&server);
    let texts = [
        "Quick-brown fox,",
        "hello world",
        "HELLO there",
        "fox and hound",
    ];
    let points: Vec<Value> = (0..800u64)
        .map(|i| {
            let t = texts[i as usize % texts.len()];
            json!({"id": i, "vector": vector(i), "payload": {"t": t, "p": t}})
        })
        .collect();
    for chunk in points.chunks(200) {
        server.upsert("idx", json!(chunk));
    }
    server.wait_green("idx");
    // Later points stay in the segment new writes go to, which has no indexes.
    let late: Vec<Value> = (800..900u64)
        .map(|i| json!({"id": i, "vector": vector(i), "payload": {"t": texts[i as usize % 4], "p": texts[i as usize % 4]}}))
        .collect();
    server.upsert("idx", json!(late));
    index(
        &server,
        "t",
        json!({"type": "text", "tokenizer": "whitespace"}),
    );
    index(
        &server,
        "p",
        json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "lowercase": true}),
    );
    let count = |key: &str, m: Value| {
        let filter = json!({"must": [{"key": key, "match": m}]});
        let body = json!({"filter": filter, "exact": true});
        let result = server.ok("POST", &format!("{C}/points/count"), Some(body));
        // The same filter through search must find as many (the planner's own route).
        let query = json!({"query": [0.0, 0.0, 0.0, 1.0], "filter": filter, "limit": 1000});
        let found = server.ok("POST", &format!("{C}/points/query"), Some(query));
        assert_eq!(
            found["points"].as_array().unwrap().len(),
            result["count"].as_u64().unwrap() as usize
        );
        result["count"].as_u64().unwrap()
    };
    // 900 points, a quarter each text.
    assert_eq!(count("t", json!({"text": "quick-brown"})), 225);
    assert_eq!(
        count("t", json!({"text": "fox"})),
        225,
        "\"fox,\" is not \"fox\" when split on whitespace"
    );
    assert_eq!(count("t", json!({"text_any": "fox hello"})), 675);
    assert_eq!(count("p", json!({"text": "hel"})), 450, "prefix tokens");
    assert_eq!(count("p", json!({"text": "h"})), 0, "below min_token_len");
    assert_eq!(count("p", json!({"phrase": "hello world"})), 225);
    let bad =
        json!({"field_name": "q", "field_schema": {"type": "text", "tokenizer": "multilingual"}});
    let (status, value) = server.call("PUT", &format!("{C}/index"), Some(bad));
    assert_eq!(status, 400);
    assert!(error(&value).contains("field_schema.tokenizer"), "{value}");
}

/// A collection `name` of 3,000 points in 64 dimensions with `cat` indexed (twenty values, a
/// twentieth of the points each), sealed into segments of about 1,000 points (250 KiB), far
/// above the full-scan threshold.
fn many_candidates(server: &Server, name: &str, distance: &str) {
    server.create(
        name,
        json!({
            "vectors": {"size": 64, "distance": distance},
            "hnsw_config": {"full_scan_threshold": 1, "m": 8, "ef_construct": 32},
            "optimizers_config": {"indexing_threshold": 250}
        }),
    );
    let body = json!({"field_name": "cat", "field_schema": "keyword"});
    server.ok(
        "PUT",
        &format!("/collections/{name}/index?wait=true"),
        Some(body),
    );
    let points: Vec<Value> = (0..3000u64)
        .map(
            |i| json!({"id": i, "vector": wave(i, 64), "payload": {"cat": format!("c{}", i % 20)}}),
        )
        .collect();
    for chunk in points.chunks(500) {
        server.upsert(name, json!(chunk));
    }
    server.wait_green(name);
}

/// A deterministic, well-spread vector.
fn wave(i: u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|d| ((i as f32 + 1.0) * (d as f32 * 0.618 + 0.3)).sin())
        .collect()
}

/// Ids and plans of a filtered query on collection `name`.
fn query_plans(server: &Server, name: &str, body: Value) -> (Vec<u64>, Vec<String>) {
    let path = format!("/collections/{name}/points/query?explain=true");
    let (status, value) = server.call("POST", &path, Some(body));
    assert_eq!(status, 200, "{value}");
    let ids = value["result"]["points"].as_array().expect("points");
    let ids = ids.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    let segments = value["explain"]["segments"].as_array().expect("explain");
    let plans = segments
        .iter()
        .filter(|s| s["has_payload_indexes"] == true && s["live_points"].as_u64() > Some(0))
        .map(|s| s["plan"].as_str().unwrap().to_string())
        .collect();
    (ids, plans)
}

#[test]
fn many_candidates_are_ranked_by_sign_code_in_dot_spaces() {
    let (server, _dir) = Server::start();
    many_candidates(&server, "dot", "Dot");
    many_candidates(&server, "l2", "Euclid");
    let filter = json!({"must": [{"key": "cat", "match": {"any": ["c3", "c4"]}}]});
    let (mut recall, mut asked) = (0usize, 0usize);
    for q in 0..20u64 {
        let vector = wave(10_000 + q * 7, 64);
        let exact =
            json!({"query": vector, "filter": filter, "limit": 10, "params": {"exact": true}});
        let (want, _) = query_plans(&server, "dot", exact);
        assert_eq!(want.len(), 10);
        assert!(want.iter().all(|id| id % 20 == 3 || id % 20 == 4));
        // A wide beam rescores every candidate: the exact answer, in order. Codes are read in
        // `cat`'s order for the `must`, in offset order for the same filter as `should`.
        let should = json!({"should": [
            {"key": "cat", "match": {"value": "c3"}},
            {"key": "cat", "match": {"value": "c4"}}
        ]});
        for filter in [&filter, &should] {
            let wide =
                json!({"query": vector, "filter": filter, "limit": 10, "params": {"hnsw_ef": 500}});
            let (got, plans) = query_plans(&server, "dot", wide);
            assert!(
                !plans.is_empty() && plans.iter().all(|p| p == "indexed_code_scan"),
                "{plans:?}"
            );
            assert_eq!(got, want, "query {q}, {filter}");
        }
        // Two-hop only under 1% of a segment: the graph walk, routed through rejected nodes
        // by their codes' estimates, scoring candidates exactly. A wide beam finds the answer.
        let params = json!({"hnsw_ef": 500, "acorn": {"enable": true, "max_selectivity": 0.01}});
        let walk = json!({"query": vector, "filter": filter, "limit": 10, "params": params});
        let (got, plans) = query_plans(&server, "dot", walk);
        assert!(
            !plans.is_empty() && plans.iter().all(|p| p == "indexed_graph"),
            "{plans:?}"
        );
        assert_eq!(got, want, "query {q}, walk");
        // A narrow one rescores 32 of about 100 candidates per segment: the ranking by code
        // must find most of the answer (one unrelated to the query would find about a third).
        let narrow =
            json!({"query": vector, "filter": filter, "limit": 10, "params": {"hnsw_ef": 8}});
        let (got, _) = query_plans(&server, "dot", narrow);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|id| id % 20 == 3 || id % 20 == 4), "{got:?}");
        recall += got.iter().filter(|id| want.contains(id)).count();
        asked += 10;
    }
    let recall = recall as f64 / asked as f64;
    assert!(recall >= 0.6, "recall@10 {recall} at hnsw_ef 8");
    // The codes' memory is reported: a cache line per point in offset order (the 64-bit code
    // and the terms of its estimates), a u64 per point for the copy in `cat`'s order; none
    // for L2.
    let telemetry = server.ok("GET", "/telemetry", None);
    let collections = telemetry["collections"].as_array().expect("collections");
    let bytes = |name: &str| {
        let c = collections.iter().find(|c| c["name"] == name).expect(name);
        c["sign_code_memory_bytes"]
            .as_u64()
            .expect("sign_code_memory_bytes")
    };
    assert!(
        (3000 * (64 + 8)..3000 * (64 + 8) + 4096).contains(&bytes("dot")),
        "{telemetry}"
    );
    assert_eq!(bytes("l2"), 0);
    // Facets count the same candidates, under either path.
    let body = json!({"key": "cat", "filter": filter, "limit": 5});
    let facet = server.ok("POST", "/collections/dot/facet", Some(body.clone()));
    let want = json!([{"value": "c3", "count": 150}, {"value": "c4", "count": 150}]);
    assert_eq!(facet["hits"], want, "{facet}");
    let points_facet = server.ok("POST", "/collections/dot/points/facet", Some(body));
    assert_eq!(points_facet, facet);
    // Setting `acorn` asks for the graph; Euclidean spaces have no sign codes.
    let vector = wave(1, 64);
    let acorn = json!({"query": vector, "filter": filter, "params": {"acorn": {"enable": true}}});
    let (_, plans) = query_plans(&server, "dot", acorn);
    assert!(
        plans.iter().all(|p| p == "indexed_graph_sparse"),
        "{plans:?}"
    );
    let l2 = json!({"query": vector, "filter": filter});
    let (_, plans) = query_plans(&server, "l2", l2);
    assert!(
        !plans.is_empty() && plans.iter().all(|p| p == "indexed_graph_sparse"),
        "{plans:?}"
    );
}
