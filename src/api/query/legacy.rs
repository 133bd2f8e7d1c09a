//! The endpoints that came before the universal query and that the clients still call:
//! search, recommend and discover, each with a batch form. Each request becomes a query tree
//! of one level, so they answer exactly as `/points/query` with the same query does.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::eval::Output;
use super::model::{self, Input, LookupFrom, Node, Pair, Query, Strategy};
use super::{answer, explained, trees, IntoTree, SearchParamsBody};
use crate::api::convert::check_with_payload;
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::api::models::{ReadParams, ScoredPoint, WithPayload, WithVector};
use crate::api::{ok, ApiResult, AppState};
use crate::filter::Filter;

/// `POST .../points/search` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// A vector, or `{"name": "...", "vector": [...]}` for a named vector.
    #[schema(value_type = crate::api::models::SearchVector)]
    pub vector: Value,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub limit: usize,
    pub offset: Option<usize>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/recommend` body: points like the positive examples and unlike the
/// negative ones (vectors or point ids).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub positive: Vec<Value>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub negative: Vec<Value>,
    /// `average_vector` (default), `best_score` or `sum_scores`.
    pub strategy: Option<Strategy>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub limit: usize,
    pub offset: Option<usize>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
    /// The vector space to search ("" or absent: the unnamed one).
    pub using: Option<String>,
    pub lookup_from: Option<LookupFrom>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/discover` body: points near `target` within the zones the context pairs
/// mark out (without a target: the context alone).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    #[schema(value_type = Option<Object>)]
    pub target: Option<Value>,
    /// Pairs `{"positive": ..., "negative": ...}` of vectors or point ids.
    #[schema(value_type = Option<Vec<Object>>)]
    pub context: Option<Value>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub limit: usize,
    pub offset: Option<usize>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub using: Option<String>,
    pub lookup_from: Option<LookupFrom>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// One level: `query` over the collection, paged and shaped as asked.
struct Level {
    query: Query,
    using: Option<String>,
    filter: Option<Filter>,
    params: Option<SearchParamsBody>,
    limit: usize,
    offset: Option<usize>,
    score_threshold: Option<f32>,
    lookup_from: Option<LookupFrom>,
    with_payload: Option<WithPayload>,
    with_vector: Option<WithVector>,
}

impl Level {
    fn tree(self) -> Result<(Node, Output), ApiError> {
        check_with_payload(&self.with_payload)?;
        let node = Node {
            prefetch: Vec::new(),
            query: Some(self.query),
            using: self.using.unwrap_or_default(),
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: self.limit,
            lookup_from: self.lookup_from,
        };
        let out = Output {
            offset: self.offset.unwrap_or(0),
            with_payload: self.with_payload,
            with_vector: self.with_vector,
        };
        super::checked(&node, out.offset)?;
        Ok((node, out))
    }
}

impl IntoTree for SearchRequest {
    fn into_tree(self) -> Result<(Node, Output), ApiError> {
        let (using, raw) = match &self.vector {
            Value::Object(map) => {
                let name = map.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::BadRequest(
                        "vector: expected an array or {\"name\": ..., \"vector\": [...]}".into(),
                    )
                })?;
                let vector = map.get("vector").cloned().unwrap_or(Value::Null);
                (Some(name.to_string()), vector)
            }
            other => (None, other.clone()),
        };
        // A named sparse vector is `{"name": ..., "vector": {"indices": ..., "values": ...}}`.
        let target = match &raw {
            Value::Object(_) => Input::Sparse(crate::api::models::parse_sparse(&raw, "vector")?),
            _ => Input::Vector(crate::api::models::parse_dense(&raw, "vector")?),
        };
        Level {
            query: Query::Nearest { target, mmr: None },
            using,
            filter: self.filter,
            params: self.params,
            limit: self.limit,
            offset: self.offset,
            score_threshold: self.score_threshold,
            lookup_from: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
        }
        .tree()
    }
}

impl IntoTree for RecommendRequest {
    fn into_tree(self) -> Result<(Node, Output), ApiError> {
        let recommend = serde_json::json!({
            "positive": self.positive,
            "negative": self.negative,
            "strategy": self.strategy,
        });
        let query = model::query(Some(serde_json::json!({ "recommend": recommend })), "")?;
        Level {
            query: query.ok_or_else(|| ApiError::BadRequest("recommend: no examples".into()))?,
            using: self.using,
            filter: self.filter,
            params: self.params,
            limit: self.limit,
            offset: self.offset,
            score_threshold: self.score_threshold,
            lookup_from: self.lookup_from,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
        }
        .tree()
        .map_err(|e| strip_prefix(e, ".recommend"))
    }
}

impl IntoTree for DiscoverRequest {
    fn into_tree(self) -> Result<(Node, Output), ApiError> {
        let body = match self.target {
            Some(target) if !target.is_null() => {
                serde_json::json!({"discover": {"target": target, "context": self.context}})
            }
            _ => serde_json::json!({ "context": self.context.unwrap_or(Value::Array(Vec::new())) }),
        };
        let query = model::query(Some(body), "")?;
        let query =
            query.ok_or_else(|| ApiError::BadRequest("discover: no target or context".into()))?;
        if let Query::Context(pairs) = &query {
            require_context(pairs)?;
        }
        Level {
            query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            limit: self.limit,
            offset: self.offset,
            score_threshold: None,
            lookup_from: self.lookup_from,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
        }
        .tree()
        .map_err(|e| strip_prefix(e, ".discover"))
    }
}

fn require_context(pairs: &[Pair<Input>]) -> Result<(), ApiError> {
    if pairs.is_empty() {
        return Err(ApiError::BadRequest(
            "discover: give a target, or at least one context pair".into(),
        ));
    }
    Ok(())
}

/// Messages of the query parser name the field as the request has it (`positive[0]`, not
/// `.recommend.positive[0]`).
fn strip_prefix(e: ApiError, prefix: &str) -> ApiError {
    match e {
        ApiError::BadRequest(m) => {
            let m = m.strip_prefix(prefix).unwrap_or(&m);
            ApiError::BadRequest(m.trim_start_matches(['.', ':', ' ']).to_string())
        }
        other => other,
    }
}

macro_rules! endpoints {
    ($one:ident, $batch:ident, $request:ty, $batch_request:ident, $path:literal, $batch_path:literal, $what:literal) => {
        /// `{"searches": [...]}` of the batch endpoint.
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $batch_request {
            pub searches: Vec<$request>,
        }

        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "search",
            params(("name" = String, Path, description = "Collection name"), ReadParams),
            request_body = $request,
            responses((status = 200, body = inline(crate::api::Envelope<Vec<ScoredPoint>>))))]
        pub async fn $one(
            State(state): State<AppState>,
            ApiPath(name): ApiPath<String>,
            ApiQuery(read): ApiQuery<ReadParams>,
            ApiJson(req): ApiJson<$request>,
        ) -> Result<Response, ApiError> {
            let (mut lists, plans) = answer(&state, &name, vec![req.into_tree()?]).await?;
            explained(lists.pop().unwrap_or_default(), plans, &read)
        }

        /// The same, several at once against one snapshot.
        #[utoipa::path(post, path = $batch_path, tag = "search",
            params(("name" = String, Path, description = "Collection name"), ReadParams),
            request_body = $batch_request,
            responses((status = 200, body = inline(crate::api::Envelope<Vec<Vec<ScoredPoint>>>))))]
        pub async fn $batch(
            State(state): State<AppState>,
            ApiPath(name): ApiPath<String>,
            ApiJson(req): ApiJson<$batch_request>,
        ) -> ApiResult<Vec<Vec<ScoredPoint>>> {
            let (lists, _) = answer(&state, &name, trees(req.searches)?).await?;
            Ok(ok(lists))
        }
    };
}

endpoints!(
    search,
    search_batch,
    SearchRequest,
    SearchRequestBatch,
    "/collections/{name}/points/search",
    "/collections/{name}/points/search/batch",
    "Nearest neighbours of a vector (the older search endpoint)."
);
endpoints!(
    recommend,
    recommend_batch,
    RecommendRequest,
    RecommendRequestBatch,
    "/collections/{name}/points/recommend",
    "/collections/{name}/points/recommend/batch",
    "Points like the positive examples and unlike the negative ones (vectors or point ids)."
);
endpoints!(
    discover,
    discover_batch,
    DiscoverRequest,
    DiscoverRequestBatch,
    "/collections/{name}/points/discover",
    "/collections/{name}/points/discover/batch",
    "Points near a target, within the zones that context pairs mark out."
);
