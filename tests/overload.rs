//! Overload: bounded waits end in 503 with `Retry-After`, Qdrant's `timeout` query parameter
//! bounds reads and writes, and a write the writer already took is applied even when its request
//! timed out.

mod common;

use std::time::{Duration, Instant};

use common::{Rng, Server};
use serde_json::{json, Value};

const DIM: usize = 64;
/// Points whose index build outlasts the timed requests below.
const N: u64 = 10_000;

/// Sends `body` and returns (status, Retry-After header, JSON body, seconds taken).
fn timed(s: &Server, method: &str, path: &str, body: Value) -> (u16, Option<String>, Value, f64) {
    let started = Instant::now();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = s
        .client
        .request(method, format!("{}{}", s.base, path))
        .json(&body)
        .send()
        .expect("send");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().expect("JSON body");
    (status, retry, body, started.elapsed().as_secs_f64())
}

fn points(rng: &mut Rng, ids: std::ops::Range<u64>) -> Value {
    let pts: Vec<Value> = ids
        .map(|id| json!({"id": id, "vector": rng.vector(DIM)}))
        .collect();
    json!({ "points": pts })
}

#[test]
fn timeout_parameter_must_be_a_positive_number() {
    let (s, _dir) = Server::start();
    s.create("t", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    for (method, path, body) in [
        (
            "POST",
            "/collections/t/points/query?timeout=abc",
            json!({"query": [1.0, 0.0]}),
        ),
        (
            "PUT",
            "/collections/t/points?timeout=0",
            json!({"points": [{"id": 1, "vector": [1.0, 0.0]}]}),
        ),
        (
            "PUT",
            "/collections/t/points?timeout=-3&wait=true",
            json!({"points": [{"id": 1, "vector": [1.0, 0.0]}]}),
        ),
    ] {
        let (status, _, body, _) = timed(&s, method, path, body);
        assert_eq!(status, 400, "{path}: {body}");
        let msg = common::error(&body);
        assert!(msg.contains("timeout"), "{msg}");
    }
    let (status, body) = s.call("POST", "/collections/t/points/count", Some(json!({})));
    assert_eq!(
        (status, &body["result"]["count"]),
        (200, &json!(0)),
        "nothing applied: {body}"
    );
    let (status, _, body, _) = timed(
        &s,
        "POST",
        "/collections/t/points/query?timeout=5",
        json!({"query": [1.0, 0.0]}),
    );
    assert_eq!(status, 200, "{body}");
}

/// A write stall (the writer waits for a slow index build) holds the writer; with a queue of
/// one, the next write waits in the queue and a third finds it full. The build indexes points
/// loaded while indexing was off, once a PATCH turns it on.
#[test]
fn stalled_writer_answers_503_within_the_request_timeout() {
    let dir = common::temp_dir();
    let s = Server::start_in(
        dir.path(),
        &[
            ("VECDB__STORAGE__WRITER_QUEUE_CAPACITY", "1"),
            ("VECDB__STORAGE__WRITE_STALL_FACTOR", "1"),
            ("VECDB__COLLECTION_DEFAULTS__MAX_INDEXING_THREADS", "1"),
            // The stalled write waits for the whole build, which is slow on a busy machine.
            ("VECDB__SERVICE__REQUEST_TIMEOUT_SEC", "600"),
        ],
    );
    s.create(
        "o",
        json!({"vectors": {"size": DIM, "distance": "Cosine"},
               "hnsw_config": {"m": 48, "ef_construct": 800},
               "optimizers_config": {"indexing_threshold": 0}}),
    );
    let mut rng = Rng(7);
    s.ok(
        "PUT",
        "/collections/o/points?wait=true",
        Some(points(&mut rng, 0..N)),
    );
    // 20 KB threshold: 80 points of 64 floats. The points go to a slow build at once, and every
    // later write stalls until it is done.
    s.ok(
        "PATCH",
        "/collections/o",
        Some(json!({"optimizers_config": {"indexing_threshold": 20}})),
    );
    let building = |s: &Server| s.ok("GET", "/collections/o", None)["status"] != "green";
    assert!(
        building(&s),
        "the index build must still run for this test to mean anything"
    );

    let stalled = std::thread::scope(|scope| {
        // Taken by the writer, which then stalls on the build.
        let first = scope.spawn(|| {
            timed(
                &s,
                "PUT",
                "/collections/o/points?wait=true&timeout=600",
                points(&mut Rng(1), N..N + 100),
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        // Waits in the queue (capacity 1) past its timeout: queued, so it will still apply.
        let queued = scope.spawn(|| {
            timed(
                &s,
                "PUT",
                "/collections/o/points?wait=true&timeout=2",
                points(&mut Rng(2), N + 1000..N + 1001),
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        // Finds the queue full for its whole timeout: nothing applied.
        let refused = timed(
            &s,
            "PUT",
            "/collections/o/points?wait=true&timeout=1",
            points(&mut Rng(3), N + 2000..N + 2001),
        );
        // Searches do not wait on the stalled writer.
        let search = timed(
            &s,
            "POST",
            "/collections/o/points/query?timeout=5",
            json!({"query": rng.vector(DIM), "limit": 3}),
        );
        let still_building = building(&s);
        (
            first.join().unwrap(),
            queued.join().unwrap(),
            refused,
            search,
            still_building,
        )
    });
    let (first, queued, refused, search, still_building) = stalled;
    assert!(
        still_building,
        "the build ended before the timed requests could be checked"
    );

    assert_eq!(refused.0, 503, "{}", refused.2);
    assert_eq!(
        refused.1.as_deref(),
        Some("1"),
        "Retry-After on a full queue"
    );
    let msg = common::error(&refused.2);
    assert!(
        msg.contains("writer queue") && msg.contains("nothing was applied"),
        "{msg}"
    );
    assert!(
        (0.9..5.0).contains(&refused.3),
        "refused after {}s, timeout was 1s",
        refused.3
    );

    assert_eq!(queued.0, 503, "{}", queued.2);
    let msg = common::error(&queued.2);
    assert!(msg.contains("will still be applied"), "{msg}");
    assert!(
        (1.9..6.0).contains(&queued.3),
        "answered after {}s, timeout was 2s",
        queued.3
    );

    assert_eq!(search.0, 200, "search during the stall: {}", search.2);
    assert_eq!(first.0, 200, "the stalled write completes: {}", first.2);

    s.wait_green("o");
    let (status, body) = s.call("GET", &format!("/collections/o/points/{}", N + 1000), None);
    assert_eq!(
        status, 200,
        "the queued write was applied after its request timed out: {body}"
    );
    let (status, body) = s.call("GET", &format!("/collections/o/points/{}", N + 2000), None);
    assert_eq!(status, 404, "the refused write was not applied: {body}");
}
