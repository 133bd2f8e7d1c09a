//! Vector datatypes: `float16` and `uint8` spaces store their vectors narrow (a half and a
//! quarter of the bytes, seen in telemetry), read them back as converted, and score exact and
//! HNSW searches on the stored values, also after a restart reads the segment files back;
//! values a type cannot hold are refused and change nothing.

mod common;

use std::collections::BTreeMap;

use common::{Rng, Server};
use half::f16;
use serde_json::{json, Value};

const N: u64 = 1200;
const DIM: usize = 16;

/// A vector space of the test collection: name, distance, datatype.
const SPACES: [(&str, &str, &str); 4] = [
    ("h", "Cosine", "float16"),
    ("e", "Euclid", "float16"),
    ("b", "Dot", "uint8"),
    ("c", "Cosine", "uint8"),
];

fn half(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What space `s` stores for the vector `v` as sent.
fn stored(s: usize, v: &[f32]) -> Vec<f32> {
    match SPACES[s] {
        (_, "Cosine", "float16") => {
            let norm = dot(v, v).sqrt();
            v.iter().map(|x| half(x / norm)).collect()
        }
        (_, _, "float16") => v.iter().map(|&x| half(x)).collect(),
        _ => v.iter().map(|x| x.trunc()).collect(),
    }
}

/// The query vector `v` as space `s` compares it: as sent (normalised for a float16 cosine
/// space), not converted.
fn query_of(s: usize, v: &[f32]) -> Vec<f32> {
    match SPACES[s] {
        (_, "Cosine", "float16") => {
            let norm = dot(v, v).sqrt();
            v.iter().map(|x| x / norm).collect()
        }
        _ => v.to_vec(),
    }
}

/// Qdrant's score of stored vector `p` for query `q` (as compared) in space `s`.
fn score(s: usize, q: &[f32], p: &[f32]) -> f32 {
    match SPACES[s].1 {
        "Euclid" => q
            .iter()
            .zip(p)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt(),
        "Cosine" if SPACES[s].2 == "uint8" => dot(q, p) / (dot(q, q) * dot(p, p)).sqrt(),
        _ => dot(q, p),
    }
}

/// A random vector as sent to space `s`: floats in (-8, 8) for float16, bytes as whole
/// numbers plus a fraction the conversion drops for uint8.
fn sent(rng: &mut Rng, s: usize) -> Vec<f32> {
    match SPACES[s].2 {
        "float16" => (0..DIM).map(|_| 8.0 * rng.f32()).collect(),
        _ => (0..DIM)
            .map(|_| rng.below(256) as f32 + 0.5 * (rng.f32() + 1.0) * 0.99)
            .collect(),
    }
}

type Model = BTreeMap<u64, Vec<Vec<f32>>>;

fn vectors_of(point: &Value) -> Vec<Vec<f32>> {
    SPACES
        .iter()
        .map(|(name, ..)| serde_json::from_value(point["vector"][name].clone()).unwrap())
        .collect()
}

/// Every point reads back as stored; exact search scores as the model says, and HNSW search
/// finds most of the exact top 10 (returns its recall@10).
fn check(server: &Server, model: &Model, rng: &mut Rng) -> f64 {
    for id in [0, 1, N / 2, N - 1] {
        let got = server.ok("GET", &format!("/collections/t/points/{id}"), None);
        assert_eq!(
            vectors_of(&got),
            model[&id],
            "point {id} reads back as stored"
        );
    }
    let (mut found, mut wanted) = (0, 0);
    for i in 0..40 {
        let s = i % SPACES.len();
        let query = sent(rng, s);
        let q = query_of(s, &query);
        let higher = SPACES[s].1 != "Euclid";
        let mut want: Vec<(u64, f32)> = model
            .iter()
            .map(|(id, v)| (*id, score(s, &q, &v[s])))
            .collect();
        want.sort_by(|a, b| match higher {
            true => b.1.total_cmp(&a.1),
            false => a.1.total_cmp(&b.1),
        });
        let search = |exact: bool| -> Vec<(u64, f32)> {
            let body = json!({"query": query, "using": SPACES[s].0, "limit": 10, "params": {"exact": exact, "hnsw_ef": 64}});
            let found = server.ok("POST", "/collections/t/points/query", Some(body));
            common::scored(&found)
        };
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * b.abs().max(1.0);
        let exact = search(true);
        assert_eq!(exact.len(), 10);
        for (g, w) in exact.iter().zip(&want) {
            assert!(
                close(g.1, w.1),
                "space {s}: exact {exact:?}, want {:?}",
                &want[..10]
            );
        }
        let approximate = search(false);
        for (id, got) in &approximate {
            let model_score = score(s, &q, &model[id][s]);
            assert!(
                close(*got, model_score),
                "space {s}: point {id} scored {got}, model {model_score}"
            );
        }
        let truth: Vec<u64> = want.iter().take(10).map(|w| w.0).collect();
        found += approximate.iter().filter(|a| truth.contains(&a.0)).count();
        wanted += truth.len();
    }
    found as f64 / wanted as f64
}

fn telemetry(server: &Server) -> Value {
    let t = server.ok("GET", "/telemetry", None);
    let all = t["collections"].as_array().unwrap();
    all.iter().find(|c| c["name"] == "t").unwrap().clone()
}

#[test]
fn narrow_vectors_are_stored_read_back_and_searched_as_their_type() {
    let dir = common::temp_dir();
    let server = Server::start_in(dir.path(), &[]);
    let vectors: Value = SPACES
        .iter()
        .map(|(name, distance, datatype)| {
            (
                name.to_string(),
                json!({"size": DIM, "distance": distance, "datatype": datatype}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    server.create(
        "t",
        json!({
            "vectors": vectors,
            "hnsw_config": {"full_scan_threshold": 1},
            "optimizers_config": {"indexing_threshold": 1}
        }),
    );
    let info = server.ok("GET", "/collections/t", None);
    assert_eq!(
        info["config"]["params"]["vectors"]["e"]["datatype"],
        "float16"
    );
    assert_eq!(
        info["config"]["params"]["vectors"]["c"]["datatype"],
        "uint8"
    );

    let mut rng = Rng(common::seed());
    let mut model = Model::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(300) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&id| {
                let sent: Vec<Vec<f32>> = (0..SPACES.len()).map(|s| sent(&mut rng, s)).collect();
                model.insert(
                    id,
                    sent.iter().enumerate().map(|(s, v)| stored(s, v)).collect(),
                );
                let vector: serde_json::Map<String, Value> = SPACES
                    .iter()
                    .zip(&sent)
                    .map(|((name, ..), v)| (name.to_string(), json!(v)))
                    .collect();
                json!({"id": id, "vector": vector})
            })
            .collect();
        server.upsert("t", json!(points));
    }

    // 0.15 is kept as the nearest half-precision value, and reads back as that value's
    // shortest form.
    let mut point = vec![1.0f32; DIM];
    point[0] = 0.15;
    let body =
        json!({"points": [{"id": N, "vector": {"h": point, "e": point, "b": point, "c": point}}]});
    server.ok("PUT", "/collections/t/points?wait=true", Some(body));
    let got = server.ok("GET", &format!("/collections/t/points/{N}"), None);
    assert_eq!(got["vector"]["e"][0].as_f64().unwrap() as f32, half(0.15));
    assert_eq!(got["vector"]["b"][0], json!(0.0));
    server.ok(
        "POST",
        "/collections/t/points/delete?wait=true",
        Some(json!({"points": [N]})),
    );

    // Values the type cannot hold are refused, and nothing is written.
    for (space, value, says) in [
        ("b", 256.0, "uint8"),
        ("c", -1.0, "uint8"),
        ("e", 70000.0, "float16"),
    ] {
        let mut v = vec![1.0f32; DIM];
        v[3] = value;
        let mut vector: serde_json::Map<String, Value> = SPACES
            .iter()
            .map(|(n, ..)| (n.to_string(), json!(vec![1.0; DIM])))
            .collect();
        vector.insert(space.to_string(), json!(v));
        let body = json!({"points": [{"id": 0, "vector": vector}]});
        let (status, error) = server.call("PUT", "/collections/t/points?wait=true", Some(body));
        assert_eq!(status, 400, "{error}");
        assert!(common::error(&error).contains(says), "{error}");
    }
    let count = server.ok(
        "POST",
        "/collections/t/points/count",
        Some(json!({"exact": true})),
    );
    assert_eq!(count["count"], N);

    server.wait_green("t");
    let recall = check(&server, &model, &mut rng);
    assert!(recall >= 0.9, "HNSW recall@10 {recall}");
    // Indexed segments hold 2 + 2 + 1 + 1 bytes per dimension of each point.
    let t = telemetry(&server);
    let indexed_points = t["graph_nodes"].as_u64().unwrap() / SPACES.len() as u64;
    assert!(indexed_points > 0, "{t}");
    let bytes = t["indexed_vector_memory_bytes"].as_u64().unwrap();
    assert_eq!(bytes, indexed_points * DIM as u64 * 6, "{t}");

    // Segment files keep the narrow vectors.
    server.terminate();
    let server = Server::start_in(dir.path(), &[]);
    let recall = check(&server, &model, &mut rng);
    assert!(recall >= 0.9, "HNSW recall@10 after a restart {recall}");
    let t = telemetry(&server);
    assert_eq!(
        t["indexed_vector_memory_bytes"].as_u64().unwrap(),
        bytes,
        "{t}"
    );

    // A snapshot carries the narrow vectors: recovered as another collection, the points read
    // back the same and the configuration keeps the datatypes.
    let made = server.ok("POST", "/collections/t/snapshots?wait=true", None);
    let name = made["name"].as_str().unwrap();
    let url = format!("{}/collections/t/snapshots/{name}", server.base);
    let file = server.client.get(url).send().unwrap().bytes().unwrap();
    let path = dir.path().join("t.snapshot");
    std::fs::write(&path, &file).unwrap();
    let location = json!({"location": format!("file://{}", path.display())});
    server.ok("PUT", "/collections/copy/snapshots/recover", Some(location));
    let info = server.ok("GET", "/collections/copy", None);
    assert_eq!(
        info["config"]["params"]["vectors"]["h"]["datatype"],
        "float16"
    );
    for id in [0, 7, N / 3, N - 1] {
        let got = server.ok("GET", &format!("/collections/copy/points/{id}"), None);
        assert_eq!(vectors_of(&got), model[&id], "recovered point {id}");
    }
}
