//! An elastic cluster of real processes: a peer that joins takes its share of the replicas
//! while writes go on, a live peer that is removed is drained first, and nothing acknowledged
//! is lost either way.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{peer_env, start_cluster, start_peer, wait_for_agreement};
use common::{Rng, Server};
use serde_json::{json, Value};

const POINTS: u64 = 300;

fn count(server: &Server, consistency: &str) -> u64 {
    let path = format!("/collections/docs/points/count?consistency={consistency}");
    let answer = server.ok("POST", &path, Some(json!({"exact": true})));
    answer["count"].as_u64().unwrap()
}

fn peer_id(node: &Server) -> u64 {
    node.ok("GET", "/cluster", None)["peer_id"]
        .as_u64()
        .unwrap()
}

/// Each shard's placed replicas, as `node` sees them.
fn placement(node: &Server) -> Vec<BTreeSet<u64>> {
    let info = node.ok("GET", "/collections/docs/cluster", None);
    let shards = info["shards"].as_array().unwrap().iter();
    shards.map(|s| ids(&s["replicas"])).collect()
}

fn ids(list: &Value) -> BTreeSet<u64> {
    let list = list.as_array().unwrap().iter();
    list.map(|p| p.as_u64().unwrap()).collect()
}

/// Whether every shard's Raft group has exactly its placed replicas as members, and every
/// replica holds the whole shard: the points held across `nodes` add up to `points` times
/// `factor`.
fn settled(nodes: &[&Server], points: u64, factor: u64) -> Result<(), String> {
    let info = nodes[0].ok("GET", "/collections/docs/cluster", None);
    for shard in info["shards"].as_array().unwrap() {
        let (placed, members) = (ids(&shard["replicas"]), ids(&shard["members"]));
        if members != placed || shard["leader"].is_null() {
            return Err(format!(
                "group members {members:?}, placed {placed:?}: {shard}"
            ));
        }
    }
    let mut held = 0;
    for node in nodes {
        let info = node.ok("GET", "/collections/docs/cluster", None);
        let local = info["local_shards"].as_array().unwrap().iter();
        held += local
            .map(|s| s["points_count"].as_u64().unwrap())
            .sum::<u64>();
    }
    if held != points * factor {
        return Err(format!(
            "replicas hold {held} points, not {}",
            points * factor
        ));
    }
    Ok(())
}

fn wait_settled(nodes: &[&Server], points: u64, factor: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match settled(nodes, points, factor) {
            Ok(()) => return,
            Err(why) => assert!(Instant::now() < deadline, "never settled: {why}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes batches of fresh points through `base` until `stop`, and returns the ids whose
/// writes were acknowledged.
fn writer(base: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (mut acked, mut next, mut rng) = (Vec::new(), 10_000u64, Rng(common::seed()));
        while !stop.load(Ordering::Acquire) {
            let batch: Vec<u64> = (next..next + 10).collect();
            next += 10;
            let points: Vec<Value> = batch
                .iter()
                .map(|id| json!({"id": id, "vector": rng.vector(4)}))
                .collect();
            let url = format!("{base}/collections/docs/points?wait=true");
            let sent = client.put(url).json(&json!({"points": points})).send();
            if sent.is_ok_and(|r| r.status().is_success()) {
                acked.extend(batch);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        acked
    })
}

/// Creates `docs` with `shards` shards of `factor` replicas, holding `POINTS` points.
fn create_docs(node: &Server, shards: u32, factor: u32) {
    node.create(
        "docs",
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": shards, "replication_factor": factor}),
    );
    let mut rng = Rng(common::seed());
    let points: Vec<Value> = (0..POINTS)
        .map(|id| json!({"id": id, "vector": rng.vector(4)}))
        .collect();
    node.upsert("docs", json!(points));
}

/// Every acknowledged id, read back with strong consistency.
fn assert_all_present(node: &Server, acked: &[u64]) {
    let ids: Vec<u64> = (0..POINTS).chain(acked.iter().copied()).collect();
    let found = node.ok(
        "POST",
        "/collections/docs/points?consistency=strong",
        Some(json!({"ids": ids, "with_payload": false})),
    );
    let found: BTreeSet<u64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    let missing: Vec<&u64> = ids.iter().filter(|id| !found.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

#[test]
fn a_joining_peer_takes_its_share_while_writes_go_on() {
    let (mut nodes, dirs) = start_cluster(3);
    create_docs(&nodes[0], 6, 2);
    let before = placement(&nodes[0]);

    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(nodes[1].base.clone(), stop.clone());
    let dir = common::temp_dir();
    let seed = nodes[0].p2p.clone().unwrap();
    nodes.push(start_peer(dir.path(), 0, &peer_env(0, Some(&seed))));
    let refs: Vec<&Server> = nodes.iter().collect();
    wait_for_agreement(&refs, 4);
    let joined = peer_id(&nodes[3]);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Release);
    let acked = writes.join().unwrap();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged during the join"
    );

    // Only the new peer gains replicas: 12 replicas over 4 peers, so 3 move to it.
    let after = placement(&nodes[3]);
    let mut gained = BTreeMap::<u64, usize>::new();
    for (was, now) in before.iter().zip(&after) {
        assert_eq!(now.len(), 2, "{after:?}");
        for peer in now.difference(was) {
            *gained.entry(*peer).or_default() += 1;
        }
    }
    assert_eq!(
        gained,
        BTreeMap::from([(joined, 3)]),
        "{before:?} -> {after:?}"
    );
    wait_settled(&refs, POINTS + acked.len() as u64, 2);
    for node in &nodes {
        assert_eq!(count(node, "strong"), POINTS + acked.len() as u64);
    }
    assert_all_present(&nodes[3], &acked);
    drop(dirs);
}

#[test]
fn removing_a_live_peer_drains_it_first() {
    let (mut nodes, _dirs) = start_cluster(4);
    create_docs(&nodes[0], 6, 2);
    let leaving = peer_id(&nodes[3]);
    let before = placement(&nodes[0]);
    let held = before.iter().filter(|r| r.contains(&leaving)).count();
    assert!(
        held > 0,
        "peer {leaving} holds nothing to drain: {before:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(nodes[1].base.clone(), stop.clone());
    let removed = nodes[0].ok(
        "DELETE",
        &format!("/cluster/peer/{leaving}?timeout=120"),
        None,
    );
    stop.store(true, Ordering::Release);
    let acked = writes.join().unwrap();
    assert_eq!(removed, json!(true));

    // Its replicas went to the others, which gained nothing else; it is no longer a peer.
    let after = placement(&nodes[0]);
    for (was, now) in before.iter().zip(&after) {
        assert!(!now.contains(&leaving), "{after:?}");
        let kept: BTreeSet<u64> = was.iter().copied().filter(|p| *p != leaving).collect();
        assert!(now.is_superset(&kept), "{before:?} -> {after:?}");
        assert_eq!(now.len(), 2);
    }
    let peers = nodes[0].ok("GET", "/cluster", None)["peers"].clone();
    assert!(peers.get(leaving.to_string()).is_none(), "{peers}");
    nodes.remove(3).kill9();
    let refs: Vec<&Server> = nodes.iter().collect();
    wait_settled(&refs, POINTS + acked.len() as u64, 2);
    assert_all_present(&nodes[2], &acked);
    // And it takes writes.
    nodes[2].upsert("docs", json!([{"id": 99_999, "vector": [1, 0, 0, 0]}]));
    assert_eq!(count(&nodes[0], "strong"), POINTS + acked.len() as u64 + 1);
}

/// The shard `shard`'s placed replicas and its group's voting members, as `node` sees them.
fn shard_view(node: &Server, shard: usize) -> (BTreeSet<u64>, BTreeSet<u64>, Value) {
    let info = node.ok("GET", "/collections/docs/cluster", None);
    let s = &info["shards"][shard];
    (ids(&s["replicas"]), ids(&s["members"]), info)
}

fn wait_shard(node: &Server, shard: usize, placed: &BTreeSet<u64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (now, members, info) = shard_view(node, shard);
        if &now == placed && &members == placed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "shard {shard} never reached {placed:?}: {info}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The points the replica of `shard` on `node` holds.
fn local_points(node: &Server, shard: u64) -> u64 {
    let info = node.ok("GET", "/collections/docs/cluster", None);
    let local = info["local_shards"].as_array().unwrap().iter();
    let held = local.filter(|s| s["shard_id"] == shard);
    held.map(|s| s["points_count"].as_u64().unwrap()).sum()
}

fn operate(node: &Server, body: Value) -> (u16, Value) {
    node.call("POST", "/collections/docs/cluster", Some(body))
}

#[test]
fn replicas_move_copy_and_drop_through_the_cluster_api() {
    let (nodes, _dirs) = start_cluster(3);
    create_docs(&nodes[0], 2, 1);
    let by_id: BTreeMap<u64, &Server> = nodes.iter().map(|n| (peer_id(n), n)).collect();
    let (placed, _, _) = shard_view(&nodes[0], 0);
    let from = *placed.first().unwrap();
    let others: Vec<u64> = by_id.keys().copied().filter(|p| *p != from).collect();
    let (to, third) = (others[0], others[1]);

    // What cannot apply changes nothing and says why.
    let refused = [
        (
            json!({"move_shard": {"shard_id": 0, "from_peer_id": to, "to_peer_id": third}}),
            400,
            "has no replica on peer",
        ),
        (
            json!({"move_shard": {"shard_id": 0, "from_peer_id": from, "to_peer_id": 77}}),
            400,
            "peer 77 is not in the cluster",
        ),
        (
            json!({"move_shard": {"shard_id": 9, "from_peer_id": from, "to_peer_id": to}}),
            400,
            "shard 9 does not exist",
        ),
        (
            json!({"replicate_shard": {"shard_id": 0, "from_peer_id": from, "to_peer_id": from}}),
            400,
            "already holds a replica",
        ),
        (
            json!({"move_shard": {"shard_id": 0, "from_peer_id": from, "to_peer_id": to, "method": "resharding_stream_records"}}),
            400,
            "resharding is not supported",
        ),
        (
            json!({"drop_replica": {"shard_id": 0, "peer_id": from}}),
            400,
            "last replica",
        ),
        (
            json!({"abort_transfer": {"shard_id": 0, "from_peer_id": from, "to_peer_id": to}}),
            404,
            "no transfer of shard 0",
        ),
        (json!({"split_shard": {"shard_id": 0}}), 400, "split_shard"),
    ];
    for (body, status, message) in refused {
        let (got, answer) = operate(&nodes[1], body.clone());
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            common::error(&answer).contains(message),
            "{body} -> {answer}"
        );
    }
    assert_eq!(shard_view(&nodes[2], 0).0, placed);

    // Move, then copy, then drop: the data follows, and every read stays complete.
    let path = "/collections/docs/cluster";
    let moved = json!({"move_shard": {"shard_id": 0, "from_peer_id": from, "to_peer_id": to, "method": "stream_records"}});
    assert_eq!(nodes[2].ok("POST", path, Some(moved)), json!(true));
    wait_shard(&nodes[0], 0, &BTreeSet::from([to]));
    let on_shard = local_points(by_id[&to], 0);
    assert!(on_shard > 0, "the moved replica holds nothing");
    assert_eq!(
        local_points(by_id[&from], 0),
        0,
        "the old replica is still listed"
    );

    let copied =
        json!({"replicate_shard": {"shard_id": 0, "from_peer_id": to, "to_peer_id": third}});
    assert_eq!(nodes[1].ok("POST", path, Some(copied)), json!(true));
    wait_shard(&nodes[0], 0, &BTreeSet::from([to, third]));
    assert_eq!(local_points(by_id[&third], 0), on_shard);

    let dropped = json!({"drop_replica": {"shard_id": 0, "peer_id": to}});
    assert_eq!(nodes[0].ok("POST", path, Some(dropped)), json!(true));
    wait_shard(&nodes[0], 0, &BTreeSet::from([third]));
    for node in &nodes {
        assert_eq!(count(node, "strong"), POINTS);
    }

    // On a single node there are no replicas to move.
    let (single, _dir) = Server::start();
    single.create("docs", json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let body = json!({"drop_replica": {"shard_id": 0, "peer_id": 1}});
    let (status, answer) = operate(&single, body);
    assert_eq!(status, 400, "{answer}");
    assert!(
        common::error(&answer).contains("cluster mode is disabled"),
        "{answer}"
    );
}

#[test]
fn a_transfer_to_a_dead_peer_shows_and_can_be_aborted() {
    let (mut nodes, _dirs) = start_cluster(3);
    nodes[0].create(
        "docs",
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 1}),
    );
    let dead = peer_id(&nodes[2]);
    // A shard that the peer about to die does not hold, and its holder.
    let info = nodes[0].ok("GET", "/collections/docs/cluster", None);
    let shard = info["shards"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| !ids(&s["replicas"]).contains(&dead))
        .expect("a shard elsewhere");
    let from = *shard_view(&nodes[0], shard).0.first().unwrap();
    nodes.remove(2).kill9();

    let path = "/collections/docs/cluster";
    let moved =
        json!({"move_shard": {"shard_id": shard, "from_peer_id": from, "to_peer_id": dead}});
    assert_eq!(nodes[0].ok("POST", path, Some(moved)), json!(true));
    // The move cannot finish: it shows as a transfer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = nodes[1].ok("GET", path, None);
        let transfers = info["shard_transfers"].as_array().unwrap().clone();
        let expected = json!({"shard_id": shard, "from": from, "to": dead, "sync": false});
        let shown = transfers.iter().any(|t| {
            ["shard_id", "from", "to", "sync"]
                .iter()
                .all(|k| t[k] == expected[k])
        });
        if shown {
            break;
        }
        assert!(Instant::now() < deadline, "no transfer shown: {info}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let abort =
        json!({"abort_transfer": {"shard_id": shard, "from_peer_id": from, "to_peer_id": dead}});
    assert_eq!(nodes[1].ok("POST", path, Some(abort)), json!(true));
    wait_shard(&nodes[0], shard, &BTreeSet::from([from]));
    let info = nodes[0].ok("GET", path, None);
    assert_eq!(info["shard_transfers"], json!([]), "{info}");
}
