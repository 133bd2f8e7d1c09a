//! The fault harness: three real `vecdb` processes on 127.0.0.1 whose every link goes through
//! a TCP proxy of the test's, eight clients writing and reading at every consistency level,
//! and a nemesis that each cycle, on a random node (leaders included), kills and restarts it,
//! stops it for seconds, or cuts its links both ways.
//!
//! After each heal: no acknowledged write is lost and no value that was never written
//! appears; every replica holds the same (id, version) set within 30 s. Throughout: an
//! isolated node never acknowledges a write and answers 503 within the timeout; no
//! `read_your_writes` or `monotonic` read goes back in time. At the end: the history of
//! `strong` reads and all writes is linearizable, per key.
//!
//! Short by default (a few cycles); `VECDB_FAULT_CYCLES=200` for the long run.

#[path = "../common/mod.rs"]
mod common;
mod linearizable;
mod proxy;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::SECRET;
use common::{Rng, Server};
use proxy::Proxy;
use serde_json::json;
use workload::{Shared, COLLECTION, KEYS};

const NODES: usize = 3;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The three nodes, their fixed ports, and the proxy of every directed link.
struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    api: Vec<u16>,
    p2p: Vec<u16>,
    /// `links[i][j]`: node i's way to node j.
    links: Vec<Vec<Option<Proxy>>>,
    servers: Vec<Option<Server>>,
}

impl Cluster {
    fn start() -> Cluster {
        let api: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let p2p: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let links = (0..NODES)
            .map(|i| {
                (0..NODES)
                    .map(|j| (i != j).then(|| Proxy::start(p2p[j])))
                    .collect()
            })
            .collect();
        let mut cluster = Cluster {
            dirs: (0..NODES).map(|_| common::temp_dir()).collect(),
            api,
            p2p,
            links,
            servers: (0..NODES).map(|_| None).collect(),
        };
        for i in 0..NODES {
            cluster.boot(i);
        }
        cluster
    }

    fn env(&self, i: usize) -> Vec<(&'static str, String)> {
        let dial: Vec<String> = (0..NODES)
            .filter(|j| *j != i)
            .map(|j| {
                let proxy = self.links[i][j].as_ref().unwrap();
                format!("127.0.0.1:{}=127.0.0.1:{}", self.p2p[j], proxy.port)
            })
            .collect();
        let mut env = vec![
            ("VECDB__CLUSTER__P2P_PORT", self.p2p[i].to_string()),
            ("VECDB__CLUSTER__SECRET", SECRET.to_string()),
            ("VECDB__CLUSTER__HEARTBEAT_MS", "100".to_string()),
            ("VECDB__CLUSTER__ELECTION_TIMEOUT_MS", "800".to_string()),
            ("VECDB__CLUSTER__RPC_TIMEOUT_MS", "1000".to_string()),
            ("VECDB__CLUSTER__DIAL", dial.join(",")),
        ];
        if i > 0 {
            let seed = format!("http://127.0.0.1:{}", self.p2p[0]);
            env.push(("VECDB__CLUSTER__BOOTSTRAP", seed));
        }
        env
    }

    fn boot(&mut self, i: usize) {
        let env = self.env(i);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.servers[i] = Some(Server::start_on(self.dirs[i].path(), self.api[i], &env));
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.api[i])
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.servers[i].as_ref().unwrap().child.id().to_string();
        Command::new("kill").args([signal, &pid]).status().unwrap();
    }

    /// Cuts (or heals) every link to and from node `i`.
    fn isolate(&self, i: usize, cut: bool) {
        for j in (0..NODES).filter(|j| *j != i) {
            for proxy in [&self.links[i][j], &self.links[j][i]] {
                let proxy = proxy.as_ref().unwrap();
                if cut {
                    proxy.cut()
                } else {
                    proxy.heal()
                }
            }
        }
    }
}

/// One fault, held for a few seconds and healed.
fn nemesis(cluster: &mut Cluster, shared: &Shared, rng: &mut Rng, cycle: usize) -> String {
    let node = rng.below(NODES as u64) as usize;
    let hold = Duration::from_millis(2_000 + rng.below(2_000));
    match cycle % 3 {
        0 => {
            cluster.servers[node].take().unwrap().kill9();
            std::thread::sleep(hold);
            cluster.boot(node);
            format!("kill -9 node {node}, restart")
        }
        1 => {
            cluster.signal(node, "-STOP");
            std::thread::sleep(hold);
            cluster.signal(node, "-CONT");
            format!("SIGSTOP node {node} for {hold:?}")
        }
        _ => {
            cluster.isolate(node, true);
            // Past an election timeout, the isolated node cannot commit anything.
            std::thread::sleep(Duration::from_millis(1_800));
            minority_refuses(&cluster.url(node), shared);
            std::thread::sleep(hold);
            cluster.isolate(node, false);
            format!("cut node {node} off for {hold:?}")
        }
    }
}

/// A write sent to an isolated node is never acknowledged and fails within its timeout.
fn minority_refuses(url: &str, shared: &Shared) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let key = KEYS; // a key of its own, outside the workload's
    let started = Instant::now();
    let answer = client
        .put(format!(
            "{url}/collections/{COLLECTION}/points?wait=true&timeout=2"
        ))
        .json(
            &json!({"points": [{"id": key, "vector": [0.5, 0.5], "payload": {"k": key, "v": 0}}]}),
        )
        .send();
    let took = started.elapsed();
    let status = answer.map(|r| r.status().as_u16()).unwrap_or(0);
    let mut violations = shared.violations.lock().unwrap();
    if status == 200 {
        violations.push(format!("an isolated node acknowledged a write ({url})"));
    }
    if status != 503 || took > Duration::from_millis(3_500) {
        violations.push(format!(
            "an isolated node answered {status} after {took:?}, not 503 within the 2 s timeout"
        ));
    }
}

/// A node's view of the collection: id → (version, value).
type View = BTreeMap<u64, (u64, Option<u64>)>;

/// Reads every point of the collection from each node's own replicas (eventual reads prefer
/// them) until all nodes hold the same (id, version) set; the set, or the error.
fn converged(cluster: &Cluster) -> Result<View, String> {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views: Vec<Result<View, String>> = (0..NODES)
            .map(|i| workload::list_all(&client, &cluster.url(i)))
            .collect();
        if let Ok(first) = &views[0] {
            if views.iter().all(|v| v.as_ref().ok() == Some(first)) {
                return Ok(first.clone());
            }
        }
        if Instant::now() > deadline {
            let summary: Vec<String> = views
                .iter()
                .map(|v| match v {
                    Ok(points) => format!("{} points", points.len()),
                    Err(e) => e.clone(),
                })
                .collect();
            return Err(format!("replicas differ after 30 s: {summary:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn nothing_acknowledged_is_lost_under_kills_stops_and_partitions() {
    let cycles: usize = std::env::var("VECDB_FAULT_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let mut cluster = Cluster::start();
    let admin = reqwest::blocking::Client::new();
    let created = admin
        .put(format!("{}/collections/{COLLECTION}", cluster.url(0)))
        .json(&json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 3, "replication_factor": 3}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().unwrap());

    let urls: Vec<String> = (0..NODES).map(|i| cluster.url(i)).collect();
    let shared = Arc::new(Shared::new(urls));
    let seed = common::seed();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let shared = shared.clone();
            std::thread::spawn(move || workload::client(c, &shared, seed))
        })
        .collect();
    let mut rng = Rng(seed);
    let started = Instant::now();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(1_000 + rng.below(1_000)));
        let fault = nemesis(&mut cluster, &shared, &mut rng, cycle);
        // Quiet the clients, let the cluster settle, and check the state it settled on.
        shared.pause(true);
        let state = converged(&cluster).unwrap_or_else(|e| panic!("after {fault}: {e}"));
        if let Err(e) = shared.nothing_lost(&state) {
            panic!("after {fault}: {e}");
        }
        eprintln!(
            "cycle {cycle}: {fault}; {} points agree on every replica",
            state.len()
        );
        shared.pause(false);
    }
    shared.stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let violations = shared.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");

    let history = shared.history.lock().unwrap().clone();
    let outcomes = shared.outcomes();
    // The counts first: a long run's history can take the checker a while.
    eprintln!(
        "{cycles} cycles in {:?}: {} writes acknowledged, none lost, {} failed, {} indeterminate; checking a history of {} operations",
        started.elapsed(),
        outcomes.0,
        outcomes.1,
        outcomes.2,
        history.len(),
    );
    let checking = Instant::now();
    let checked = linearizable::check(&history);
    eprintln!("history checked in {:?}", checking.elapsed());
    checked.expect("the strong history is linearizable");
    let keys: BTreeSet<u64> = history.iter().map(|o| o.key).collect();
    assert!(
        keys.len() > 1 && outcomes.0 > 0,
        "the workload did too little"
    );
}
