//! Readers during writes and index builds: every search result comes from one consistent
//! snapshot, so a point's payload and vector always belong to the same write.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

const POINTS: u64 = 300;

fn point(id: u64, seq: u64) -> Value {
    // The vector encodes the write that produced it, so a reader can check it against the payload.
    json!({"id": id, "vector": [seq as f32, id as f32, 1.0, 0.5], "payload": {"seq": seq, "id": id}})
}

#[test]
fn searches_see_whole_writes_while_writes_and_builds_run() {
    let (s, _dir) = Server::start();
    s.create(
        "c",
        json!({
            "vectors": {"size": 4, "distance": "Euclid"},
            "hnsw_config": {"full_scan_threshold": 0, "m": 8, "ef_construct": 32},
            "optimizers_config": {"indexing_threshold": 2}
        }),
    );
    s.upsert(
        "c",
        json!((0..POINTS).map(|i| point(i, 0)).collect::<Vec<_>>()),
    );
    let server = Arc::new(s);
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (s, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seq = 1;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (0..20)
                    .map(|k| point((seq * 20 + k) % POINTS, seq))
                    .collect();
                s.upsert("c", json!(batch));
                seq += 1;
            }
            seq
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (s, stop, checked) = (server.clone(), stop.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut q = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    q += 1;
                    let query = json!({"query": [(q * 7 + r) as f32 % 50.0, (q % POINTS) as f32, 1.0, 0.5], "limit": 20, "with_payload": true, "with_vector": true});
                    let res = s.ok("POST", "/collections/c/points/query", Some(query));
                    let points = res["points"].as_array().unwrap();
                    assert_eq!(points.len(), 20);
                    let mut last = f64::MIN;
                    for p in points {
                        let seq = p["payload"]["seq"].as_f64().unwrap();
                        assert_eq!(p["vector"][0].as_f64().unwrap(), seq, "payload and vector from different writes: {p}");
                        assert_eq!(p["payload"]["id"], p["id"]);
                        let score = p["score"].as_f64().unwrap();
                        assert!(score >= last, "results out of order");
                        last = score;
                    }
                    let count = s.ok("POST", "/collections/c/points/count", Some(json!({})))["count"].as_u64().unwrap();
                    assert_eq!(count, POINTS, "overwrites changed the point count");
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("writer thread");
    for r in readers {
        r.join().expect("reader thread");
    }
    let tele = server.ok("GET", "/telemetry", None);
    eprintln!(
        "{} write batches, {} checked searches, telemetry {tele}",
        writes,
        checked.load(Ordering::Relaxed)
    );
    assert!(checked.load(Ordering::Relaxed) > 10);
    assert!(
        tele["collections"][0]["index_builds"].as_u64().unwrap() >= 1,
        "no index build ran during the test"
    );
}
