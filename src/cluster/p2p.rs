//! The internal port: Raft messages of every group, joins, forwarded proposals and shard
//! reads. Every request must carry the cluster secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::meta::MetaCommand;
use super::network::SECRET_HEADER;
use super::node::{ClusterNode, JoinRequest};
use super::requests::ShardRead;
use super::shard::ShardCommand;
use super::shard_snapshot::{stream, PointsRequest};
use super::types::{GroupId, NodeId};

/// The largest internal message accepted.
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// The internal API of `node`.
pub fn router(node: Arc<ClusterNode>, secret: String) -> Router {
    let secret: Arc<[u8]> = secret.into_bytes().into();
    Router::new()
        .route("/raft/{group}/{rpc}", post(raft_message))
        .route("/cluster/join", post(join))
        .route("/cluster/ping", post(|| async { Json(()) }))
        .route("/cluster/members", post(members))
        .route("/cluster/replicas", post(replicas))
        .route("/cluster/remove", post(remove))
        .route("/meta/read_index", post(meta_read_index))
        .route("/meta/propose", post(propose))
        .route("/shard/{group}/propose", post(propose_shard))
        .route("/shard/{group}/read", post(read_shard))
        .route("/shard/{group}/status", post(shard_status))
        .route("/shard/{group}/points", post(shard_points))
        .with_state(node)
        // Appends carry batches of vectors and snapshots come in chunks: far past axum's
        // default 2 MB, which would refuse them for ever and stall replication.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .layer(middleware::from_fn(move |req, next| {
            check_secret(secret.clone(), req, next)
        }))
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "status": { "error": message.into() } });
    (status, Json(body)).into_response()
}

async fn check_secret(secret: Arc<[u8]>, req: Request, next: Next) -> Response {
    let given = req.headers().get(SECRET_HEADER).map(|v| v.as_bytes());
    match given {
        Some(given) if constant_time_eq::constant_time_eq(given, &secret) => next.run(req).await,
        Some(_) => refuse(StatusCode::FORBIDDEN, "wrong cluster secret"),
        None => refuse(
            StatusCode::UNAUTHORIZED,
            format!("the internal port needs the cluster secret in `{SECRET_HEADER}`"),
        ),
    }
}

async fn raft_message(
    State(node): State<Arc<ClusterNode>>,
    Path((group, rpc)): Path<(GroupId, String)>,
    body: Bytes,
) -> Response {
    // A group placed a moment ago may not have started here yet: its peers' first messages
    // wait for it briefly instead of failing.
    let mut endpoint = node.endpoint(group);
    for _ in 0..40 {
        if endpoint.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        endpoint = node.endpoint(group);
    }
    let Some(endpoint) = endpoint else {
        return refuse(StatusCode::NOT_FOUND, format!("no Raft group {group} here"));
    };
    match endpoint.handle(&rpc, &body).await {
        Ok(answer) => ([("content-type", super::wire::CONTENT_TYPE)], answer).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, e),
    }
}

/// This node's view of the metadata group's members, and the log index it is from: what a
/// peer rejoining from its data directory checks it was not removed with.
async fn members(State(node): State<Arc<ClusterNode>>) -> Response {
    let status = node.meta_status();
    let ids: Vec<NodeId> = status.members.keys().copied().collect();
    Json((ids, status.membership_index)).into_response()
}

async fn join(State(node): State<Arc<ClusterNode>>, Json(request): Json<JoinRequest>) -> Response {
    tracing::info!(peer_id = request.id, peer = %request.peer, "peer asks to join");
    Json(node.admit(request).await).into_response()
}

async fn propose(
    State(node): State<Arc<ClusterNode>>,
    Json(command): Json<MetaCommand>,
) -> Response {
    Json(node.propose_meta_here(command).await).into_response()
}

/// A write forwarded by the peer that received it, in the binary form of [`super::wire`], as
/// is the answer.
async fn propose_shard(
    State(node): State<Arc<ClusterNode>>,
    Path(group): Path<GroupId>,
    body: Bytes,
) -> Response {
    let command: ShardCommand = match super::wire::from_bytes(&body) {
        Ok(command) => command,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad proposal: {e}")),
    };
    let answer = node.propose_shard_here(group, command).await;
    match super::wire::to_bytes(&answer) {
        Ok(bytes) => ([("content-type", super::wire::CONTENT_TYPE)], bytes).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn read_shard(
    State(node): State<Arc<ClusterNode>>,
    Path(group): Path<GroupId>,
    Json(read): Json<ShardRead>,
) -> Response {
    Json(node.read_shard_here(group, read).await).into_response()
}

/// Streams this node's replica of a shard as a snapshot file, for a peer taking a snapshot
/// of the whole collection.
async fn shard_points(
    State(node): State<Arc<ClusterNode>>,
    Path(group): Path<GroupId>,
    Json(request): Json<PointsRequest>,
) -> Response {
    let wait = std::time::Duration::from_millis(request.wait_ms);
    match node.replica_snapshot(group, request.min_lsn, wait).await {
        Ok(snapshot) => stream(snapshot, format!("group {group}")).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn shard_status(
    State(node): State<Arc<ClusterNode>>,
    Path(group): Path<GroupId>,
) -> Response {
    Json(node.shard_status_here(group)).into_response()
}

/// The shard groups this node runs a replica of: what a drain waits to see empty.
async fn replicas(State(node): State<Arc<ClusterNode>>) -> Response {
    Json(node.replicas.groups()).into_response()
}

async fn remove(State(node): State<Arc<ClusterNode>>, Json(id): Json<u64>) -> Response {
    Json(node.remove_member_here(id).await).into_response()
}

async fn meta_read_index(State(node): State<Arc<ClusterNode>>) -> Response {
    Json(node.meta_read_index_here().await).into_response()
}
