//! Optional named vectors: points that carry any subset of their collection's vectors, the
//! `has_vector` condition, updating and deleting some vectors, through indexed segments and
//! a restart.

mod common;

use std::collections::BTreeSet;

use common::{error, ids, Rng, Server};
use serde_json::{json, Value};

const N: u64 = 600;

/// Which vectors point `id` is written with: every fifth none, the other odd ones only `text`.
fn has_image(id: u64) -> bool {
    !id.is_multiple_of(5) && id.is_multiple_of(2)
}
fn has_text(id: u64) -> bool {
    !id.is_multiple_of(5)
}

fn point(id: u64, rng: &mut Rng) -> Value {
    let mut vector = serde_json::Map::new();
    if has_text(id) {
        vector.insert("text".into(), json!(rng.vector(4)));
    }
    if has_image(id) {
        vector.insert("image".into(), json!(rng.vector(3)));
    }
    json!({"id": id, "vector": vector, "payload": {"n": id}})
}

fn search(s: &Server, using: &str, vector: &[f32], limit: usize, exact: bool) -> Vec<u64> {
    let body = json!({"query": vector, "using": using, "limit": limit, "params": {"exact": exact}});
    ids(&s.ok("POST", "/collections/v/points/query", Some(body))["points"])
}

fn count(s: &Server, filter: Value) -> u64 {
    let body = json!({"filter": filter, "exact": true});
    s.ok("POST", "/collections/v/points/count", Some(body))["count"]
        .as_u64()
        .unwrap()
}

/// Checks every search, count and retrieval against `image` and `text`, the ids expected to
/// have each vector.
fn check(s: &Server, image: &BTreeSet<u64>, text: &BTreeSet<u64>, rng: &mut Rng) {
    for (using, expected, dim) in [("image", image, 3), ("text", text, 4)] {
        let query = rng.vector(dim);
        // A limit past the number of points with the vector returns exactly those points,
        // from the graph and from the exact scan alike.
        for exact in [false, true] {
            let found: BTreeSet<u64> = search(s, using, &query, 1000, exact).into_iter().collect();
            assert_eq!(&found, expected, "using {using}, exact {exact}");
        }
        let exact = search(s, using, &query, 10, true);
        let approx: BTreeSet<u64> = search(s, using, &query, 10, false).into_iter().collect();
        let hits = exact.iter().filter(|id| approx.contains(id)).count();
        assert!(hits >= 8, "recall@10 {hits}/10 using {using}");
        let has = count(s, json!({"must": [{"has_vector": using}]}));
        assert_eq!(has, expected.len() as u64, "has_vector {using}");
    }
    // A vector the collection does not have matches nothing.
    assert_eq!(count(s, json!({"must": [{"has_vector": "audio"}]})), 0);
    let none = count(
        s,
        json!({"must_not": [{"has_vector": "text"}, {"has_vector": "image"}]}),
    );
    let both = (0..N).filter(|i| !text.contains(i) && !image.contains(i));
    assert_eq!(none, both.count() as u64);
    // Retrieval lists exactly the vectors a point has.
    let sample: Vec<u64> = (0..20).collect();
    let body = json!({"ids": sample, "with_vector": true});
    for p in s
        .ok("POST", "/collections/v/points", Some(body))
        .as_array()
        .unwrap()
    {
        let id = p["id"].as_u64().unwrap();
        let names: BTreeSet<&str> = p["vector"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut want = BTreeSet::new();
        if text.contains(&id) {
            want.insert("text");
        }
        if image.contains(&id) {
            want.insert("image");
        }
        assert_eq!(names, want, "vectors of point {id}: {p}");
    }
}

#[test]
fn points_carry_any_subset_of_named_vectors() {
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create(
        "v",
        json!({
            "vectors": {"text": {"size": 4, "distance": "Cosine"}, "image": {"size": 3, "distance": "Euclid"}},
            "hnsw_config": {"full_scan_threshold": 0},
            "optimizers_config": {"indexing_threshold": 4}
        }),
    );
    let mut rng = Rng(common::seed());
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let points: Vec<Value> = chunk.iter().map(|&id| point(id, &mut rng)).collect();
        s.upsert("v", json!(points));
    }
    let info = s.wait_green("v");
    // Most points are in indexed segments, whose graphs leave out the missing vectors.
    assert!(
        info["indexed_vectors_count"].as_u64().unwrap() > N,
        "{info}"
    );
    let mut image: BTreeSet<u64> = (0..N).filter(|&i| has_image(i)).collect();
    let mut text: BTreeSet<u64> = (0..N).filter(|&i| has_text(i)).collect();
    check(&s, &image, &text, &mut rng);

    // Update gives points vectors they lacked; delete takes some away, by id and by filter.
    let updates: Vec<Value> = (1..40)
        .step_by(2)
        .map(|id| json!({"id": id, "vector": {"image": rng.vector(3)}}))
        .collect();
    let path = "/collections/v/points/vectors?wait=true";
    s.ok("PUT", path, Some(json!({"points": updates})));
    image.extend((1..40).step_by(2));
    let path = "/collections/v/points/vectors/delete?wait=true";
    s.ok(
        "POST",
        path,
        Some(json!({"points": [2, 4, 6], "vector": ["image", "text"]})),
    );
    let below = json!({"must": [{"key": "n", "range": {"gte": 100, "lt": 150}}]});
    s.ok(
        "POST",
        path,
        Some(json!({"filter": below, "vector": ["text"]})),
    );
    for id in [2, 4, 6] {
        image.remove(&id);
        text.remove(&id);
    }
    text.retain(|id| !(100..150).contains(id));
    // The same operation inside a batch.
    let batch = json!({"operations": [{"delete_vectors": {"points": [8], "vector": ["image"]}}]});
    s.ok("POST", "/collections/v/points/batch?wait=true", Some(batch));
    image.remove(&8);
    check(&s, &image, &text, &mut rng);

    // Bad requests change nothing.
    for (body, why) in [
        (json!({"points": [1], "vector": ["audio"]}), "audio"),
        (json!({"points": [1], "vector": []}), "at least one"),
        (json!({"points": [100000], "vector": ["text"]}), "100000"),
    ] {
        let (status, reply) = s.call("POST", path, Some(body));
        assert!((400..500).contains(&status), "{status} {reply}");
        assert!(error(&reply).contains(why), "{reply}");
    }

    // Indexed segments keep what each point has across a restart, and so do new ones.
    s.wait_green("v");
    s.terminate();
    let s = Server::start_in(dir.path(), &[]);
    check(&s, &image, &text, &mut rng);
}
