//! `GET /cluster`: this node's view of the cluster, in Qdrant's shape plus vecdb's fields.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ok, ApiResult, AppState};
use crate::cluster::engine::{GroupStatus, Role};
use crate::cluster::node::ClusterNode;

pub fn router() -> Router<AppState> {
    Router::new().route("/cluster", get(status))
}

/// A peer's internal address, as Qdrant reports it.
#[derive(Serialize, ToSchema)]
pub struct PeerInfo {
    pub uri: String,
    /// vecdb: the peer's public API address.
    pub api: String,
}

/// The metadata group's state on this node (Qdrant's `raft_info`).
#[derive(Serialize, ToSchema)]
pub struct RaftInfo {
    pub term: u64,
    /// The highest log index applied here (vecdb applies right after commit).
    pub commit: u64,
    /// Entries this node holds that are not applied yet.
    pub pending_operations: u64,
    pub leader: Option<u64>,
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    pub is_voter: bool,
    /// vecdb: on the leader, how many entries each peer's log is behind.
    pub replication_lag: BTreeMap<u64, u64>,
}

/// `GET /cluster` result: `{"status": "disabled"}` on a single node.
#[derive(Serialize, ToSchema)]
pub struct ClusterStatus {
    /// `enabled` or `disabled`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers: Option<BTreeMap<u64, PeerInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raft_info: Option<RaftInfo>,
}

fn enabled(node: &ClusterNode) -> ClusterStatus {
    let GroupStatus {
        term,
        leader,
        role,
        last_log_index,
        applied,
        members,
        lag,
        ..
    } = node.meta_status();
    let is_voter = members.get(&node.id).is_some_and(|(_, voter)| *voter);
    let peers = members
        .into_iter()
        .map(|(id, (peer, _))| {
            let info = PeerInfo {
                uri: format!("http://{}/", peer.p2p),
                api: peer.api,
            };
            (id, info)
        })
        .collect();
    ClusterStatus {
        status: "enabled",
        peer_id: Some(node.id),
        peers: Some(peers),
        raft_info: Some(RaftInfo {
            term,
            commit: applied,
            pending_operations: last_log_index.saturating_sub(applied),
            leader,
            role: Some(role),
            is_voter,
            replication_lag: lag,
        }),
    }
}

/// The cluster as this node sees it: peers, the metadata group's term, leader and progress.
#[utoipa::path(get, path = "/cluster", tag = "cluster", responses((status = 200, body = ClusterStatus)))]
pub async fn status(State(state): State<AppState>) -> ApiResult<ClusterStatus> {
    Ok(ok(match &state.cluster {
        Some(node) => enabled(node),
        None => ClusterStatus {
            status: "disabled",
            peer_id: None,
            peers: None,
            raft_info: None,
        },
    }))
}
