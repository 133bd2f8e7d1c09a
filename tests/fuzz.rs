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
use vecdb::collection::snapshot_file::SnapshotReader;
use vecdb::filter::Filter;
use vecdb::point_id::PointId;
use vecdb::storage::codec::{
    decode_point, decode_point_without_vectors, encode_point, record_version, StoredPoint,
};

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
    "text_any",
    "phrase",
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
    "2024-01-01T00:00:00Z",
    "2024-1-5 10:30 +01",
    "2024-01-01T00:00:00.123456789z",
    "9999-12-31T23:59:59-23:59",
    "quick brown fox",
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
        sparse: vec![vecdb::index::sparse::SparseVector::new(vec![7, 3], vec![0.5, 2.0]).unwrap()],
        payload: Arc::new(payload.as_object().unwrap().clone()),
    }
}

#[test]
fn point_record_codec() {
    let valid = encode_point(&sample_point(), &[]);
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
    let header = vecdb::collection::snapshot_file::Header {
        collection: "c".into(),
        config,
        payload_schema: Default::default(),
        lsn: 3,
        points: 2,
        written_by: "fuzz".into(),
    };
    let path = dir.path().join("s");
    let mut w = vecdb::collection::snapshot_file::SnapshotWriter::new(
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

/// Keys the index fuzz target indexes, and values of every kind an index reads.
const INDEXED_KEYS: &[&str] = &["a", "a.b", "a[]", "a[].b", "text"];

fn indexed_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        proptest::sample::select(
            &[
                "x",
                "y",
                "Quick fox",
                "00000000-0000-0000-0000-000000000000"
            ][..]
        )
        .prop_map(|s| Value::String(s.into())),
        proptest::sample::select(
            &[
                "2024-01-01",
                "2024-01-02T10:00:00+01:00",
                "2023-12-31 23:59"
            ][..]
        )
        .prop_map(|s| Value::String(s.into())),
        (-3i64..4).prop_map(Value::from),
        (-3.0f64..4.0).prop_map(|f| serde_json::json!((f * 2.0).round() / 2.0)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        (-5.0f64..5.0, -5.0f64..5.0)
            .prop_map(|(lat, lon)| serde_json::json!({"lat": lat, "lon": lon})),
    ];
    prop_oneof![
        scalar.clone(),
        prop::collection::vec(scalar.clone(), 0..3).prop_map(Value::Array),
        scalar.clone().prop_map(|v| serde_json::json!({"b": v})),
        prop::collection::vec(scalar.prop_map(|v| serde_json::json!({"b": v})), 0..3)
            .prop_map(Value::Array),
    ]
}

/// Payloads holding values at the indexed keys.
fn indexed_payload() -> impl Strategy<Value = Value> {
    let keys = proptest::sample::select(&["a", "text"][..]).prop_map(str::to_string);
    prop::collection::vec((keys, indexed_value()), 0..3)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// Filters of the conditions indexes answer, on the indexed keys, in every clause.
fn indexed_filter() -> impl Strategy<Value = Value> {
    use serde_json::json;
    let key = proptest::sample::select(INDEXED_KEYS);
    let check = prop_oneof![
        indexed_value().prop_map(|v| json!({"match": {"value": v}})),
        prop::collection::vec(
            prop_oneof![(-3i64..4).prop_map(Value::from), Just(json!("x"))],
            0..3
        )
        .prop_map(|a| json!({"match": {"any": a}})),
        prop::collection::vec(proptest::sample::select(&["x", "y"][..]), 0..3)
            .prop_map(|a| json!({"match": {"except": a}})),
        prop::collection::vec(-3i64..4, 0..2).prop_map(|a| json!({"match": {"except": a}})),
        (-3.0f64..4.0, 0.0f64..4.0).prop_map(|(lo, w)| json!({"range": {"gte": lo, "lt": lo + w}})),
        Just(json!({"range": {"gte": "2024-01-01T05:00:00Z"}})),
        Just(json!({"range": {"lt": "2024-01-02"}})),
        proptest::sample::select(&["quick", "fox quick", "quick fox", ""][..]).prop_flat_map(|t| {
            proptest::sample::select(&["text", "text_any", "phrase"][..])
                .prop_map(move |kind| json!({"match": {kind: t}}))
        }),
        (-5.0f64..5.0, -5.0f64..5.0, 0.0f64..800_000.0).prop_map(|(lat, lon, r)| {
            json!({"geo_radius": {"center": {"lat": lat, "lon": lon}, "radius": r}})
        }),
        Just(
            json!({"geo_bounding_box": {"top_left": {"lat": 3.0, "lon": -4.0}, "bottom_right": {"lat": -2.0, "lon": 1.0}}})
        ),
    ];
    let condition = (key, check).prop_map(|(k, mut c)| {
        c["key"] = json!(k);
        c
    });
    let clause = prop::collection::vec(condition, 0..3);
    (clause.clone(), clause.clone(), clause).prop_map(
        |(must, should, must_not)| json!({"must": must, "should": should, "must_not": must_not}),
    )
}

/// A generated point for filter evaluation: its offset is its id.
struct FuzzPoint<'a>(u32, &'a Map<String, Value>);

impl vecdb::filter::PointView for FuzzPoint<'_> {
    fn id(&self) -> PointId {
        PointId::Num(self.0 as u64)
    }
    fn payload(&self) -> Option<&Map<String, Value>> {
        Some(self.1)
    }
    fn has_vector(&self, name: &str) -> bool {
        name.is_empty()
    }
}

/// Payload indexes against evaluation: for generated filters and payloads, resolving a filter
/// through indexes of each type on the vocabulary's keys selects a superset of the points
/// evaluation matches, and exactly those when the resolution says it is exact.
#[test]
fn index_resolution_agrees_with_evaluation() {
    use vecdb::bitset::Bitset;
    use vecdb::filter::index::{FieldType, IndexSpec, Narrower, PayloadSchema, SegmentIndexes};
    use vecdb::filter::HasIdCondition;

    let strategy = (
        prop_oneof![json(), indexed_filter()],
        prop::collection::vec(prop_oneof![json(), indexed_payload()], 0..16),
    )
        .prop_map(|(filter, payloads)| {
            serde_json::to_vec(&Value::Array(vec![filter, Value::Array(payloads)])).unwrap()
        });
    let answered = std::sync::atomic::AtomicUsize::new(0);
    fuzz("filter_index", strategy, |bytes| {
        let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let [filter, Value::Array(payloads)] = parts.as_slice() else {
            return;
        };
        let Ok(filter) = Filter::from_json(filter) else {
            return;
        };
        let payloads: Vec<Map<String, Value>> = payloads
            .iter()
            .map(|p| p.as_object().cloned().unwrap_or_default())
            .collect();
        let len = payloads.len();
        let matching: Vec<u32> = (0..len as u32)
            .filter(|&o| filter.matches(&FuzzPoint(o, &payloads[o as usize])))
            .collect();
        let ids = |c: &HasIdCondition| {
            let mut out = Bitset::default();
            for o in 0..len {
                if c.has_id.contains(&PointId::Num(o as u64)) {
                    out.set(o);
                }
            }
            out
        };
        let kinds = [
            FieldType::Keyword,
            FieldType::Integer,
            FieldType::Float,
            FieldType::Bool,
            FieldType::Uuid,
            FieldType::Datetime,
            FieldType::Geo,
            FieldType::Text,
        ];
        for kind in kinds {
            let schema: PayloadSchema = INDEXED_KEYS
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        IndexSpec {
                            data_type: kind,
                            params: None,
                        },
                    )
                })
                .collect();
            let indexes = SegmentIndexes::build(&schema, len, |o| &payloads[o as usize]);
            let narrower = Narrower {
                indexes: &indexes,
                len,
                ids: &ids,
            };
            let got = narrower.candidates(&filter);
            let candidates: Vec<u32> = match &got.set {
                Some(set) => set.iter().filter(|&o| (o as usize) < len).collect(),
                None => (0..len as u32).collect(),
            };
            if got.set.is_some() {
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if got.exact {
                assert_eq!(candidates, matching, "{kind:?} index resolved inexactly");
            } else {
                assert!(
                    matching.iter().all(|o| candidates.contains(o)),
                    "{kind:?} index lost matching points"
                );
            }
        }
    });
    // Generated filters reach the indexes (not only conditions they cannot answer).
    let answered = answered.into_inner();
    eprintln!("filter_index: {answered} resolutions narrowed by indexes");
    assert!(answered > 0, "no generated filter was answered by an index");
}
