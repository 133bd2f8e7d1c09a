//! Vector search: the universal `/points/query` (a tree of prefetches, see [`eval`]), its
//! batch, and the older endpoints the clients still call (`/points/search`, `/recommend`,
//! `/discover` and their batches), which become query trees too.

mod base;
pub mod eval;
mod examples;
mod formula;
pub mod groups;
pub mod legacy;
pub(crate) mod local;
pub mod matrix;
pub mod model;
mod rank;

use crate::error::Invalid;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::collection::sparse_search::IdfStats;

use self::eval::Output;
use self::groups::{
    GroupsResult, IntoGroups, QueryGroupsRequest, RecommendGroupsRequest, SearchGroupsRequest,
};
use self::matrix::{MatrixOffsets, MatrixPairs, MatrixRequest};
use self::model::{LookupFrom, Node, Query};
use super::convert::check_with_payload;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson};
use super::models::{ReadParams, ScoredPoint, WithPayload, WithVector};
use super::{ok, ApiResult, AppState};
use crate::collection::plan::SegmentPlan;
use crate::collection::quantization::QuantizationSearchParams;
use crate::collection::search::Tuning;
use crate::filter::Filter;

pub use base::{Base, Scoring};

pub fn router() -> Router<AppState> {
    let route = |path: &str| format!("/collections/{{name}}/points/{path}");
    Router::new()
        .route(&route("query"), post(query))
        .route(&route("query/batch"), post(query_batch))
        .route(&route("search"), post(legacy::search))
        .route(&route("search/batch"), post(legacy::search_batch))
        .route(&route("recommend"), post(legacy::recommend))
        .route(&route("recommend/batch"), post(legacy::recommend_batch))
        .route(&route("discover"), post(legacy::discover))
        .route(&route("discover/batch"), post(legacy::discover_batch))
        .route(&route("query/groups"), post(query_groups))
        .route(&route("search/groups"), post(search_groups))
        .route(&route("recommend/groups"), post(recommend_groups))
        .route(&route("search/matrix/pairs"), post(matrix_pairs))
        .route(&route("search/matrix/offsets"), post(matrix_offsets))
}

/// Search tuning.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
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
    /// The collection-wide IDF counts of a sparse query's dimensions, which the collection
    /// layer of a cluster sends its shards so that every shard weighs the query alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub idf_stats: Option<IdfStats>,
    /// Which points the IDF weights of a sparse query (on a vector with `modifier: idf`) are
    /// counted over: `"global"` (the default, every point having the vector) or
    /// `{"corpus": filter}`, those of them matching the filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idf: Option<IdfParams>,
}

/// `params.idf`: the population IDF statistics are counted over.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum IdfParams {
    /// `"global"`: every point that has the vector.
    Scope(IdfScope),
    /// Those of them matching `corpus`.
    Corpus { corpus: crate::filter::Filter },
}

/// The named IDF scope.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdfScope {
    Global,
}

impl SearchParamsBody {
    /// The corpus filter of `idf`, when it narrows the population.
    pub fn idf_corpus(&self) -> Option<&crate::filter::Filter> {
        match &self.idf {
            Some(IdfParams::Corpus { corpus }) => Some(corpus),
            _ => None,
        }
    }
}

/// `params.acorn`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcornParams {
    pub enable: Option<bool>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_selectivity: Option<f64>,
}

/// `POST .../points/query` body: Qdrant's universal query.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Sub-queries whose results this one ranks (an object or a list, nested to any depth).
    #[schema(value_type = Option<Object>)]
    pub prefetch: Option<Value>,
    /// What ranks the points: a vector or a point id (nearest neighbours), or one of
    /// `{"nearest": v, "mmr": {...}}`, `{"recommend": {...}}`, `{"discover": {...}}`,
    /// `{"context": [...]}`, `{"order_by": ...}`, `{"fusion": "rrf" | "dbsf"}`,
    /// `{"rrf": {"k": ...}}`, `{"sample": "random"}`. Absent: points in id order.
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
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// Where vectors of points given by id are read (another collection).
    pub lookup_from: Option<LookupFrom>,
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

/// A request that becomes a query tree and the shape of its answer.
pub trait IntoTree {
    fn into_tree(self) -> Result<(Node, Output), ApiError>;
}

impl IntoTree for QueryRequest {
    fn into_tree(self) -> Result<(Node, Output), ApiError> {
        check_with_payload(&self.with_payload)?;
        let level = model::PrefetchBody {
            prefetch: self.prefetch,
            query: self.query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: self.limit,
            lookup_from: self.lookup_from,
        };
        let node = model::node(level, "")?;
        let out = Output {
            offset: self.offset.unwrap_or(0),
            with_payload: self.with_payload,
            with_vector: self.with_vector,
        };
        checked(&node, out.offset)?;
        Ok((node, out))
    }
}

/// Checks the limits, search parameters and combinations of every level before anything runs.
fn checked(node: &Node, offset: usize) -> Result<(), ApiError> {
    if node.limit == 0 {
        return Err(Invalid::below("limit", 0, 1).into());
    }
    check_params(&node.params, node.limit, offset)?;
    let bad = |m: &str| Err(ApiError::BadRequest(m.to_string()));
    match &node.query {
        None if !node.prefetch.is_empty() => {
            return bad("A query is needed to merge the prefetches.")
        }
        None if node.score_threshold.is_some() => {
            return bad("A query is needed to use the score_threshold.")
        }
        Some(Query::OrderBy(_)) if node.score_threshold.is_some() => {
            return bad("Can't use score_threshold with an order_by query.")
        }
        Some(Query::Fusion(_)) if !node.using.is_empty() => {
            return bad("Fusion queries cannot be combined with the 'using' field.")
        }
        Some(Query::Nearest { mmr: Some(mmr), .. }) => {
            check_params(&None, mmr.candidates_limit.unwrap_or(0), 0)
                .map(drop)
                .map_err(|_| {
                    let max = crate::limits::get().max_limit;
                    ApiError::BadRequest(format!(
                        "query.mmr.candidates_limit must be at most {max} (limits.max_limit)"
                    ))
                })?
        }
        _ => {}
    }
    for p in &node.prefetch {
        if p.limit < 1 {
            return Err(Invalid::below("prefetch.limit", p.limit, 1).into());
        }
        checked(p, 0)?;
    }
    Ok(())
}

/// Turns `params` into search tuning, refusing values out of range.
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

/// Query trees evaluated on one node, or on a cluster collection's shards.
pub async fn answer(
    state: &AppState,
    name: &str,
    trees: Vec<(Node, Output)>,
) -> Result<(Vec<Vec<ScoredPoint>>, Vec<SegmentPlan>), ApiError> {
    local::answer(state, name, trees).await
}

/// Parses each request of a batch, naming the failing entry (`searches[i]: ...`).
pub fn trees<T: IntoTree>(requests: Vec<T>) -> Result<Vec<(Node, Output)>, ApiError> {
    requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.into_tree().map_err(|e| with_index(e, i)))
        .collect()
}

fn with_index(e: ApiError, i: usize) -> ApiError {
    match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!("searches[{i}]: {m}")),
        ApiError::NotFound(m) => ApiError::NotFound(format!("searches[{i}]: {m}")),
        other => other,
    }
}

/// Ranks points by a query tree: nearest neighbours of a vector or a stored point, and every
/// other query kind of Qdrant's universal query, with prefetches nested to any depth.
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
    let (mut lists, plans) = answer(&state, &name, vec![req.into_tree()?]).await?;
    let points = lists.pop().unwrap_or_default();
    explained(QueryResponse { points }, plans, &read)
}

/// The success envelope, with `explain` (the per-segment plans) beside `result` when asked.
fn explained<T: Serialize + Send + 'static>(
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
    let (lists, _) = answer(&state, &name, trees(req.searches)?).await?;
    Ok(ok(lists
        .into_iter()
        .map(|points| QueryResponse { points })
        .collect()))
}

/// A grouped request on this node.
async fn grouped(
    state: &AppState,
    name: &str,
    req: impl IntoGroups,
) -> Result<GroupsResult, ApiError> {
    let (node, out, grouping) = req.into_groups()?;
    let source = local::Local::open(state, name)?;
    let result = groups::groups(&source, node, out, grouping).await?;
    source.finish();
    Ok(result)
}

/// The best points of a universal query, in groups by the values of a payload key.
#[utoipa::path(post, path = "/collections/{name}/points/query/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = QueryGroupsRequest,
    responses((status = 200, body = inline(super::Envelope<GroupsResult>))))]
pub async fn query_groups(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<QueryGroupsRequest>,
) -> ApiResult<GroupsResult> {
    Ok(ok(grouped(&state, &name, req).await?))
}

/// Nearest neighbours of a vector, in groups by the values of a payload key.
#[utoipa::path(post, path = "/collections/{name}/points/search/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchGroupsRequest,
    responses((status = 200, body = inline(super::Envelope<GroupsResult>))))]
pub async fn search_groups(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<SearchGroupsRequest>,
) -> ApiResult<GroupsResult> {
    Ok(ok(grouped(&state, &name, req).await?))
}

/// Recommendations, in groups by the values of a payload key.
#[utoipa::path(post, path = "/collections/{name}/points/recommend/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = RecommendGroupsRequest,
    responses((status = 200, body = inline(super::Envelope<GroupsResult>))))]
pub async fn recommend_groups(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<RecommendGroupsRequest>,
) -> ApiResult<GroupsResult> {
    Ok(ok(grouped(&state, &name, req).await?))
}

async fn matrix_here(
    state: &AppState,
    name: &str,
    req: MatrixRequest,
) -> Result<matrix::Matrix, ApiError> {
    let source = local::Local::open(state, name)?;
    let found = matrix::matrix(&source, req).await?;
    source.finish();
    Ok(found)
}

/// Distances within a random sample of points: each one's nearest among the others, as pairs.
#[utoipa::path(post, path = "/collections/{name}/points/search/matrix/pairs", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = MatrixRequest,
    responses((status = 200, body = inline(super::Envelope<MatrixPairs>))))]
pub async fn matrix_pairs(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(req): OptionalJson<MatrixRequest>,
) -> ApiResult<MatrixPairs> {
    Ok(ok(matrix_here(&state, &name, req).await?.pairs()))
}

/// The same matrix as offsets into the sampled ids (a sparse matrix's coordinates).
#[utoipa::path(post, path = "/collections/{name}/points/search/matrix/offsets", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = MatrixRequest,
    responses((status = 200, body = inline(super::Envelope<MatrixOffsets>))))]
pub async fn matrix_offsets(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    OptionalJson(req): OptionalJson<MatrixRequest>,
) -> ApiResult<MatrixOffsets> {
    Ok(ok(matrix_here(&state, &name, req).await?.offsets()))
}
