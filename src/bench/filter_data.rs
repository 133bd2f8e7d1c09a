//! The data `vecdb bench-filter` searches: the dataset's vectors with a synthetic payload drawn
//! independently of them, the filters, and the one-segment snapshot with payload indexes and
//! tenant graphs (see [`super::filtered`]).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::dataset::Dataset;
use super::filtered::Args;
use crate::bitset::Bitset;
use crate::collection::config::{CollectionConfig, CreateCollection};
use crate::collection::segment::{IndexedSegment, SegmentData};
use crate::collection::snapshot::{Loc, SegmentView, Snapshot};
use crate::collection::tenants::{self, TenantGraphs};
use crate::filter::index::{FieldType, IndexSpec, PayloadSchema, SegmentIndexes};
use crate::filter::Filter;
use crate::index::Graph;
use crate::point_id::PointId;

/// splitmix64: a fixed, well-mixed stream, so payloads are the same on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub fn payload(row: u64) -> Map<String, Value> {
    let r = mix(row);
    let value = json!({
        "cat": format!("c{}", r % 100),
        "n": (r >> 8) % 1_000_000,
        "flag": (r >> 40) & 1 == 1,
        "tenant": tenant((r >> 44) % 1000),
    });
    value.as_object().cloned().unwrap_or_default()
}

/// The tenant of a point drawn uniformly in 0..1000: half `t0`, 30% `t1`, 1% each of the rest.
fn tenant(u: u64) -> String {
    match u {
        0..500 => "t0".into(),
        500..800 => "t1".into(),
        _ => format!("t{}", 2 + (u - 800) / 10),
    }
}

/// (label, filter) pairs at about 50%, 30%, 10%, 1% and 0.1% of the points.
pub fn filters() -> Vec<(&'static str, Filter)> {
    let cats: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let cases = [
        (
            "50% flag=true",
            json!({"must": [{"key": "flag", "match": {"value": true}}]}),
        ),
        (
            "50% tenant=t0",
            json!({"must": [{"key": "tenant", "match": {"value": "t0"}}]}),
        ),
        (
            "30% tenant=t1",
            json!({"must": [{"key": "tenant", "match": {"value": "t1"}}]}),
        ),
        (
            "30% n<300000",
            json!({"must": [{"key": "n", "range": {"lt": 300_000}}]}),
        ),
        (
            "10% cat in 10 values",
            json!({"must": [{"key": "cat", "match": {"any": cats}}]}),
        ),
        (
            "1% cat=c7",
            json!({"must": [{"key": "cat", "match": {"value": "c7"}}]}),
        ),
        (
            "0.1% n<1000",
            json!({"must": [{"key": "n", "range": {"lt": 1000}}]}),
        ),
    ];
    cases
        .into_iter()
        .map(|(label, f)| {
            (
                label,
                Filter::from_json(&f).expect("benchmark filters parse"),
            )
        })
        .collect()
}

/// A one-segment snapshot of the dataset with payload indexes on `cat`, `n`, `flag` and
/// `tenant`, and the tenant graphs of `tenant`.
pub fn snapshot(
    ds: &Dataset,
    graph: Graph,
    payloads: &[Map<String, Value>],
    args: &Args,
) -> anyhow::Result<Snapshot> {
    let n = ds.base.rows;
    let req: CreateCollection = serde_json::from_value(json!({
        "vectors": {"size": ds.base.cols, "distance": "Cosine"},
        "hnsw_config": {"m": args.build.m, "ef_construct": args.build.ef_construct},
    }))?;
    let defaults = crate::config::Config::defaults().collection_defaults;
    let config = CollectionConfig::from_request(req, &defaults, crate::config::SyncPolicy::Os, 0)
        .map_err(anyhow::Error::msg)?;
    let spaces: Arc<[_]> = config.spaces().into();
    let mut segment = IndexedSegment {
        ids: (0..n as u64).map(PointId::Num).collect(),
        versions: vec![1; n],
        payloads: payloads.iter().map(|p| Arc::new(p.clone())).collect(),
        vectors: vec![crate::index::typed::Elements::F32(ds.base.data.clone())],
        ends: vec![None],
        dims: Arc::from([ds.base.cols]),
        names: Arc::from([String::new()]),
        sparse_names: Arc::from([]),
        sparse: Vec::new(),
        inverted: Vec::new(),
        absent: vec![None],
        graphs: vec![graph],
        quantized: vec![None],
        signs: Vec::new(),
    };
    segment.quantize(&spaces);
    let data = Arc::new(SegmentData::Indexed(segment));
    let schema: PayloadSchema = [
        ("cat", FieldType::Keyword),
        ("n", FieldType::Integer),
        ("flag", FieldType::Bool),
        ("tenant", FieldType::Keyword),
    ]
    .into_iter()
    .map(|(name, t)| {
        let tenant = json!({"is_tenant": true}).as_object().cloned();
        let spec = IndexSpec {
            data_type: t,
            params: (name == "tenant").then_some(tenant).flatten(),
        };
        (name.to_string(), spec)
    })
    .collect();
    let started = Instant::now();
    let indexes = crate::collection::state::index_segment(&data, &schema);
    println!(
        "payload indexes on cat, n, flag, tenant built in {:.2} s (sign codes in their orders: {:.1} MiB)",
        started.elapsed().as_secs_f64(),
        indexes.arranged_bytes() as f64 / (1 << 20) as f64
    );
    // Reading them back from their file's bytes, as a restart does, against building them
    // from payloads (codes not arranged in either).
    let payload = |o: u32| &**data.payload(o);
    let started = Instant::now();
    let built = SegmentIndexes::build(&schema, n, payload);
    let build_secs = started.elapsed().as_secs_f64();
    let bytes = built.encode();
    let started = Instant::now();
    let restored =
        SegmentIndexes::restore(&bytes, &schema, n, payload).map_err(anyhow::Error::msg)?;
    println!(
        "without codes: built in {build_secs:.3} s, restored from their {:.1} MiB of bytes in {:.3} s ({} fields rebuilt)",
        bytes.len() as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64(),
        restored.rebuilt.len()
    );
    let tenants = tenant_graphs(&data, &indexes, &schema, &config, args)?;
    let locations = (0..n as u64)
        .map(|i| {
            (
                PointId::Num(i),
                Loc {
                    segment: 1,
                    offset: i as u32,
                },
            )
        })
        .collect();
    Ok(Snapshot {
        generation: 1,
        lsn: 1,
        config: Arc::new(config),
        spaces,
        schema: Arc::new(schema),
        segments: vec![SegmentView {
            id: 1,
            data,
            deleted: Arc::new(Bitset::default()),
            tenants: Arc::new(tenants),
            indexes: Some(Arc::new(indexes)),
        }],
        locations,
        optimizing: false,
    })
}

/// The graphs of the tenant field's large values, read from `<graph>.tenants` when that holds
/// them for this graph, built (and kept there) otherwise.
fn tenant_graphs(
    data: &SegmentData,
    indexes: &SegmentIndexes,
    schema: &PayloadSchema,
    config: &CollectionConfig,
    args: &Args,
) -> anyhow::Result<TenantGraphs> {
    let SegmentData::Indexed(segment) = data else {
        anyhow::bail!("the benchmark segment is indexed");
    };
    let path = args.graph.as_ref().map(|p| p.with_extension("tenants"));
    let cached = path.as_ref().and_then(|p| std::fs::read(p).ok());
    let started = Instant::now();
    let graphs = match cached.map(|b| tenants::decode(&b, data.len(), 1)) {
        Some(Ok(graphs)) if !graphs.missing(schema) => graphs,
        _ => {
            let spaces = config.spaces();
            let inputs = tenants::Inputs {
                segment,
                deleted: &Bitset::default(),
                indexes,
                schema,
                spaces: &spaces,
                min_points: config.full_scan_threshold_points(&spaces[0]),
                seed: 42,
            };
            let graphs = tenants::build(&inputs, &TenantGraphs::default());
            if let Some(path) = &path {
                std::fs::write(path, tenants::encode(&graphs))?;
            }
            graphs
        }
    };
    let sizes: Vec<String> = graphs
        .graphs
        .iter()
        .map(|g| format!("{}={}", g.value, g.members.len()))
        .collect();
    println!(
        "tenant graphs ({}) ready in {:.1} s, {:.1} MiB",
        sizes.join(", "),
        started.elapsed().as_secs_f64(),
        graphs.memory_bytes() as f64 / (1 << 20) as f64
    );
    Ok(graphs)
}

pub fn clone_view(s: &Snapshot) -> Snapshot {
    Snapshot {
        generation: s.generation,
        lsn: s.lsn,
        config: s.config.clone(),
        spaces: s.spaces.clone(),
        schema: s.schema.clone(),
        segments: s.segments.clone(),
        locations: s.locations.clone(),
        optimizing: s.optimizing,
    }
}
