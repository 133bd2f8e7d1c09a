//! Tenant graphs: which values get one, which filters find one, what a search over one
//! returns, and their file bytes.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::config::{CollectionConfig, CreateCollection, VectorSpace};
use super::segment::IndexedSegment;
use super::tenants::{self, Inputs, TenantGraphs};
use crate::bitset::Bitset;
use crate::config::{Config, SyncPolicy};
use crate::filter::index::{IndexSpec, PayloadSchema, SegmentIndexes};
use crate::filter::Filter;
use crate::index::hnsw::Accept;
use crate::index::typed::Elements;
use crate::index::{Metric, TopK};
use crate::point_id::PointId;

const DIM: usize = 16;
const N: usize = 1500;

/// `a` for 45% of the points, `b` for 30%, `c` for 20%, `d` for 2.5%; the other 2.5% have none.
fn tenant(i: usize) -> Option<&'static str> {
    match i % 20 {
        _ if i % 40 == 39 => None,
        0..9 => Some("a"),
        9..15 => Some("b"),
        15..19 => Some("c"),
        _ => Some("d"),
    }
}

fn vector(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn spaces() -> Vec<VectorSpace> {
    spaces_with_m(8)
}

fn spaces_with_m(m: usize) -> Vec<VectorSpace> {
    let req: CreateCollection = serde_json::from_value(json!({
        "vectors": {"size": DIM, "distance": "Euclid"},
        "hnsw_config": {"m": m, "ef_construct": 64},
    }))
    .unwrap();
    let defaults = Config::defaults().collection_defaults;
    let config = CollectionConfig::from_request(req, &defaults, SyncPolicy::Os, 0).unwrap();
    config.spaces()
}

fn segment() -> IndexedSegment {
    let payload = |i: usize| {
        let value = match tenant(i) {
            Some(t) => json!({"tenant": t}),
            None => json!({"other": 1}),
        };
        Arc::new(value.as_object().cloned().unwrap_or_default())
    };
    IndexedSegment {
        ids: (0..N as u64).map(PointId::Num).collect(),
        versions: vec![1; N],
        payloads: (0..N).map(payload).collect(),
        vectors: vec![Elements::F32((0..N).flat_map(vector).collect())],
        ends: vec![None],
        dims: Arc::from([DIM]),
        names: Arc::from([String::new()]),
        sparse_names: Arc::from([]),
        sparse: Vec::new(),
        inverted: Vec::new(),
        absent: vec![None],
        graphs: Vec::new(),
        quantized: vec![None],
        signs: vec![None],
    }
}

fn schema(params: Value) -> PayloadSchema {
    let spec = IndexSpec {
        data_type: crate::filter::index::FieldType::Keyword,
        params: params.as_object().cloned(),
    };
    [("tenant".to_string(), spec)].into_iter().collect()
}

fn tenant_schema() -> PayloadSchema {
    schema(json!({"is_tenant": true}))
}

fn indexes(segment: &IndexedSegment, schema: &PayloadSchema) -> SegmentIndexes {
    let payloads: Vec<&Map<String, Value>> = segment.payloads.iter().map(|p| &**p).collect();
    SegmentIndexes::build(schema, N, |o| payloads[o as usize])
}

fn build(segment: &IndexedSegment, deleted: &Bitset, schema: &PayloadSchema) -> TenantGraphs {
    let spaces = spaces();
    let inputs = Inputs {
        segment,
        deleted,
        indexes: &indexes(segment, schema),
        schema,
        spaces: &spaces,
        min_points: 100,
        seed: 7,
    };
    tenants::build(&inputs, &TenantGraphs::default())
}

/// The 10 of `members` nearest to `query`, by brute force.
fn exact_top(segment: &IndexedSegment, members: &[u32], query: &[f32]) -> Vec<u32> {
    let mut top = TopK::new(10);
    for &o in members {
        let row = &segment.floats(0)[o as usize * DIM..][..DIM];
        top.push(o, Metric::L2.distance(query, row));
    }
    top.into_sorted_vec().into_iter().map(|(o, _)| o).collect()
}

fn filter(v: Value) -> Filter {
    Filter::from_json(&v).unwrap()
}

#[test]
fn values_between_the_scan_threshold_and_most_of_the_segment_get_graphs() {
    let segment = segment();
    let mut deleted = Bitset::default();
    deleted.set(0);
    deleted.set(2);
    let graphs = build(&segment, &deleted, &tenant_schema());
    let values: Vec<&str> = graphs.graphs.iter().map(|g| g.value.as_str()).collect();
    // `d` (37 points) is under the 100 scored one by one.
    assert_eq!(values, ["a", "b", "c"]);
    for g in &graphs.graphs {
        let want: Vec<u32> = (0..N as u32)
            .filter(|&o| tenant(o as usize) == Some(g.value.as_str()) && !deleted.get(o as usize))
            .collect();
        assert_eq!(g.members, want, "{}", g.value);
        assert_eq!(g.spaces[0].len(), want.len());
    }
    assert_eq!(graphs.fields.len(), 1);
    assert!(!graphs.missing(&tenant_schema()));
    // A value holding most points gets none: the segment's graph serves it as well.
    let mut most = Bitset::default();
    for o in (0..N).filter(|&o| tenant(o) != Some("a")) {
        most.set(o);
    }
    let graphs = build(&segment, &most, &tenant_schema());
    assert!(graphs.graphs.is_empty(), "{graphs:?}");
    assert!(!graphs.missing(&tenant_schema()), "the field is done");
}

#[test]
fn only_a_must_match_of_one_value_finds_a_graph() {
    let graphs = build(&segment(), &Bitset::default(), &tenant_schema());
    let value = |f: Value| graphs.find(&filter(f)).map(|g| g.value.clone());
    let m = |v: &str| json!({"key": "tenant", "match": {"value": v}});
    assert_eq!(value(json!({"must": [m("b")]})), Some("b".into()));
    let range = json!({"key": "n", "range": {"lt": 3}});
    assert_eq!(value(json!({"must": [range, m("c")]})), Some("c".into()));
    // Two tenants at once match nothing; the smaller graph serves.
    assert_eq!(value(json!({"must": [m("a"), m("c")]})), Some("c".into()));
    assert_eq!(value(json!({"should": [m("b")]})), None);
    assert_eq!(value(json!({"must_not": [m("b")]})), None);
    assert_eq!(value(json!({"must": [m("d")]})), None);
    let any = json!({"key": "tenant", "match": {"any": ["b"]}});
    assert_eq!(value(json!({"must": [any]})), None);
    let other_key = json!({"key": "other", "match": {"value": "b"}});
    assert_eq!(value(json!({"must": [other_key]})), None);
}

#[test]
fn a_tenant_graph_search_finds_the_tenants_nearest() {
    let segment = segment();
    let graphs = build(&segment, &Bitset::default(), &tenant_schema());
    let b = &graphs.graphs[1];
    let floats = segment.floats(0);
    let rows = b.rows(&floats, DIM);
    let (mut found, mut total) = (0, 0);
    for q in 0..50 {
        let query = vector(N + q);
        let hits = b.spaces[0].search_picked(&rows, Metric::L2, &query, 10, 32, Accept::All);
        let got: Vec<u32> = hits
            .iter()
            .map(|&(node, _)| b.members[node as usize])
            .collect();
        assert!(got.iter().all(|&o| tenant(o as usize) == Some("b")));
        for (&(_, d), &o) in hits.iter().zip(&got) {
            let exact = Metric::L2.distance(&query, &segment.floats(0)[o as usize * DIM..][..DIM]);
            assert_eq!(d, exact);
        }
        let want = exact_top(&segment, &b.members, &query);
        found += got.iter().filter(|o| want.contains(o)).count();
        total += want.len();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "recall {recall}");
}

#[test]
fn graphs_of_fields_no_longer_tenant_fields_are_dropped() {
    let graphs = build(&segment(), &Bitset::default(), &tenant_schema());
    assert!(graphs.retain(&tenant_schema()).is_none(), "nothing to drop");
    for changed in [
        schema(json!({})),
        schema(json!({"is_tenant": true, "on_disk": true})),
        PayloadSchema::new(),
    ] {
        let kept = graphs.retain(&changed).expect("dropped");
        assert!(kept.graphs.is_empty() && kept.fields.is_empty());
        assert_eq!(
            kept.missing(&changed),
            changed.get("tenant").is_some_and(IndexSpec::is_tenant)
        );
    }
    // Kept graphs are shared, not copied.
    let empty = TenantGraphs::default();
    assert!(empty.missing(&tenant_schema()));
    let rebuilt = tenants::build(
        &Inputs {
            segment: &segment(),
            deleted: &Bitset::default(),
            indexes: &SegmentIndexes::default(),
            schema: &tenant_schema(),
            spaces: &spaces(),
            min_points: 100,
            seed: 7,
        },
        &graphs,
    );
    assert!(Arc::ptr_eq(&rebuilt.graphs[0], &graphs.graphs[0]));
}

#[test]
fn file_bytes_round_trip_and_damage_is_refused() {
    let graphs = build(&segment(), &Bitset::default(), &tenant_schema());
    let bytes = tenants::encode(&graphs);
    let back = tenants::decode(&bytes, N, 1).unwrap();
    assert_eq!(back.fields, graphs.fields);
    assert_eq!(tenants::encode(&back), bytes);
    let m = json!({"must": [{"key": "tenant", "match": {"value": "b"}}]});
    assert_eq!(
        back.find(&filter(m)).map(|g| g.members.len()),
        Some(graphs.graphs[1].members.len())
    );
    // Too few points for the members, another number of spaces, a byte short or over.
    assert!(tenants::decode(&bytes, graphs.graphs[0].members.len(), 1).is_err());
    assert!(tenants::decode(&bytes, N, 2).is_err());
    assert!(tenants::decode(&bytes[..bytes.len() - 1], N, 1).is_err());
    let mut over = bytes.clone();
    over.push(0);
    assert!(tenants::decode(&over, N, 1).is_err());
    // Members out of order: the first two of the first graph swapped.
    let spec = serde_json::to_string(&graphs.fields[0].1).unwrap();
    let at = 4 + (4 + "tenant".len()) + (4 + spec.len()) + 4 + (4 + "tenant".len()) + (4 + 1) + 4;
    let members = &graphs.graphs[0].members;
    assert_eq!(bytes[at..at + 4], members[0].to_le_bytes());
    let mut swapped = bytes.clone();
    swapped[at..at + 4].copy_from_slice(&members[1].to_le_bytes());
    swapped[at + 4..at + 8].copy_from_slice(&members[0].to_le_bytes());
    assert!(tenants::decode(&swapped, N, 1).is_err());
}

#[test]
fn carried_graphs_are_extended_with_the_points_added() {
    // One build thread: insertion order, and so the graphs and the recall below, are then the
    // same in every run, whatever else the machine is doing.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(carried_graphs_are_extended);
}

fn carried_graphs_are_extended() {
    let segment = segment();
    let schema = tenant_schema();
    let indexes = indexes(&segment, &schema);
    // Graphs over the first 1000 offsets (one of them deleted), built with m = 4 where the
    // space now says 8: an extended graph keeps its links' capacity, a new one gets 8.
    let mut later = Bitset::default();
    for o in (1000..N).chain([3]) {
        later.set(o);
    }
    let (old_spaces, spaces) = (spaces_with_m(4), spaces());
    let inputs = |deleted, spaces| Inputs {
        segment: &segment,
        deleted,
        indexes: &indexes,
        schema: &schema,
        spaces,
        min_points: 250,
        seed: 7,
    };
    let old = tenants::build(&inputs(&later, &old_spaces), &TenantGraphs::default());
    let values: Vec<&str> = old.graphs.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(
        values,
        ["a", "b"],
        "c has 200 points below offset 1000, 300 in all"
    );
    let carried = old.carry(1000);
    assert!(carried
        .find(&filter(
            json!({"must": [{"key": "tenant", "match": {"value": "a"}}]})
        ))
        .is_none());
    assert!(carried.missing(&schema) && carried.usable() == 0);

    let mut deleted = Bitset::default();
    deleted.set(3);
    let grown = tenants::build(&inputs(&deleted, &spaces), &carried);
    assert!(!grown.missing(&schema));
    let values: Vec<&str> = grown.graphs.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(values, ["a", "b", "c"]);
    for (g, m) in grown.graphs.iter().zip([4, 4, 8]) {
        assert_eq!(g.spaces[0].m(), m, "{}", g.value);
        let want: Vec<u32> = (0..N as u32)
            .filter(|&o| tenant(o as usize) == Some(g.value.as_str()) && o != 3)
            .collect();
        assert_eq!(g.members, want, "{}", g.value);
        assert_eq!(g.spaces[0].len(), want.len());
    }
    // The extended graph finds the new points as well as the old.
    let a = &grown.graphs[0];
    let floats = segment.floats(0);
    let rows = a.rows(&floats, DIM);
    let (mut found, mut new) = (0, 0);
    for q in 0..50 {
        let query = vector(N + q);
        let hits = a.spaces[0].search_picked(&rows, Metric::L2, &query, 10, 32, Accept::All);
        let want = exact_top(&segment, &a.members, &query);
        let got: Vec<u32> = hits
            .iter()
            .map(|&(node, _)| a.members[node as usize])
            .collect();
        found += got.iter().filter(|o| want.contains(o)).count();
        new += got.iter().filter(|&&o| o >= 1000).count();
    }
    assert!(
        found as f64 / 500.0 >= 0.9,
        "recall {}",
        found as f64 / 500.0
    );
    assert!(new > 0, "no point added after the carried graphs was found");
}
