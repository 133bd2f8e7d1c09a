//! `vecdb bench-http`: drive a running server over HTTP (keep-alive, configurable concurrency):
//! upload a dataset, wait until it is indexed, then measure `/points/query` recall@10,
//! throughput and latency percentiles for several `hnsw_ef` values and for exact search, idle
//! and (with `--write-load`) while another connection upserts as fast as the server accepts.
//! With `--transport grpc` the upload and the queries go through Qdrant's gRPC API instead
//! (`Points/Upsert`, `Points/Query`), the same messages the official clients send.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dataset::{recall, Dataset, Matrix};
use super::grpc_wire::{frame, GrpcConn};
use super::wire::Conn;
use crate::grpc::proto;

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
    /// Passes over the query set per setting (longer runs steady the percentiles).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// `hnsw_ef` values to sweep.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// Skip the exact-search row (slow on large datasets).
    #[arg(long)]
    pub no_exact: bool,
    /// Measure every setting again while one more connection re-upserts dataset points (with
    /// their own vectors, so the ground truth holds) in batches, `wait=true`, back to back.
    #[arg(long)]
    pub write_load: bool,
    /// HNSW `m` of the created collection.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW `ef_construct` of the created collection.
    #[arg(long, default_value_t = 100)]
    pub ef_construct: usize,
    /// Bulk load as Qdrant recommends: create the collection with indexing off
    /// (`indexing_threshold: 0`, so writes never stall behind index builds), upload, then
    /// switch indexing on with PATCH and time until green.
    #[arg(long)]
    pub bulk: bool,
    /// Create the collection with int8 scalar quantization.
    #[arg(long)]
    pub int8: bool,
    /// Element type of the collection's vectors (`float32`, `float16`, `uint8`).
    #[arg(long, default_value = "float32")]
    pub datatype: String,
    /// Read consistency of the queries (`eventual`, `monotonic`, `read_your_writes`, `strong`;
    /// the server's default when absent): what each level costs in cluster mode.
    #[arg(long)]
    pub consistency: Option<String>,
    /// The API the upload and the queries go through; the collection is created and watched
    /// over REST either way, and the write load is REST.
    #[arg(long, value_enum, default_value = "rest")]
    pub transport: Transport,
    /// The server's gRPC API, for `--transport grpc`.
    #[arg(long, default_value = "http://127.0.0.1:6334")]
    pub grpc_url: String,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The API a benchmark speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON over HTTP/1.1 keep-alive connections.
    Rest,
    /// Protobuf over HTTP/2 (one connection per load thread).
    Grpc,
}

/// Where requests go: a REST path, or the gRPC port.
pub(super) enum Endpoint<'a> {
    Rest { url: &'a str, path: &'a str },
    Grpc { url: &'a str },
}

/// One load thread's connection.
enum Client<'a> {
    Rest(Conn, &'a str),
    Grpc(GrpcConn),
}

impl<'a> Endpoint<'a> {
    /// Where `args` sends its requests: the REST `path`, or the gRPC port.
    fn of(args: &'a Args, path: &'a str) -> Endpoint<'a> {
        match args.transport {
            Transport::Rest => Endpoint::Rest {
                url: &args.url,
                path,
            },
            Transport::Grpc => Endpoint::Grpc {
                url: &args.grpc_url,
            },
        }
    }

    fn connect(&self) -> anyhow::Result<Client<'_>> {
        Ok(match self {
            Endpoint::Rest { url, path } => Client::Rest(Conn::new(url)?, path),
            Endpoint::Grpc { url } => Client::Grpc(GrpcConn::new(url)?),
        })
    }
}

impl Client<'_> {
    /// Sends a query body (JSON or a framed `QueryPoints`); the ids it found.
    fn query(&mut self, body: &[u8]) -> anyhow::Result<Vec<u64>> {
        use prost::Message;
        match self {
            Client::Rest(c, path) => {
                let body = call(c, "POST", path, body)?;
                let resp: QueryResponse =
                    serde_json::from_slice(&body).context("query response")?;
                Ok(resp.result.points.iter().map(|h| h.id).collect())
            }
            Client::Grpc(c) => {
                let reply = c.call("/qdrant.Points/Query", body)?;
                let resp = proto::QueryResponse::decode(reply).context("query response")?;
                Ok(resp
                    .result
                    .iter()
                    .filter_map(|p| grpc_id(p.id.as_ref()?))
                    .collect())
            }
        }
    }

    /// Sends an upsert body (JSON or a framed `UpsertPoints`).
    fn upsert(&mut self, body: &[u8]) -> anyhow::Result<()> {
        match self {
            Client::Rest(c, path) => call(c, "PUT", path, body).map(drop),
            Client::Grpc(c) => c.call("/qdrant.Points/Upsert", body).map(drop),
        }
    }
}

fn grpc_id(id: &proto::PointId) -> Option<u64> {
    match id.point_id_options {
        Some(proto::point_id::PointIdOptions::Num(n)) => Some(n),
        _ => None,
    }
}

/// One measured setting.
#[derive(Serialize)]
struct Row {
    setting: String,
    write_load: bool,
    recall_at_10: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// Points per second the concurrent writer got acknowledged (write-load rows only).
    upserted_points_per_second: Option<f64>,
    /// Waits for a search slot and their total seconds during the row (from `/metrics`).
    search_slot_waits: u64,
    search_slot_wait_seconds: f64,
}

/// The part of a query response the benchmark reads.
#[derive(Deserialize)]
struct QueryResponse {
    result: QueryResult,
}

#[derive(Deserialize)]
struct QueryResult {
    points: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    id: u64,
}

/// Sends `body` and fails unless the server answers 2xx; returns the response body.
pub(super) fn call(c: &mut Conn, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (status, out) = c.call(method, path, body)?;
    if !(200..300).contains(&status) {
        bail!(
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    Ok(out)
}

/// Runs the benchmark and prints a table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Arc::new(Dataset::load(&args.data)?);
    println!(
        "dataset: {} base × {} dims, {} queries",
        ds.base.rows, ds.base.cols, ds.queries.rows
    );
    let mut c = Conn::new(&args.url)?;
    let base = format!("/collections/{}", args.collection);
    let mut report = json!({"dataset": args.data, "base": ds.base.rows, "dims": ds.base.cols, "transport": args.transport});
    if !args.no_upload {
        let _ = c.call("DELETE", &base, b"");
        let vectors =
            json!({"size": ds.base.cols, "distance": "Cosine", "datatype": args.datatype});
        let mut body = json!({"vectors": vectors, "hnsw_config": {"m": args.m, "ef_construct": args.ef_construct}});
        if args.int8 {
            body["quantization_config"] = json!({"scalar": {"type": "int8", "quantile": 0.99}});
        }
        if args.bulk {
            body["optimizers_config"] = json!({"indexing_threshold": 0});
        }
        call(&mut c, "PUT", &base, &serde_json::to_vec(&body)?)?;
        let (upload_secs, searchable_secs) = upload(&args, &ds, &base)?;
        let n = ds.base.rows as f64;
        println!("upload: {:.1} s ({:.0} points/s acknowledged with wait=true); searchable through HNSW (status green) after {:.1} s ({:.0} points/s)", upload_secs, n / upload_secs, searchable_secs, n / searchable_secs);
        report["upload_seconds"] = json!(upload_secs);
        report["searchable_seconds"] = json!(searchable_secs);
    }
    if args.transport == Transport::Grpc && args.consistency.is_some() {
        bail!("--consistency names vecdb's REST levels; gRPC reads use the server's default");
    }
    let mut settings: Vec<(String, Search)> = args
        .ef
        .iter()
        .map(|&ef| (format!("hnsw_ef={ef}"), Search::Ef(ef)))
        .collect();
    if !args.no_exact {
        settings.push(("exact".into(), Search::Exact));
    }
    let mut rows = Vec::new();
    for load in [false, true].into_iter().filter(|l| !l || args.write_load) {
        for (name, params) in &settings {
            rows.push(measure(&args, &ds, &base, name, *params, load)?);
        }
    }
    print_rows(&args, &rows);
    report["results"] = serde_json::to_value(&rows)?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn print_rows(args: &Args, rows: &[Row]) {
    println!("\ntransport: {:?}", args.transport);
    println!("\n| setting | write load | recall@10 | QPS (concurrency {}) | p50 ms | p99 ms | p99.9 ms | upserts/s | search-slot waits |\n|---|---|---|---|---|---|---|---|---|", args.concurrency);
    for r in rows {
        let upserts = r
            .upserted_points_per_second
            .map_or("-".to_string(), |p| format!("{p:.0}"));
        println!(
            "| {} | {} | {:.4} | {:.0} | {:.2} | {:.2} | {:.2} | {upserts} | {} ({:.3} s) |",
            r.setting,
            if r.write_load { "yes" } else { "no" },
            r.recall_at_10,
            r.qps,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.search_slot_waits,
            r.search_slot_wait_seconds
        );
    }
}

/// The upsert body for dataset rows `from..to` (ids are row numbers).
fn upsert_body(ds: &Dataset, from: usize, to: usize) -> anyhow::Result<Vec<u8>> {
    let vectors: Vec<&[f32]> = (from..to).map(|i| ds.base.row(i)).collect();
    let ids: Vec<usize> = (from..to).collect();
    Ok(serde_json::to_vec(
        &json!({"batch": {"ids": ids, "vectors": vectors}}),
    )?)
}

/// The same upsert as a framed gRPC `UpsertPoints` (`wait=true`).
fn upsert_message(ds: &Dataset, collection: &str, from: usize, to: usize) -> Vec<u8> {
    use proto::{point_id::PointIdOptions, vector::Vector as V, vectors::VectorsOptions};
    let point = |i: usize| proto::PointStruct {
        id: Some(proto::PointId {
            point_id_options: Some(PointIdOptions::Num(i as u64)),
        }),
        vectors: Some(proto::Vectors {
            vectors_options: Some(VectorsOptions::Vector(
                #[allow(deprecated)]
                proto::Vector {
                    vector: Some(V::Dense(proto::DenseVector {
                        data: ds.base.row(i).to_vec(),
                    })),
                    ..Default::default()
                },
            )),
        }),
        payload: Default::default(),
    };
    frame(&proto::UpsertPoints {
        collection_name: collection.to_string(),
        wait: Some(true),
        points: (from..to).map(point).collect(),
        ..Default::default()
    })
}

/// How a setting searches.
#[derive(Clone, Copy)]
enum Search {
    Ef(usize),
    Exact,
}

/// The query body of query row `q` for `transport`.
fn query_body(args: &Args, ds: &Dataset, q: usize, search: Search) -> anyhow::Result<Vec<u8>> {
    use proto::{query::Variant, vector_input::Variant as Input};
    let (ef, exact) = match search {
        Search::Ef(ef) => (Some(ef), None),
        Search::Exact => (None, Some(true)),
    };
    if args.transport == Transport::Rest {
        let params = json!({"hnsw_ef": ef, "exact": exact});
        let body = json!({"query": ds.queries.row(q), "limit": 10, "params": params});
        return Ok(serde_json::to_vec(&body)?);
    }
    let dense = proto::DenseVector {
        data: ds.queries.row(q).to_vec(),
    };
    Ok(frame(&proto::QueryPoints {
        collection_name: args.collection.clone(),
        query: Some(proto::Query {
            variant: Some(Variant::Nearest(proto::VectorInput {
                variant: Some(Input::Dense(dense)),
            })),
        }),
        limit: Some(10),
        params: Some(proto::SearchParams {
            hnsw_ef: ef.map(|ef| ef as u64),
            exact,
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// Uploads the base vectors in batches from `concurrency` connections; returns seconds until
/// every batch was acknowledged and until the collection reported green.
fn upload(args: &Args, ds: &Arc<Dataset>, base: &str) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let path = format!("{base}/points?wait=true");
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (ds, next, path, args) = (ds.clone(), next.clone(), path.clone(), args.clone());
            let batch = args.batch.max(1);
            std::thread::spawn(move || -> anyhow::Result<()> {
                let endpoint = Endpoint::of(&args, &path);
                let mut c = endpoint.connect()?;
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= ds.base.rows {
                        return Ok(());
                    }
                    let to = (from + batch).min(ds.base.rows);
                    let body = match args.transport {
                        Transport::Rest => upsert_body(&ds, from, to)?,
                        Transport::Grpc => upsert_message(&ds, &args.collection, from, to),
                    };
                    c.upsert(&body)?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("upload thread panicked"))??;
    }
    let uploaded = start.elapsed().as_secs_f64();
    let mut c = Conn::new(&args.url)?;
    if args.bulk {
        // Back to the server's default threshold (Qdrant's 10,000 KB).
        let on = json!({"optimizers_config": {"indexing_threshold": 10000}});
        call(&mut c, "PATCH", base, &serde_json::to_vec(&on)?)?;
    }
    loop {
        let info: Value = serde_json::from_slice(&call(&mut c, "GET", base, b"")?)?;
        if info["result"]["status"] == "green" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((uploaded, start.elapsed().as_secs_f64()))
}

/// Batches the write load cycles through, serialised up front so the client spends its CPU
/// on sending rather than on JSON (64 × 256 points of 384 dimensions is about 64 MB).
const WRITE_LOAD_BATCHES: usize = 64;

/// Sends `n` queries (`bodies` in turn) from `concurrency` keep-alive connections; each
/// one's latency in milliseconds and recall@10 against `truth`.
pub(super) fn timed_queries(
    endpoint: &Endpoint,
    bodies: &[Vec<u8>],
    n: usize,
    concurrency: usize,
    truth: &Matrix<i32>,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(f64, f64)>> {
                    let mut c = endpoint.connect()?;
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(out);
                        }
                        let q = i % bodies.len();
                        let t = Instant::now();
                        let ids = c.query(&bodies[q])?;
                        let ms = t.elapsed().as_secs_f64() * 1000.0;
                        out.push((ms, recall(&ids, truth.row(q), 10)));
                    }
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(n);
        for w in workers {
            let part = w
                .join()
                .map_err(|_| anyhow::anyhow!("query thread panicked"))?;
            samples.extend(part?);
        }
        Ok(samples)
    })
}

/// Re-upserts dataset rows in batches, back to back, until `stop`; returns points acknowledged
/// per second.
fn write_load(
    url: String,
    bodies: Arc<Vec<(usize, Vec<u8>)>>,
    path: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut c = Conn::new(&url)?;
    let mut done = 0usize;
    for (points, body) in bodies.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        call(&mut c, "PUT", &path, body)?;
        done += points;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// The write load's request bodies: consecutive batches from the start of the dataset.
fn write_load_bodies(ds: &Dataset, batch: usize) -> anyhow::Result<Vec<(usize, Vec<u8>)>> {
    (0..WRITE_LOAD_BATCHES)
        .map(|b| b * batch)
        .take_while(|&from| from < ds.base.rows)
        .map(|from| {
            let to = (from + batch).min(ds.base.rows);
            Ok((to - from, upsert_body(ds, from, to)?))
        })
        .collect()
}

/// Count and total seconds of waits for a search slot so far, read from `/metrics`.
fn search_slot_waits(url: &str) -> anyhow::Result<(u64, f64)> {
    let text = String::from_utf8(call(&mut Conn::new(url)?, "GET", "/metrics", b"")?)?;
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((
        value("vecdb_lock_contended_total{lock=\"search_slots\"}") as u64,
        value("vecdb_lock_wait_seconds_sum{lock=\"search_slots\"}"),
    ))
}

/// Runs the queries with `params` from `concurrency` connections, optionally under write load.
fn measure(
    args: &Args,
    ds: &Arc<Dataset>,
    base: &str,
    setting: &str,
    search: Search,
    load: bool,
) -> anyhow::Result<Row> {
    let distinct = args.queries.min(ds.queries.rows);
    let n = distinct * args.repeat.max(1);
    // Bodies are serialised before the clock starts: the client's work is not the server's.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..distinct)
            .map(|q| query_body(args, ds, q, search))
            .collect::<Result<_, _>>()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = if load {
        let bodies = Arc::new(write_load_bodies(ds, args.batch.max(1))?);
        let (url, stop, path) = (
            args.url.clone(),
            stop.clone(),
            format!("{base}/points?wait=true"),
        );
        Some(std::thread::spawn(move || {
            write_load(url, bodies, path, stop)
        }))
    } else {
        None
    };
    if load {
        // Let the writer reach its steady state (queue, WAL, optimizer) before measuring.
        std::thread::sleep(Duration::from_secs(1));
    }
    let waits_before = search_slot_waits(&args.url)?;
    let path = match &args.consistency {
        Some(level) => format!("{base}/points/query?consistency={level}"),
        None => format!("{base}/points/query"),
    };
    let start = Instant::now();
    let endpoint = Endpoint::of(args, &path);
    let samples = timed_queries(&endpoint, &bodies, n, args.concurrency, &ds.truth)?;
    let secs = start.elapsed().as_secs_f64();
    let waits_after = search_slot_waits(&args.url)?;
    stop.store(true, Ordering::Relaxed);
    let upserted = match writer {
        Some(w) => Some(
            w.join()
                .map_err(|_| anyhow::anyhow!("write-load thread panicked"))??,
        ),
        None => None,
    };
    let mut lat: Vec<f64> = samples.iter().map(|s| s.0).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(Row {
        setting: setting.to_string(),
        write_load: load,
        recall_at_10: samples.iter().map(|s| s.1).sum::<f64>() / n as f64,
        qps: n as f64 / secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
        upserted_points_per_second: upserted,
        search_slot_waits: waits_after.0.saturating_sub(waits_before.0),
        search_slot_wait_seconds: waits_after.1 - waits_before.1,
    })
}
