//! `vecdb bench-hybrid`: hybrid retrieval through a running server. The dataset's base points
//! are uploaded with their dense embedding and a sparse BM25 vector of their text (document
//! weights as in `bench-sparse`, the collection's `modifier: idf` weighing queries), then
//! three query kinds are timed one after another with the same queries: the dense query
//! alone, the sparse query alone, and the hybrid query that fuses both prefetches with RRF.
//! Reported per kind: queries/second, p50/p99 latency, and recall@10 against the dataset's
//! dense ground truth (for the sparse and hybrid kinds that measures how far lexical matching
//! moves the answer from the embedding's neighbours, not a quality score).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::dataset::Dataset;
use super::http::{call, timed_queries};
use super::sparse::{documents, query_terms, read_texts};
use super::wire::Conn;
use crate::index::sparse::SparseVector;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:6333")]
    pub url: String,
    /// Folder with the unpacked dataset (base, queries, ground truth).
    #[arg(long)]
    pub data: PathBuf,
    /// The dataset's `texts.tsv.zst` (read through the `zstd` command).
    #[arg(long, default_value = "../shared/data/texts.tsv.zst")]
    pub texts: PathBuf,
    /// Collection to (re)create and query.
    #[arg(long, default_value = "hybrid")]
    pub collection: String,
    /// Skip the upload and query an existing collection.
    #[arg(long)]
    pub no_upload: bool,
    /// Concurrent connections for the upload and the queries.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// `hnsw_ef` of the dense queries (alone and as a prefetch).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Candidates each prefetch of the hybrid query gives the fusion.
    #[arg(long, default_value_t = 20)]
    pub prefetch: usize,
    /// Passes over the 1,000 queries per kind.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

/// The request body of query `q` of one kind.
type QueryBody<'a> = Box<dyn Fn(usize) -> Value + 'a>;

/// Points per upsert request.
const BATCH: usize = 256;

pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::load(&args.data)?;
    let (texts, query_texts) = read_texts(&args.texts)?;
    anyhow::ensure!(
        texts.len() == ds.base.rows && query_texts.len() == ds.queries.rows,
        "the texts ({} base, {} queries) do not match the dataset ({} base, {} queries)",
        texts.len(),
        query_texts.len(),
        ds.base.rows,
        ds.queries.rows
    );
    let (vocabulary, sparse) = documents(&texts);
    let base = format!("/collections/{}", args.collection);
    if !args.no_upload {
        let secs = upload(&args, &ds, &sparse, &base)?;
        println!(
            "uploaded and indexed {} points in {secs:.1} s",
            ds.base.rows
        );
    }
    let sparse_query = |text: &str| {
        let terms = query_terms(text, &vocabulary);
        json!({"indices": terms, "values": vec![1.0; terms.len()]})
    };
    let dense = |q: usize| json!({"query": ds.queries.row(q), "using": "dense", "limit": 10, "params": {"hnsw_ef": args.ef}});
    let kinds: [(&str, QueryBody); 3] = [
        ("dense", Box::new(dense)),
        (
            "sparse (BM25)",
            Box::new(
                |q: usize| json!({"query": sparse_query(&query_texts[q]), "using": "bm25", "limit": 10}),
            ),
        ),
        (
            "hybrid (RRF)",
            Box::new(|q: usize| {
                json!({
                    "prefetch": [
                        {"query": ds.queries.row(q), "using": "dense", "limit": args.prefetch, "params": {"hnsw_ef": args.ef}},
                        {"query": sparse_query(&query_texts[q]), "using": "bm25", "limit": args.prefetch},
                    ],
                    "query": {"fusion": "rrf"},
                    "limit": 10
                })
            }),
        ),
    ];
    println!(
        "{} queries x {} per kind, {} connection(s), hnsw_ef {}, prefetch {}",
        ds.queries.rows, args.repeat, args.concurrency, args.ef, args.prefetch
    );
    println!("| query | QPS | p50 ms | p99 ms | recall@10 vs dense truth |\n|---|---|---|---|---|");
    let mut dense_qps = 0.0;
    for (name, body) in &kinds {
        let bodies: Vec<Vec<u8>> = (0..ds.queries.rows)
            .map(|q| serde_json::to_vec(&body(q)))
            .collect::<Result<_, _>>()?;
        let (qps, p50, p99, recall) = measure(&args, &ds, &base, bodies)?;
        if dense_qps == 0.0 {
            dense_qps = qps;
        }
        println!(
            "| {name} | {qps:.0} ({:.2}x dense) | {p50:.2} | {p99:.2} | {recall:.3} |",
            qps / dense_qps
        );
    }
    Ok(())
}

/// Creates the collection, uploads every point, and waits until it is indexed; the seconds.
fn upload(args: &Args, ds: &Dataset, sparse: &[SparseVector], base: &str) -> anyhow::Result<f64> {
    let mut c = Conn::new(&args.url)?;
    let _ = c.call("DELETE", base, b"")?;
    let config = json!({
        "vectors": {"dense": {"size": ds.base.cols, "distance": "Cosine"}},
        "sparse_vectors": {"bm25": {"modifier": "idf"}},
        "hnsw_config": {"m": 16, "ef_construct": 100},
    });
    call(&mut c, "PUT", base, &serde_json::to_vec(&config)?)?;
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let path = format!("{base}/points?wait=true");
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let mut c = Conn::new(&args.url)?;
                    loop {
                        let from = next.fetch_add(BATCH, Ordering::Relaxed);
                        if from >= ds.base.rows {
                            return Ok(());
                        }
                        let points: Vec<Value> = (from..(from + BATCH).min(ds.base.rows))
                            .map(|i| json!({"id": i, "vector": {"dense": ds.base.row(i), "bm25": sparse[i]}}))
                            .collect();
                        call(&mut c, "PUT", &path, &serde_json::to_vec(&json!({"points": points}))?)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("upload thread panicked"))??;
        }
        Ok(())
    })?;
    loop {
        let info: Value = serde_json::from_slice(&call(&mut c, "GET", base, b"")?)?;
        if info["result"]["status"] == "green" {
            return Ok(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends every body `repeat` times from `concurrency` connections; QPS, p50 and p99 in ms,
/// and the mean recall@10 against the dense ground truth.
fn measure(
    args: &Args,
    ds: &Dataset,
    base: &str,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let n = bodies.len() * args.repeat.max(1);
    let path = format!("{base}/points/query");
    let start = Instant::now();
    let endpoint = super::http::Endpoint::Rest {
        url: &args.url,
        path: &path,
    };
    let samples = timed_queries(&endpoint, &bodies, n, args.concurrency, &ds.truth)?;
    let secs = start.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = samples.iter().map(|s| s.0).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let mean_recall = samples.iter().map(|s| s.1).sum::<f64>() / n as f64;
    Ok((n as f64 / secs, pct(0.5), pct(0.99), mean_recall))
}
