//! Sharded, replicated collections on a three-node cluster of real processes: any node
//! answers, reads merge the shards exactly, and one dead node costs nothing.

mod common;

use common::cluster::{port_of, start_cluster};
use common::{ids, Rng, Server};
use serde_json::{json, Value};

const DIM: usize = 8;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn count(server: &Server, consistency: &str) -> u64 {
    let path = format!("/collections/docs/points/count?consistency={consistency}");
    server.ok("POST", &path, Some(json!({})))["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_sharded_collection_is_served_by_every_node_and_survives_a_dead_one() {
    let (mut nodes, _dirs) = start_cluster(3);
    let create = json!({
        "vectors": {"size": DIM, "distance": "Cosine"},
        "shard_number": 4,
        "replication_factor": 3,
    });
    nodes[0].create("docs", create);
    for node in &nodes {
        let listed = node.ok("GET", "/collections", None);
        assert_eq!(listed["collections"], json!([{"name": "docs"}]));
    }

    // Written through one node, read through the others.
    let mut rng = Rng(common::seed());
    let vectors: Vec<Vec<f32>> = (0..120).map(|_| rng.vector(DIM)).collect();
    let points: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let kind = ["a", "b", "c"][i % 3];
            json!({"id": i + 1, "vector": v, "payload": {"n": i + 1, "kind": kind}})
        })
        .collect();
    nodes[1].upsert("docs", json!(points));
    for node in &nodes {
        assert_eq!(count(node, "strong"), 120);
        assert_eq!(
            node.ok("GET", "/collections/docs", None)["points_count"],
            120
        );
    }

    // Where the shards are: with three replicas on three peers, every peer holds every shard,
    // and every group has a leader and has applied the write.
    let placed = nodes[2].ok("GET", "/collections/docs/cluster", None);
    assert_eq!(placed["shard_count"], 4);
    assert_eq!(placed["local_shards"].as_array().unwrap().len(), 4);
    assert_eq!(placed["remote_shards"].as_array().unwrap().len(), 8);
    let local_points: u64 = placed["local_shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["points_count"].as_u64().unwrap())
        .sum();
    assert_eq!(local_points, 120);
    for shard in placed["shards"].as_array().unwrap() {
        assert!(shard["leader"].is_u64(), "{shard}");
        assert!(shard["applied"].as_u64().unwrap() >= 2, "{shard}");
    }
    let (_, metrics) = nodes[1].call("GET", "/metrics", None);
    let metrics = metrics.as_str().unwrap();
    for family in [
        "vecdb_raft_term{group=\"1\"}",
        "vecdb_raft_applied_index{group=\"0\"}",
    ] {
        assert!(metrics.contains(family), "no {family} in /metrics");
    }
    assert!(metrics.contains("lock=\"raft_append\""));

    // Top-k with an offset, merged from four shards, is the exact answer.
    let query = rng.vector(DIM);
    let mut exact: Vec<(f32, u64)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (cosine(&query, v), i as u64 + 1))
        .collect();
    exact.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected: Vec<u64> = exact[3..10].iter().map(|(_, id)| *id).collect();
    let found = nodes[2].ok(
        "POST",
        "/collections/docs/points/search",
        Some(json!({"vector": query, "limit": 7, "offset": 3, "params": {"exact": true}})),
    );
    assert_eq!(ids(&found), expected);
    let queried = nodes[0].ok(
        "POST",
        "/collections/docs/points/query",
        Some(json!({"query": query, "limit": 7, "offset": 3, "params": {"exact": true}})),
    );
    assert_eq!(ids(&queried["points"]), expected);

    // Scrolling pages through every point once, in id order.
    let mut seen = Vec::new();
    let mut offset = Value::Null;
    loop {
        let page = nodes[1].ok(
            "POST",
            "/collections/docs/points/scroll",
            Some(json!({"limit": 7, "offset": offset})),
        );
        seen.extend(ids(&page["points"]));
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    assert_eq!(seen, (1..=120).collect::<Vec<u64>>());

    // Retrieval keeps the order asked for; a single point comes from its shard.
    let got = nodes[2].ok(
        "POST",
        "/collections/docs/points",
        Some(json!({"ids": [77, 3, 41, 1000]})),
    );
    assert_eq!(ids(&got), [77, 3, 41]);
    assert_eq!(
        nodes[0].ok("GET", "/collections/docs/points/41", None)["payload"]["n"],
        41
    );
    let (status, _) = nodes[0].call("GET", "/collections/docs/points/1000", None);
    assert_eq!(status, 404);

    // A payload index through the metadata group, then facets summed over shards.
    nodes[2].ok(
        "PUT",
        "/collections/docs/index?wait=true",
        Some(json!({"field_name": "kind", "field_schema": "keyword"})),
    );
    let facet = nodes[1].ok(
        "POST",
        "/collections/docs/facet",
        Some(json!({"key": "kind"})),
    );
    assert_eq!(
        facet["hits"],
        json!([{"value": "a", "count": 40}, {"value": "b", "count": 40}, {"value": "c", "count": 40}])
    );

    // A delete by filter reaches every shard.
    let filter = json!({"filter": {"must": [{"key": "n", "range": {"lte": 20}}]}});
    nodes[0].ok(
        "POST",
        "/collections/docs/points/delete?wait=true",
        Some(filter),
    );
    assert_eq!(count(&nodes[2], "strong"), 100);

    // One node killed: the other two still write and read everything.
    nodes.remove(2).kill9();
    let more: Vec<Value> = (200..230)
        .map(|id| json!({"id": id, "vector": rng.vector(DIM)}))
        .collect();
    nodes[0].upsert("docs", json!(more));
    for node in &nodes {
        assert_eq!(count(node, "strong"), 130);
        assert_eq!(count(node, "read_your_writes"), 130);
    }
}

#[test]
fn cluster_collections_refuse_what_cannot_work() {
    let (nodes, _dirs) = start_cluster(3);
    let vectors = json!({"size": 4, "distance": "Dot"});
    for (body, says) in [
        (
            json!({"vectors": vectors, "shard_number": 0}),
            "shard_number",
        ),
        (
            json!({"vectors": vectors, "replication_factor": 4}),
            "replication_factor",
        ),
        (
            json!({"vectors": vectors, "replication_factor": 2, "write_consistency_factor": 3}),
            "write_consistency_factor",
        ),
    ] {
        let (status, answer) = nodes[0].call("PUT", "/collections/bad", Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(common::error(&answer).contains(says), "{answer}");
    }
    assert_eq!(
        nodes[1].ok("GET", "/collections", None)["collections"],
        json!([])
    );
    let (status, _) = nodes[0].call("PUT", "/collections/a~1", Some(json!({"vectors": vectors})));
    assert_eq!(status, 400);

    nodes[0].create(
        "c",
        json!({"vectors": vectors, "shard_number": 2, "replication_factor": 2}),
    );
    let (status, answer) =
        nodes[1].call("PUT", "/collections/c", Some(json!({"vectors": vectors})));
    assert_eq!(status, 409, "{answer}");
    // Replicas' own collections are not reachable through the API.
    let group = 1;
    let (status, _) = nodes[0].call("GET", &format!("/collections/c~{group}"), None);
    assert_eq!(status, 404);
    let (status, answer) = nodes[2].call(
        "POST",
        "/collections/c/points/count?consistency=sometimes",
        Some(json!({})),
    );
    assert_eq!(status, 400, "{answer}");
    let (status, _) = nodes[2].call(
        "POST",
        "/collections/c/points/count",
        Some(json!({"filter": {"must": [{"nonsense": 1}]}})),
    );
    assert_eq!(status, 400);
    assert!(nodes[2]
        .ok("DELETE", "/collections/c", None)
        .as_bool()
        .unwrap());
    assert!(!nodes[0]
        .ok("DELETE", "/collections/c", None)
        .as_bool()
        .unwrap());
    // Another peer learns of the deletion as it applies the metadata log: a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = nodes[1].call("POST", "/collections/c/points/count", Some(json!({})));
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still answered {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn removing_a_dead_peer_re_places_its_replicas_on_the_others() {
    let (mut nodes, _dirs) = start_cluster(4);
    nodes[0].create(
        "docs",
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 4, "replication_factor": 3}),
    );
    let mut rng = Rng(common::seed());
    let points: Vec<Value> = (0..200)
        .map(|id| json!({"id": id, "vector": rng.vector(4)}))
        .collect();
    nodes[1].upsert("docs", json!(points));
    let peer_id = |node: &Server| {
        node.ok("GET", "/cluster", None)["peer_id"]
            .as_u64()
            .unwrap()
    };

    // An unknown peer is not found; the one answering cannot remove itself.
    let (status, _) = nodes[0].call("DELETE", "/cluster/peer/77", None);
    assert_eq!(status, 404);
    let own = peer_id(&nodes[0]);
    let (status, answer) = nodes[0].call("DELETE", &format!("/cluster/peer/{own}"), None);
    assert_eq!(status, 400, "{answer}");

    let dead = peer_id(&nodes[3]);
    let (dead_dir, dead_p2p) = (nodes[3].data_dir.clone(), nodes[3].p2p.clone().unwrap());
    nodes.remove(3).kill9();
    assert_eq!(
        nodes[0].ok("DELETE", &format!("/cluster/peer/{dead}"), None),
        json!(true)
    );
    // The three left hold every shard again, three replicas each, with every point.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let placed = nodes[2].ok("GET", "/collections/docs/cluster", None);
        let shards = placed["shards"].as_array().unwrap().clone();
        let placed_ok = shards.iter().all(|s| {
            let replicas = s["replicas"].as_array().unwrap();
            replicas.len() == 3 && !replicas.contains(&json!(dead)) && s["leader"].is_u64()
        });
        let counts: Vec<u64> = nodes.iter().map(|n| count(n, "eventual")).collect();
        let peers = nodes[1].ok("GET", "/cluster", None)["peers"].clone();
        if placed_ok && counts.iter().all(|c| *c == 200) && peers.as_object().unwrap().len() == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not re-placed: {shards:?} counts {counts:?} peers {peers}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // And it takes writes.
    nodes[2].upsert("docs", json!([{"id": 1000, "vector": [1, 0, 0, 0]}]));
    assert_eq!(count(&nodes[0], "strong"), 201);

    // The removed peer, restarted on its data directory, learns it was removed and stops.
    let (ok, stderr) = exits(&dead_dir, port_of(&dead_p2p));
    assert!(!ok, "a removed peer started again: {stderr}");
    assert!(stderr.contains("was removed from the cluster"), "{stderr}");
    assert_eq!(count(&nodes[0], "strong"), 201);
}

/// Runs a cluster peer on `dir` that is expected to stop by itself; whether it exited
/// successfully, and what it printed on stderr.
fn exits(dir: &std::path::Path, p2p_port: u16) -> (bool, String) {
    let bin = std::env::var("VECDB_BIN").unwrap_or(env!("CARGO_BIN_EXE_vecdb").into());
    let mut command = std::process::Command::new(bin);
    command.args([
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--host",
        "127.0.0.1",
        "--data-dir",
    ]);
    command.arg(dir).env("RUST_LOG", "warn");
    for (key, value) in common::cluster::peer_env(p2p_port, None) {
        command.env(key, value);
    }
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

#[test]
fn large_batches_replicate_to_every_replica() {
    let (nodes, _dirs) = start_cluster(3);
    nodes[0].create(
        "big",
        json!({"vectors": {"size": 256, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3}),
    );
    // One Raft entry of about 4 MB: past the default body limits of HTTP frameworks.
    let mut rng = Rng(common::seed());
    let points: Vec<Value> = (0..1200)
        .map(|id| json!({"id": id, "vector": rng.vector(256)}))
        .collect();
    nodes[1].upsert("big", json!(points));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for node in &nodes {
        loop {
            let path = "/collections/big/points/count?consistency=eventual";
            let counted = node.ok("POST", path, Some(json!({})))["count"].as_u64();
            if counted == Some(1200) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a replica holds {counted:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Every point with its payload and vector, in id order, read at `strong`.
fn everything(server: &Server, name: &str) -> Value {
    let path = format!("/collections/{name}/points/scroll?consistency=strong");
    let body = json!({"limit": 1000, "with_payload": true, "with_vector": true});
    server.ok("POST", &path, Some(body))["points"].clone()
}

#[test]
fn a_snapshot_holds_every_shard_and_recovers_through_consensus() {
    let (nodes, _dirs) = start_cluster(3);
    // One replica per shard: the node asked holds one shard and streams the others from its
    // peers.
    let create = json!({
        "vectors": {"size": 4, "distance": "Euclid"},
        "shard_number": 3,
        "replication_factor": 1,
    });
    nodes[0].create("snap", create);
    let index = json!({"field_name": "kind", "field_schema": "keyword"});
    nodes[0].ok("PUT", "/collections/snap/index?wait=true", Some(index));
    let mut rng = Rng(common::seed());
    let points: Vec<Value> = (0..90)
        .map(|i| {
            let kind = ["a", "b"][i % 2];
            json!({"id": i, "vector": rng.vector(4), "payload": {"kind": kind}})
        })
        .collect();
    nodes[1].upsert("snap", json!(points));
    let before = everything(&nodes[2], "snap");
    assert_eq!(before.as_array().unwrap().len(), 90);

    let made = nodes[0].ok("POST", "/collections/snap/snapshots?wait=true", None);
    let name = made["name"].as_str().unwrap();
    let listed = nodes[0].ok("GET", "/collections/snap/snapshots", None);
    assert_eq!(listed[0]["name"], name, "{listed}");
    let url = format!("{}/collections/snap/snapshots/{name}", nodes[0].base);
    let file = nodes[0].client.get(url).send().unwrap().bytes().unwrap();
    assert_eq!(file.len() as u64, made["size"].as_u64().unwrap());
    let dir = common::temp_dir();
    let path = dir.path().join(name);
    std::fs::write(&path, &file).unwrap();

    // Changed after the snapshot, then recovered through another node.
    let gone = json!({"points": (0..30).collect::<Vec<_>>()});
    nodes[1].ok(
        "POST",
        "/collections/snap/points/delete?wait=true",
        Some(gone),
    );
    let edit = json!({"payload": {"kind": "z"}, "points": [40]});
    nodes[1].ok(
        "POST",
        "/collections/snap/points/payload?wait=true",
        Some(edit),
    );
    assert_ne!(everything(&nodes[0], "snap"), before);
    let location = json!({"location": format!("file://{}", path.display())});
    let recovered = nodes[2].ok(
        "PUT",
        "/collections/snap/snapshots/recover?wait=true",
        Some(location),
    );
    assert_eq!(recovered, json!(true));

    for node in &nodes {
        assert_eq!(everything(node, "snap"), before);
        let info = node.ok("GET", "/collections/snap", None);
        assert_eq!(info["config"]["params"]["shard_number"], 3, "{info}");
        assert!(info["payload_schema"]["kind"].is_object(), "{info}");
        let filter = json!({"filter": {"must": [{"key": "kind", "match": {"value": "a"}}]}});
        let path = "/collections/snap/points/count?consistency=strong";
        assert_eq!(node.ok("POST", path, Some(filter))["count"], 45);
    }
}
