//! `vecdb bench-filter`: filtered search through the real planner, in-process.
//!
//! The dataset's vectors get a synthetic payload drawn independently of them: `cat`, one of 100
//! keywords; `n`, an integer uniform in 0..1,000,000; `flag`, a fair boolean; `tenant`, `t0` for
//! half the points, `t1` for 30%, and one of `t2`..`t21` for 1% each. Filters keeping about
//! 50%, 30%, 10%, 1% and 0.1% of the points are searched over one HNSW segment with payload
//! indexes on those fields (`tenant` with `is_tenant`, so `t0` and `t1` get graphs of their
//! own; see [`super::filter_data`]): by the plans `?explain=true` reports and, where candidates
//! are too many to score one by one, by each other plan forced; on a sample of queries, also
//! without indexes (reading payloads). Recall@10 is against an exact filtered scan computed
//! here by brute force; throughput is one query at a time on one thread, against unfiltered
//! search on the same graph at the same recall, measured right before each filter's rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::dataset::Dataset;
use super::filter_data::{clone_view, filters, payload, snapshot};
use crate::collection::plan::Plan;
use crate::collection::search::{search, SearchParams, Tuning};
use crate::collection::snapshot::Snapshot;
use crate::filter::Filter;
use crate::index::hnsw::{Graph, HnswParams};
use crate::index::{Metric, TopK};

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
    /// Times each indexed setting is measured, keeping its best throughput.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

/// The `way` of the unfiltered rows measured beside each filter's.
const UNFILTERED: &str = "unfiltered";

/// Rows measured so far; a setting measured again (`--rounds`) keeps its best throughput, as
/// the machine's other load only ever slows a run down.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(
        &mut self,
        filter: &'static str,
        way: &'static str,
        kept: usize,
        indexed: bool,
        sweep: Vec<Measured>,
    ) {
        for (ef, recall, qps, plans) in sweep {
            let same =
                |r: &&mut Row| (r.filter, r.way, r.indexed, r.ef) == (filter, way, indexed, ef);
            match self.rows.iter_mut().find(same) {
                Some(row) => row.qps = row.qps.max(qps),
                None => self.rows.push(Row {
                    filter,
                    way,
                    kept,
                    indexed,
                    ef,
                    recall,
                    qps,
                    plans,
                }),
            }
        }
    }
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
    let mut untenanted = clone_view(&indexed);
    untenanted.segments[0].tenants = Arc::default();
    let few = indexed
        .config
        .full_scan_threshold_points(&indexed.spaces[0]);
    let all = Sweep {
        ds: &ds,
        efs: &args.ef,
        queries: ds.queries.rows,
        way: Way::PLANNER,
    };
    let unfiltered_truth = exact_all(&ds);
    let unfiltered = || all.run(&indexed, None, &unfiltered_truth);
    let mut table = Table::default();
    table.add("none", "planner", n, true, unfiltered());
    let cases: Vec<(&str, Filter, usize, Vec<Vec<u32>>)> = filters()
        .into_iter()
        .filter(|(l, _)| l.contains(&args.only))
        .map(|(label, filter)| {
            let keep: Vec<u32> = (0..n as u32)
                .filter(|&o| filter.matches(&indexed.segments[0].point(o)))
                .collect();
            let truth = exact_filtered(&ds, &keep);
            (label, filter, keep.len(), truth)
        })
        .collect();
    for round in 0..args.rounds.max(1) {
        for (label, filter, kept, truth) in &cases {
            let (label, kept) = (*label, *kept);
            // Each filter's rows are compared with unfiltered search measured right before
            // them: the machine's speed drifts over a run.
            table.add(label, UNFILTERED, n, true, unfiltered());
            // Beside the planner's choice, candidates too many to score one by one are
            // searched every other way: ranked by sign code, and in the graph by the filtered
            // walk (routed by code estimates, then scoring every node it passes exactly) and
            // by two-hop expansion.
            let ways: &[Way] = if kept > few {
                &Way::ALL
            } else {
                &[Way::PLANNER]
            };
            for &way in ways {
                let sweep = Sweep { way, ..all };
                let measured = sweep.run(&indexed, Some(filter), truth);
                table.add(label, way.name, kept, true, measured);
            }
            // A tenant's filter also walks the segment's graph, as it would without its own.
            if indexed.segments[0].tenants.find(filter).is_some() {
                let sweep = Sweep {
                    way: Way::WALK,
                    ..all
                };
                let measured = sweep.run(&untenanted, Some(filter), truth);
                table.add(label, "segment graph walk", kept, true, measured);
            }
            if round > 0 {
                continue;
            }
            let mid = [args.ef[args.ef.len() / 2]];
            let queries = args.unindexed_queries.min(ds.queries.rows);
            let sweep = Sweep {
                efs: &mid,
                queries,
                ..all
            };
            table.add(
                label,
                "planner",
                kept,
                false,
                sweep.run(&plain, Some(filter), truth),
            );
        }
    }
    let rows = table.rows;
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
    /// The filtered walk routed by code estimates.
    const WALK: Way = Way {
        name: "walk",
        two_hop_below: Some(0.0),
        code_scan_below: Some(0.0),
        exact_routing: false,
    };
    const ALL: [Way; 5] = [
        Way::PLANNER,
        Way {
            name: "code scan",
            code_scan_below: Some(1.0),
            ..Way::PLANNER
        },
        Way::WALK,
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
    // Unfiltered QPS at a recall, interpolated along the sweep measured beside the filter's;
    // beyond its best recall, its slowest point stands in (so the ratio flatters unfiltered
    // search).
    let base = |filter: &str, recall: f64| {
        let unfiltered: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.filter == filter && (r.way == UNFILTERED || filter == "none"))
            .map(|r| (r.recall, r.qps))
            .collect();
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
        let ratio = base(r.filter, r.recall).map_or("-".into(), |b| format!("{:.2}", r.qps / b));
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
