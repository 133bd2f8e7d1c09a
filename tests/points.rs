//! Point writes, reads, payload edits, batches, scroll and count over HTTP.

mod common;

use common::Server;
use serde_json::{json, Value};

fn setup() -> (Server, tempfile::TempDir) {
    let (s, dir) = Server::start();
    s.create("c", json!({"vectors": {"size": 3, "distance": "Euclid"}}));
    let points: Vec<Value> = (0..20)
        .map(|i| json!({"id": i, "vector": [i, 0, 0], "payload": {"n": i, "even": i % 2 == 0, "tag": format!("t{}", i % 3), "nested": {"a": [i, i + 1]}}}))
        .collect();
    s.upsert("c", json!(points));
    (s, dir)
}

fn count(s: &Server, filter: Value) -> u64 {
    s.ok(
        "POST",
        "/collections/c/points/count",
        Some(json!({"filter": filter})),
    )["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn upsert_both_forms_and_read_back() {
    let (s, _dir) = setup();
    let r = s.ok(
        "PUT",
        "/collections/c/points?wait=true",
        Some(json!({"batch": {"ids": [100, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], "vectors": [[1, 2, 3], [4, 5, 6]], "payloads": [{"k": "a"}, null]}})),
    );
    assert_eq!(r["status"], "completed");
    assert!(r["operation_id"].as_u64().unwrap() >= 2);
    let p = s.ok("GET", "/collections/c/points/100", None);
    assert_eq!(
        p,
        json!({"id": 100, "payload": {"k": "a"}, "vector": [1.0, 2.0, 3.0]})
    );
    let u = s.ok(
        "GET",
        "/collections/c/points/5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
        None,
    );
    assert_eq!(u["payload"], json!({}));
    let got = s.ok(
        "POST",
        "/collections/c/points",
        Some(json!({"ids": [3, 999, 100], "with_vector": true, "with_payload": ["n"]})),
    );
    assert_eq!(
        got,
        json!([{"id": 3, "payload": {"n": 3}, "vector": [3.0, 0.0, 0.0]}, {"id": 100, "payload": {}, "vector": [1.0, 2.0, 3.0]}])
    );
    let (status, body) = s.call("GET", "/collections/c/points/999", None);
    assert_eq!(
        (status, body["status"]["error"].clone()),
        (404, json!("No point with id 999 found"))
    );
}

#[test]
fn overwrite_replaces_the_whole_point() {
    let (s, _dir) = setup();
    s.upsert("c", json!([{"id": 5, "vector": [9, 9, 9]}]));
    let p = s.ok("GET", "/collections/c/points/5", None);
    assert_eq!(
        p,
        json!({"id": 5, "payload": {}, "vector": [9.0, 9.0, 9.0]})
    );
    assert_eq!(count(&s, json!({})), 20);
}

#[test]
fn delete_by_ids_and_by_filter() {
    let (s, _dir) = setup();
    s.ok(
        "POST",
        "/collections/c/points/delete?wait=true",
        Some(json!({"points": [0, 1, 12345]})),
    );
    assert_eq!(count(&s, json!({})), 18);
    s.ok(
        "POST",
        "/collections/c/points/delete?wait=true",
        Some(json!({"filter": {"must": [{"key": "even", "match": {"value": true}}]}})),
    );
    assert_eq!(count(&s, json!({})), 9);
    assert_eq!(
        count(
            &s,
            json!({"must": [{"key": "even", "match": {"value": true}}]})
        ),
        0
    );
}

#[test]
fn payload_operations() {
    let (s, _dir) = setup();
    let w = "?wait=true";
    s.ok(
        "POST",
        &format!("/collections/c/points/payload{w}"),
        Some(json!({"payload": {"color": "red"}, "points": [1, 2]})),
    );
    s.ok(
        "POST",
        &format!("/collections/c/points/payload{w}"),
        Some(json!({"payload": {"deep": 1}, "points": [1], "key": "nested"})),
    );
    assert_eq!(
        s.ok("GET", "/collections/c/points/1", None)["payload"],
        json!({"n": 1, "even": false, "tag": "t1", "nested": {"a": [1, 2], "deep": 1}, "color": "red"})
    );
    s.ok("PUT", &format!("/collections/c/points/payload{w}"), Some(json!({"payload": {"only": true}, "filter": {"must": [{"key": "n", "range": {"gte": 18}}]}})));
    assert_eq!(
        s.ok("GET", "/collections/c/points/19", None)["payload"],
        json!({"only": true})
    );
    s.ok(
        "POST",
        &format!("/collections/c/points/payload/delete{w}"),
        Some(json!({"keys": ["color", "nested.a"], "points": [1]})),
    );
    assert_eq!(
        s.ok("GET", "/collections/c/points/1", None)["payload"],
        json!({"n": 1, "even": false, "tag": "t1", "nested": {"deep": 1}})
    );
    s.ok(
        "POST",
        &format!("/collections/c/points/payload/clear{w}"),
        Some(json!({"points": [2]})),
    );
    assert_eq!(
        s.ok("GET", "/collections/c/points/2", None)["payload"],
        json!({})
    );
    // Vectors survive payload edits.
    assert_eq!(
        s.ok("GET", "/collections/c/points/2", None)["vector"],
        json!([2.0, 0.0, 0.0])
    );
    // A payload edit on a missing id fails and changes nothing.
    let (status, body) = s.call(
        "POST",
        &format!("/collections/c/points/payload{w}"),
        Some(json!({"payload": {"x": 1}, "points": [3, 777]})),
    );
    assert_eq!(status, 404, "{body}");
    assert!(s.ok("GET", "/collections/c/points/3", None)["payload"]
        .get("x")
        .is_none());
}

#[test]
fn batch_applies_in_order_and_atomically() {
    let (s, _dir) = setup();
    let ops = json!({"operations": [
        {"upsert": {"points": [{"id": 50, "vector": [1, 1, 1], "payload": {"v": 1}}]}},
        {"set_payload": {"payload": {"v": 2}, "points": [50]}},
        {"delete": {"points": [0]}},
        {"clear_payload": {"points": [3]}},
    ]});
    let r = s.ok("POST", "/collections/c/points/batch?wait=true", Some(ops));
    let lsns: Vec<u64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["operation_id"].as_u64().unwrap())
        .collect();
    assert_eq!(lsns.len(), 4);
    assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1), "{lsns:?}");
    assert_eq!(
        s.ok("GET", "/collections/c/points/50", None)["payload"],
        json!({"v": 2})
    );
    // The second operation fails (missing point): the first must not be applied either.
    let ops = json!({"operations": [
        {"upsert": {"points": [{"id": 60, "vector": [1, 1, 1]}]}},
        {"set_payload": {"payload": {"v": 3}, "points": [4242]}},
    ]});
    let (status, _) = s.call("POST", "/collections/c/points/batch?wait=true", Some(ops));
    assert_eq!(status, 404);
    assert_eq!(s.call("GET", "/collections/c/points/60", None).0, 404);
}

#[test]
fn scroll_pages_through_everything_in_id_order() {
    let (s, _dir) = setup();
    let mut offset = Value::Null;
    let mut seen = Vec::new();
    loop {
        let page = s.ok("POST", "/collections/c/points/scroll", Some(json!({"limit": 6, "offset": offset, "filter": {"must_not": [{"key": "tag", "match": {"value": "t0"}}]}})));
        seen.extend(
            page["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap()),
        );
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    let expected: Vec<u64> = (0..20).filter(|i| i % 3 != 0).collect();
    assert_eq!(seen, expected);
}

#[test]
fn filters_cover_the_condition_kinds() {
    let (s, _dir) = setup();
    let cases = [
        (
            json!({"must": [{"key": "tag", "match": {"any": ["t1", "t2"]}}]}),
            13,
        ),
        (
            json!({"must": [{"key": "tag", "match": {"except": ["t1"]}}]}),
            13,
        ),
        (
            json!({"must": [{"key": "n", "range": {"gt": 5, "lte": 10}}]}),
            5,
        ),
        (
            json!({"should": [{"key": "n", "match": {"value": 1}}, {"key": "n", "match": {"value": 2}}]}),
            2,
        ),
        (json!({"must": [{"has_id": [1, 2, 3, 99]}]}), 3),
        (
            json!({"must": [{"key": "nested.a[]", "match": {"value": 20}}]}),
            1,
        ),
        (
            json!({"must": [{"key": "nested.a", "values_count": {"gte": 2}}]}),
            20,
        ),
        (json!({"must": [{"is_empty": {"key": "missing"}}]}), 20),
        (json!({"must": [{"is_null": {"key": "n"}}]}), 0),
        (
            json!({"min_should": {"conditions": [{"key": "even", "match": {"value": true}}, {"key": "tag", "match": {"value": "t0"}}], "min_count": 2}}),
            4,
        ),
        (
            json!({"must": [{"must_not": [{"key": "even", "match": {"value": true}}]}]}),
            10,
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(count(&s, filter.clone()), expected, "{filter}");
    }
}

#[test]
fn bad_input_gets_a_4xx_and_changes_nothing() {
    let (s, _dir) = setup();
    let before = s.ok(
        "POST",
        "/collections/c/points/scroll",
        Some(json!({"limit": 100, "with_vector": true})),
    );
    let up = "/collections/c/points?wait=true";
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "PUT",
            up,
            json!({"points": [{"id": 1, "vector": [1, 2]}]}),
            400,
            "expected dim: 3, got 2",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": 1, "vector": [1, 2, 1e300]}]}),
            400,
            "out of the float32 range",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": -1, "vector": [1, 2, 3]}]}),
            400,
            "not an unsigned integer",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": "abc", "vector": [1, 2, 3]}]}),
            400,
            "neither an unsigned integer nor a valid UUID",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": 1, "vector": [1, "x", 3]}]}),
            400,
            "vector[1]: expected a number",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": 1, "vector": {"text": [1, 2, 3]}}]}),
            400,
            "Not existing vector name",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": 1, "vector": [1, 2, 3], "payload": [1]}]}),
            400,
            "payload",
        ),
        (
            "PUT",
            up,
            json!({"points": [{"id": 2, "vector": [1, 2, 3]}, {"id": 3, "vector": [1]}]}),
            400,
            "points[1]",
        ),
        (
            "PUT",
            up,
            json!({"pts": []}),
            400,
            "expected an object with `points`",
        ),
        (
            "PUT",
            up,
            json!({"batch": {"ids": [1, 2], "vectors": [[1, 2, 3]]}}),
            400,
            "2 ids but 1 vectors",
        ),
        (
            "PUT",
            "/collections/nope/points",
            json!({"points": []}),
            404,
            "doesn't exist",
        ),
        (
            "POST",
            "/collections/c/points/query",
            json!({"query": [1, 2, 3], "limit": -1}),
            400,
            "invalid value",
        ),
        (
            "POST",
            "/collections/c/points/query",
            json!({"query": [1, 2]}),
            400,
            "expected dim: 3",
        ),
        (
            "POST",
            "/collections/c/points/query",
            json!({"query": [1, 2, 3], "using": "text"}),
            400,
            "Not existing vector name",
        ),
        (
            "POST",
            "/collections/c/points/query",
            json!({"query": [1, 2, 3], "filter": {"must": [{"key": "n", "rnage": {}}]}}),
            400,
            "rnage",
        ),
        (
            "POST",
            "/collections/c/points/query",
            json!({"query": [1, 2, 3], "filter": {"must": [{"key": "n", "range": {"gt": "x"}}]}}),
            400,
            "range.gt",
        ),
        (
            "POST",
            "/collections/c/points/scroll",
            json!({"limit": "ten"}),
            400,
            "limit",
        ),
        (
            "POST",
            "/collections/c/points/delete",
            json!({}),
            400,
            "expected `points`",
        ),
        (
            "POST",
            "/collections/c/points/batch",
            json!({"operations": [{"explode": {}}]}),
            400,
            "unknown operation `explode`",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, resp) = s.call(method, path, Some(body.clone()));
        assert_eq!(got, status, "{method} {path} {body} -> {resp}");
        let msg = resp["status"]["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{body}: error {msg:?} lacks {needle:?}"
        );
    }
    let (status, resp) = s.raw("PUT", up, b"{\"points\": [".to_vec());
    assert_eq!(status, 400, "{resp}");
    assert!(common::error(&resp).contains("EOF"), "{resp}");
    let huge = vec![b' '; 33 * 1024 * 1024];
    let (status, resp) = s.raw("PUT", up, huge);
    assert_eq!(status, 413, "{resp}");
    assert!(resp["status"]["error"].is_string());
    let after = s.ok(
        "POST",
        "/collections/c/points/scroll",
        Some(json!({"limit": 100, "with_vector": true})),
    );
    assert_eq!(before, after, "a rejected request changed the data");
}
