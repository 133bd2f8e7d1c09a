//! `vecdb bench-overload`: many keep-alive connections mixing searches and upserts against a
//! running server for a while, then the same light load before and after, to show how the
//! service degrades and recovers: requests by status, latency of admitted requests, the
//! server's RSS over time, and throughput of a light load before and after the storm.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use super::wire::Conn;

#[derive(Parser, Debug)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:6333")]
    pub url: String,
    /// Process id of the server, to sample its RSS from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Collection to create and load.
    #[arg(long, default_value = "overload")]
    pub collection: String,
    /// Points loaded before the run, and the vector dimension.
    #[arg(long, default_value_t = 50_000)]
    pub points: u64,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Connections during the storm.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Seconds of storm.
    #[arg(long, default_value_t = 180)]
    pub seconds: u64,
    /// Percent of requests that are upserts (of 16 points, `wait=true`).
    #[arg(long, default_value_t = 20)]
    pub write_percent: u64,
    /// Connections and seconds of the light load measured before and after.
    #[arg(long, default_value_t = 8)]
    pub light_connections: usize,
    #[arg(long, default_value_t = 15)]
    pub light_seconds: u64,
    /// After the storm, the light load runs in 5-second windows for up to this long, to show
    /// how soon throughput is back.
    #[arg(long, default_value_t = 60)]
    pub recovery_seconds: u64,
}

/// What the connections saw.
#[derive(Default)]
struct Tally {
    ok: Vec<f64>,
    by_status: std::collections::BTreeMap<u16, u64>,
    failed: u64,
}

fn random_vector(state: &mut u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Runs `connections` loops for `secs` seconds; returns what they saw.
fn drive(args: &Args, connections: usize, secs: u64, write_percent: u64) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (tally, stop) = (tally.clone(), stop.clone());
            let (url, c, dim, points) = (args.url.clone(), args.collection.clone(), args.dim, args.points);
            std::thread::spawn(move || {
                let mut conn = Conn::new(&url).expect("URL");
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                let mut local = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let write = (state % 100) < write_percent;
                    let (method, path, body) = if write {
                        let pts: Vec<_> = (0..16)
                            .map(|k| json!({"id": (state.wrapping_add(k)) % points, "vector": random_vector(&mut state, dim)}))
                            .collect();
                        ("PUT", format!("/collections/{c}/points?wait=true&timeout=10"), json!({"points": pts}))
                    } else {
                        let q = random_vector(&mut state, dim);
                        ("POST", format!("/collections/{c}/points/query?timeout=10"), json!({"query": q, "limit": 10}))
                    };
                    let started = Instant::now();
                    match conn.call(method, &path, body.to_string().as_bytes()) {
                        Ok((status, _)) => {
                            *local.by_status.entry(status).or_default() += 1;
                            if status == 200 {
                                local.ok.push(started.elapsed().as_secs_f64());
                            }
                        }
                        Err(_) => {
                            local.failed += 1;
                            conn = Conn::new(&url).expect("URL");
                        }
                    }
                }
                let mut t = tally.lock().unwrap();
                t.ok.extend(local.ok);
                t.failed += local.failed;
                for (s, n) in local.by_status {
                    *t.by_status.entry(s).or_default() += n;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Arc::try_unwrap(tally)
        .ok()
        .expect("threads joined")
        .into_inner()
        .unwrap()
}

fn rss_mb(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn report(label: &str, t: &mut Tally, secs: u64) {
    t.ok.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        t.ok.get(((t.ok.len() as f64 * p) as usize).min(t.ok.len().saturating_sub(1)))
            .map_or(0.0, |s| s * 1000.0)
    };
    println!(
        "{label}: {:.0} admitted req/s; statuses {:?}; connection errors {}; admitted latency p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        t.ok.len() as f64 / secs as f64,
        t.by_status,
        t.failed,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        t.ok.last().map_or(0.0, |s| s * 1000.0),
    );
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut conn = Conn::new(&args.url)?;
    let c = &args.collection;
    let _ = conn.call("DELETE", &format!("/collections/{c}"), b"");
    let create = json!({"vectors": {"size": args.dim, "distance": "Cosine"}});
    conn.call(
        "PUT",
        &format!("/collections/{c}"),
        create.to_string().as_bytes(),
    )?;
    let mut state = 7u64;
    for start in (0..args.points).step_by(500) {
        let pts: Vec<_> = (start..(start + 500).min(args.points))
            .map(|id| json!({"id": id, "vector": random_vector(&mut state, args.dim)}))
            .collect();
        let (status, _) = conn.call(
            "PUT",
            &format!("/collections/{c}/points?wait=true"),
            json!({"points": pts}).to_string().as_bytes(),
        )?;
        anyhow::ensure!(status == 200, "loading points: status {status}");
    }
    wait_green(&mut conn, c)?;
    println!(
        "loaded {} points of {} dims; RSS {:?} MB",
        args.points,
        args.dim,
        rss_mb(args.pid)
    );

    let mut before = drive(&args, args.light_connections, args.light_seconds, 0);
    report("light load before", &mut before, args.light_seconds);

    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pid) = (sampler_stop.clone(), args.pid);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.extend(rss_mb(pid));
                std::thread::sleep(Duration::from_secs(1));
            }
            samples
        })
    };
    let mut storm = drive(&args, args.connections, args.seconds, args.write_percent);
    sampler_stop.store(true, Ordering::Relaxed);
    let rss = sampler.join().expect("sampler");
    report(
        &format!(
            "storm ({} connections, {}% writes)",
            args.connections, args.write_percent
        ),
        &mut storm,
        args.seconds,
    );
    if !rss.is_empty() {
        let max = rss.iter().copied().fold(0.0, f64::max);
        let tenth = rss.len() / 10;
        println!(
            "server RSS during the storm: first 10% max {:.0} MB, last 10% max {:.0} MB, overall max {:.0} MB",
            rss[..tenth.max(1)].iter().copied().fold(0.0, f64::max),
            rss[rss.len() - tenth.max(1)..].iter().copied().fold(0.0, f64::max),
            max
        );
    }

    recovery(&args, before.ok.len() as f64 / args.light_seconds as f64);
    let started = Instant::now();
    wait_green(&mut conn, c)?;
    println!(
        "collection green (background work done) {:.1} s after the recovery windows",
        started.elapsed().as_secs_f64()
    );
    let mut settled = drive(&args, args.light_connections, args.light_seconds, 0);
    report("light load once green", &mut settled, args.light_seconds);
    let rate = settled.ok.len() as f64 / args.light_seconds as f64;
    println!(
        "once green / before throughput: {:.2}",
        rate * args.light_seconds as f64 / before.ok.len().max(1) as f64
    );
    Ok(())
}

/// The light load in 5-second windows right after the storm, each against the throughput
/// before (`before`, requests per second), until one reaches 90% of it or time is up.
fn recovery(args: &Args, before: f64) {
    const WINDOW: u64 = 5;
    let windows = args.recovery_seconds.div_ceil(WINDOW).max(1);
    for w in 0..windows {
        let mut t = drive(args, args.light_connections, WINDOW, 0);
        let rate = t.ok.len() as f64 / WINDOW as f64;
        report(
            &format!(
                "light load {}-{} s after the storm",
                w * WINDOW,
                (w + 1) * WINDOW
            ),
            &mut t,
            WINDOW,
        );
        println!("  throughput / before: {:.2}", rate / before.max(1.0));
        if rate >= 0.9 * before {
            println!(
                "back to 90% of the throughput before within {} s",
                (w + 1) * WINDOW
            );
            return;
        }
    }
    println!(
        "not back to 90% of the throughput before within {} s",
        windows * WINDOW
    );
}

fn wait_green(conn: &mut Conn, c: &str) -> anyhow::Result<()> {
    loop {
        let (_, body) = conn.call("GET", &format!("/collections/{c}"), b"")?;
        let info: serde_json::Value = serde_json::from_slice(&body)?;
        if info["result"]["status"] == "green" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
