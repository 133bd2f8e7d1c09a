//! `vecdb bench-filter`: filtered search through the real planner, in-process.
//!
//! The dataset's vectors get a synthetic payload drawn independently of them: `cat`, one of 100
//! keywords; `n`, an integer uniform in 0..1,000,000; `flag`, a fair boolean. Filters keeping
//! about 50%, 30%, 10%, 1% and 0.1% of the points are searched over one HNSW segment with
//! payload indexes on those fields (the plans `?explain=true` reports; where candidates are
//! too many to score one by one, each other plan forced too), and, on a sample of queries,
//! without indexes (reading payloads). Recall@10 is against an exact filtered scan computed
//! here by brute force; throughput is one query at a time on one thread, beside unfiltered
//! search on the same graph at the same `ef`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::dataset::Dataset;
use crate::collection::bitset::Bitset;
use crate::collection::config::{CollectionConfig, CreateCollection};
use crate::collection::plan::Plan;
use crate::collection::search::{search, SearchParams, Tuning};
use crate::collection::segment::{IndexedSegment, SegmentData};
use crate::collection::snapshot::{Loc, SegmentView, Snapshot};
use crate::filter::index::{FieldType, IndexSpec, PayloadSchema, SegmentIndexes};
use crate::filter::Filter;
use crate::index::hnsw::{Graph, HnswParams};
use crate::index::{Metric, TopK};
use crate::point_id::PointId;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub build: super::inproc::GraphArgs,
    /// `ef` values to sweep.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub ef: Vec<usize>,
    /// Queries run without payload indexes (reading payloads is slow), at the sweep's
    /// middle `ef`.
    #[arg(long, default_value_t = 100)]
    pub unindexed_queries: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the built graph in this file and reuse it on later runs with the same settings.
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Run only the filters whose label contains this (e.g. `10%`).
    #[arg(long, default_value = "")]
    pub only: String,
}

/// splitmix64: a fixed, well-mixed stream, so payloads are the same on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn payload(row: u64) -> Map<String, Value> {
    let r = mix(row);
    let value = json!({
        "cat": format!("c{}", r % 100),
        "n": (r >> 8) % 1_000_000,
        "flag": (r >> 40) & 1 == 1,
    });
    value.as_object().cloned().unwrap_or_default()
}

/// (label, filter) pairs at about 50%, 30%, 10%, 1% and 0.1% of the points.
fn filters() -> Vec<(&'static str, Filter)> {
    let cats: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let cases = [
        (
            "50% flag=true",
            json!({"must": [{"key": "flag", "match": {"value": true}}]}),
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

/// One measured setting.
struct Row {
    filter: &'static str,
    /// How the plan was chosen: "planner", or the plan forced.
    way: &'static str,
    kept: usize,
    indexed: bool,
    ef: usize,
    recall: f64,
    qps: f64,
    plans: Vec<(&'static str, usize)>,
}

/// Runs the benchmark and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::load(&args.build.data)?;
    let (dim, n) = (ds.base.cols, ds.base.rows);
    let started = Instant::now();
    let params = HnswParams {
        m: args.build.m,
        ef_construct: args.build.ef_construct,
        seed: 42,
    };
    let cached = args.graph.as_ref().and_then(|p| std::fs::read(p).ok());
    let graph = match cached.map(|bytes| Graph::read_from(&bytes)) {
        Some(Ok(g)) if g.len() == n && g.m() == args.build.m => g,
        _ => {
            let g = Graph::build(&ds.base.data, dim, Metric::Dot, params);
            if let Some(path) = &args.graph {
                let mut bytes = Vec::new();
                g.write_to(&mut bytes);
                std::fs::write(path, bytes)?;
            }
            g
        }
    };
    println!(
        "graph {n} × {dim} (m={}, ef_construct={}) ready in {:.1} s",
        args.build.m,
        args.build.ef_construct,
        started.elapsed().as_secs_f64()
    );
    let payloads: Vec<Map<String, Value>> = (0..n as u64).map(payload).collect();
    let indexed = snapshot(&ds, graph, &payloads, &args)?;
    let mut plain = clone_view(&indexed);
    plain.segments[0].indexes = None;
    let few = indexed
        .config
        .full_scan_threshold_points(&indexed.spaces[0]);
    let mut rows = Vec::new();
    let mut add = |filter: &'static str,
                   way: &'static str,
                   kept: usize,
                   indexed: bool,
                   sweep: Vec<Measured>| {
        for (ef, recall, qps, plans) in sweep {
            let row = Row {
                filter,
                way,
                kept,
                indexed,
                ef,
                recall,
                qps,
                plans,
            };
            rows.push(row);
        }
    };
    let all = Sweep {
        ds: &ds,
        efs: &args.ef,
        queries: ds.queries.rows,
        way: Way::PLANNER,
    };
    add(
        "none",
        "planner",
        n,
        true,
        all.run(&indexed, None, &exact_all(&ds)),
    );
    for (label, filter) in filters()
        .into_iter()
        .filter(|(l, _)| l.contains(&args.only))
    {
        let keep: Vec<u32> = (0..n as u32)
            .filter(|&o| filter.matches(&indexed.segments[0].point(o)))
            .collect();
        let truth = exact_filtered(&ds, &keep);
        // Beside the planner's choice, candidates too many to score one by one are searched
        // every other way: ranked by sign code, and in the graph by the filtered walk (routed
        // by code estimates, then scoring every node it passes exactly) and by two-hop
        // expansion.
        let ways: &[Way] = if keep.len() > few {
            &Way::ALL
        } else {
            &[Way::PLANNER]
        };
        for &way in ways {
            let sweep = Sweep { way, ..all };
            add(
                label,
                way.name,
                keep.len(),
                true,
                sweep.run(&indexed, Some(&filter), &truth),
            );
        }
        let mid = [args.ef[args.ef.len() / 2]];
        let queries = args.unindexed_queries.min(ds.queries.rows);
        let sweep = Sweep {
            efs: &mid,
            queries,
            ..all
        };
        add(
            label,
            "planner",
            keep.len(),
            false,
            sweep.run(&plain, Some(&filter), &truth),
        );
    }
    print_table(&rows, n);
    if let Some(path) = &args.out {
        let json: Vec<Value> = rows
            .iter()
            .map(|r| json!({"filter": r.filter, "way": r.way, "kept": r.kept, "indexed": r.indexed, "ef": r.ef, "recall_at_10": r.recall, "qps_one_thread": r.qps, "plans": r.plans.iter().map(|(p, c)| json!({"plan": p, "segments": c})).collect::<Vec<_>>()}))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

/// A one-segment snapshot of the dataset with payload indexes on `cat`, `n` and `flag`.
fn snapshot(
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
        vectors: vec![ds.base.data.clone()],
        dims: Arc::from([ds.base.cols]),
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
    ]
    .into_iter()
    .map(|(name, t)| {
        (
            name.to_string(),
            IndexSpec {
                data_type: t,
                params: None,
            },
        )
    })
    .collect();
    let started = Instant::now();
    let indexes = crate::collection::state::index_segment(&data, &schema);
    println!(
        "payload indexes on cat, n, flag built in {:.2} s (sign codes in their orders: {:.1} MiB)",
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
            indexes: Some(Arc::new(indexes)),
        }],
        locations,
        optimizing: false,
    })
}

fn clone_view(s: &Snapshot) -> Snapshot {
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

/// Exact top-10 rows per query among `keep`, by brute force on every core.
fn exact_filtered(ds: &Dataset, keep: &[u32]) -> Vec<Vec<u32>> {
    (0..ds.queries.rows)
        .into_par_iter()
        .map(|q| {
            let query = ds.queries.row(q);
            let mut top = TopK::new(10);
            for &o in keep {
                top.push(o, Metric::Dot.distance(query, ds.base.row(o as usize)));
            }
            top.into_sorted_vec().into_iter().map(|(o, _)| o).collect()
        })
        .collect()
}

/// The dataset's own ground truth (unfiltered).
fn exact_all(ds: &Dataset) -> Vec<Vec<u32>> {
    (0..ds.queries.rows)
        .map(|q| ds.truth.row(q)[..10].iter().map(|&i| i as u32).collect())
        .collect()
}

type Measured = (usize, f64, f64, Vec<(&'static str, usize)>);

/// A sweep over `ef`: the first `queries` queries at each, one thread.
#[derive(Clone, Copy)]
struct Sweep<'a> {
    ds: &'a Dataset,
    efs: &'a [usize],
    queries: usize,
    way: Way,
}

/// A way to pick the plan: the planner's, or one forced through [`Tuning`].
#[derive(Clone, Copy)]
struct Way {
    name: &'static str,
    /// See [`Tuning::two_hop_below`].
    two_hop_below: Option<f64>,
    /// See [`Tuning::code_scan_below`].
    code_scan_below: Option<f64>,
    /// See [`Tuning::exact_routing`].
    exact_routing: bool,
}

impl Way {
    const PLANNER: Way = Way {
        name: "planner",
        two_hop_below: None,
        code_scan_below: None,
        exact_routing: false,
    };
    const ALL: [Way; 5] = [
        Way::PLANNER,
        Way {
            name: "code scan",
            code_scan_below: Some(1.0),
            ..Way::PLANNER
        },
        Way {
            name: "walk",
            two_hop_below: Some(0.0),
            code_scan_below: Some(0.0),
            exact_routing: false,
        },
        Way {
            name: "walk, exact routing",
            two_hop_below: Some(0.0),
            code_scan_below: Some(0.0),
            exact_routing: true,
        },
        Way {
            name: "two-hop",
            two_hop_below: Some(1.0),
            code_scan_below: Some(0.0),
            exact_routing: false,
        },
    ];
}

impl Sweep<'_> {
    /// Recall@10 against `truth` and QPS at each `ef`, with the plans used.
    fn run(
        &self,
        snapshot: &Snapshot,
        filter: Option<&Filter>,
        truth: &[Vec<u32>],
    ) -> Vec<Measured> {
        self.efs
            .iter()
            .map(|&ef| {
                let mut plans = [0usize; Plan::ALL.len()];
                let mut recall = 0.0;
                let started = Instant::now();
                for (q, want) in truth.iter().enumerate().take(self.queries) {
                    let params = SearchParams {
                        space: 0,
                        vector: self.ds.queries.row(q),
                        limit: 10,
                        offset: 0,
                        filter,
                        tuning: Tuning {
                            ef: Some(ef),
                            two_hop_below: self.way.two_hop_below,
                            code_scan_below: self.way.code_scan_below,
                            exact_routing: self.way.exact_routing,
                            ..Tuning::default()
                        },
                        metric: Metric::Dot,
                    };
                    let found = search(snapshot, &params);
                    for p in &found.plans {
                        plans[p.plan as usize] += 1;
                    }
                    let hits = found
                        .hits
                        .iter()
                        .filter(|h| want.contains(&h.offset))
                        .count();
                    recall += hits as f64 / want.len().clamp(1, 10) as f64;
                }
                let qps = self.queries as f64 / started.elapsed().as_secs_f64();
                let used = Plan::ALL
                    .iter()
                    .filter(|p| plans[**p as usize] > 0)
                    .map(|p| (p.name(), plans[*p as usize]))
                    .collect();
                (ef, recall / self.queries as f64, qps, used)
            })
            .collect()
    }
}

fn print_table(rows: &[Row], n: usize) {
    println!("\n| filter | kept | indexes | way | plan | ef | recall@10 | QPS (1 thread) | × unfiltered at that recall |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let unfiltered: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.filter == "none")
        .map(|r| (r.recall, r.qps))
        .collect();
    // Unfiltered QPS at a recall, interpolated along its sweep; beyond its best recall, its
    // slowest point stands in (so the ratio flatters unfiltered search).
    let base = |recall: f64| {
        let above = unfiltered.iter().position(|p| p.0 >= recall);
        match above {
            Some(0) => unfiltered.first().map(|p| p.1),
            Some(i) => {
                let (a, b) = (unfiltered[i - 1], unfiltered[i]);
                Some(a.1 + (recall - a.0) / (b.0 - a.0) * (b.1 - a.1))
            }
            None => unfiltered.last().map(|p| p.1),
        }
    };
    for r in rows {
        let plans: Vec<String> = r.plans.iter().map(|(p, _)| p.to_string()).collect();
        let ratio = base(r.recall).map_or("-".into(), |b| format!("{:.2}", r.qps / b));
        println!(
            "| {} | {:.2}% | {} | {} | {} | {} | {:.4} | {:.0} | {} |",
            r.filter,
            100.0 * r.kept as f64 / n as f64,
            if r.indexed { "yes" } else { "no" },
            r.way,
            plans.join(", "),
            r.ef,
            r.recall,
            r.qps,
            ratio,
        );
    }
}
