//! The universal query's example-based scorers (recommendation by best score or sum of
//! scores, discovery) on sealed segments: they walk the HNSW graphs with the scorer as the
//! distance, and must find nearly what an exact scan (`params.exact`) finds.

mod common;

use common::{ids, seed, Rng, Server};
use serde_json::{json, Value};

#[test]
fn example_scorers_walk_the_graph_close_to_the_exact_answer() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    let dim = 16;
    s.create(
        "r",
        json!({
            "vectors": {"size": dim, "distance": "Cosine"},
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 0},
            "optimizers_config": {"indexing_threshold": 20}
        }),
    );
    let n = 3000u64;
    let ids_all: Vec<u64> = (0..n).collect();
    for chunk in ids_all.chunks(500) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": rng.vector(dim)}))
            .collect();
        s.upsert("r", json!(points));
    }
    let info = s.wait_green("r");
    assert!(
        info["indexed_vectors_count"].as_u64().unwrap() >= n - 320,
        "{info}"
    );
    let (mut hits, mut wanted) = (0, 0);
    for q in 0..30 {
        let id = |rng: &mut Rng| rng.below(n);
        let query = match q % 3 {
            0 => {
                json!({"recommend": {"positive": [id(&mut rng), id(&mut rng)], "negative": [id(&mut rng)], "strategy": "best_score"}})
            }
            1 => {
                json!({"recommend": {"positive": [id(&mut rng)], "negative": [id(&mut rng)], "strategy": "sum_scores"}})
            }
            _ => {
                json!({"discover": {"target": id(&mut rng), "context": [{"positive": id(&mut rng), "negative": id(&mut rng)}]}})
            }
        };
        let walked = s.ok(
            "POST",
            "/collections/r/points/query",
            Some(json!({"query": query, "limit": 10})),
        );
        let exact = s.ok(
            "POST",
            "/collections/r/points/query",
            Some(json!({"query": query, "limit": 10, "params": {"exact": true}})),
        );
        let (walked, exact) = (ids(&walked), ids(&exact));
        assert_eq!(walked.len(), 10, "{query}");
        assert_eq!(exact.len(), 10, "{query}");
        hits += walked.iter().filter(|i| exact.contains(i)).count();
        wanted += exact.len();
    }
    let recall = hits as f64 / wanted as f64;
    eprintln!("recall@10 of the graph walk against the exact scan: {recall:.3}");
    assert!(
        recall >= 0.9,
        "recall of the graph walk {recall:.3} against the exact scan"
    );
}
