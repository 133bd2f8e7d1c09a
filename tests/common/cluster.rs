//! Clusters of real `vecdb` processes on 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

pub const SECRET: &str = "cluster-test-secret";

/// Environment of a cluster peer: the internal port on `p2p_port` (0: any), fast but not
/// twitchy Raft timing, and `bootstrap` to join through.
pub fn peer_env(p2p_port: u16, bootstrap: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("VECDB__CLUSTER__P2P_PORT", p2p_port.to_string()),
        ("VECDB__CLUSTER__SECRET", SECRET.to_string()),
        ("VECDB__CLUSTER__HEARTBEAT_MS", "100".to_string()),
        ("VECDB__CLUSTER__ELECTION_TIMEOUT_MS", "800".to_string()),
    ];
    if let Some(url) = bootstrap {
        env.push(("VECDB__CLUSTER__BOOTSTRAP", format!("http://{url}")));
    }
    env
}

pub fn start_peer(dir: &std::path::Path, api_port: u16, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_on(dir, api_port, &env)
}

pub fn status(server: &Server) -> Value {
    server.ok("GET", "/cluster", None)
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Polls until every server reports `voters` voting peers and the same leader; returns it.
pub fn wait_for_agreement(servers: &[&Server], voters: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let views: Vec<Value> = servers.iter().map(|s| status(s)).collect();
        let leaders: Vec<Option<u64>> = views
            .iter()
            .map(|v| v["raft_info"]["leader"].as_u64())
            .collect();
        let agreed = leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]);
        let complete = views.iter().all(|v| {
            v["peers"].as_object().map_or(0, |p| p.len()) == voters
                && v["raft_info"]["is_voter"] == true
        });
        if agreed && complete {
            return leaders[0].unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no agreement on {voters} voters and one leader: {views:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `n` peers that form one cluster, and waits until they agree on a leader.
pub fn start_cluster(n: usize) -> (Vec<Server>, Vec<tempfile::TempDir>) {
    let dirs: Vec<_> = (0..n).map(|_| super::temp_dir()).collect();
    let first = start_peer(dirs[0].path(), 0, &peer_env(0, None));
    let seed = first.p2p.clone().expect("the internal port is printed");
    let mut servers = vec![first];
    for dir in &dirs[1..] {
        servers.push(start_peer(dir.path(), 0, &peer_env(0, Some(&seed))));
    }
    let refs: Vec<&Server> = servers.iter().collect();
    wait_for_agreement(&refs, n);
    (servers, dirs)
}
