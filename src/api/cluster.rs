//! `GET /cluster` and `GET /collections/{name}/cluster`: this node's view of the cluster and of
//! a collection's shards, in Qdrant's shapes plus vecdb's fields.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{delete, get};
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiPath, ApiQuery};
use super::{ok, ApiResult, AppState};
use crate::cluster::engine::{GroupStatus, Role};
use crate::cluster::meta::ClusterCollection;
use crate::cluster::node::ClusterNode;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cluster", get(status))
        .route(
            "/collections/{name}/cluster",
            get(collection_cluster).post(super::cluster_ops::update_cluster),
        )
        .route("/cluster/peer/{peer_id}", delete(remove_peer))
}

/// Query parameters of `DELETE /cluster/peer/{peer_id}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemovePeerParams {
    /// Remove the peer at once, without moving its replicas away first (for a peer that is
    /// gone, or will not come back).
    pub force: Option<bool>,
    /// Seconds to wait for the drain and the metadata group.
    pub timeout: Option<u64>,
}

/// Remove a peer. A peer that answers is drained first: its shard replicas move to the
/// remaining peers (each new replica catches up before the old one leaves its shard's group)
/// and the call waits for that; a dead one, or any with `force=true`, is removed at once and
/// its replicas re-placed. Then it leaves the metadata group. Progress shows in
/// `GET /collections/{name}/cluster`; a drain that outlasts `timeout` answers 503 and goes on.
#[utoipa::path(delete, path = "/cluster/peer/{peer_id}", tag = "cluster",
    params(("peer_id" = u64, Path, description = "The peer to remove"), RemovePeerParams),
    responses((status = 200, body = inline(super::Envelope<bool>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse), (status = 503, body = super::error::ErrorResponse)))]
pub async fn remove_peer(
    State(state): State<AppState>,
    ApiPath(peer_id): ApiPath<u64>,
    ApiQuery(params): ApiQuery<RemovePeerParams>,
) -> ApiResult<bool> {
    use crate::cluster::engine::ConsensusError;
    use crate::cluster::node::RemovePeerError;
    let node = state.cluster.as_ref().ok_or_else(|| {
        ApiError::BadRequest("cluster mode is disabled: there are no peers to remove".into())
    })?;
    let force = params.force.unwrap_or(false);
    node.remove_peer(peer_id, force, super::time_left())
        .await
        .map_err(|e| match e {
            RemovePeerError::Unknown(_) => ApiError::NotFound(e.to_string()),
            RemovePeerError::Refused(_) => ApiError::BadRequest(e.to_string()),
            RemovePeerError::Draining(_) => ApiError::Unavailable(e.to_string()),
            RemovePeerError::Consensus(ConsensusError::Rejected(why)) => ApiError::BadRequest(why),
            RemovePeerError::Consensus(e) => ApiError::Unavailable(e.to_string()),
        })?;
    Ok(ok(true))
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
    let status = node.meta_status();
    let is_voter = status.votes(node.id);
    let GroupStatus {
        term,
        leader,
        role,
        last_log_index,
        applied,
        members,
        lag,
        ..
    } = status;
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

/// A shard replica on this node (Qdrant's `local_shards`).
#[derive(Serialize, ToSchema)]
pub struct LocalShard {
    pub shard_id: u32,
    pub points_count: usize,
    /// `Active`: a voting member of its shard's group.
    pub state: &'static str,
}

/// A shard replica on another peer (Qdrant's `remote_shards`).
#[derive(Serialize, ToSchema)]
pub struct RemoteShard {
    pub shard_id: u32,
    pub peer_id: u64,
    pub state: &'static str,
}

/// vecdb: a shard's Raft group, as one of its replicas sees it.
#[derive(Serialize, ToSchema)]
pub struct ShardGroupInfo {
    pub shard_id: u32,
    /// The Raft group of the shard.
    pub group: u64,
    /// The peers placed to hold it.
    pub replicas: Vec<u64>,
    /// The voting members of its group as `seen_from` knows them: the same as `replicas`
    /// once every move has finished.
    pub members: Vec<u64>,
    /// The peer whose view this is; none when no replica answered.
    pub seen_from: Option<u64>,
    pub leader: Option<u64>,
    pub term: Option<u64>,
    /// The highest LSN (log index) in that replica's log.
    pub last_log_index: Option<u64>,
    /// The highest LSN applied there.
    pub applied: Option<u64>,
    /// On the leader: entries each follower is behind.
    pub replication_lag: BTreeMap<u64, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A replica on its way to a peer (Qdrant's `shard_transfers` entry).
#[derive(Serialize, ToSchema)]
pub struct ShardTransferInfo {
    pub shard_id: u32,
    pub from: u64,
    pub to: u64,
    /// `true` when the source keeps its replica (a copy), `false` for a move.
    pub sync: bool,
    /// Always `snapshot`: a Raft snapshot of the shard, then the log.
    pub method: &'static str,
    pub comment: String,
}

/// The transfers a shard's placement and its group's members show: each placed peer that is
/// not a voter yet receives from a member that is no longer placed (a move) or, with none
/// left, from the leader (a copy).
fn transfers(shard_id: u32, placed: &[u64], status: &GroupStatus) -> Vec<ShardTransferInfo> {
    let voters = status.voters();
    let mut leaving = voters.iter().filter(|v| !placed.contains(v));
    let arriving = placed.iter().filter(|p| !voters.contains(p));
    arriving
        .map(|to| {
            let from = leaving.next();
            let comment = match status.lag.get(to) {
                Some(lag) => format!("catching up: {lag} log entries behind the leader"),
                None => "waiting to catch up from a snapshot of the shard".to_string(),
            };
            ShardTransferInfo {
                shard_id,
                from: from.or(status.leader.as_ref()).copied().unwrap_or_default(),
                to: *to,
                sync: from.is_none(),
                method: "snapshot",
                comment,
            }
        })
        .collect()
}

/// `GET /collections/{name}/cluster` result.
#[derive(Serialize, ToSchema)]
pub struct CollectionClusterInfo {
    pub peer_id: u64,
    pub shard_count: usize,
    pub local_shards: Vec<LocalShard>,
    pub remote_shards: Vec<RemoteShard>,
    /// Replicas being moved or copied: placed on a peer that is not yet a voting member of
    /// the shard's group.
    pub shard_transfers: Vec<ShardTransferInfo>,
    /// vecdb: each shard's leader, term and LSNs.
    pub shards: Vec<ShardGroupInfo>,
}

/// Where a collection's shards are: on one node, its single local shard.
#[utoipa::path(get, path = "/collections/{name}/cluster", tag = "cluster",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<CollectionClusterInfo>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn collection_cluster(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<CollectionClusterInfo> {
    let collection = state.registry.get(&name)?;
    Ok(ok(CollectionClusterInfo {
        peer_id: 0,
        shard_count: 1,
        local_shards: vec![LocalShard {
            shard_id: 0,
            points_count: collection.snapshot().points_count(),
            state: "Active",
        }],
        remote_shards: Vec::new(),
        shard_transfers: Vec::new(),
        shards: Vec::new(),
    }))
}

/// A cluster collection's shards: the replicas here and elsewhere, and each group's state.
pub async fn cluster_collection_info(
    node: &ClusterNode,
    collection: &ClusterCollection,
    local_points: impl Fn(u64) -> Option<usize>,
) -> CollectionClusterInfo {
    let mut info = CollectionClusterInfo {
        peer_id: node.id,
        shard_count: collection.shards.len(),
        local_shards: Vec::new(),
        remote_shards: Vec::new(),
        shard_transfers: Vec::new(),
        shards: Vec::new(),
    };
    let statuses = collection.shards.iter().map(|p| node.shard_status(p));
    let statuses = futures::future::join_all(statuses).await;
    for ((shard_id, placement), status) in (0u32..).zip(&collection.shards).zip(statuses) {
        for peer_id in &placement.replicas {
            match local_points(placement.group).filter(|_| *peer_id == node.id) {
                Some(points_count) => info.local_shards.push(LocalShard {
                    shard_id,
                    points_count,
                    state: "Active",
                }),
                None => info.remote_shards.push(RemoteShard {
                    shard_id,
                    peer_id: *peer_id,
                    state: "Active",
                }),
            }
        }
        let mut group = ShardGroupInfo {
            shard_id,
            group: placement.group,
            replicas: placement.replicas.clone(),
            members: Vec::new(),
            seen_from: None,
            leader: None,
            term: None,
            last_log_index: None,
            applied: None,
            replication_lag: BTreeMap::new(),
            error: None,
        };
        match status {
            Ok((from, s)) => {
                group.seen_from = Some(from);
                group.leader = s.leader;
                group.term = Some(s.term);
                group.last_log_index = Some(s.last_log_index);
                group.applied = Some(s.applied);
                let moving = transfers(shard_id, &placement.replicas, &s);
                info.shard_transfers.extend(moving);
                group.members = s.voters().into_iter().collect();
                group.replication_lag = s.lag;
            }
            Err(e) => group.error = Some(e),
        }
        info.shards.push(group);
    }
    info
}
