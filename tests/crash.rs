//! Crash consistency: clients write with `wait=true`, the server is killed with SIGKILL at a
//! random instant, restarted, and every acknowledged write must be there exactly, while a write
//! that was in flight is either wholly there or wholly absent.
//!
//! `VECDB_CRASH_CYCLES` sets the number of kill/restart cycles (default 5).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{seed, Rng, Server};
use serde_json::json;

const CLIENTS: u64 = 4;
const IDS_PER_CLIENT: u64 = 200;

/// What a point may look like after the restart: `None` means absent.
#[derive(Clone, Debug, Default)]
struct Expect {
    acked: Option<u64>,
    in_flight: Option<Option<u64>>,
}

/// The write's sequence number, split so every part is exact in f32, and the point id.
fn vector(id: u64, seq: u64) -> Vec<f32> {
    vec![(seq >> 12) as f32, id as f32, 1.0, (seq & 0xfff) as f32]
}

/// One client's loop: upserts (list and batch form) and deletes of its own ids until stopped.
fn client(
    s: &Server,
    c: u64,
    rng: &mut Rng,
    state: &Mutex<HashMap<u64, Expect>>,
    stop: &AtomicBool,
    start_seq: u64,
) {
    let mut seq = start_seq;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let id = c * IDS_PER_CLIENT + rng.below(IDS_PER_CLIENT);
        let delete = rng.below(8) == 0;
        let target = if delete { None } else { Some(seq) };
        state.lock().unwrap().entry(id).or_default().in_flight = Some(target);
        let (path, body) = if delete {
            (
                "/collections/crash/points/delete?wait=true",
                json!({"points": [id]}),
            )
        } else if seq.is_multiple_of(2) {
            (
                "/collections/crash/points?wait=true",
                json!({"points": [{"id": id, "vector": vector(id, seq), "payload": {"seq": seq, "c": c}}]}),
            )
        } else {
            (
                "/collections/crash/points?wait=true",
                json!({"batch": {"ids": [id], "vectors": [vector(id, seq)], "payloads": [{"seq": seq, "c": c}]}}),
            )
        };
        let url = format!("{}{}", s.base, path);
        let sent = s
            .client
            .request(
                if delete {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::PUT
                },
                &url,
            )
            .json(&body)
            .send();
        match sent {
            Ok(resp) if resp.status().is_success() => {
                let mut st = state.lock().unwrap();
                let e = st.get_mut(&id).unwrap();
                e.acked = target;
                e.in_flight = None;
            }
            // The server died mid-request: the write stays in flight (may or may not have landed).
            _ => return,
        }
    }
}

fn verify(s: &Server, state: &HashMap<u64, Expect>) -> usize {
    let mut present = 0;
    for (id, e) in state {
        let (status, body) = s.call("GET", &format!("/collections/crash/points/{id}"), None);
        let actual = match status {
            404 => None,
            200 => {
                let seq = body["result"]["payload"]["seq"].as_u64().expect("seq");
                let v = &body["result"]["vector"];
                let from_vector =
                    ((v[0].as_f64().unwrap() as u64) << 12) + v[3].as_f64().unwrap() as u64;
                assert_eq!(
                    from_vector, seq,
                    "point {id}: vector and payload from different writes: {body}"
                );
                assert_eq!(v[1].as_f64().unwrap() as u64, *id);
                present += 1;
                Some(seq)
            }
            other => panic!("GET point {id}: status {other} {body}"),
        };
        let allowed = actual == e.acked || e.in_flight == Some(actual);
        assert!(
            allowed,
            "point {id}: found {actual:?}, acknowledged {:?}, in flight {:?}",
            e.acked, e.in_flight
        );
    }
    present
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let cycles: usize = std::env::var("VECDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = Rng(seed());
    let dir = common::temp_dir();
    let state = Arc::new(Mutex::new(HashMap::<u64, Expect>::new()));
    let mut seq_base = 0;
    for cycle in 0..cycles {
        let started = std::time::Instant::now();
        let s = Arc::new(Server::start_in(dir.path(), &[]));
        let recovery = started.elapsed();
        if cycle == 0 {
            s.create("crash", json!({"vectors": {"size": 4, "distance": "Euclid"}, "optimizers_config": {"indexing_threshold": 3}}));
        } else {
            let present = verify(&s, &state.lock().unwrap());
            // After checking, the state is settled: what is there now is what was acknowledged.
            let mut st = state.lock().unwrap();
            for (id, e) in st.iter_mut() {
                let (status, body) =
                    s.call("GET", &format!("/collections/crash/points/{id}"), None);
                e.acked =
                    (status == 200).then(|| body["result"]["payload"]["seq"].as_u64().unwrap());
                e.in_flight = None;
            }
            eprintln!(
                "cycle {cycle}: recovered in {recovery:?}, {present} points verified present"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (s, st, stop) = (s.clone(), state.clone(), stop.clone());
                let mut crng = Rng(rng.next_u64());
                let base = seq_base + c * 1_000_000;
                std::thread::spawn(move || client(&s, c, &mut crng, &st, &stop, base))
            })
            .collect();
        seq_base += CLIENTS * 1_000_000;
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        let pid = s.child.id();
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("client thread");
        }
        drop(s);
    }
    let s = Server::start_in(dir.path(), &[]);
    let present = verify(&s, &state.lock().unwrap());
    let acked = state
        .lock()
        .unwrap()
        .values()
        .filter(|e| e.acked.is_some())
        .count();
    eprintln!("{cycles} cycles; {present} points present, {acked} acknowledged as present before the last kill");
    assert!(present > 0);
}
