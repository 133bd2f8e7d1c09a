//! Int8 scalar quantization over HTTP: configuration in Qdrant's shape, searches over the codes
//! that rescore to the float scores, the `params.quantization` knobs, and codes rebuilt on restart.

mod common;

use common::{ids, seed, Rng, Server};
use serde_json::{json, Value};

const DIM: usize = 32;

/// Creates a quantized collection whose points all end up in HNSW segments.
fn quantized_collection(s: &Server, rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    s.create(
        "q",
        json!({
            "vectors": {"size": DIM, "distance": "Cosine"},
            "hnsw_config": {"m": 12, "ef_construct": 64, "full_scan_threshold": 0},
            "optimizers_config": {"indexing_threshold": 20},
            "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}
        }),
    );
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| rng.vector(DIM)).collect();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": vectors[i]}))
            .collect();
        s.upsert("q", json!(points));
    }
    s.wait_green("q");
    vectors
}

fn quantized_bytes(s: &Server) -> u64 {
    let t = s.ok("GET", "/telemetry", None);
    t["collections"][0]["quantized_memory_bytes"]
        .as_u64()
        .unwrap()
}

/// Recall@10 of quantized HNSW search against exact search, over `queries` random queries;
/// also checks that rescored scores are the exact float scores.
fn recall_against_exact(s: &Server, rng: &mut Rng, queries: usize, params: Value) -> f64 {
    let mut hits = 0;
    for _ in 0..queries {
        let q = rng.vector(DIM);
        let body = |p: &Value| json!({"query": q, "limit": 10, "params": p});
        let approx = s.ok("POST", "/collections/q/points/query", Some(body(&params)));
        let exact = s.ok(
            "POST",
            "/collections/q/points/query",
            Some(body(&json!({"exact": true}))),
        );
        let exact_scores: Vec<(u64, f64)> = exact["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_u64().unwrap(), p["score"].as_f64().unwrap()))
            .collect();
        for p in approx["points"].as_array().unwrap() {
            let id = p["id"].as_u64().unwrap();
            if let Some((_, score)) = exact_scores.iter().find(|(i, _)| *i == id) {
                hits += 1;
                if params["quantization"]["rescore"] != json!(false) {
                    let got = p["score"].as_f64().unwrap();
                    assert!(
                        (got - score).abs() < 1e-5,
                        "rescored {got} vs exact {score}"
                    );
                }
            }
        }
    }
    hits as f64 / (queries * 10) as f64
}

#[test]
fn quantized_collection_searches_over_codes_and_rescores() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    quantized_collection(&s, &mut rng, 3000);
    let info = s.ok("GET", "/collections/q", None);
    assert_eq!(
        info["config"]["quantization_config"],
        json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}})
    );
    // 3000 points × 32 one-byte codes (+ 4 bytes of correction per point), less the append
    // segment that is still below the indexing threshold.
    let bytes = quantized_bytes(&s);
    assert!(bytes >= 2000 * 36, "quantized bytes {bytes}");

    let rescored = recall_against_exact(&s, &mut rng, 30, json!({"hnsw_ef": 64}));
    assert!(rescored >= 0.9, "recall@10 with rescoring {rescored}");
    let raw = recall_against_exact(
        &s,
        &mut rng,
        30,
        json!({"hnsw_ef": 64, "quantization": {"rescore": false}}),
    );
    assert!(raw >= 0.6, "recall@10 without rescoring {raw}");
    let floats = recall_against_exact(
        &s,
        &mut rng,
        30,
        json!({"hnsw_ef": 64, "quantization": {"ignore": true, "oversampling": 2.0}}),
    );
    assert!(floats >= 0.9, "recall@10 ignoring the codes {floats}");
}

#[test]
fn codes_without_rescoring_give_approximate_scores() {
    let mut rng = Rng(seed());
    let (s, _dir) = Server::start();
    let vectors = quantized_collection(&s, &mut rng, 1500);
    // The point with the smallest largest component: the 0.99 quantile clips the outlying
    // components of some vectors, whose codes then estimate even their own score poorly.
    let peak = |v: &Vec<f32>| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let me = (0..vectors.len())
        .min_by(|&a, &b| peak(&vectors[a]).total_cmp(&peak(&vectors[b])))
        .unwrap();
    let q = vectors[me].clone();
    let ask = |quantization: Value| {
        s.ok(
            "POST",
            "/collections/q/points/query",
            Some(json!({"query": q, "limit": 5, "params": {"hnsw_ef": 64, "quantization": quantization}})),
        )
    };
    let rescored = ask(json!({"rescore": true}));
    let approximate = ask(json!({"rescore": false}));
    assert_eq!(ids(&rescored)[0], me as u64, "a stored vector finds itself");
    let exact_self = rescored["points"][0]["score"].as_f64().unwrap();
    assert!(
        (exact_self - 1.0).abs() < 1e-5,
        "cosine to itself {exact_self}"
    );
    // The int8 estimate of the same score is close but, with 32 rounded components, not exact.
    let approx_self = approximate["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == me)
        .map(|p| p["score"].as_f64().unwrap())
        .expect("the point itself is among the approximate results");
    assert!(
        (approx_self - 1.0).abs() < 0.05,
        "approximate {approx_self}"
    );
    assert!(
        approx_self != exact_self,
        "scores without rescoring come from the codes"
    );
}

#[test]
fn bad_quantization_settings_are_refused_and_change_nothing() {
    let (s, _dir) = Server::start();
    for (config, expected) in [
        (
            json!({"product": {"compression": "x16"}}),
            "product quantization is not supported",
        ),
        (
            json!({"binary": {}}),
            "binary quantization is not supported",
        ),
        (json!({"scalar": {"type": "int4"}}), "int4"),
        (
            json!({"scalar": {"type": "int8", "quantile": 0.1}}),
            "quantile must be between 0.5 and 1",
        ),
        (json!("int8"), "must be an object"),
    ] {
        let body =
            json!({"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": config});
        let (status, err) = s.call("PUT", "/collections/bad", Some(body));
        assert_eq!(status, 400, "{config}: {err}");
        let message = err["status"]["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{config}: {message}");
    }
    let (status, _) = s.call("GET", "/collections/bad", None);
    assert_eq!(
        status, 404,
        "no collection was created by a refused request"
    );

    s.create("p", json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let patch = json!({"quantization_config": {"scalar": {"type": "int8"}}});
    let (status, err) = s.call("PATCH", "/collections/p", Some(patch));
    assert_eq!(status, 400, "{err}");
    let info = s.ok("GET", "/collections/p", None);
    assert_eq!(info["config"]["quantization_config"], Value::Null);
    let query = json!({"query": [1, 0, 0, 0], "params": {"quantization": {"oversampling": 0.5}}});
    let (status, err) = s.call("POST", "/collections/p/points/query", Some(query));
    assert_eq!(status, 400, "{err}");
    assert!(common::error(&err).contains("oversampling"));
}

#[test]
fn codes_are_rebuilt_when_the_server_restarts() {
    let mut rng = Rng(seed());
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    quantized_collection(&s, &mut rng, 1500);
    let before = quantized_bytes(&s);
    assert!(before > 0);
    assert!(s.terminate().success());
    let s = Server::start_in(dir.path(), &[]);
    s.wait_green("q");
    assert_eq!(quantized_bytes(&s), before);
    let recall = recall_against_exact(&s, &mut rng, 20, json!({"hnsw_ef": 64}));
    assert!(recall >= 0.9, "recall@10 after restart {recall}");
}
