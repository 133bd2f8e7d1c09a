//! Search correctness over HTTP: exact results against a brute-force reference computed here,
//! the HNSW path after segments are sealed, and no stale or deleted points ever returned.

mod common;

use common::{ids, seed, Rng, Server};
use serde_json::{json, Value};

/// Reference scores with Qdrant's meaning for each distance.
fn reference_score(distance: &str, q: &[f32], v: &[f32]) -> f32 {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    match distance {
        "Cosine" => dot(q, v) / (dot(q, q).sqrt() * dot(v, v).sqrt()),
        "Dot" => dot(q, v),
        "Euclid" => q
            .iter()
            .zip(v)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt(),
        "Manhattan" => q.iter().zip(v).map(|(x, y)| (x - y).abs()).sum(),
        _ => unreachable!(),
    }
}

#[test]
fn exact_results_match_brute_force_for_every_distance() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    let vectors: Vec<Vec<f32>> = (0..300).map(|_| rng.vector(8)).collect();
    for distance in ["Cosine", "Dot", "Euclid", "Manhattan"] {
        let name = distance.to_lowercase();
        s.create(&name, json!({"vectors": {"size": 8, "distance": distance}}));
        let points: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"id": i, "vector": v}))
            .collect();
        s.upsert(&name, json!(points));
        for _ in 0..10 {
            let q = rng.vector(8);
            let mut expected: Vec<(f32, u64)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (reference_score(distance, &q, v), i as u64))
                .collect();
            let higher_better = matches!(distance, "Cosine" | "Dot");
            expected.sort_by(|a, b| {
                if higher_better {
                    b.0.total_cmp(&a.0)
                } else {
                    a.0.total_cmp(&b.0)
                }
            });
            let r = s.ok(
                "POST",
                &format!("/collections/{name}/points/query"),
                Some(json!({"query": q, "limit": 5, "offset": 2})),
            );
            let got = r["points"].as_array().unwrap();
            assert_eq!(got.len(), 5);
            for (p, (score, id)) in got.iter().zip(&expected[2..7]) {
                assert_eq!(p["id"].as_u64().unwrap(), *id, "{distance}");
                let diff = (p["score"].as_f64().unwrap() as f32 - score).abs();
                assert!(
                    diff < 1e-3 * score.abs().max(1.0),
                    "{distance}: score {} vs {score}",
                    p["score"]
                );
            }
            // score_threshold keeps only results at least as good as the threshold.
            let t = (expected[3].0 + expected[4].0) / 2.0;
            let r = s.ok(
                "POST",
                &format!("/collections/{name}/points/query"),
                Some(json!({"query": q, "limit": 10, "score_threshold": t})),
            );
            assert_eq!(ids(&r).len(), 4, "{distance}: threshold {t} -> {r}");
        }
    }
}

#[test]
fn hnsw_segments_answer_with_high_recall_and_never_stale() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    let dim = 16;
    // A tiny indexing threshold (1 KB = 16 vectors) seals segments constantly; full_scan_threshold 0
    // makes every sealed segment answer through its graph.
    s.create(
        "h",
        json!({
            "vectors": {"size": dim, "distance": "Cosine"},
            "hnsw_config": {"m": 12, "ef_construct": 64, "full_scan_threshold": 0},
            "optimizers_config": {"indexing_threshold": 20}
        }),
    );
    let n = 2000;
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| rng.vector(dim)).collect();
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": vectors[i], "payload": {"v": 0}}))
            .collect();
        s.upsert("h", json!(points));
    }
    let info = s.wait_green("h");
    assert_eq!(info["points_count"], n);
    // Everything but the append segment (below the 20 KB = 320-vector threshold) is indexed.
    assert!(
        info["indexed_vectors_count"].as_u64().unwrap() >= n as u64 - 320,
        "{info}"
    );
    // Delete a tenth and overwrite another tenth with a new payload.
    let deleted: Vec<usize> = (0..n).step_by(10).collect();
    s.ok(
        "POST",
        "/collections/h/points/delete?wait=true",
        Some(json!({"points": deleted})),
    );
    let overwritten: Vec<Value> = (5..n)
        .step_by(10)
        .map(|i| json!({"id": i, "vector": vectors[i], "payload": {"v": 1}}))
        .collect();
    s.upsert("h", json!(overwritten));
    let mut hits = 0;
    let queries = 50;
    for _ in 0..queries {
        let q = rng.vector(dim);
        let approx = s.ok(
            "POST",
            "/collections/h/points/query",
            Some(json!({"query": q, "limit": 10, "with_payload": true})),
        );
        let exact = s.ok(
            "POST",
            "/collections/h/points/query",
            Some(json!({"query": q, "limit": 10, "params": {"exact": true}})),
        );
        let exact_ids = ids(&exact);
        for p in approx["points"].as_array().unwrap() {
            let id = p["id"].as_u64().unwrap() as usize;
            assert!(!id.is_multiple_of(10), "deleted point {id} returned");
            let expected_v = if id % 10 == 5 { 1 } else { 0 };
            assert_eq!(p["payload"]["v"], expected_v, "stale version of point {id}");
            hits += usize::from(exact_ids.contains(&(id as u64)));
        }
    }
    let recall = hits as f64 / (queries * 10) as f64;
    eprintln!("recall@10 = {recall:.3}");
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[test]
fn named_vectors_query_by_name_and_by_point_and_legacy_search() {
    let (s, _dir) = Server::start();
    s.create("n", json!({"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 3, "distance": "Euclid"}}}));
    s.upsert(
        "n",
        json!([
            {"id": 1, "vector": {"a": [1, 0], "b": [0, 0, 0]}},
            {"id": 2, "vector": {"a": [0, 1], "b": [5, 5, 5]}},
            {"id": 3, "vector": {"a": [0.9, 0.1], "b": [1, 1, 1]}},
        ]),
    );
    let r = s.ok(
        "POST",
        "/collections/n/points/query",
        Some(json!({"query": [1, 0], "using": "a", "limit": 2, "with_vector": ["b"]})),
    );
    assert_eq!(ids(&r), vec![1, 3]);
    assert_eq!(r["points"][0]["vector"], json!({"b": [0.0, 0.0, 0.0]}));
    let r = s.ok(
        "POST",
        "/collections/n/points/query",
        Some(json!({"query": {"nearest": [4, 4, 4]}, "using": "b", "limit": 1})),
    );
    assert_eq!(ids(&r), vec![2]);
    // A point id as the query uses its stored vector and leaves the point itself out.
    let r = s.ok(
        "POST",
        "/collections/n/points/query",
        Some(json!({"query": 1, "using": "b", "limit": 2})),
    );
    assert_eq!(ids(&r), vec![3, 2]);
    let r = s.ok(
        "POST",
        "/collections/n/points/search",
        Some(json!({"vector": {"name": "a", "vector": [0, 1]}, "limit": 1})),
    );
    assert_eq!(ids(&r), vec![2]);
    let r = s.ok("POST", "/collections/n/points/search/batch", Some(json!({"searches": [
        {"vector": {"name": "a", "vector": [1, 0]}, "limit": 1},
        {"vector": {"name": "b", "vector": [1, 1, 1]}, "limit": 1, "filter": {"must_not": [{"has_id": [3]}]}},
    ]})));
    assert_eq!((ids(&r[0]), ids(&r[1])), (vec![1], vec![1]));
    let r = s.ok(
        "POST",
        "/collections/n/points/query/batch",
        Some(json!({"searches": [
            {"query": [0, 1], "using": "a", "limit": 1},
            {"query": [1, 1, 1], "using": "b", "limit": 3, "offset": 1},
        ]})),
    );
    assert_eq!((ids(&r[0]), ids(&r[1])), (vec![2], vec![1, 2]));
    let (status, body) = s.call(
        "POST",
        "/collections/n/points/query",
        Some(json!({"query": [1, 0]})),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn filtered_search_returns_only_matching_points() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    s.create("f", json!({"vectors": {"size": 8, "distance": "Euclid"}, "hnsw_config": {"full_scan_threshold": 0}, "optimizers_config": {"indexing_threshold": 10}}));
    let points: Vec<Value> = (0..1500)
        .map(|i| json!({"id": i, "vector": rng.vector(8), "payload": {"group": i % 50}}))
        .collect();
    s.upsert("f", json!(points));
    s.wait_green("f");
    for group in [0, 7, 49] {
        let filter = json!({"must": [{"key": "group", "match": {"value": group}}]});
        let q = rng.vector(8);
        let approx = s.ok(
            "POST",
            "/collections/f/points/query",
            Some(json!({"query": q, "limit": 10, "filter": filter, "with_payload": true})),
        );
        let exact = s.ok(
            "POST",
            "/collections/f/points/query",
            Some(json!({"query": q, "limit": 10, "filter": filter, "params": {"exact": true}})),
        );
        assert_eq!(ids(&approx), ids(&exact), "a 2% filter is answered exactly");
        assert!(approx["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["payload"]["group"] == group));
    }
}
