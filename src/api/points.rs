//! `/collections/{name}/points`: upsert, retrieve, delete, payload edits, batches, scroll, count.

use crate::error::Invalid;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::convert::{check_with_payload, point_writes, record, selector, Spaces};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson};
use super::models::*;
use super::{ok, run_search, ApiResult, AppState};
use crate::collection::aggregate::ordered;
use crate::collection::ops::{Operation, UpdateMode};
use crate::point_id::PointId;

/// Default and largest page size of scroll.
const DEFAULT_SCROLL: usize = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/points", put(upsert).post(retrieve))
        .route("/collections/{name}/points/{id}", get(get_point))
        .route("/collections/{name}/points/delete", post(delete))
        .route(
            "/collections/{name}/points/payload",
            post(set_payload).put(overwrite_payload),
        )
        .route(
            "/collections/{name}/points/payload/delete",
            post(delete_payload),
        )
        .route(
            "/collections/{name}/points/payload/clear",
            post(clear_payload),
        )
        .route("/collections/{name}/points/batch", post(batch))
        .route("/collections/{name}/points/scroll", post(scroll))
        .route("/collections/{name}/points/count", post(count))
}

/// Query parameters of writes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// Wait until the change is applied and visible (`completed`) instead of only logged (`acknowledged`).
    pub wait: Option<bool>,
    /// Accepted for compatibility (a single node is always strongly ordered).
    pub ordering: Option<String>,
    /// Seconds to wait for the write (for room in the writer queue, and with `wait=true` for
    /// completion) before answering 503; shortens `service.request_timeout_sec`.
    pub timeout: Option<u64>,
}

async fn submit(
    state: &AppState,
    name: &str,
    ops: Vec<Operation>,
    wait: bool,
) -> Result<Vec<UpdateResult>, ApiError> {
    check_limits(&ops)?;
    let lsns = match super::distributed::cluster_collection(state, name) {
        Some((node, collection)) => {
            super::distributed::write(&node, &collection, ops, super::time_left()).await?
        }
        None => {
            let collection = state.registry.get(name)?;
            collection.update(ops, wait, super::time_left()).await?
        }
    };
    let status = if wait { "completed" } else { "acknowledged" };
    Ok(lsns
        .into_iter()
        .map(|operation_id| UpdateResult {
            operation_id,
            status,
        })
        .collect())
}

/// Refuses writes beyond `[limits]`: points per request, payload size and depth.
fn check_limits(ops: &[Operation]) -> Result<(), ApiError> {
    let limits = crate::limits::get();
    let mut points = 0usize;
    for op in ops {
        let (count, payloads): (usize, Vec<&serde_json::Map<String, Value>>) = match op {
            Operation::Upsert(writes) => {
                (writes.len(), writes.iter().map(|w| &w.payload).collect())
            }
            Operation::SetPayload {
                payload, selector, ..
            }
            | Operation::OverwritePayload { payload, selector } => (selector.ids(), vec![payload]),
            Operation::Delete(selector)
            | Operation::DeletePayload { selector, .. }
            | Operation::ClearPayload(selector)
            | Operation::DeleteVectors { selector, .. } => (selector.ids(), vec![]),
            Operation::UpdateVectors { updates, .. } => (updates.len(), vec![]),
            Operation::ConditionalUpsert { points, .. } => {
                (points.len(), points.iter().map(|w| &w.payload).collect())
            }
        };
        points += count;
        for payload in payloads {
            limits.check_payload(payload)?;
        }
    }
    if points > limits.max_points_per_request {
        return Err(ApiError::BadRequest(format!(
            "the request carries {points} points; the limit is {} (limits.max_points_per_request)",
            limits.max_points_per_request
        )));
    }
    Ok(())
}

pub(super) async fn submit_one(
    state: &AppState,
    name: &str,
    op: Operation,
    params: &WriteParams,
) -> ApiResult<UpdateResult> {
    let mut results = submit(state, name, vec![op], params.wait.unwrap_or(false)).await?;
    let result = results
        .pop()
        .ok_or_else(|| ApiError::Internal("writer returned no LSN".into()))?;
    Ok(ok(result))
}

fn upsert_op(spaces: &Spaces, body: Value) -> Result<Operation, ApiError> {
    let (insert, conditions) = PointInsert::from_json(body)?;
    let points = point_writes(spaces, insert)?;
    Ok(match conditions {
        Conditions {
            filter: None,
            mode: UpdateMode::Upsert,
        } => Operation::Upsert(points),
        Conditions { filter, mode } => Operation::ConditionalUpsert {
            points,
            filter,
            mode,
        },
    })
}

/// The vector spaces writes to `name` are checked against: the local collection's, or in
/// cluster mode the cluster collection's.
pub(super) fn spaces(state: &AppState, name: &str) -> Result<Spaces, ApiError> {
    if let Some((_, collection)) = super::distributed::cluster_collection(state, name) {
        return Ok(Spaces {
            dense: collection.config.spaces().into(),
            sparse: collection.config.sparse_spaces(),
        });
    }
    let snapshot = state.registry.get(name)?.snapshot();
    Ok(Spaces {
        dense: snapshot.spaces.clone(),
        sparse: snapshot.config.sparse_spaces(),
    })
}

/// Insert or replace points: `{"points": [{"id", "vector", "payload"}]}` or `{"batch": {"ids", "vectors", "payloads"}}`.
#[utoipa::path(put, path = "/collections/{name}/points", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body(content = PointInsertBody, description = "`{\"points\": [PointStruct]}` or `{\"batch\": Batch}`"),
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse)))]
pub async fn upsert(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<UpdateResult> {
    let op = upsert_op(&spaces(&state, &name)?, body)?;
    submit_one(&state, &name, op, &params).await
}

/// Retrieve points by id.
#[utoipa::path(post, path = "/collections/{name}/points", tag = "points",
    params(("name" = String, Path, description = "Collection name")),
    request_body = PointRequest,
    responses((status = 200, body = inline(super::Envelope<Vec<Record>>))))]
pub async fn retrieve(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<PointRequest>,
) -> ApiResult<Vec<Record>> {
    check_with_payload(&req.with_payload)?;
    let max = crate::limits::get().max_points_per_request;
    if req.ids.len() > max {
        return Err(ApiError::BadRequest(format!(
            "the request asks for {} points; the limit is {max} (limits.max_points_per_request)",
            req.ids.len()
        )));
    }
    let snapshot = state.registry.get(&name)?.snapshot();
    let mut seen = std::collections::HashSet::new();
    let records = req
        .ids
        .iter()
        .filter(|id| seen.insert(**id))
        .filter_map(|id| {
            let point = snapshot.get(*id)?;
            Some(record(
                &snapshot,
                *id,
                &point,
                &req.with_payload,
                &req.with_vector,
            ))
        })
        .collect();
    Ok(ok(records))
}

/// One point with its payload and vector.
#[utoipa::path(get, path = "/collections/{name}/points/{id}", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ("id" = PointId, Path, description = "Point id: unsigned integer or UUID")),
    responses((status = 200, body = inline(super::Envelope<Record>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn get_point(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Record> {
    let id = PointId::parse_str(&id)?;
    let snapshot = state.registry.get(&name)?.snapshot();
    let point = snapshot
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("No point with id {id} found")))?;
    Ok(ok(record(
        &snapshot,
        id,
        &point,
        &None,
        &Some(WithVector::All(true)),
    )))
}

/// Delete points by id or by filter.
#[utoipa::path(post, operation_id = "delete_points", path = "/collections/{name}/points/delete", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = PointsSelector,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>))))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<PointsSelector>,
) -> ApiResult<UpdateResult> {
    let op = Operation::Delete(selector(req.points, req.filter)?);
    submit_one(&state, &name, op, &params).await
}

fn set_payload_op(req: SetPayload, overwrite: bool) -> Result<Operation, ApiError> {
    let selector = selector(req.points, req.filter)?;
    if let Some(key) = &req.key {
        crate::filter::parse_path(key).map_err(|e| ApiError::BadRequest(format!("key: {e}")))?;
    }
    Ok(if overwrite {
        if req.key.is_some() {
            return Err(ApiError::BadRequest(
                "`key` is not allowed when overwriting a payload".into(),
            ));
        }
        Operation::OverwritePayload {
            payload: req.payload,
            selector,
        }
    } else {
        Operation::SetPayload {
            payload: req.payload,
            selector,
            key: req.key,
        }
    })
}

/// Merge keys into the payload of selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = SetPayload,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn set_payload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<SetPayload>,
) -> ApiResult<UpdateResult> {
    submit_one(&state, &name, set_payload_op(req, false)?, &params).await
}

/// Replace the whole payload of selected points.
#[utoipa::path(put, path = "/collections/{name}/points/payload", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = SetPayload,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>))))]
pub async fn overwrite_payload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<SetPayload>,
) -> ApiResult<UpdateResult> {
    submit_one(&state, &name, set_payload_op(req, true)?, &params).await
}

fn delete_payload_op(req: DeletePayload) -> Result<Operation, ApiError> {
    Ok(Operation::DeletePayload {
        keys: req.keys,
        selector: selector(req.points, req.filter)?,
    })
}

/// Remove payload keys from selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/delete", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = DeletePayload,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>))))]
pub async fn delete_payload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<DeletePayload>,
) -> ApiResult<UpdateResult> {
    submit_one(&state, &name, delete_payload_op(req)?, &params).await
}

/// Remove the whole payload of selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/clear", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = PointsSelector,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>))))]
pub async fn clear_payload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<PointsSelector>,
) -> ApiResult<UpdateResult> {
    let op = Operation::ClearPayload(selector(req.points, req.filter)?);
    submit_one(&state, &name, op, &params).await
}

/// `POST .../points/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperations {
    /// Each one object with one key: `upsert`, `delete`, `set_payload`, `overwrite_payload`,
    /// `delete_payload` or `clear_payload`.
    #[schema(value_type = Vec<Object>)]
    pub operations: Vec<Value>,
}

fn batch_op(spaces: &Spaces, i: usize, value: Value) -> Result<Operation, ApiError> {
    let at = |e: String| ApiError::BadRequest(format!("operations[{i}]: {e}"));
    let Value::Object(map) = value else {
        return Err(at("expected an object with one operation key".into()));
    };
    let mut entries = map.into_iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        return Err(at("expected exactly one operation key".into()));
    };
    match kind.as_str() {
        "upsert" => upsert_op(spaces, body).map_err(|e| at(e.to_string())),
        "delete" => {
            let s: PointsSelector = serde_path(body, &kind).map_err(|e| at(e.0))?;
            Ok(Operation::Delete(selector(s.points, s.filter)?))
        }
        "set_payload" => set_payload_op(serde_path(body, &kind).map_err(|e| at(e.0))?, false),
        "overwrite_payload" => set_payload_op(serde_path(body, &kind).map_err(|e| at(e.0))?, true),
        "delete_payload" => delete_payload_op(serde_path(body, &kind).map_err(|e| at(e.0))?),
        "clear_payload" => {
            let s: PointsSelector = serde_path(body, &kind).map_err(|e| at(e.0))?;
            Ok(Operation::ClearPayload(selector(s.points, s.filter)?))
        }
        "update_vectors" => {
            let req = serde_path(body, &kind).map_err(|e| at(e.0))?;
            super::vectors::update_vectors_op(spaces, req)
        }
        "delete_vectors" => {
            let req = serde_path(body, &kind).map_err(|e| at(e.0))?;
            super::vectors::delete_vectors_op(spaces, req)
        }
        other => Err(at(format!(
            "unknown operation `{other}`; expected upsert, delete, set_payload, overwrite_payload, delete_payload, clear_payload, update_vectors or delete_vectors"
        ))),
    }
}

/// Apply several operations in order, atomically: all of them or none.
#[utoipa::path(post, path = "/collections/{name}/points/batch", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = UpdateOperations,
    responses((status = 200, body = inline(super::Envelope<Vec<UpdateResult>>))))]
pub async fn batch(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<UpdateOperations>,
) -> ApiResult<Vec<UpdateResult>> {
    let spaces = spaces(&state, &name)?;
    let ops = req
        .operations
        .into_iter()
        .enumerate()
        .map(|(i, v)| batch_op(&spaces, i, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(
        submit(&state, &name, ops, params.wait.unwrap_or(false)).await?
    ))
}

/// A page size (`default` when absent), checked against `limits.max_limit`.
pub(super) fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    let max = crate::limits::get().max_limit;
    if limit == 0 {
        return Err(Invalid::below("limit", 0, 1).into());
    }
    if limit > max {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {max} (limits.max_limit), got {limit}"
        )));
    }
    Ok(limit)
}

/// List points in id order, a page at a time.
#[utoipa::path(post, path = "/collections/{name}/points/scroll", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = ScrollRequest,
    responses((status = 200, body = inline(super::Envelope<ScrollResult>))))]
pub async fn scroll(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(req): OptionalJson<ScrollRequest>,
) -> ApiResult<ScrollResult> {
    check_with_payload(&req.with_payload)?;
    let limit = page_limit(req.limit, DEFAULT_SCROLL)?;
    let snapshot = state.registry.get(&name)?.snapshot();
    let mut req = req;
    req.filter = snapshot.bind(req.filter.take());
    if let Some(order) = req.order_by.as_ref().filter(|v| !v.is_null()) {
        let order = super::aggregate::order_by(&snapshot, order)?;
        if req.offset.is_some() {
            return Err(ApiError::BadRequest(
                "offset cannot be combined with order_by; page with order_by.start_from".into(),
            ));
        }
        let result = run_search(&state, move || {
            let rows = ordered(&snapshot, &order, req.filter.as_ref(), limit);
            let points = rows
                .into_iter()
                .map(|(s, o, value)| {
                    let seg = &snapshot.segments[s];
                    let point = seg.point(o);
                    let mut r = record(
                        &snapshot,
                        seg.data.id(o),
                        &point,
                        &req.with_payload,
                        &req.with_vector,
                    );
                    r.order_value = Some(value);
                    r
                })
                .collect();
            ScrollResult {
                points,
                next_page_offset: None,
            }
        })
        .await?;
        return Ok(ok(result));
    }
    let result = run_search(&state, move || {
        let mut page: Vec<Record> = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for (id, point) in snapshot.scan(req.offset, req.filter.as_ref()) {
            if page.len() == limit {
                next = Some(id);
                break;
            }
            page.push(record(
                &snapshot,
                id,
                &point,
                &req.with_payload,
                &req.with_vector,
            ));
        }
        ScrollResult {
            points: page,
            next_page_offset: next,
        }
    })
    .await?;
    Ok(ok(result))
}

/// Count points, optionally matching a filter.
#[utoipa::path(post, path = "/collections/{name}/points/count", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = CountRequest,
    responses((status = 200, body = inline(super::Envelope<CountResult>))))]
pub async fn count(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(req): OptionalJson<CountRequest>,
) -> ApiResult<CountResult> {
    let snapshot: Arc<_> = state.registry.get(&name)?.snapshot();
    let exact = req.exact.unwrap_or(true);
    let count = match snapshot.bind(req.filter) {
        None => snapshot.points_count(),
        Some(filter) => {
            run_search(&state, move || {
                crate::collection::aggregate::count(&snapshot, Some(&filter), exact)
            })
            .await?
        }
    };
    Ok(ok(CountResult { count }))
}
