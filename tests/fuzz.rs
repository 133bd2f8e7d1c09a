//! Fuzz targets for everything that parses untrusted bytes: the filter parser, the point and
//! batch JSON decoders, and the on-disk decoders (point records, snapshot files, HNSW graphs).
//! Each must answer every input with a value or an error, never a panic or a hang.
//!
//! Inputs are generated (proptest strategies that build JSON from the API's own vocabulary, and
//! mutations of valid encodings), not coverage-guided: cargo-fuzz needs a nightly compiler.
//! Every target first replays its corpus in `tests/corpus/<target>/` (seed inputs, plus any input
//! that ever failed, saved there by the run that found it), then generates for
//! `VECDB_FUZZ_SECS` seconds (default 2; long runs use 600 and more).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use vecdb::api::models::PointInsert;
use vecdb::filter::Filter;
use vecdb::point_id::PointId;
use vecdb::storage::codec::{
    decode_point, decode_point_without_vectors, encode_point, record_version, StoredPoint,
};
use vecdb::storage::snapshot_file::SnapshotReader;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target)
}

/// Runs `check` on every corpus file, then on generated inputs until the time budget is spent.
/// A panicking input is saved to the corpus before the test fails, so CI replays it for good.
fn fuzz(target: &str, strategy: impl Strategy<Value = Vec<u8>>, check: impl Fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&bytes)));
            assert!(
                outcome.is_ok(),
                "{target}: corpus input {} panics",
                entry.path().display()
            );
            replayed += 1;
        }
    }
    let secs = std::env::var("VECDB_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let seed = std::env::var("VECDB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &seed_bytes,
    );
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut generated = 0u64;
    while Instant::now() < deadline {
        let input = strategy.new_tree(&mut runner).expect("strategy").current();
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("crash-{:016x}", seed ^ generated));
            std::fs::write(&path, &input).unwrap();
            panic!("{target}: input saved to {} panics", path.display());
        }
        generated += 1;
    }
    eprintln!("{target}: {replayed} corpus inputs replayed, {generated} generated in {secs} s (seed {seed})");
}

/// With `VECDB_FUZZ_WRITE_SEEDS` set, stores a valid encoding as the target's seed input.
fn seed_corpus(target: &str, valid: &[u8]) {
    if std::env::var_os("VECDB_FUZZ_WRITE_SEEDS").is_some() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("valid.bin"), valid).unwrap();
    }
}

/// Words of the API, so generated JSON reaches deep into the parsers instead of failing at the
/// first unknown key.
const WORDS: &[&str] = &[
    "must",
    "should",
    "must_not",
    "min_should",
    "conditions",
    "min_count",
    "key",
    "match",
    "value",
    "any",
    "except",
    "text",
    "range",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_empty",
    "is_null",
    "has_id",
    "has_vector",
    "values_count",
    "nested",
    "geo_bounding_box",
    "geo_radius",
    "geo_polygon",
    "top_left",
    "bottom_right",
    "center",
    "radius",
    "exterior",
    "interiors",
    "lat",
    "lon",
    "filter",
    "field",
    "points",
    "batch",
    "ids",
    "vectors",
    "vector",
    "payloads",
    "payload",
    "id",
    "a",
    "a.b",
    "a[]",
    "a[].b",
    "",
    "[]",
    "x[0]",
    "00000000-0000-0000-0000-000000000000",
    "text",
    "image",
];

fn json() -> impl Strategy<Value = Value> {
    let word = proptest::sample::select(WORDS).prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..20).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word.clone().prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    json().prop_map(|v| serde_json::to_vec(&v).unwrap())
}

/// Valid encodings with a few bytes flipped, cut short or extended.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        0..=len + 8,
        any::<u8>(),
    )
        .prop_map(move |(flips, cut, fill)| {
            let mut bytes = valid.clone();
            for (i, b) in flips {
                bytes[i] ^= b;
            }
            bytes.resize(cut, fill);
            bytes
        })
}

#[test]
fn filter_parser() {
    fuzz("filter", json_bytes(), |bytes| {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            let _ = Filter::from_json(&value);
        }
    });
}

#[test]
fn point_and_batch_decoder() {
    fuzz("points", json_bytes(), |bytes| {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            let _ = PointInsert::from_json(value.clone());
            let _ = PointInsert::from_json(serde_json::json!({"points": [value.clone()]}));
            let _ = PointInsert::from_json(serde_json::json!({"batch": value}));
        }
    });
}

fn sample_point() -> StoredPoint {
    let payload = serde_json::json!({"a": [1, 2.5, "x"], "b": {"c": null}});
    StoredPoint {
        version: 42,
        vectors: vec![vec![0.5, -1.0, 3.25], vec![1.0; 5]],
        payload: Arc::new(payload.as_object().unwrap().clone()),
    }
}

#[test]
fn point_record_codec() {
    let valid = encode_point(&sample_point());
    seed_corpus("codec", &valid);
    let inputs = prop_oneof![mutated(valid), prop::collection::vec(any::<u8>(), 0..64)];
    fuzz("codec", inputs, |bytes| {
        let full = decode_point(bytes);
        let light = decode_point_without_vectors(bytes);
        let version = record_version(bytes);
        if let Ok(p) = &full {
            // Whatever decodes whole decodes the same without its vectors.
            assert_eq!(light.as_ref().map(|l| l.version).ok(), Some(p.version));
            assert_eq!(version.ok(), Some(p.version));
        }
    });
}

fn sample_snapshot() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let config: vecdb::collection::config::CreateCollection =
        serde_json::from_value(serde_json::json!({"vectors": {"size": 3, "distance": "Dot"}}))
            .unwrap();
    let config = vecdb::collection::config::CollectionConfig::from_request(
        config,
        &vecdb::config::Config::defaults().collection_defaults,
        vecdb::config::SyncPolicy::Os,
        0,
    )
    .unwrap();
    let header = vecdb::storage::snapshot_file::Header {
        collection: "c".into(),
        config,
        payload_schema: Default::default(),
        lsn: 3,
        points: 2,
        written_by: "fuzz".into(),
    };
    let path = dir.path().join("s");
    let mut w = vecdb::storage::snapshot_file::SnapshotWriter::new(
        std::fs::File::create(&path).unwrap(),
        &header,
    )
    .unwrap();
    let mut p = sample_point();
    p.vectors.truncate(1);
    w.point(PointId::Num(1), &p).unwrap();
    w.point(PointId::Num(2), &p).unwrap();
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn snapshot_file_reader() {
    let valid = sample_snapshot();
    seed_corpus("snapshot", &valid);
    fuzz("snapshot", mutated(valid), |bytes| {
        if let Ok((mut reader, _)) = SnapshotReader::open(bytes) {
            while let Ok(Some(_)) = reader.next_point() {}
        }
    });
}

#[test]
fn hnsw_graph_reader() {
    let vectors: Vec<f32> = (0..64 * 4).map(|i| (i % 17) as f32).collect();
    let params = vecdb::index::HnswParams {
        m: 4,
        ef_construct: 16,
        seed: 1,
    };
    let graph = vecdb::index::Graph::build(&vectors, 4, vecdb::index::Metric::L2, params);
    let mut valid = Vec::new();
    graph.write_to(&mut valid);
    seed_corpus("graph", &valid);
    fuzz("graph", mutated(valid), |bytes| {
        let _ = vecdb::index::Graph::read_from(bytes);
    });
}
