//! Sparse vectors: stored beside dense ones, searched exactly by dot product over shared
//! dimensions (plain IDF-weighted or not), through indexed segments, deletes and a restart.

mod common;

use std::collections::BTreeMap;

use common::{error, Rng, Server};
use serde_json::{json, Value};

const N: u64 = 800;
const DIMS: u64 = 60;

/// A point's sparse vector as (dimension, value) pairs in dimension order.
type Sparse = BTreeMap<u32, f32>;

fn random_sparse(rng: &mut Rng) -> Sparse {
    let terms = 1 + rng.below(6);
    // Low dimensions are common, high ones rare, as words are.
    (0..terms)
        .map(|_| {
            let dim = (rng.below(DIMS) * rng.below(DIMS) / DIMS) as u32;
            (dim, 0.1 + rng.f32().abs())
        })
        .collect()
}

fn json_sparse(v: &Sparse) -> Value {
    json!({"indices": v.keys().collect::<Vec<_>>(), "values": v.values().collect::<Vec<_>>()})
}

/// What the collection should hold: each live point's sparse vector `s`, if it has one.
struct Model {
    points: BTreeMap<u64, Option<Sparse>>,
}

impl Model {
    /// The exact ranking of `query`: points sharing a dimension, by dot product (IDF-weighted
    /// over the points that have `s` when `idf`), best first, ties by id.
    fn ranking(&self, query: &Sparse, idf: bool, filter: impl Fn(u64) -> bool) -> Vec<(u64, f32)> {
        let having: Vec<&Sparse> = self.points.values().flatten().collect();
        let n = having.len() as f64;
        let weight = |dim: &u32| match idf {
            false => 1.0,
            true => {
                let df = having.iter().filter(|v| v.contains_key(dim)).count() as f64;
                (((n - df + 0.5) / (df + 0.5)) + 1.0).ln() as f32
            }
        };
        let mut scored: Vec<(u64, f32)> = self
            .points
            .iter()
            .filter(|(id, _)| filter(**id))
            .filter_map(|(id, v)| {
                let v = v.as_ref()?;
                let shared: Vec<&u32> = query.keys().filter(|d| v.contains_key(d)).collect();
                let score = shared.iter().map(|d| query[d] * weight(d) * v[d]).sum();
                (!shared.is_empty()).then_some((*id, score))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }
}

fn query(
    s: &Server,
    using: &str,
    q: &Sparse,
    filter: Option<Value>,
    limit: usize,
) -> Vec<(u64, f32)> {
    let body = json!({"query": json_sparse(q), "using": using, "limit": limit, "filter": filter});
    let found = s.ok("POST", "/collections/sp/points/query", Some(body));
    common::scored(&found)
}

/// Every query's hits match the model's ranking: the same scores, and the same ids wherever
/// scores are not tied.
fn check(s: &Server, model: &Model, rng: &mut Rng) {
    for i in 0..30 {
        let q = random_sparse(rng);
        let (using, idf) = if i % 2 == 0 {
            ("s", false)
        } else {
            ("idf", true)
        };
        let (filter, keep): (Option<Value>, Box<dyn Fn(u64) -> bool>) = match i % 3 {
            0 => (None, Box::new(|_| true)),
            _ => (
                Some(json!({"must": [{"key": "even", "match": {"value": true}}]})),
                Box::new(|id| id % 2 == 0),
            ),
        };
        let want = model.ranking(&q, idf, keep);
        let got = query(s, using, &q, filter, 10);
        assert_eq!(got.len(), want.len().min(10), "query {q:?} using {using}");
        for (g, w) in got.iter().zip(&want) {
            let close = (g.1 - w.1).abs() <= 1e-4 * w.1.abs().max(1.0);
            assert!(
                close,
                "query {q:?} using {using}: got {got:?}, want {:?}",
                &want[..10.min(want.len())]
            );
        }
        let untied =
            |r: &[(u64, f32)], k: usize| r[k].1 - r.get(k + 1).map_or(f32::MIN, |x| x.1) > 1e-4;
        for k in 0..got.len() {
            if untied(&want, k) && (k == 0 || untied(&want, k - 1)) {
                assert_eq!(got[k].0, want[k].0, "rank {k} of {q:?} using {using}");
            }
        }
    }
    let has = json!({"filter": {"must": [{"has_vector": "s"}]}, "exact": true});
    let count = s.ok("POST", "/collections/sp/points/count", Some(has))["count"].clone();
    assert_eq!(count, model.points.values().flatten().count());
}

#[test]
fn sparse_search_is_exact_through_segments_deletes_and_restarts() {
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create(
        "sp",
        json!({
            "vectors": {"d": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"s": {}, "idf": {"modifier": "idf", "index": {"on_disk": false}}},
            "optimizers_config": {"indexing_threshold": 1}
        }),
    );
    let info = s.ok("GET", "/collections/sp", None);
    assert_eq!(
        info["config"]["params"]["sparse_vectors"]["idf"]["modifier"],
        "idf"
    );
    let mut rng = Rng(common::seed());
    let mut model = Model {
        points: BTreeMap::new(),
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&id| {
                // Every seventh point has no sparse vector; `s` and `idf` are the same vector.
                let sparse = (id % 7 != 0).then(|| random_sparse(&mut rng));
                let mut vector = json!({"d": [rng.f32(), rng.f32()]});
                if let Some(v) = &sparse {
                    vector["s"] = json_sparse(v);
                    vector["idf"] = json_sparse(v);
                }
                model.points.insert(id, sparse);
                json!({"id": id, "vector": vector, "payload": {"even": id % 2 == 0}})
            })
            .collect();
        s.upsert("sp", json!(points));
    }
    let info = s.wait_green("sp");
    // Most points are in indexed segments, searched through their inverted indexes.
    assert!(
        info["indexed_vectors_count"].as_u64().unwrap() > N / 2,
        "{info}"
    );
    check(&s, &model, &mut rng);

    // Retrieval gives the vector back in dimension order.
    let got = s.ok("GET", "/collections/sp/points/1", None);
    let want = json_sparse(model.points[&1].as_ref().unwrap());
    assert_eq!(got["vector"]["s"]["indices"], want["indices"]);

    // Deleting points and sparse vectors changes the rankings and the IDF weights.
    let gone: Vec<u64> = (0..N).filter(|i| i % 5 == 0).collect();
    let body = json!({"points": gone});
    s.ok(
        "POST",
        "/collections/sp/points/delete?wait=true",
        Some(body),
    );
    let stripped: Vec<u64> = (0..N).filter(|i| i % 11 == 3 && i % 5 != 0).collect();
    let body = json!({"points": stripped, "vector": ["s", "idf"]});
    s.ok(
        "POST",
        "/collections/sp/points/vectors/delete?wait=true",
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
    check(&s, &model, &mut rng);

    // Bad sparse vectors change nothing.
    // Broken constraints are validation errors (422, as Qdrant answers), wrong shapes 400.
    let bad = [
        (
            json!({"s": {"indices": [1, 1], "values": [1.0, 2.0]}}),
            422,
            "Validation error in JSON body: [points[0].vector.s: indices must be unique",
        ),
        (
            json!({"s": {"indices": [1, 2], "values": [1.0]}}),
            422,
            "same length",
        ),
        (
            json!({"s": {"indices": [-1], "values": [1.0]}}),
            400,
            "non-negative",
        ),
        (json!({"s": [1.0, 2.0]}), 400, "sparse"),
        (
            json!({"d": {"indices": [1], "values": [1.0]}}),
            400,
            "dense",
        ),
    ];
    for (vector, code, why) in bad {
        let body = json!({"points": [{"id": 1, "vector": vector}]});
        let (status, reply) = s.call("PUT", "/collections/sp/points?wait=true", Some(body));
        assert_eq!(status, code, "{reply}");
        assert!(error(&reply).contains(why), "{why}: {reply}");
    }
    let body = json!({"query": {"indices": [1], "values": [1.0]}, "using": "nope"});
    let (status, reply) = s.call("POST", "/collections/sp/points/query", Some(body));
    assert_eq!(status, 400, "{reply}");

    // Sealed segments get their sparse vectors back from the point records after a restart.
    s.wait_green("sp");
    s.terminate();
    let s = Server::start_in(dir.path(), &[]);
    check(&s, &model, &mut rng);

    // PATCH turns the modifier off: `idf` then scores as `s`, which holds the same vectors.
    let patch = json!({"sparse_vectors": {"idf": {"modifier": "none"}}});
    s.ok("PATCH", "/collections/sp", Some(patch));
    let q = random_sparse(&mut rng);
    assert_eq!(query(&s, "idf", &q, None, 10), query(&s, "s", &q, None, 10));
    let patch = json!({"sparse_vectors": {"nope": {"modifier": "idf"}}});
    let (status, reply) = s.call("PATCH", "/collections/sp", Some(patch));
    assert_eq!(status, 400, "{reply}");
}

#[test]
fn a_collection_of_sparse_vectors_alone_is_indexed_and_searched() {
    let (s, _dir) = Server::start();
    // LangChain's sparse retrieval mode makes collections like this one: no dense vector.
    s.create(
        "sp",
        json!({"vectors": {}, "sparse_vectors": {"s": {"modifier": "idf"}}, "optimizers_config": {"indexing_threshold": 8}}),
    );
    let mut rng = Rng(common::seed());
    let mut model = Model {
        points: BTreeMap::new(),
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(200) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&id| {
                let v = random_sparse(&mut rng);
                let point = json!({"id": id, "vector": {"s": json_sparse(&v)}});
                model.points.insert(id, Some(v));
                point
            })
            .collect();
        s.upsert("sp", json!(points));
    }
    let info = s.wait_green("sp");
    // 8 KB of sparse vectors is 64 points a segment: a dozen sealed and merged, not one per
    // write or a stream of empty ones.
    let segments = info["segments_count"].as_u64().unwrap();
    assert!((1..=16).contains(&segments), "{info}");
    assert_eq!(info["points_count"], N);
    for _ in 0..10 {
        let q = random_sparse(&mut rng);
        let want = model.ranking(&q, true, |_| true);
        let got = query(&s, "s", &q, None, 5);
        let scores = |r: &[(u64, f32)]| r.iter().map(|x| x.1).collect::<Vec<_>>();
        let (g, w) = (scores(&got), scores(&want[..5.min(want.len())]));
        assert!(
            g.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-4),
            "{got:?} {want:?}"
        );
    }
}
