//! Restart behaviour: graceful shutdown, recovery of every write, and sealed HNSW segments
//! loaded from disk instead of rebuilt.

mod common;

use common::{seed, Rng, Server};
use serde_json::{json, Value};

#[test]
fn sigterm_flushes_and_restart_recovers_without_rebuilding() {
    let mut rng = Rng(seed());
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create("d", json!({"vectors": {"size": 8, "distance": "Dot"}, "hnsw_config": {"full_scan_threshold": 0}, "optimizers_config": {"indexing_threshold": 4}}));
    let points: Vec<Value> = (0..600)
        .map(|i| json!({"id": i, "vector": rng.vector(8), "payload": {"i": i}}))
        .collect();
    s.upsert("d", json!(points));
    s.wait_green("d");
    s.ok(
        "POST",
        "/collections/d/points/delete?wait=true",
        Some(json!({"points": [1, 2, 3]})),
    );
    // Unwaited writes are in the WAL when acknowledged; shutdown must not lose them.
    for i in 1000..1010 {
        let r = s.ok(
            "PUT",
            "/collections/d/points",
            Some(json!({"points": [{"id": i, "vector": rng.vector(8)}]})),
        );
        assert_eq!(r["status"], "acknowledged");
    }
    // The query to compare across the restart must see every acknowledged write: they are
    // applied shortly after the acknowledgement, not before it.
    let started = std::time::Instant::now();
    while s.ok("GET", "/collections/d", None)["points_count"] != 607 {
        assert!(
            started.elapsed().as_secs() < 10,
            "acknowledged writes never applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let q = rng.vector(8);
    let before = s.ok(
        "POST",
        "/collections/d/points/query",
        Some(json!({"query": q, "limit": 10})),
    );
    let tele = s.ok("GET", "/telemetry", None);
    assert!(
        tele["collections"][0]["index_builds"].as_u64().unwrap() >= 1,
        "{tele}"
    );
    let status = s.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");

    let s = Server::start_in(dir.path(), &[]);
    let info = s.ok("GET", "/collections/d", None);
    assert_eq!(info["points_count"], 607, "{info}");
    let tele = s.ok("GET", "/telemetry", None);
    let c = &tele["collections"][0];
    assert!(
        c["indexed_segments"].as_u64().unwrap() >= 1,
        "sealed segment not reloaded: {tele}"
    );
    assert_eq!(c["index_builds"], 0, "restart rebuilt the graph: {tele}");
    let after = s.ok(
        "POST",
        "/collections/d/points/query",
        Some(json!({"query": q, "limit": 10})),
    );
    let ids = |v: &Value| {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(s.call("GET", "/collections/d/points/2", None).0, 404);
    assert_eq!(
        s.ok("GET", "/collections/d/points/599", None)["payload"],
        json!({"i": 599})
    );
    assert_eq!(s.call("GET", "/collections/d/points/1009", None).0, 200);
}

#[test]
fn operation_ids_continue_after_restart() {
    let dir = common::temp_dir();
    let s = Server::start_in(
        dir.path(),
        &[("VECDB__STORAGE__SYNC_POLICY", "every_write")],
    );
    s.create("l", json!({"vectors": {"size": 2, "distance": "Cosine"}}));
    let first = s.upsert("l", json!([{"id": 1, "vector": [1, 0]}]))["operation_id"]
        .as_u64()
        .unwrap();
    s.kill9();
    let s = Server::start_in(dir.path(), &[]);
    let next = s.upsert("l", json!([{"id": 2, "vector": [0, 1]}]))["operation_id"]
        .as_u64()
        .unwrap();
    assert_eq!(next, first + 1);
    assert_eq!(
        s.ok("POST", "/collections/l/points/count", Some(json!({})))["count"],
        2
    );
}

#[test]
fn a_damaged_segment_file_is_skipped_and_its_points_reindexed() {
    let mut rng = Rng(seed());
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create("x", json!({"vectors": {"size": 4, "distance": "Euclid"}, "optimizers_config": {"indexing_threshold": 2}}));
    let points: Vec<Value> = (0..300)
        .map(|i| json!({"id": i, "vector": rng.vector(4)}))
        .collect();
    s.upsert("x", json!(points));
    s.wait_green("x");
    assert!(s.terminate().success());
    let segs = dir.path().join("segments");
    let mut damaged = 0;
    for coll in std::fs::read_dir(&segs).unwrap() {
        for f in std::fs::read_dir(coll.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged >= 1);
    let s = Server::start_in(dir.path(), &[]);
    assert_eq!(s.ok("GET", "/collections/x", None)["points_count"], 300);
    let info = s.wait_green("x");
    assert!(
        info["indexed_vectors_count"].as_u64().unwrap() >= 290,
        "{info}"
    );
}
