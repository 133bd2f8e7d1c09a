//! Values of the right type that break a documented constraint are answered 422 with Qdrant's
//! validator wording (`Validation error in JSON body: [path: message]`), and change nothing;
//! malformed bodies stay 400 format errors.

mod common;

use common::{error, Server};
use serde_json::json;

#[test]
fn broken_constraints_are_422_validation_errors_that_change_nothing() {
    let (s, _dir) = Server::start();
    s.create(
        "v",
        json!({"vectors": {"d": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"s": {}}}),
    );
    s.upsert("v", json!([{"id": 1, "vector": {"d": [1.0, 0.0]}}]));
    let cases = [
        (
            "PUT",
            "/collections/w",
            json!({"vectors": {"size": 70000, "distance": "Dot"}}),
            "[vectors.size: value 70000 invalid, must be from 1 to 65536]",
        ),
        (
            "PUT",
            "/collections/v/points?wait=true",
            json!({"points": [{"id": 2, "vector": {"d": [1.0, 0.0]}}, {"id": 3, "vector": {"d": []}}]}),
            "[points[1].vector.d: dense vector must not be empty]",
        ),
        (
            "PUT",
            "/collections/v/points?wait=true",
            json!({"points": [{"id": 2, "vector": {"s": {"indices": [4, 4], "values": [1.0, 1.0]}}}]}),
            "[points[0].vector.s: indices must be unique, 4 appears twice]",
        ),
        (
            "PUT",
            "/collections/v/points/vectors?wait=true",
            json!({"points": [{"id": 1, "vector": {}}]}),
            "[points[0].vector: must specify vectors to update for point]",
        ),
        (
            "POST",
            "/collections/v/points/query",
            json!({"query": [1.0, 0.0], "using": "d", "limit": 0}),
            "[limit: value 0 invalid, must be 1 or larger]",
        ),
        (
            "POST",
            "/collections/v/points/query",
            json!({"prefetch": {"query": [1.0, 0.0], "using": "d", "limit": 0}, "query": {"fusion": "rrf"}}),
            "[prefetch.limit: value 0 invalid, must be 1 or larger]",
        ),
        (
            "POST",
            "/collections/v/points/search",
            json!({"vector": {"name": "d", "vector": [1.0, 0.0]}, "limit": 0}),
            "[limit: value 0 invalid, must be 1 or larger]",
        ),
        (
            "POST",
            "/collections/v/points/scroll",
            json!({"limit": 0}),
            "[limit: value 0 invalid, must be 1 or larger]",
        ),
        (
            "POST",
            "/collections/v/points/query/groups",
            json!({"query": [1.0, 0.0], "using": "d", "group_by": "g", "group_size": 0}),
            "[group_size: value 0 invalid, must be 1 or larger]",
        ),
        (
            "POST",
            "/collections/v/points/search/matrix/pairs",
            json!({"using": "d", "sample": 1}),
            "[sample: value 1 invalid, must be 2 or larger]",
        ),
    ];
    for (method, path, body, message) in cases {
        let (status, reply) = s.call(method, path, Some(body.clone()));
        assert_eq!(status, 422, "{method} {path} {body}: {reply}");
        let got = error(&reply);
        assert_eq!(
            got,
            format!("Validation error in JSON body: {message}"),
            "{body}"
        );
    }
    // Nothing changed: the one point is as it was, and no collection `w` exists.
    let all = s.ok(
        "POST",
        "/collections/v/points/scroll",
        Some(json!({"with_vector": true})),
    );
    assert_eq!(common::ids(&all), vec![1]);
    assert_eq!(all["points"][0]["vector"], json!({"d": [1.0, 0.0]}));
    let (status, _) = s.call("GET", "/collections/w", None);
    assert_eq!(status, 404);

    // A value of the wrong type is a format error (400), as in Qdrant.
    let body = json!({"query": [1.0, 0.0], "using": "d", "limit": -1});
    let (status, reply) = s.call("POST", "/collections/v/points/query", Some(body));
    assert_eq!(status, 400, "{reply}");
    assert!(
        error(&reply).starts_with("Format error in JSON body: "),
        "{reply}"
    );
}
