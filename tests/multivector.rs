//! Multivectors (late interaction, `max_sim`): exact search against a model of the scores,
//! HNSW search over indexed segments against exact search, through deletes and a restart that
//! reads the segments' multivectors and graphs back from their files.

mod common;

use std::collections::BTreeMap;

use common::{Rng, Server};
use serde_json::{json, Value};

const N: u64 = 1500;
const SIZE: usize = 8;
/// Points gather around this many centres, so that nearest neighbours mean something.
const CENTRES: usize = 12;

type Multi = Vec<Vec<f32>>;

/// 1 to 5 vectors near one of the centres.
fn random_multi(rng: &mut Rng, centres: &[Vec<f32>]) -> Multi {
    let centre = &centres[rng.below(CENTRES as u64) as usize];
    let rows = 1 + rng.below(5) as usize;
    (0..rows)
        .map(|_| centre.iter().map(|c| c + 0.3 * rng.f32()).collect())
        .collect()
}

/// Qdrant's `max_sim` under the dot product: for each query vector, its best dot product
/// with one of the point's vectors, summed.
fn max_sim(query: &Multi, doc: &Multi) -> f32 {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    query
        .iter()
        .map(|q| doc.iter().map(|d| dot(q, d)).fold(f32::MIN, f32::max))
        .sum()
}

/// Each live point's multivector, if it has one.
struct Model {
    points: BTreeMap<u64, Option<Multi>>,
}

impl Model {
    fn ranking(&self, query: &Multi, even: bool) -> Vec<(u64, f32)> {
        let mut scored: Vec<(u64, f32)> = self
            .points
            .iter()
            .filter(|(id, _)| !even || *id % 2 == 0)
            .filter_map(|(id, v)| Some((*id, max_sim(query, v.as_ref()?))))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }
}

fn search(s: &Server, query: &Multi, even: bool, exact: bool) -> Vec<(u64, f32)> {
    let filter = even.then(|| json!({"must": [{"key": "even", "match": {"value": true}}]}));
    let body = json!({
        "query": query, "using": "colbert", "limit": 10, "filter": filter,
        "params": {"exact": exact, "hnsw_ef": 64},
    });
    let found = s.ok("POST", "/collections/mv/points/query", Some(body));
    common::scored(&found)
}

/// Exact search gives the model's scores; HNSW search finds most of the exact top 10.
/// Returns the HNSW recall@10 over the queries.
fn check(s: &Server, model: &Model, rng: &mut Rng, centres: &[Vec<f32>]) -> f64 {
    let (mut found, mut wanted) = (0, 0);
    for i in 0..30 {
        let query = random_multi(rng, centres);
        let even = i % 3 == 0;
        let want = model.ranking(&query, even);
        let exact = search(s, &query, even, true);
        assert_eq!(exact.len(), want.len().min(10));
        for (g, w) in exact.iter().zip(&want) {
            let close = (g.1 - w.1).abs() <= 1e-3 * w.1.abs().max(1.0);
            assert!(close, "exact: got {exact:?}, want {:?}", &want[..10]);
        }
        let approximate = search(s, &query, even, false);
        assert_eq!(approximate.len(), exact.len());
        let truth: Vec<u64> = want.iter().take(10).map(|w| w.0).collect();
        found += approximate.iter().filter(|a| truth.contains(&a.0)).count();
        wanted += truth.len();
        for (id, score) in &approximate {
            let model_score = want.iter().find(|w| w.0 == *id);
            let close =
                model_score.is_some_and(|w| (w.1 - score).abs() <= 1e-3 * w.1.abs().max(1.0));
            assert!(close, "point {id} scored {score}, model {model_score:?}");
        }
    }
    found as f64 / wanted as f64
}

#[test]
fn multivectors_are_searched_through_hnsw_deletes_and_restarts() {
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create(
        "mv",
        json!({
            "vectors": {
                "colbert": {"size": SIZE, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
                "d": {"size": 2, "distance": "Dot"},
            },
            // A collection this small is searched exactly unless the threshold is lower.
            "hnsw_config": {"full_scan_threshold": 1},
            "optimizers_config": {"indexing_threshold": 1}
        }),
    );
    let mut rng = Rng(common::seed());
    let centres: Vec<Vec<f32>> = (0..CENTRES).map(|_| rng.vector(SIZE)).collect();
    let mut model = Model {
        points: BTreeMap::new(),
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(250) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&id| {
                let multi = (id % 9 != 0).then(|| random_multi(&mut rng, &centres));
                let mut vector = json!({"d": [rng.f32(), rng.f32()]});
                if let Some(m) = &multi {
                    vector["colbert"] = json!(m);
                }
                model.points.insert(id, multi);
                json!({"id": id, "vector": vector, "payload": {"even": id % 2 == 0}})
            })
            .collect();
        s.upsert("mv", json!(points));
    }
    let info = s.wait_green("mv");
    assert!(info["segments_count"].as_u64().unwrap() >= 1, "{info}");
    let recall = check(&s, &model, &mut rng, &centres);
    assert!(recall >= 0.9, "HNSW recall@10 {recall}");

    // Retrieval gives the vectors back as sent.
    let got = s.ok("GET", "/collections/mv/points/1", None);
    let got: Multi = serde_json::from_value(got["vector"]["colbert"].clone()).unwrap();
    assert_eq!(Some(got), model.points[&1]);

    let gone: Vec<u64> = (0..N).filter(|i| i % 5 == 0).collect();
    s.ok(
        "POST",
        "/collections/mv/points/delete?wait=true",
        Some(json!({"points": gone})),
    );
    let stripped: Vec<u64> = (0..N).filter(|i| i % 11 == 3 && i % 5 != 0).collect();
    let body = json!({"points": stripped, "vector": ["colbert"]});
    s.ok(
        "POST",
        "/collections/mv/points/vectors/delete?wait=true",
        Some(body),
    );
    for id in &gone {
        model.points.remove(id);
    }
    for id in &stripped {
        if let Some(v) = model.points.get_mut(id) {
            *v = None;
        }
    }
    let recall = check(&s, &model, &mut rng, &centres);
    assert!(recall >= 0.9, "HNSW recall@10 after deletes {recall}");
    let has = json!({"filter": {"must": [{"has_vector": "colbert"}]}, "exact": true});
    let count = s.ok("POST", "/collections/mv/points/count", Some(has))["count"].clone();
    assert_eq!(count, model.points.values().flatten().count());

    // Indexed segments read their multivectors and graphs back from their files.
    s.wait_green("mv");
    s.terminate();
    let s = Server::start_in(dir.path(), &[]);
    let recall = check(&s, &model, &mut rng, &centres);
    assert!(recall >= 0.9, "HNSW recall@10 after a restart {recall}");
}
