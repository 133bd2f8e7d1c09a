//! `vecdb bench`: the index in-process, as hnswlib or FAISS would be used. Builds the HNSW graph
//! with a given thread count and parameters, then sweeps `ef` and measures recall@10 and
//! queries/second one query at a time on one thread (as a server answers one request) and with
//! every core, plus build time, peak RSS and bytes per vector.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use super::dataset::{recall, Dataset};
use crate::index::hnsw::{Graph, HnswParams};
use crate::index::quant::Quantized;
use crate::index::Metric;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub graph: GraphArgs,
    /// Build threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `ef` values to sweep.
    #[arg(long, value_delimiter = ',', default_value = "10,16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw recall@10 against single-thread QPS as SVG here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// A `peers.json` from shared/bench/peers.py whose curves go on the plot too.
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// Also measure int8 scalar quantization (traversal over codes, rescoring with floats).
    #[arg(long)]
    pub int8: bool,
    /// Central fraction of components the int8 range covers (Qdrant's `quantile`).
    #[arg(long, default_value_t = 0.99)]
    pub quantile: f32,
}

/// The dataset and the graph to build on it, shared by the in-process benchmarks.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Folder with base/queries/ground truth (`.npy` or `.fvecs`/`.ivecs`).
    #[arg(long)]
    pub data: PathBuf,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Beam width while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construct: usize,
}

/// Peak and current resident memory of this process, in bytes (Linux `/proc`).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Recall and QPS of one `ef` setting.
struct Point {
    ef: usize,
    recall: f64,
    qps_one: f64,
    qps_all: f64,
}

/// QPS at a recall target, interpolated linearly between the sweep's points (None if never reached).
fn qps_at(points: &[Point], target: f64, qps: impl Fn(&Point) -> f64) -> Option<f64> {
    let above = points.iter().position(|p| p.recall >= target)?;
    if above == 0 {
        return Some(qps(&points[0]));
    }
    let (a, b) = (&points[above - 1], &points[above]);
    let t = (target - a.recall) / (b.recall - a.recall);
    Some(qps(a) + t * (qps(b) - qps(a)))
}

/// Runs the benchmark and prints a table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::load(&args.graph.data)?;
    let (dim, n) = (ds.base.cols, ds.base.rows);
    let (_, rss_loaded) = rss();
    let threads = if args.threads == 0 {
        rayon::current_num_threads()
    } else {
        args.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let params = HnswParams {
        m: args.graph.m,
        ef_construct: args.graph.ef_construct,
        seed: 42,
    };
    let started = Instant::now();
    let graph = pool.install(|| Graph::build(&ds.base.data, dim, Metric::Dot, params));
    let build_secs = started.elapsed().as_secs_f64();
    let (peak, rss_built) = rss();
    let graph_bytes = graph.memory_bytes() as f64;
    let vector_bytes = (n * dim * 4) as f64;
    println!(
        "build: {n} × {dim}, m={}, ef_construct={}, {threads} threads: {build_secs:.1} s ({:.0} vectors/s); peak RSS {:.0} MB; index {:.1} MB = {:.0} bytes/vector (vectors {:.0} + graph {:.0}); RSS growth while building {:.0} bytes/vector",
        args.graph.m, args.graph.ef_construct, n as f64 / build_secs, peak as f64 / 1e6,
        (graph_bytes + vector_bytes) / 1e6, (graph_bytes + vector_bytes) / n as f64,
        vector_bytes / n as f64, graph_bytes / n as f64,
        rss_built.saturating_sub(rss_loaded) as f64 / n as f64,
    );
    // Recall@10 of query q at beam width ef, over float32 rows or over int8 codes.
    let search = |codes: Option<&Quantized>, q: usize, ef: usize| -> f64 {
        let (base, query) = (&ds.base.data, ds.queries.row(q));
        let found = match codes {
            Some(c) => graph.search_quantized(
                c,
                Some(&|o: u32| {
                    let row = &base[o as usize * dim..(o as usize + 1) * dim];
                    Metric::Dot.distance(query, row)
                }),
                query,
                10,
                ef,
                crate::index::hnsw::Accept::All,
            ),
            None => graph.search(
                base,
                dim,
                Metric::Dot,
                query,
                10,
                ef,
                crate::index::hnsw::Accept::All,
            ),
        };
        recall_of(&ds, q, &found)
    };
    let mut report = json!({
        "n": n, "dim": dim, "m": args.graph.m, "ef_construct": args.graph.ef_construct, "threads": threads,
        "build_seconds": build_secs, "peak_rss_bytes": peak,
        "index_bytes_per_vector": (graph_bytes + vector_bytes) / n as f64,
    });
    println!("\nfloat32 vectors:");
    let points = sweep(&args, &pool, ds.queries.rows, |q, ef| search(None, q, ef));
    report["sweep"] = sweep_json(&points);
    let mut curves = vec![super::plot::Curve {
        name: "vecdb".into(),
        points: points.iter().map(|p| (p.recall, p.qps_one)).collect(),
    }];
    if args.int8 {
        let started = Instant::now();
        let codes =
            pool.install(|| Quantized::new(&ds.base.data, dim, Metric::Dot, Some(args.quantile)));
        let hot = (codes.memory_bytes() as f64 + graph_bytes) / n as f64;
        println!(
            "\nint8 scalar quantization (quantile {}): encoded in {:.2} s; hot memory {hot:.0} bytes/vector (codes {:.0} + graph {:.0}) against {:.0} with float32 vectors ({:.2}× fewer); float32 originals read only to rescore the ef candidates",
            args.quantile, started.elapsed().as_secs_f64(), codes.memory_bytes() as f64 / n as f64,
            graph_bytes / n as f64, (graph_bytes + vector_bytes) / n as f64,
            (graph_bytes + vector_bytes) / n as f64 / hot,
        );
        let quantized = sweep(&args, &pool, ds.queries.rows, |q, ef| {
            search(Some(&codes), q, ef)
        });
        report["int8"] = json!({"hot_bytes_per_vector": hot, "sweep": sweep_json(&quantized)});
        curves.push(super::plot::Curve {
            name: "vecdb int8".into(),
            points: quantized.iter().map(|p| (p.recall, p.qps_one)).collect(),
        });
    }
    if let Some(path) = &args.plot {
        if let Some(peers) = &args.peers {
            curves.extend(super::plot::peer_curves(peers)?);
        }
        let title = format!(
            "{n} × {dim}, m={}, ef_construct={}, one query at a time, one thread",
            args.graph.m, args.graph.ef_construct
        );
        std::fs::write(path, super::plot::svg(&title, &curves))?;
    }
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn recall_of(ds: &Dataset, q: usize, found: &[(u32, f32)]) -> f64 {
    let ids: Vec<u64> = found.iter().map(|(o, _)| *o as u64).collect();
    recall(&ids, ds.truth.row(q), 10)
}

/// Runs every query at every `ef`, one at a time on this thread and then spread over the pool;
/// prints the table and the QPS at recall 0.95 and 0.99.
fn sweep(
    args: &Args,
    pool: &rayon::ThreadPool,
    queries: usize,
    search: impl Fn(usize, usize) -> f64 + Sync,
) -> Vec<Point> {
    let threads = pool.current_num_threads();
    let mut points = Vec::new();
    for &ef in &args.ef {
        let t = Instant::now();
        let total: f64 = (0..queries).map(|q| search(q, ef)).sum();
        let qps_one = queries as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _: f64 = pool.install(|| (0..queries).into_par_iter().map(|q| search(q, ef)).sum());
        let qps_all = queries as f64 / t.elapsed().as_secs_f64();
        points.push(Point {
            ef,
            recall: total / queries as f64,
            qps_one,
            qps_all,
        });
    }
    println!("| ef | recall@10 | QPS 1 thread | QPS {threads} threads |\n|---|---|---|---|");
    for p in &points {
        println!(
            "| {} | {:.4} | {:.0} | {:.0} |",
            p.ef, p.recall, p.qps_one, p.qps_all
        );
    }
    let fmt = |v: Option<f64>| v.map_or("not reached".to_string(), |q| format!("{q:.0}"));
    for target in [0.95, 0.99] {
        println!(
            "QPS at recall@10 {target}: {} one thread, {} with {threads} threads",
            fmt(qps_at(&points, target, |p| p.qps_one)),
            fmt(qps_at(&points, target, |p| p.qps_all)),
        );
    }
    points
}

fn sweep_json(points: &[Point]) -> serde_json::Value {
    json!({
        "points": points.iter().map(|p| json!({"ef": p.ef, "recall_at_10": p.recall, "qps_one_thread": p.qps_one, "qps_all_threads": p.qps_all})).collect::<Vec<_>>(),
        "qps_at_0_95": [qps_at(points, 0.95, |p| p.qps_one), qps_at(points, 0.95, |p| p.qps_all)],
        "qps_at_0_99": [qps_at(points, 0.99, |p| p.qps_one), qps_at(points, 0.99, |p| p.qps_all)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_qps_at_a_recall_target() {
        let p = |recall, qps| Point {
            ef: 0,
            recall,
            qps_one: qps,
            qps_all: qps,
        };
        let sweep = [p(0.90, 1000.0), p(0.96, 400.0), p(0.99, 100.0)];
        let mid = qps_at(&sweep, 0.93, |p| p.qps_one).unwrap();
        assert!((mid - 700.0).abs() < 1e-6, "{mid}");
        assert_eq!(qps_at(&sweep, 0.85, |p| p.qps_one), Some(1000.0));
        assert_eq!(qps_at(&sweep, 0.995, |p| p.qps_one), None);
    }
}
