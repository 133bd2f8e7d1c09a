//! Snapshots: taken while writes go on, listed, downloaded, recovered into a fresh server from a
//! file and from an upload with the same points, payloads and search results; names cannot
//! escape the snapshot folder; a damaged snapshot is refused and changes nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Rng, Server};
use serde_json::{json, Value};

const DIM: usize = 8;
/// Ids the concurrent writer adds while the snapshot is taken start here.
const LATE: u64 = 100_000;

fn all_points(s: &Server, name: &str) -> BTreeMap<u64, Value> {
    let body = json!({"limit": 100_000, "with_payload": true, "with_vector": true});
    let page = s.ok(
        "POST",
        &format!("/collections/{name}/points/scroll"),
        Some(body),
    );
    page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_u64().unwrap(), p.clone()))
        .collect()
}

fn search(s: &Server, name: &str, q: &[f32], exact: bool) -> Value {
    let body = json!({"query": q, "limit": 10, "with_payload": true, "params": {"exact": exact, "hnsw_ef": 200}});
    let r = s.ok(
        "POST",
        &format!("/collections/{name}/points/query"),
        Some(body),
    );
    json!(r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["id"], p["score"]]))
        .collect::<Vec<_>>())
}

fn multipart(file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "vecdb-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"s.snapshot\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn snapshot_taken_under_writes_restores_exactly_elsewhere() {
    let (a, _dir_a) = Server::start();
    a.create("s", json!({"vectors": {"size": DIM, "distance": "Cosine"},
        "optimizers_config": {"indexing_threshold": 10}, "hnsw_config": {"full_scan_threshold": 1}}));
    let mut rng = Rng(11);
    let points: Vec<Value> = (0..1500u64)
        .map(|i| json!({"id": i, "vector": rng.vector(DIM), "payload": {"i": i, "tag": if i % 2 == 0 { "x" } else { "y" }, "nested": {"k": [i, i + 1]}}}))
        .collect();
    for chunk in points.chunks(300) {
        a.upsert("s", json!(chunk));
    }
    a.ok(
        "POST",
        "/collections/s/points/delete?wait=true",
        Some(json!({"points": (0..1500).step_by(7).collect::<Vec<u64>>()})),
    );
    a.wait_green("s");

    // A writer adds new ids in order while the snapshot is taken.
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut id = LATE;
            let mut rng = Rng(5);
            while !stop.load(Ordering::Relaxed) {
                a.upsert(
                    "s",
                    json!([{"id": id, "vector": rng.vector(DIM), "payload": {"late": id}}]),
                );
                id += 1;
            }
            id - LATE
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let made = a.ok("POST", "/collections/s/snapshots?wait=true", None);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let name = made["name"].as_str().unwrap().to_string();
    assert!(made["size"].as_u64().unwrap() > 0, "{made}");
    let listed = a.ok("GET", "/collections/s/snapshots", None);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], name);

    let resp = a
        .client
        .get(format!("{}/collections/s/snapshots/{name}", a.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let file = resp.bytes().unwrap().to_vec();
    assert_eq!(file.len() as u64, made["size"].as_u64().unwrap());

    // Restore into a fresh server, from a file and from an upload.
    let (b, dir_b) = Server::start();
    let path = dir_b.path().join("copy.snapshot");
    std::fs::write(&path, &file).unwrap();
    b.ok(
        "PUT",
        "/collections/from_file/snapshots/recover",
        Some(json!({"location": format!("file://{}", path.display())})),
    );
    let (content_type, body) = multipart(&file);
    let resp = b
        .client
        .post(format!(
            "{}/collections/from_upload/snapshots/upload?wait=true",
            b.base
        ))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());

    let source = all_points(&a, "s");
    for restored_name in ["from_file", "from_upload"] {
        let restored = all_points(&b, restored_name);
        // Point in time: every early point as it is now (none changed since), and of the late
        // ids, exactly a prefix of the writer's sequence.
        let late: Vec<u64> = restored.keys().copied().filter(|id| *id >= LATE).collect();
        assert_eq!(
            late,
            (LATE..LATE + late.len() as u64).collect::<Vec<_>>(),
            "late ids are a prefix"
        );
        assert!((late.len() as u64) <= written);
        for (id, p) in &restored {
            assert_eq!(Some(p), source.get(id), "{restored_name}: point {id}");
        }
        let early = source.keys().filter(|id| **id < LATE).count();
        assert_eq!(
            restored.len() - late.len(),
            early,
            "{restored_name}: every early point"
        );
        let info = b.wait_green(restored_name);
        assert_eq!(
            info["config"]["optimizer_config"]["indexing_threshold"], 10,
            "{info}"
        );
    }
    // Same search results on the same data: the source cut to the snapshot's points (its
    // vectors pass through normalisation once more, so scores agree to rounding).
    let restored = all_points(&b, "from_file");
    a.create(
        "cut",
        json!({"vectors": {"size": DIM, "distance": "Cosine"}}),
    );
    let cut: Vec<Value> = restored
        .values()
        .map(|p| json!({"id": p["id"], "vector": p["vector"], "payload": p["payload"]}))
        .collect();
    a.upsert("cut", json!(cut));
    for _ in 0..10 {
        let q = rng.vector(DIM);
        let truth = search(&a, "cut", &q, true);
        let exact = search(&b, "from_file", &q, true);
        assert_eq!(search(&b, "from_upload", &q, true), exact);
        assert_eq!(
            search(&b, "from_upload", &q, false),
            exact,
            "HNSW at ef 200 on {} points",
            restored.len()
        );
        for (got, want) in exact
            .as_array()
            .unwrap()
            .iter()
            .zip(truth.as_array().unwrap())
        {
            assert_eq!(got[0], want[0], "{exact} vs {truth}");
            assert!((got[1].as_f64().unwrap() - want[1].as_f64().unwrap()).abs() < 1e-5);
        }
    }

    // Deleting removes it from the list and the folder.
    a.ok("DELETE", &format!("/collections/s/snapshots/{name}"), None);
    assert_eq!(a.ok("GET", "/collections/s/snapshots", None), json!([]));
    let (status, _) = a.call("GET", &format!("/collections/s/snapshots/{name}"), None);
    assert_eq!(status, 404);
}

#[test]
fn hostile_names_and_damaged_files_change_nothing() {
    let (s, dir) = Server::start();
    s.create("h", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    s.upsert(
        "h",
        json!([{"id": 1, "vector": [1.0, 0.0], "payload": {"keep": true}}]),
    );
    let made = s.ok("POST", "/collections/h/snapshots", None);
    let name = made["name"].as_str().unwrap();
    let file = dir.path().join("snapshots").join("h").join(name);
    assert!(file.is_file(), "{}", file.display());

    for bad in [
        "..%2F..%2Frocksdb%2FCURRENT",
        "%2Fetc%2Fpasswd",
        "..",
        ".hidden.snapshot",
        "x.tmp",
    ] {
        let (status, body) = s.call("GET", &format!("/collections/h/snapshots/{bad}"), None);
        assert!(status == 400 || status == 404, "GET {bad}: {status} {body}");
        assert!(body["status"]["error"].is_string(), "{body}");
        let (status, _) = s.call("DELETE", &format!("/collections/h/snapshots/{bad}"), None);
        assert!(status == 400 || status == 404, "DELETE {bad}: {status}");
    }

    let bytes = std::fs::read(&file).unwrap();
    let damaged = dir.path().join("damaged.snapshot");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    std::fs::write(&damaged, &flipped).unwrap();
    let truncated = dir.path().join("truncated.snapshot");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    for (location, why) in [
        (format!("file://{}", damaged.display()), "corrupt snapshot"),
        (format!("file://{}", truncated.display()), "truncated"),
        (
            format!("file://{}", dir.path().join("none.snapshot").display()),
            "cannot open",
        ),
        ("http://example.com/s.snapshot".to_string(), "only file://"),
        ("file://relative/s.snapshot".to_string(), "absolute"),
    ] {
        let (status, body) = s.call(
            "PUT",
            "/collections/h/snapshots/recover",
            Some(json!({"location": location})),
        );
        assert_eq!(status, 400, "{location}: {body}");
        assert!(common::error(&body).contains(why), "{location}: {body}");
    }
    let (content_type, body) = multipart(b"not a snapshot at all");
    let resp = s
        .client
        .post(format!("{}/collections/h/snapshots/upload", s.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The collection is as it was, and the rejected upload left no file behind.
    assert_eq!(all_points(&s, "h")[&1]["payload"], json!({"keep": true}));
    let uploads = dir.path().join("snapshots").join("uploads");
    assert_eq!(
        std::fs::read_dir(uploads).map(|d| d.count()).unwrap_or(0),
        0
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the snapshot itself is untouched"
    );
}

#[test]
fn uploads_without_a_multipart_body_get_a_json_error() {
    let (s, _dir) = Server::start();
    let (status, body) = s.raw(
        "POST",
        "/collections/u/snapshots/upload",
        b"plain bytes".to_vec(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(common::error(&body).contains("multipart"), "{body}");
    assert_eq!(
        s.call("GET", "/collections/u", None).0,
        404,
        "nothing created"
    );
}

#[test]
fn uploads_cut_off_by_a_crash_are_removed_at_start_up() {
    let dir = common::temp_dir();
    let uploads = dir.path().join("snapshots").join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("half.upload"), b"VECDBSNP").unwrap();
    let _s = Server::start_in(dir.path(), &[]);
    assert!(!uploads.join("half.upload").exists());
}

/// Snapshots of one state requested at the same moment each get a file of their own, with
/// its checksum.
#[test]
fn concurrent_snapshots_get_their_own_files() {
    let (s, _dir) = Server::start();
    s.create("c", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    s.upsert("c", json!([{"id": 1, "vector": [1.0, 0.0]}]));
    let s = Arc::new(s);
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.call("POST", "/collections/c/snapshots", None))
        })
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for taker in takers {
        let (status, body) = taker.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["result"]["checksum"].as_str().map(str::len),
            Some(64),
            "{body}"
        );
        names.insert(body["result"]["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 8);
    let listed = s.ok("GET", "/collections/c/snapshots", None);
    assert_eq!(listed.as_array().unwrap().len(), 8, "{listed}");
}

#[test]
fn points_lacking_vectors_and_multivectors_survive_a_snapshot() {
    let (a, _dir_a) = Server::start();
    a.create(
        "mixed",
        json!({"vectors": {
            "d": {"size": 2, "distance": "Dot"},
            "m": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
        }}),
    );
    let points = json!([
        {"id": 1, "vector": {"d": [1.0, 2.0], "m": [[1.0, 0.0], [0.0, 1.0]]}},
        {"id": 2, "vector": {"d": [3.0, 4.0]}},
        {"id": 3, "vector": {"m": [[0.6, 0.8]]}},
        {"id": 4, "vector": {}},
    ]);
    a.upsert("mixed", points);
    let made = a.ok("POST", "/collections/mixed/snapshots?wait=true", None);
    let name = made["name"].as_str().unwrap();
    let url = format!("{}/collections/mixed/snapshots/{name}", a.base);
    let file = a.client.get(url).send().unwrap().bytes().unwrap().to_vec();

    let (b, dir_b) = Server::start();
    let path = dir_b.path().join("mixed.snapshot");
    std::fs::write(&path, &file).unwrap();
    let location = json!({"location": format!("file://{}", path.display())});
    b.ok(
        "PUT",
        "/collections/mixed/snapshots/recover",
        Some(location),
    );
    assert_eq!(all_points(&b, "mixed"), all_points(&a, "mixed"));
    let query = json!({"query": [[1.0, 0.0]], "using": "m", "with_vector": true});
    let found = b.ok("POST", "/collections/mixed/points/query", Some(query));
    assert_eq!(common::ids(&found), vec![1, 3], "{found}");
    assert_eq!(
        found["points"][0]["vector"]["m"],
        json!([[1.0, 0.0], [0.0, 1.0]])
    );
}
