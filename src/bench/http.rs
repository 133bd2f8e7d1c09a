//! `vecdb bench-http`: drive a running server over HTTP (keep-alive, configurable concurrency):
//! upload a dataset, wait until it is indexed, then measure `/points/query` recall@10,
//! throughput and latency percentiles for several `hnsw_ef` values and for exact search.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::dataset::{recall, Dataset};

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:6333")]
    pub url: String,
    /// Folder with base/queries/ground truth (`.npy` or `.fvecs`/`.ivecs`).
    #[arg(long)]
    pub data: PathBuf,
    /// Collection to (re)create and query.
    #[arg(long, default_value = "bench")]
    pub collection: String,
    /// Skip the upload and query an existing collection.
    #[arg(long)]
    pub no_upload: bool,
    /// Points per upsert request.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Concurrent HTTP connections for upload and queries.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Queries to run per setting (at most the dataset's).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// `hnsw_ef` values to sweep.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// HNSW `m` of the created collection.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW `ef_construct` of the created collection.
    #[arg(long, default_value_t = 100)]
    pub ef_construct: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One measured setting.
struct Row {
    setting: String,
    recall: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

fn client() -> anyhow::Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(64)
        .build()?)
}

fn call(
    c: &reqwest::blocking::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let resp = c
        .request(method, url)
        .json(body)
        .send()
        .with_context(|| url.to_string())?;
    let status = resp.status();
    let value: Value = resp.json()?;
    if !status.is_success() {
        bail!("{url}: {status} {value}");
    }
    Ok(value["result"].clone())
}

/// Runs the benchmark and prints a table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Arc::new(Dataset::load(&args.data)?);
    println!(
        "dataset: {} base × {} dims, {} queries",
        ds.base.rows, ds.base.cols, ds.queries.rows
    );
    let c = client()?;
    let base = format!("{}/collections/{}", args.url, args.collection);
    let mut report = json!({"dataset": args.data, "base": ds.base.rows, "dims": ds.base.cols});
    if !args.no_upload {
        let _ = c.delete(&base).send();
        let body = json!({"vectors": {"size": ds.base.cols, "distance": "Cosine"}, "hnsw_config": {"m": args.m, "ef_construct": args.ef_construct}});
        call(&c, reqwest::Method::PUT, &base, &body)?;
        let (upload_secs, searchable_secs) = upload(&args, &ds, &base)?;
        let n = ds.base.rows as f64;
        println!("upload: {:.1} s ({:.0} points/s acknowledged with wait=true); searchable through HNSW (status green) after {:.1} s ({:.0} points/s)", upload_secs, n / upload_secs, searchable_secs, n / searchable_secs);
        report["upload_seconds"] = json!(upload_secs);
        report["searchable_seconds"] = json!(searchable_secs);
    }
    let mut rows = Vec::new();
    for ef in &args.ef {
        rows.push(measure(
            &args,
            &ds,
            &base,
            &format!("hnsw_ef={ef}"),
            json!({"hnsw_ef": ef}),
        )?);
    }
    rows.push(measure(&args, &ds, &base, "exact", json!({"exact": true}))?);
    println!("\n| setting | recall@10 | QPS (concurrency {}) | p50 ms | p99 ms | p99.9 ms |\n|---|---|---|---|---|---|", args.concurrency);
    for r in &rows {
        println!(
            "| {} | {:.4} | {:.0} | {:.2} | {:.2} | {:.2} |",
            r.setting, r.recall, r.qps, r.p50_ms, r.p99_ms, r.p999_ms
        );
    }
    report["results"] = rows
        .iter()
        .map(|r| json!({"setting": r.setting, "recall_at_10": r.recall, "qps": r.qps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "p999_ms": r.p999_ms}))
        .collect();
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// Uploads the base vectors in batches from `concurrency` connections; returns seconds until
/// every batch was acknowledged and until the collection reported green.
fn upload(args: &Args, ds: &Arc<Dataset>, base: &str) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (ds, next, url, batch) = (ds.clone(), next.clone(), format!("{base}/points?wait=true"), args.batch.max(1));
            std::thread::spawn(move || -> anyhow::Result<()> {
                let c = client()?;
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= ds.base.rows {
                        return Ok(());
                    }
                    let to = (from + batch).min(ds.base.rows);
                    let vectors: Vec<&[f32]> = (from..to).map(|i| ds.base.row(i)).collect();
                    let body = json!({"batch": {"ids": (from..to).collect::<Vec<_>>(), "vectors": vectors}});
                    call(&c, reqwest::Method::PUT, &url, &body)?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("upload thread panicked"))??;
    }
    let uploaded = start.elapsed().as_secs_f64();
    let c = client()?;
    loop {
        let info = call(&c, reqwest::Method::GET, base, &Value::Null)?;
        if info["status"] == "green" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((uploaded, start.elapsed().as_secs_f64()))
}

/// Runs the queries with `params` from `concurrency` connections.
fn measure(
    args: &Args,
    ds: &Arc<Dataset>,
    base: &str,
    setting: &str,
    params: Value,
) -> anyhow::Result<Row> {
    let n = args.queries.min(ds.queries.rows);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (ds, next, url, params) = (
                ds.clone(),
                next.clone(),
                format!("{base}/points/query"),
                params.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<Vec<(f64, f64)>> {
                let c = client()?;
                let mut out = Vec::new();
                loop {
                    let q = next.fetch_add(1, Ordering::Relaxed);
                    if q >= n {
                        return Ok(out);
                    }
                    let body = json!({"query": ds.queries.row(q), "limit": 10, "params": params});
                    let t = Instant::now();
                    let result = call(&c, reqwest::Method::POST, &url, &body)?;
                    let latency = t.elapsed().as_secs_f64() * 1000.0;
                    let ids: Vec<u64> = result["points"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["id"].as_u64())
                        .collect();
                    out.push((latency, recall(&ids, ds.truth.row(q), 10)));
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(n);
    for w in workers {
        samples.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("query thread panicked"))??,
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = samples.iter().map(|s| s.0).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(Row {
        setting: setting.to_string(),
        recall: samples.iter().map(|s| s.1).sum::<f64>() / n as f64,
        qps: n as f64 / secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
    })
}
