//! Collection lifecycle over HTTP against the real server.

mod common;

use common::Server;
use serde_json::json;

#[test]
fn create_inspect_update_and_delete() {
    let (s, _dir) = Server::start();
    s.create(
        "books",
        json!({"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 8}}),
    );
    let list = s.ok("GET", "/collections", None);
    assert_eq!(list["collections"], json!([{"name": "books"}]));
    assert_eq!(
        s.ok("GET", "/collections/books/exists", None),
        json!({"exists": true})
    );
    assert_eq!(
        s.ok("GET", "/collections/nope/exists", None),
        json!({"exists": false})
    );

    let info = s.ok("GET", "/collections/books", None);
    assert_eq!(info["status"], "green");
    assert_eq!(info["points_count"], 0);
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"size": 4, "distance": "Dot"})
    );
    assert_eq!(info["config"]["hnsw_config"]["m"], 8);
    assert_eq!(info["config"]["hnsw_config"]["ef_construct"], 100);

    let patch = json!({"hnsw_config": {"ef_construct": 64}, "optimizers_config": {"indexing_threshold": 1}});
    assert_eq!(
        s.ok("PATCH", "/collections/books", Some(patch)),
        json!(true)
    );
    let info = s.ok("GET", "/collections/books", None);
    assert_eq!(info["config"]["hnsw_config"]["ef_construct"], 64);
    assert_eq!(info["config"]["optimizer_config"]["indexing_threshold"], 1);

    assert_eq!(s.ok("DELETE", "/collections/books", None), json!(true));
    assert_eq!(s.ok("DELETE", "/collections/books", None), json!(false));
    let (status, body) = s.call("GET", "/collections/books", None);
    assert_eq!(status, 404);
    assert_eq!(body["status"]["error"], "Collection `books` doesn't exist!");
}

#[test]
fn named_vectors_and_recreation_after_delete() {
    let (s, _dir) = Server::start();
    let body = json!({"vectors": {"text": {"size": 3, "distance": "Cosine"}, "image": {"size": 2, "distance": "Euclid"}}});
    s.create("multi", body.clone());
    s.upsert(
        "multi",
        json!([{"id": 1, "vector": {"text": [1, 0, 0], "image": [0.5, 0.5]}}]),
    );
    assert_eq!(s.ok("DELETE", "/collections/multi", None), json!(true));
    // A collection recreated under the same name starts empty: the old points are gone.
    s.create("multi", body);
    let count = s.ok("POST", "/collections/multi/points/count", Some(json!({})));
    assert_eq!(count["count"], 0);
}

#[test]
fn bad_collection_requests_are_rejected_with_reasons() {
    let (s, _dir) = Server::start();
    s.create("dup", json!({"vectors": {"size": 2, "distance": "Cosine"}}));
    let cases = [
        (
            "/collections/dup",
            json!({"vectors": {"size": 2, "distance": "Cosine"}}),
            409,
            "already exists",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 0, "distance": "Cosine"}}),
            422,
            "Validation error in JSON body: [vectors.size: value 0 invalid, must be from 1 to 65536]",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 3, "distance": "Dot"}, "hnsw_config": {"ef_construct": 3}}),
            422,
            "[hnsw_config.ef_construct: value 3 invalid, must be 4 or larger]",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 3, "distance": "Hamming"}}),
            400,
            "Hamming",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 3, "distance": "Dot"}, "shard_number": 3}),
            400,
            "shard_number",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 3, "distance": "Dot"}, "hnsw_config": {"m": 1000}}),
            400,
            "m must be between",
        ),
        (
            "/collections/x",
            json!({"vectors": {"size": 3, "distance": "Dot"}, "bogus": 1}),
            400,
            "bogus",
        ),
        (
            "/collections/x",
            json!({"vectors": {}}),
            400,
            "at least one named vector",
        ),
        (
            "/collections/a:b",
            json!({"vectors": {"size": 3, "distance": "Dot"}}),
            400,
            "must not contain",
        ),
    ];
    for (path, body, status, needle) in cases {
        let (got, resp) = s.call("PUT", path, Some(body.clone()));
        assert_eq!(got, status, "{body} -> {resp}");
        let msg = resp["status"]["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{body}: error {msg:?} lacks {needle:?}"
        );
    }
    assert_eq!(
        s.ok("GET", "/collections", None)["collections"],
        json!([{"name": "dup"}])
    );
}
