//! `POST /collections/{name}/cluster`: Qdrant's operations on a collection's shard replicas
//! (`move_shard`, `replicate_shard`, `abort_transfer`, `drop_replica`).
//!
//! Each is a change of the shard's placement in the metadata group; the shard's Raft leader
//! then carries it out as a membership change (the new replica joins as a learner, catches up
//! from a snapshot of the shard and the log, is promoted, and only then does the old one
//! leave). So a replica always moves the same way, whichever transfer `method` is named, and
//! the call answers once the change is recorded, as Qdrant's does; the transfer shows in
//! `GET /collections/{name}/cluster` until it is done.

use std::collections::BTreeSet;

use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::{ok, ApiResult, AppState};
use crate::cluster::meta::{MetaCommand, ShardPlacement};
use crate::cluster::node::ClusterNode;
use crate::cluster::types::NodeId;

/// A replica to copy or move from one peer to another.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardTransfer {
    pub shard_id: u32,
    pub to_peer_id: u64,
    pub from_peer_id: u64,
    /// Accepted for compatibility: vecdb always transfers a replica as a Raft snapshot of the
    /// shard followed by the log.
    pub method: Option<TransferMethod>,
}

/// Qdrant's shard transfer methods.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferMethod {
    StreamRecords,
    Snapshot,
    WalDelta,
    ReshardingStreamRecords,
}

/// A transfer to abort.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortShardTransfer {
    pub shard_id: u32,
    pub to_peer_id: u64,
    pub from_peer_id: u64,
}

/// One replica of a shard.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    pub shard_id: u32,
    pub peer_id: u64,
}

/// `POST /collections/{name}/cluster` body: exactly one operation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClusterOperation {
    /// Move the replica on `from_peer_id` to `to_peer_id`.
    MoveShard(ShardTransfer),
    /// Add a replica on `to_peer_id`, copied from the shard's group.
    ReplicateShard(ShardTransfer),
    /// Stop a move or copy that has not finished: the shard keeps the replicas it had.
    AbortTransfer(AbortShardTransfer),
    /// Remove the replica on `peer_id` (not the shard's last one).
    DropReplica(Replica),
}

/// Query parameters of `POST /collections/{name}/cluster`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterOperationParams {
    /// Seconds to wait for the metadata group.
    pub timeout: Option<u64>,
}

/// Move, copy or drop a shard replica, or abort a transfer (cluster mode). Answers once the
/// new placement is recorded; `GET /collections/{name}/cluster` shows the transfer until the
/// shard's group has carried it out.
#[utoipa::path(post, path = "/collections/{name}/cluster", tag = "cluster",
    params(("name" = String, Path, description = "Collection name"), ClusterOperationParams),
    request_body = ClusterOperation,
    responses((status = 200, body = inline(super::Envelope<bool>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse)))]
pub async fn update_cluster(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_params): ApiQuery<ClusterOperationParams>,
    ApiJson(operation): ApiJson<ClusterOperation>,
) -> ApiResult<bool> {
    let node = state.cluster.as_ref().ok_or_else(|| {
        ApiError::BadRequest("cluster mode is disabled: a collection has one local shard".into())
    })?;
    let left = super::time_left();
    node.sync_meta(left).await;
    let view = node.meta();
    let (name, collection) = view
        .state
        .resolve(&name)
        .ok_or_else(|| ApiError::NotFound(format!("Collection `{name}` doesn't exist!")))?;
    let shard = operation.shard_id();
    let placement = collection.shards.get(shard as usize).ok_or_else(|| {
        let count = collection.shards.len();
        ApiError::BadRequest(format!(
            "shard {shard} does not exist: collection `{name}` has shards 0 to {}",
            count.saturating_sub(1)
        ))
    })?;
    let replicas = next_replicas(node, placement, &operation).await?;
    let placements = vec![(name.clone(), shard as usize, replicas)];
    node.propose_meta(MetaCommand::Place { placements }, super::time_left())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(ok(true))
}

impl ClusterOperation {
    fn shard_id(&self) -> u32 {
        match self {
            ClusterOperation::MoveShard(t) | ClusterOperation::ReplicateShard(t) => t.shard_id,
            ClusterOperation::AbortTransfer(a) => a.shard_id,
            ClusterOperation::DropReplica(r) => r.shard_id,
        }
    }
}

/// The shard's replicas after `operation`, or why it cannot apply.
async fn next_replicas(
    node: &ClusterNode,
    placement: &ShardPlacement,
    operation: &ClusterOperation,
) -> Result<Vec<NodeId>, ApiError> {
    let mut replicas = placement.replicas.clone();
    let shard = operation.shard_id();
    let holds = |peer: u64| -> Result<usize, ApiError> {
        let at = placement.replicas.iter().position(|p| *p == peer);
        at.ok_or_else(|| bad(format!("shard {shard} has no replica on peer {peer}")))
    };
    match operation {
        ClusterOperation::MoveShard(t) | ClusterOperation::ReplicateShard(t) => {
            if matches!(t.method, Some(TransferMethod::ReshardingStreamRecords)) {
                return Err(bad("resharding is not supported: use `stream_records`, `snapshot` or `wal_delta` (all move a replica the same way)".into()));
            }
            let from = holds(t.from_peer_id)?;
            check_target(node, placement, t.to_peer_id)?;
            if matches!(operation, ClusterOperation::MoveShard(_)) {
                replicas[from] = t.to_peer_id;
            } else {
                replicas.push(t.to_peer_id);
            }
        }
        ClusterOperation::DropReplica(r) => {
            let at = holds(r.peer_id)?;
            if replicas.len() == 1 {
                return Err(bad(format!(
                    "peer {} holds the last replica of shard {shard}; move it instead",
                    r.peer_id
                )));
            }
            replicas.remove(at);
        }
        ClusterOperation::AbortTransfer(a) => {
            let members = group_members(node, placement).await?;
            let moving_in = replicas.contains(&a.to_peer_id) && !members.contains(&a.to_peer_id);
            let from_ok = a.from_peer_id == a.to_peer_id || members.contains(&a.from_peer_id);
            if !moving_in || !from_ok {
                return Err(ApiError::NotFound(format!(
                    "there is no transfer of shard {shard} from peer {} to peer {} in progress",
                    a.from_peer_id, a.to_peer_id
                )));
            }
            // The target leaves the placement; a source that was moving away comes back.
            replicas.retain(|p| *p != a.to_peer_id);
            if !replicas.contains(&a.from_peer_id) {
                replicas.push(a.from_peer_id);
            }
        }
    }
    Ok(replicas)
}

/// A peer that may receive a replica of the shard: a voting member without one.
fn check_target(node: &ClusterNode, placement: &ShardPlacement, to: u64) -> Result<(), ApiError> {
    if !node.voters().contains(&to) {
        return Err(bad(format!("peer {to} is not in the cluster")));
    }
    if placement.replicas.contains(&to) {
        return Err(bad(format!(
            "peer {to} already holds a replica of this shard"
        )));
    }
    Ok(())
}

/// The voting members of the shard's Raft group, from whichever replica answers.
async fn group_members(
    node: &ClusterNode,
    placement: &ShardPlacement,
) -> Result<BTreeSet<NodeId>, ApiError> {
    let (_, status) = node
        .shard_status(placement)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(status.voters())
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}
