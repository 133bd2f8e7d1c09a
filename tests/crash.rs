//! Crash consistency, as a repeatable harness: eight clients write (upserts in both forms,
//! deletes by id and by filter, payload set and delete; `wait=true` and `wait=false`) while index
//! builds and merges run; the server is killed with SIGKILL at a random instant and restarted,
//! and after every restart:
//! - every acknowledged write is there exactly (an acknowledgement, with or without `wait`,
//!   means the write is in RocksDB's WAL, which survives a process crash); the one write per
//!   client that was in flight is either wholly there or wholly absent;
//! - deleted points stay deleted; no point has a payload from one write and a vector from another;
//! - HNSW search agrees with exact search on the recovered data (recall@10 ≥ 0.95).
//!
//! `VECDB_CRASH_CYCLES` sets the cycles (default 20; the README's long mode runs 500).
//! It prints cycles, operations acknowledged, points lost (must be 0) and recovery times.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{seed, Rng, Server};
use serde_json::{json, Value};

const CLIENTS: u64 = 8;
const IDS_PER_CLIENT: u64 = 150;
const DIM: usize = 16;
const COLLECTION: &str = "/collections/crash";

/// What a point holds: the upsert that wrote its vector and payload, and the `extra` payload key
/// set afterwards (if any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Content {
    seq: u64,
    extra: Option<u64>,
}

/// A point's acknowledged state and, while a write to it is in flight, the state that write
/// would leave.
#[derive(Clone, Copy, Debug, Default)]
struct Expect {
    acked: Option<Content>,
    in_flight: Option<Option<Content>>,
}

type Model = Mutex<HashMap<u64, Expect>>;

/// The vector of upsert `seq` of point `id`: reproducible, so a vector and a payload from
/// different writes cannot pass for one.
fn vector(id: u64, seq: u64) -> Vec<f32> {
    Rng(id.wrapping_mul(0x1000_0000_01b3) ^ seq).vector(DIM)
}

/// One write a client can send, with the state it leaves.
struct Op {
    method: reqwest::Method,
    path: String,
    body: Value,
    after: Option<Content>,
}

fn choose(rng: &mut Rng, c: u64, id: u64, seq: u64, now: Option<Content>) -> Op {
    let wait = rng.below(2) == 0;
    let q = |p: &str| format!("{COLLECTION}/points{p}?wait={wait}");
    let payload = json!({"seq": seq, "c": c});
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    let roll = rng.below(10);
    match (roll, now) {
        (0, _) => Op {
            method: post,
            path: q("/delete"),
            body: json!({"points": [id]}),
            after: None,
        },
        (1, _) => Op {
            method: post,
            path: q("/delete"),
            body: json!({"filter": {"must": [{"has_id": [id]}, {"key": "c", "match": {"value": c}}]}}),
            after: None,
        },
        (2 | 3, Some(p)) => Op {
            method: post,
            path: q("/payload"),
            body: json!({"payload": {"extra": seq}, "points": [id]}),
            after: Some(Content {
                extra: Some(seq),
                ..p
            }),
        },
        (4, Some(p)) => Op {
            method: post,
            path: q("/payload/delete"),
            body: json!({"keys": ["extra"], "points": [id]}),
            after: Some(Content { extra: None, ..p }),
        },
        (5 | 6, _) => Op {
            method: put,
            path: q(""),
            body: json!({"batch": {"ids": [id], "vectors": [vector(id, seq)], "payloads": [payload]}}),
            after: Some(Content { seq, extra: None }),
        },
        _ => Op {
            method: put,
            path: q(""),
            body: json!({"points": [{"id": id, "vector": vector(id, seq), "payload": payload}]}),
            after: Some(Content { seq, extra: None }),
        },
    }
}

/// One client's loop over its own ids until stopped or the server dies.
fn client(
    s: &Server,
    c: u64,
    mut rng: Rng,
    model: &Model,
    stop: &AtomicBool,
    acked: &AtomicU64,
    mut seq: u64,
) {
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let id = c * IDS_PER_CLIENT + rng.below(IDS_PER_CLIENT);
        let now = model.lock().unwrap().get(&id).and_then(|e| e.acked);
        let op = choose(&mut rng, c, id, seq, now);
        model.lock().unwrap().entry(id).or_default().in_flight = Some(op.after);
        let sent = s
            .client
            .request(op.method, format!("{}{}", s.base, op.path))
            .json(&op.body)
            .send();
        match sent.map(|r| r.status()) {
            Ok(status) if status.is_success() => {
                let mut m = model.lock().unwrap();
                let e = m.get_mut(&id).unwrap();
                e.acked = op.after;
                e.in_flight = None;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => panic!("{} {}: {status}", op.path, op.body),
            // The server died mid-request: the write stays in flight.
            Err(_) => return,
        }
    }
}

/// Every point as the server has it: id → (content, vector).
fn recovered(s: &Server) -> HashMap<u64, (Content, Vec<f32>)> {
    let page = s.ok(
        "POST",
        &format!("{COLLECTION}/points/scroll"),
        Some(json!({"limit": 100_000, "with_payload": true, "with_vector": true})),
    );
    let mut out = HashMap::new();
    for p in page["points"].as_array().unwrap() {
        let id = p["id"].as_u64().unwrap();
        let content = Content {
            seq: p["payload"]["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("point {id} lost its payload: {p}")),
            extra: p["payload"]["extra"].as_u64(),
        };
        let v: Vec<f32> = p["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        out.insert(id, (content, v));
    }
    out
}

/// Checks the recovered points against the model, then settles the model on what is there.
/// Returns the ids whose acknowledged state is gone.
fn verify(s: &Server, model: &Model) -> Vec<String> {
    let found = recovered(s);
    let mut lost = Vec::new();
    let mut m = model.lock().unwrap();
    for (id, (content, v)) in &found {
        assert_eq!(
            *v,
            vector(*id, content.seq),
            "point {id}: vector and payload from different writes"
        );
    }
    for (id, e) in m.iter_mut() {
        let actual = found.get(id).map(|(c, _)| *c);
        if actual != e.acked && e.in_flight != Some(actual) {
            lost.push(format!(
                "point {id}: found {actual:?}, acknowledged {:?}, in flight {:?}",
                e.acked, e.in_flight
            ));
        }
        e.acked = actual;
        e.in_flight = None;
    }
    let unknown: Vec<_> = found.keys().filter(|id| !m.contains_key(id)).collect();
    assert!(unknown.is_empty(), "points nobody wrote: {unknown:?}");
    lost
}

/// recall@10 of the default (HNSW) path against exact search, over `queries` random queries.
fn recall(s: &Server, rng: &mut Rng, queries: usize) -> f64 {
    let (mut hits, mut total) = (0, 0);
    for _ in 0..queries {
        let q = rng.vector(DIM);
        let ids = |exact: bool| -> Vec<u64> {
            let body = json!({"query": q, "limit": 10, "params": {"exact": exact}});
            let r = s.ok("POST", &format!("{COLLECTION}/points/query"), Some(body));
            r["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap())
                .collect()
        };
        let truth = ids(true);
        let got = ids(false);
        hits += got.iter().filter(|id| truth.contains(id)).count();
        total += truth.len();
    }
    if total == 0 {
        1.0
    } else {
        hits as f64 / total as f64
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let cycles: usize = std::env::var("VECDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng(seed());
    let dir = common::temp_dir();
    let model: Arc<Model> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let (mut recoveries, mut lost, mut kills_while_indexing, mut worst_recall) =
        (Vec::new(), Vec::new(), 0, 1.0f64);
    // Points in HNSW segments after each restart: the recall check means something only if
    // searches go through graphs.
    let mut indexed = Vec::new();
    for cycle in 0..=cycles {
        let started = Instant::now();
        let s = Arc::new(Server::start_in(dir.path(), &[]));
        recoveries.push(started.elapsed());
        if cycle == 0 {
            // 64 bytes a vector: the append segment is sealed every 160 points, and deletes
            // trigger vacuum merges, so kills land during builds and merges; sealed segments are
            // searched through HNSW whatever their size.
            s.create(
                "crash",
                json!({"vectors": {"size": DIM, "distance": "Euclid"},
                "optimizers_config": {"indexing_threshold": 10, "deleted_threshold": 0.1},
                "hnsw_config": {"m": 16, "ef_construct": 64}}),
            );
        } else {
            lost.extend(verify(&s, &model));
            worst_recall = worst_recall.min(recall(&s, &mut rng, 20));
            let info = s.ok("GET", COLLECTION, None);
            indexed.push(info["indexed_vectors_count"].as_u64().unwrap());
        }
        if cycle == cycles {
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (s, m, stop, acked) = (s.clone(), model.clone(), stop.clone(), acked.clone());
                let crng = Rng(rng.next_u64());
                let base = (cycle as u64 * CLIENTS + c) * 1_000_000;
                std::thread::spawn(move || client(&s, c, crng, &m, &stop, &acked, base))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        let (_, info) = s.call("GET", COLLECTION, None);
        kills_while_indexing += usize::from(info["result"]["status"] != "green");
        std::process::Command::new("kill")
            .args(["-KILL", &s.child.id().to_string()])
            .status()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("client thread");
        }
    }
    recoveries.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "{cycles} kill -9 cycles ({kills_while_indexing} while an index build or merge ran), {} writes acknowledged, {} lost, \
         worst recall@10 {worst_recall:.3} (HNSW-indexed points after restarts: median {}), restart to ready: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        acked.load(Ordering::Relaxed),
        lost.len(),
        { indexed.sort(); indexed[indexed.len() / 2] },
        ms(recoveries[0]),
        ms(recoveries[recoveries.len() / 2]),
        ms(recoveries[recoveries.len() - 1]),
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes lost:\n{}",
        lost.join("\n")
    );
    assert!(
        worst_recall >= 0.95,
        "HNSW recall@10 against exact search fell to {worst_recall}"
    );
    assert!(acked.load(Ordering::Relaxed) > 0);
    assert!(
        indexed[indexed.len() / 2] > 0,
        "searches never went through an HNSW graph"
    );
}
