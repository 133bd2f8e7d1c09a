//! Cluster mode in the API. A cluster collection's requests are answered by the cluster:
//! collection changes through the metadata group, writes split by shard and committed by each
//! shard's group, reads sent to one replica per shard and merged ([`super::fan_out`]). The
//! handlers of single-node mode serve the rest unchanged.
//!
//! Every answer carries the consistency token (`x-vecdb-consistency-token`): the LSN per shard
//! group the client has now seen, the token it sent included. Reads at `monotonic` and
//! `read_your_writes` wait until their replica has applied that far.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::collections::{CollectionDescription, CollectionExistence, CollectionsResponse};
use super::error::{ApiError, ApiJson};
use super::models::UpdateResult;
use super::{ok, AppState};
use crate::cluster::engine::ConsensusError;
use crate::cluster::meta::{ClusterCollection, MetaCommand, MetaReply};
use crate::cluster::node::ClusterNode;
use crate::cluster::requests::ShardError;
use crate::cluster::ring;
use crate::cluster::route::{self, Token, TOKEN_HEADER};
use crate::collection::config::{
    validate_name, CollectionConfig, CreateCollection, UpdateCollection,
};
use crate::collection::ops::Operation;
use crate::filter::index::CreateFieldIndex;

tokio::task_local! {
    /// The current request's consistency token: what the client sent, and what it has seen since.
    static SESSION: RefCell<Token>;
}

/// Records that the current answer reflects `group` at `lsn`.
pub fn saw(group: u64, lsn: u64) {
    let _ = SESSION.try_with(|t| t.borrow_mut().see(group, lsn));
}

/// The LSN of `group` the client has seen, by its token.
pub fn seen(group: u64) -> u64 {
    SESSION.try_with(|t| t.borrow().get(group)).unwrap_or(0)
}

/// The cluster collection `name`, when this node is in a cluster and it exists.
pub fn cluster_collection(
    state: &AppState,
    name: &str,
) -> Option<(Arc<ClusterNode>, ClusterCollection)> {
    let node = state.cluster.as_ref()?;
    let collection = node.meta().state.resolve(name)?.1.clone();
    Some((node.clone(), collection))
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("Collection `{name}` doesn't exist!"))
}

/// Whether a route is a write, which the single-node handlers parse and hand to [`write`].
fn is_write(route: &str, method: &Method) -> bool {
    match route {
        // POST there retrieves points.
        "/collections/{name}/points" => method == Method::PUT,
        _ => WRITES.contains(&route),
    }
}

const WRITES: [&str; 7] = [
    "/collections/{name}/points/delete",
    "/collections/{name}/points/payload",
    "/collections/{name}/points/payload/delete",
    "/collections/{name}/points/payload/clear",
    "/collections/{name}/points/batch",
    "/collections/{name}/points/vectors",
    "/collections/{name}/points/vectors/delete",
];

/// The route layer of cluster mode; passes everything through on a single node.
pub async fn dispatch(
    State(state): State<AppState>,
    matched: MatchedPath,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let Some(node) = state.cluster.clone() else {
        return next.run(req).await;
    };
    let route = matched.as_str().to_string();
    if !route.starts_with("/collections") {
        return next.run(req).await;
    }
    let param = |wanted: &str| {
        params
            .iter()
            .find(|(key, _)| *key == wanted)
            .map(|(_, value)| value.to_string())
    };
    let (name, field) = (param("name"), param("field"));
    let token = match req.headers().get(TOKEN_HEADER).map(HeaderValue::to_str) {
        None => Token::default(),
        Some(Ok(raw)) => match Token::parse(raw) {
            Ok(token) => token,
            Err(e) => return ApiError::from(e).into_response(),
        },
        Some(Err(_)) => {
            let e = format!("{TOKEN_HEADER}: not ASCII");
            return ApiError::BadRequest(e).into_response();
        }
    };
    let answer = async move {
        let response = route_request(state, node, &route, name, field, req, next).await;
        (response, SESSION.with(|t| t.borrow().clone()))
    };
    let (mut response, token) = SESSION.scope(RefCell::new(token), answer).await;
    if !token.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&token.to_string()) {
            response.headers_mut().insert(TOKEN_HEADER, value);
        }
    }
    response
}

async fn route_request(
    state: AppState,
    node: Arc<ClusterNode>,
    route: &str,
    name: Option<String>,
    field: Option<String>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let Some(name) = name else {
        return match (route, method) {
            ("/collections", Method::GET) => list(&node).await.into_response(),
            _ => next.run(req).await,
        };
    };
    if (route, &method) == ("/collections/{name}", &Method::PUT) {
        let created = create(&state, &node, &name, req).await;
        return created.unwrap_or_else(IntoResponse::into_response);
    }
    // Shard replicas' local collections are not the API's to touch.
    if name.contains(crate::cluster::replicas::SHARD_SEPARATOR) {
        return not_found(&name).into_response();
    }
    // The snapshot handlers know cluster collections (recovering may create one), and the
    // alias handlers read the metadata group's aliases.
    // So do the shard replica operations.
    let replica_ops = (route, &method) == ("/collections/{name}/cluster", &Method::POST);
    if route.starts_with("/collections/{name}/snapshots")
        || route == "/collections/{name}/aliases"
        || replica_ops
    {
        return next.run(req).await;
    }
    let answer = match (route, &method) {
        ("/collections/{name}", &Method::DELETE) => delete(&node, &name).await,
        ("/collections/{name}/exists", &Method::GET) => {
            let exists = known(&node, &name).await.is_some();
            Ok(ok(CollectionExistence { exists }).into_response())
        }
        _ => {
            let Some((name, collection)) = known(&node, &name).await else {
                return not_found(&name).into_response();
            };
            if is_write(route, &method) {
                return next.run(req).await;
            }
            let target = super::fan_out::Target {
                state: &state,
                node: &node,
                name: &name,
                collection: &collection,
            };
            match (route, &method) {
                ("/collections/{name}", &Method::PATCH) => update(&target, req).await,
                ("/collections/{name}/index", &Method::PUT) => create_index(&target, req).await,
                ("/collections/{name}/cluster", &Method::GET) => {
                    let local = |group| {
                        let name = crate::cluster::replicas::local_name(&name, group);
                        let local = state.registry.get(&name).ok()?;
                        Some(local.snapshot().points_count())
                    };
                    let info =
                        super::cluster::cluster_collection_info(&node, &collection, local).await;
                    Ok(ok(info).into_response())
                }
                ("/collections/{name}/index/{field}", &Method::DELETE) => {
                    drop_index(&target, field.unwrap_or_default()).await
                }
                _ => target.read(route, req).await,
            }
        }
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// The cluster collection `name` names (directly or as an alias), with its own name. One this
/// node has not heard of may have been created through another peer a moment ago: the node
/// catches up with the metadata group first.
async fn known(node: &ClusterNode, name: &str) -> Option<(String, ClusterCollection)> {
    let found = |node: &ClusterNode| {
        let meta = node.meta();
        let (own, collection) = meta.state.resolve(name)?;
        Some((own.clone(), collection.clone()))
    };
    if let Some(hit) = found(node) {
        return Some(hit);
    }
    node.sync_meta(META_SYNC.min(super::time_left())).await;
    found(node)
}

/// How long a request waits for this node to catch up with the metadata group.
const META_SYNC: Duration = Duration::from_secs(2);

async fn list(node: &ClusterNode) -> impl IntoResponse {
    node.sync_meta(META_SYNC.min(super::time_left())).await;
    let collections = node
        .meta()
        .state
        .collections
        .keys()
        .map(|name| CollectionDescription { name: name.clone() })
        .collect();
    ok(CollectionsResponse { collections })
}

/// Commits a metadata change within the request's time, and waits until this node's view
/// has it, so the client's next request here sees its change.
pub(super) async fn propose(
    node: &ClusterNode,
    command: MetaCommand,
) -> Result<(u64, MetaReply), ApiError> {
    let unavailable = |e: String| {
        ApiError::Unavailable(format!(
            "the metadata group did not commit the change in time: {e}"
        ))
    };
    let (log_index, reply) = node
        .propose_meta(command, super::time_left())
        .await
        .map_err(|e| match e {
            ConsensusError::Rejected(why) => ApiError::BadRequest(why),
            e => unavailable(e.to_string()),
        })?;
    if !node.wait_meta(log_index, super::time_left()).await {
        return Err(unavailable(format!(
            "committed at {log_index}, not yet applied on this peer"
        )));
    }
    Ok((log_index, reply))
}

async fn create(
    state: &AppState,
    node: &ClusterNode,
    name: &str,
    req: Request,
) -> Result<Response, ApiError> {
    validate_name(name)?;
    let ApiJson(mut req) = ApiJson::<CreateCollection>::from_request(req, state).await?;
    let voters = voters(node);
    let defaults = &state.config.collection_defaults;
    let shards = req.shard_number.take().or(defaults.shard_number);
    let shards = shards.unwrap_or(voters.len() as u32);
    let factor = req
        .replication_factor
        .take()
        .or(defaults.replication_factor);
    let factor = factor.unwrap_or(1);
    let write_factor = req.write_consistency_factor.take().unwrap_or(1);
    check_sharding(shards, factor, write_factor, voters.len())?;
    let storage = &state.config.storage;
    let mut config = CollectionConfig::from_request(
        req,
        &state.config.collection_defaults,
        storage.sync_policy,
        storage.group_commit_interval_ms,
    )?;
    config.params.shard_number = shards;
    config.params.replication_factor = factor;
    config.params.write_consistency_factor = write_factor;
    let replicas = ring::place(name, shards, factor, &voters);
    let command = MetaCommand::CreateCollection {
        name: name.to_string(),
        config,
        replicas,
    };
    if let (_, MetaReply::Rejected(why)) = propose(node, command).await? {
        return Err(ApiError::Conflict(format!(
            "Collection `{name}` already exists! ({why})"
        )));
    }
    wait_until_writable(node, name).await?;
    Ok(ok(true).into_response())
}

/// The peers that vote in the metadata group: those replicas are placed on.
pub(super) fn voters(node: &ClusterNode) -> BTreeSet<u64> {
    let status = node.meta_status();
    let members = status.members.iter();
    members
        .filter(|(_, (_, voter))| *voter)
        .map(|(id, _)| *id)
        .collect()
}

pub(super) fn check_sharding(
    shards: u32,
    factor: u32,
    write_factor: u32,
    peers: usize,
) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    if !(1..=256).contains(&shards) {
        return bad(format!(
            "shard_number must be between 1 and 256, got {shards}"
        ));
    }
    if factor == 0 || factor as usize > peers {
        return bad(format!(
            "replication_factor must be between 1 and the number of peers ({peers}), got {factor}"
        ));
    }
    if write_factor == 0 || write_factor > factor {
        return bad(format!(
            "write_consistency_factor must be between 1 and replication_factor ({factor}), got {write_factor}"
        ));
    }
    Ok(())
}

/// Waits until every shard of a new collection has a leader that commits: an empty entry is
/// proposed to each, so the first write does not meet a group still electing.
pub(super) async fn wait_until_writable(node: &ClusterNode, name: &str) -> Result<(), ApiError> {
    let deadline = Instant::now() + super::time_left();
    let view = node.meta();
    let collection = view
        .state
        .collections
        .get(name)
        .ok_or_else(|| not_found(name))?;
    let ready = collection
        .shards
        .iter()
        .enumerate()
        .map(|(shard, placement)| node.propose_shard(shard, placement, Vec::new(), deadline));
    for answer in futures::future::join_all(ready).await {
        let (_, applied) = answer.map_err(|e| {
            ApiError::Unavailable(format!(
                "collection `{name}` was created, but not all its shards are ready yet: {e}"
            ))
        })?;
        applied?;
    }
    Ok(())
}

async fn delete(node: &ClusterNode, name: &str) -> Result<Response, ApiError> {
    let command = MetaCommand::DeleteCollection {
        name: name.to_string(),
    };
    let (_, reply) = propose(node, command).await?;
    Ok(ok(reply == MetaReply::Done).into_response())
}

async fn update(target: &super::fan_out::Target<'_>, req: Request) -> Result<Response, ApiError> {
    let ApiJson(req) = ApiJson::<UpdateCollection>::from_request(req, target.state).await?;
    let config = target.collection.config.updated(&req)?;
    let command = MetaCommand::UpdateCollection {
        name: target.name.to_string(),
        config,
    };
    propose(target.node, command).await?;
    Ok(ok(true).into_response())
}

async fn create_index(
    target: &super::fan_out::Target<'_>,
    req: Request,
) -> Result<Response, ApiError> {
    let ApiJson(req) = ApiJson::<CreateFieldIndex>::from_request(req, target.state).await?;
    let (key, spec) = req.parse()?;
    let mut schema = target.collection.payload_schema.clone();
    // One index per path, whatever its spelling.
    schema.retain(|n, _| !crate::filter::index::names_path(n, &key));
    schema.insert(req.field_name, spec);
    set_schema(target, schema).await
}

async fn drop_index(
    target: &super::fan_out::Target<'_>,
    field: String,
) -> Result<Response, ApiError> {
    let mut schema = target.collection.payload_schema.clone();
    schema.remove(&field);
    set_schema(target, schema).await
}

/// Commits a new payload schema, then waits (within the request's time) until every reachable
/// replica has built it, so a filter or facet right after finds the index everywhere.
async fn set_schema(
    target: &super::fan_out::Target<'_>,
    schema: crate::filter::index::PayloadSchema,
) -> Result<Response, ApiError> {
    let command = MetaCommand::SetPayloadSchema {
        name: target.name.to_string(),
        schema: schema.clone(),
    };
    let (log_index, _) = propose(target.node, command).await?;
    let built = target.wait_for_schema(&schema).await;
    Ok(ok(UpdateResult {
        operation_id: log_index,
        status: if built { "completed" } else { "acknowledged" },
    })
    .into_response())
}

/// Commits `ops` on the collection's shards: each shard's part in one entry, atomically, on
/// its leader; the parts of different shards independently. Returns, for each operation, the
/// highest LSN its shards gave (the token has each shard's own).
pub async fn write(
    node: &ClusterNode,
    collection: &ClusterCollection,
    ops: Vec<Operation>,
    time_left: Duration,
) -> Result<Vec<u64>, ApiError> {
    let count = ops.len();
    let deadline = Instant::now() + time_left;
    let parts = route::split(ops, collection.shards.len() as u32);
    let factor = collection.config.params.write_consistency_factor.max(1) as usize;
    let proposals = parts
        .into_iter()
        .enumerate()
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(shard, ops)| {
            let placement = &collection.shards[shard];
            async move {
                let (lsn, reply) = node.propose_shard(shard, placement, ops, deadline).await?;
                saw(placement.group, lsn);
                reply.map_err(ShardWriteError::Apply)?;
                if factor > 1 {
                    node.wait_replicas(shard, placement, lsn, factor, deadline)
                        .await?;
                }
                Ok::<u64, ShardWriteError>(lsn)
            }
        });
    let answers = futures::future::join_all(proposals).await;
    let done = answers.iter().filter(|a| a.is_ok()).count();
    let mut top = 0;
    for answer in answers {
        match answer {
            Ok(lsn) => top = top.max(lsn),
            Err(e) if done > 0 => {
                let e = ApiError::from(e);
                let more =
                    format!("{e} (the parts of this write for {done} other shard(s) were applied)");
                return Err(match e {
                    ApiError::BadRequest(_) => ApiError::BadRequest(more),
                    _ => ApiError::Unavailable(more),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(vec![top; count])
}

/// Why one shard's part of a write failed.
#[derive(Debug, thiserror::Error)]
enum ShardWriteError {
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Apply(crate::collection::CollectionError),
}

impl From<ShardWriteError> for ApiError {
    fn from(e: ShardWriteError) -> Self {
        match e {
            ShardWriteError::Shard(ShardError::Rejected(why)) => ApiError::BadRequest(why),
            ShardWriteError::Shard(e) => ApiError::Unavailable(e.to_string()),
            ShardWriteError::Apply(e) => e.into(),
        }
    }
}
