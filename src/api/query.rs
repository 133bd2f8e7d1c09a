//! Vector search: `/points/query` (and its batch), and the older `/points/search` forms.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::convert::{check_with_payload, payload_out, prepare, vector_out};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::models::{kind, parse_dense, ReadParams, ScoredPoint, WithPayload, WithVector};
use super::{ok, run_search, ApiResult, AppState};
use crate::collection::plan::SegmentPlan;
use crate::collection::quantization::QuantizationSearchParams;
use crate::collection::search::{search, SearchParams, Searched, Tuning};
use crate::collection::snapshot::Snapshot;
use crate::collection::Collection;
use crate::filter::Filter;
use crate::point_id::PointId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/points/query", post(query))
        .route("/collections/{name}/points/query/batch", post(query_batch))
        .route("/collections/{name}/points/search", post(search_legacy))
        .route(
            "/collections/{name}/points/search/batch",
            post(search_batch),
        )
}

/// Search tuning.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchParamsBody {
    /// Beam width of HNSW search; larger is more accurate and slower.
    pub hnsw_ef: Option<usize>,
    /// Scan exactly instead of using HNSW.
    pub exact: Option<bool>,
    /// Int8 traversal knobs: `ignore`, `rescore`, `oversampling`.
    pub quantization: Option<QuantizationSearchParams>,
    pub indexed_only: Option<bool>,
    /// Two-hop (ACORN-1) expansion for filters answered by payload indexes: `enable: false`
    /// never uses it; `max_selectivity` sets the share of a segment below which it is used
    /// (vecdb's default, 0.2, applies when absent).
    pub acorn: Option<AcornParams>,
}

/// `params.acorn`.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcornParams {
    pub enable: Option<bool>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_selectivity: Option<f64>,
}

/// `POST .../points/query` body (the nearest-neighbour subset of Qdrant's universal query).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// A vector, `{"nearest": vector}`, or a point id whose vector is the query.
    #[schema(value_type = Option<Object>)]
    pub query: Option<Value>,
    /// Name of the vector space to search ("" or absent: the unnamed one).
    pub using: Option<String>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub score_threshold: Option<f32>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    #[schema(value_type = Option<Object>)]
    pub prefetch: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub lookup_from: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/query` result.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct QueryResponse {
    pub points: Vec<ScoredPoint>,
}

/// `POST .../points/query/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequestBatch {
    pub searches: Vec<QueryRequest>,
}

/// `POST .../points/search` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A vector, or `{"name": "...", "vector": [...]}` for a named vector.
    #[schema(value_type = super::models::SearchVector)]
    pub vector: Value,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub limit: usize,
    pub offset: Option<usize>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/search/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequestBatch {
    pub searches: Vec<SearchRequest>,
}

/// A search fully checked against the collection, ready to run on a blocking thread.
struct Prepared {
    space: usize,
    /// None: no query vector; list points in id order.
    vector: Option<Vec<f32>>,
    limit: usize,
    offset: usize,
    filter: Option<Filter>,
    tuning: Tuning,
    score_threshold: Option<f32>,
    with_payload: Option<WithPayload>,
    with_vector: Option<WithVector>,
    /// A point used as the query is left out of its own results.
    exclude: Option<PointId>,
}

fn unsupported(value: &Option<Value>, what: &str) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`{what}` is not supported yet"
        ))),
    }
}

fn space_of(snapshot: &Snapshot, using: Option<&str>) -> Result<usize, ApiError> {
    let name = using.unwrap_or("");
    snapshot.space_index(name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Wrong input: Not existing vector name error: {name}"
        ))
    })
}

fn check_params(
    params: &Option<SearchParamsBody>,
    limit: usize,
    offset: usize,
) -> Result<Tuning, ApiError> {
    let p = params.clone().unwrap_or_default();
    let quantization = p.quantization.unwrap_or_default();
    quantization.validate("params.quantization")?;
    // A query that sets `acorn` chooses how the graph is searched, so it gets the graph.
    let code_scan_below = p.acorn.is_some().then_some(0.0);
    let two_hop_below = match p.acorn {
        None => None,
        Some(AcornParams {
            enable: Some(false),
            ..
        }) => Some(0.0),
        Some(AcornParams {
            max_selectivity: Some(s),
            ..
        }) if !(0.0..=1.0).contains(&s) => {
            return Err(ApiError::BadRequest(format!(
                "params.acorn.max_selectivity must be between 0 and 1, got {s}"
            )))
        }
        Some(AcornParams {
            max_selectivity, ..
        }) => max_selectivity,
    };
    let max = crate::limits::get().max_limit;
    if limit.saturating_add(offset) > max {
        return Err(ApiError::BadRequest(format!(
            "limit + offset must be at most {max} (limits.max_limit)"
        )));
    }
    if p.hnsw_ef.is_some_and(|ef| ef == 0 || ef > max) {
        return Err(ApiError::BadRequest(format!(
            "params.hnsw_ef must be between 1 and {max} (limits.max_limit)"
        )));
    }
    Ok(Tuning {
        ef: p.hnsw_ef,
        exact: p.exact.unwrap_or(false),
        quantization,
        code_scan_below,
        two_hop_below,
        exact_routing: false,
    })
}

fn prepare_query(snapshot: &Snapshot, req: QueryRequest) -> Result<Prepared, ApiError> {
    unsupported(&req.prefetch, "prefetch")?;
    unsupported(&req.lookup_from, "lookup_from")?;
    check_with_payload(&req.with_payload)?;
    let space = space_of(snapshot, req.using.as_deref())?;
    let limit = req.limit.unwrap_or(10);
    let offset = req.offset.unwrap_or(0);
    let tuning = check_params(&req.params, limit, offset)?;
    let target = match req.query {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut map)) if map.contains_key("nearest") => {
            if let Some(extra) = map.keys().find(|k| *k != "nearest" && *k != "mmr") {
                return Err(ApiError::BadRequest(format!(
                    "query: unknown field `{extra}`"
                )));
            }
            unsupported(&map.remove("mmr"), "query.nearest.mmr")?;
            Some(map.remove("nearest").unwrap_or(Value::Null))
        }
        Some(Value::Object(map)) => {
            let kinds: Vec<&String> = map.keys().collect();
            return Err(ApiError::BadRequest(format!(
                "query: {kinds:?} queries are not supported yet; use a vector, {{\"nearest\": vector}} or a point id"
            )));
        }
        Some(other) => Some(other),
    };
    let (vector, exclude) = match target {
        None => (None, None),
        Some(v @ Value::Array(_)) => {
            let raw = parse_dense(&v, "query")?;
            (Some(prepare(&snapshot.spaces[space], raw, "query")?), None)
        }
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            let id =
                PointId::from_json(&v).map_err(|e| ApiError::BadRequest(format!("query: {e}")))?;
            let point = snapshot
                .get(id)
                .ok_or_else(|| ApiError::NotFound(format!("No point with id {id} found")))?;
            (Some(point.vector(space).to_vec()), Some(id))
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "query: expected a vector, {{\"nearest\": vector}} or a point id, got {}",
                kind(&other)
            )))
        }
    };
    Ok(Prepared {
        space,
        vector,
        limit,
        offset,
        filter: snapshot.bind(req.filter),
        tuning,
        score_threshold: req.score_threshold,
        with_payload: req.with_payload,
        with_vector: req.with_vector,
        exclude,
    })
}

fn prepare_search(snapshot: &Snapshot, req: SearchRequest) -> Result<Prepared, ApiError> {
    check_with_payload(&req.with_payload)?;
    let (using, raw) = match &req.vector {
        Value::Object(map) => {
            let name = map.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::BadRequest(
                    "vector: expected an array or {\"name\": ..., \"vector\": [...]}".into(),
                )
            })?;
            (
                Some(name.to_string()),
                map.get("vector").cloned().unwrap_or(Value::Null),
            )
        }
        other => (None, other.clone()),
    };
    let space = space_of(snapshot, using.as_deref())?;
    let offset = req.offset.unwrap_or(0);
    let tuning = check_params(&req.params, req.limit, offset)?;
    let raw = parse_dense(&raw, "vector")?;
    Ok(Prepared {
        space,
        vector: Some(prepare(&snapshot.spaces[space], raw, "vector")?),
        limit: req.limit,
        offset,
        filter: snapshot.bind(req.filter),
        tuning,
        score_threshold: req.score_threshold,
        with_payload: req.with_payload,
        with_vector: req.with_vector,
        exclude: None,
    })
}

/// One query's answer and how its segments were searched.
type Answer = (Vec<ScoredPoint>, Vec<SegmentPlan>);

/// Runs a prepared search on a snapshot (blocking).
fn execute(snapshot: &Snapshot, p: &Prepared) -> Answer {
    let distance = snapshot.spaces[p.space].distance;
    let Some(vector) = &p.vector else {
        let points = snapshot
            .scan(None, p.filter.as_ref())
            .skip(p.offset)
            .take(p.limit)
            .map(|(id, point)| scored(snapshot, p, id, &point, 0.0))
            .collect();
        return (points, Vec::new());
    };
    let extra = usize::from(p.exclude.is_some());
    let params = SearchParams {
        space: p.space,
        vector,
        limit: p.limit + extra,
        offset: p.offset,
        filter: p.filter.as_ref(),
        tuning: p.tuning,
        metric: distance.metric(),
    };
    let Searched { hits, plans } = search(snapshot, &params);
    let points = hits
        .into_iter()
        .filter_map(|hit| {
            let seg = &snapshot.segments[hit.segment];
            let point = seg.point(hit.offset);
            let id = seg.data.id(hit.offset);
            if Some(id) == p.exclude {
                return None;
            }
            let score = distance.score(hit.distance);
            let passes = p.score_threshold.is_none_or(|t| {
                if distance.higher_is_better() {
                    score >= t
                } else {
                    score <= t
                }
            });
            passes.then(|| scored(snapshot, p, id, &point, score))
        })
        .take(p.limit)
        .collect();
    (points, plans)
}

fn scored(
    snapshot: &Snapshot,
    p: &Prepared,
    id: PointId,
    point: &crate::collection::snapshot::PointRef,
    score: f32,
) -> ScoredPoint {
    ScoredPoint {
        id,
        version: point.version(),
        score,
        payload: payload_out(point.payload_map(), &p.with_payload, false),
        vector: vector_out(point, &snapshot.spaces, &p.with_vector, false),
    }
}

async fn run_all(
    state: &AppState,
    collection: Arc<Collection>,
    snapshot: Arc<Snapshot>,
    prepared: Vec<Prepared>,
) -> Result<Vec<Answer>, ApiError> {
    let started = std::time::Instant::now();
    let results: Vec<Answer> = run_search(state, move || {
        prepared.iter().map(|p| execute(&snapshot, p)).collect()
    })
    .await?;
    for (_, plans) in &results {
        collection.count_search(plans);
    }
    metrics::histogram!("vecdb_search_duration_seconds", "collection" => collection.name.clone())
        .record(started.elapsed().as_secs_f64());
    Ok(results)
}

/// Nearest neighbours of a vector (or of a stored point), with filters and paging.
#[utoipa::path(post, path = "/collections/{name}/points/query", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = QueryRequest,
    responses((status = 200, body = inline(super::Envelope<QueryResponse>)), (status = 400, body = super::error::ErrorResponse)))]
pub async fn query(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(read): ApiQuery<ReadParams>,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let mut results = answer(&state, &name, Batch::One(req), prepare_query).await?;
    let (points, plans) = results.pop().unwrap_or_default();
    explained(QueryResponse { points }, plans, &read)
}

/// The success envelope, with `explain` (the per-segment plans) beside `result` when asked.
fn explained<T: Serialize>(
    result: T,
    plans: Vec<SegmentPlan>,
    read: &ReadParams,
) -> Result<Response, ApiError> {
    if read.explain != Some(true) {
        return Ok(ok(result).into_response());
    }
    let mut body = serde_json::to_value(ok(result).0)
        .map_err(|e| ApiError::Internal(format!("response did not serialise: {e}")))?;
    body["explain"] = serde_json::json!({ "segments": plans });
    Ok(Json(body).into_response())
}

/// Several queries against one snapshot.
#[utoipa::path(post, path = "/collections/{name}/points/query/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = QueryRequestBatch,
    responses((status = 200, body = inline(super::Envelope<Vec<QueryResponse>>))))]
pub async fn query_batch(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<QueryRequestBatch>,
) -> ApiResult<Vec<QueryResponse>> {
    let results = answer(&state, &name, Batch::Many(req.searches), prepare_query).await?;
    Ok(ok(results
        .into_iter()
        .map(|(points, _)| QueryResponse { points })
        .collect()))
}

/// A single request, or the entries of a batch endpoint.
enum Batch<T> {
    One(T),
    Many(Vec<T>),
}

/// Checks every request against one snapshot, then runs them all on it. Errors of a batch name
/// the failing entry (`searches[i]: ...`).
async fn answer<T>(
    state: &AppState,
    name: &str,
    requests: Batch<T>,
    prepare: fn(&Snapshot, T) -> Result<Prepared, ApiError>,
) -> Result<Vec<Answer>, ApiError> {
    let collection = state.registry.get(name)?;
    let snapshot = collection.snapshot();
    let (requests, batch) = match requests {
        Batch::One(r) => (vec![r], false),
        Batch::Many(rs) => (rs, true),
    };
    let prepared = requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| prepare(&snapshot, r).map_err(|e| if batch { with_index(e, i) } else { e }))
        .collect::<Result<Vec<_>, _>>()?;
    run_all(state, collection, snapshot, prepared).await
}

fn with_index(e: ApiError, i: usize) -> ApiError {
    match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!("searches[{i}]: {m}")),
        ApiError::NotFound(m) => ApiError::NotFound(format!("searches[{i}]: {m}")),
        other => other,
    }
}

/// Nearest neighbours of a vector (the older search endpoint).
#[utoipa::path(post, path = "/collections/{name}/points/search", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchRequest,
    responses((status = 200, body = inline(super::Envelope<Vec<ScoredPoint>>))))]
pub async fn search_legacy(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(read): ApiQuery<ReadParams>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Response, ApiError> {
    let mut results = answer(&state, &name, Batch::One(req), prepare_search).await?;
    let (points, plans) = results.pop().unwrap_or_default();
    explained(points, plans, &read)
}

/// Several searches against one snapshot (the older batch endpoint).
#[utoipa::path(post, path = "/collections/{name}/points/search/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchRequestBatch,
    responses((status = 200, body = inline(super::Envelope<Vec<Vec<ScoredPoint>>>))))]
pub async fn search_batch(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<SearchRequestBatch>,
) -> ApiResult<Vec<Vec<ScoredPoint>>> {
    let results = answer(&state, &name, Batch::Many(req.searches), prepare_search).await?;
    Ok(ok(results.into_iter().map(|(points, _)| points).collect()))
}
