//! Cluster mode with real processes on 127.0.0.1: forming a cluster, losing the leader,
//! rejoining from the data directory, and the internal port's secret.

mod common;

use std::time::{Duration, Instant};

use common::Server;

use common::cluster::{
    peer_env, port_of, start_cluster, start_peer, status, wait_for_agreement, SECRET,
};

#[test]
fn three_peers_agree_fail_over_and_rejoin_from_their_data_directories() {
    let (mut servers, dirs) = start_cluster(3);
    let refs: Vec<&Server> = servers.iter().collect();
    let leader = wait_for_agreement(&refs, 3);
    let term = status(&servers[0])["raft_info"]["term"].as_u64().unwrap();
    let ids: Vec<u64> = servers
        .iter()
        .map(|s| status(s)["peer_id"].as_u64().unwrap())
        .collect();
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "peer ids collide: {ids:?}");

    // kill -9 the leader: the other two elect a new one in a later term.
    let at = ids.iter().position(|id| *id == leader).unwrap();
    let dead = servers.remove(at);
    let (api_port, p2p_port) = (port_of(&dead.base), port_of(dead.p2p.as_deref().unwrap()));
    dead.kill9();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = status(&servers[0]);
        let now = view["raft_info"]["leader"].as_u64();
        if now.is_some_and(|l| l != leader)
            && status(&servers[1])["raft_info"]["leader"].as_u64() == now
        {
            assert!(view["raft_info"]["term"].as_u64().unwrap() > term);
            break;
        }
        assert!(Instant::now() < deadline, "no new leader: {view}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Restarted on its directory and addresses, the old leader rejoins under its old id; a
    // bootstrap address pointing at itself does no harm, because it is not used.
    let env = peer_env(p2p_port, Some("127.0.0.1:1"));
    let back = start_peer(dirs[at].path(), api_port, &env);
    assert_eq!(status(&back)["peer_id"].as_u64(), Some(leader));
    servers.push(back);
    let refs: Vec<&Server> = servers.iter().collect();
    let agreed = wait_for_agreement(&refs, 3);
    assert!(ids.contains(&agreed));
}

#[test]
fn the_internal_port_needs_the_cluster_secret() {
    let dir = common::temp_dir();
    let server = start_peer(dir.path(), 0, &peer_env(0, None));
    let p2p = server.p2p.clone().unwrap();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{p2p}/raft/0/vote");
    let missing = client.post(&url).body("{}").send().unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = client
        .post(&url)
        .header("x-vecdb-cluster-secret", "not-the-secret")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let garbage = client
        .post(&url)
        .header("x-vecdb-cluster-secret", SECRET)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 400, "a malformed Raft message is refused");
    assert_eq!(status(&server)["status"], "enabled");

    // A peer with another secret is refused at once and says why.
    let other = common::temp_dir();
    let stderr = common::start_failure(
        other.path(),
        &[
            ("VECDB__CLUSTER__P2P_PORT", "0"),
            ("VECDB__CLUSTER__SECRET", "another-secret"),
            ("VECDB__CLUSTER__BOOTSTRAP", &format!("http://{p2p}")),
        ],
    );
    assert!(stderr.contains("refused this peer"), "{stderr}");
    // Cluster mode without a secret does not start.
    let stderr = common::start_failure(other.path(), &[("VECDB__CLUSTER__P2P_PORT", "0")]);
    assert!(stderr.contains("VECDB__CLUSTER__SECRET"), "{stderr}");
}

#[test]
fn a_single_node_reports_cluster_mode_disabled() {
    let (server, _dir) = Server::start();
    assert_eq!(status(&server)["status"], "disabled");
}
