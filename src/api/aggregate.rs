//! Aggregation and ordering over indexed fields: `POST /collections/{name}/facet` (how
//! many matching points hold each value), and the `order_by` of scroll.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath};
use super::{ok, run_search, ApiResult, AppState};
use crate::collection::aggregate::{facet as count_values, FacetHit, OrderBy, OrderValue};
use crate::collection::snapshot::Snapshot;
use crate::filter::index::{names_path, FieldType};
use crate::filter::{parse_path, Filter, JsonPath};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/facet", post(facet))
        .route("/collections/{name}/points/facet", post(facet_points))
}

/// `POST .../facet` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacetRequest {
    /// The payload field whose values are counted; it needs a keyword, integer, bool or uuid
    /// index.
    pub key: String,
    /// Only points matching this filter are counted.
    pub filter: Option<Filter>,
    /// How many values to return, most frequent first (default 10).
    pub limit: Option<usize>,
    /// Accepted; counts are always exact.
    pub exact: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../facet` result.
#[derive(Serialize, ToSchema)]
pub struct FacetResponse {
    pub hits: Vec<FacetHit>,
}

/// Count the values of an indexed field among the points a filter matches.
#[utoipa::path(post, path = "/collections/{name}/facet", tag = "points",
    params(("name" = String, Path, description = "Collection name")),
    request_body = FacetRequest,
    responses((status = 200, body = inline(super::Envelope<FacetResponse>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse)))]
pub async fn facet(
    state: State<AppState>,
    name: ApiPath<String>,
    req: ApiJson<FacetRequest>,
) -> ApiResult<FacetResponse> {
    count_facet(state, name, req).await
}

/// The same as `POST /collections/{name}/facet`, beside the other point operations.
#[utoipa::path(post, path = "/collections/{name}/points/facet", tag = "points",
    params(("name" = String, Path, description = "Collection name")),
    request_body = FacetRequest,
    responses((status = 200, body = inline(super::Envelope<FacetResponse>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse)))]
pub async fn facet_points(
    state: State<AppState>,
    name: ApiPath<String>,
    req: ApiJson<FacetRequest>,
) -> ApiResult<FacetResponse> {
    count_facet(state, name, req).await
}

async fn count_facet(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<FacetRequest>,
) -> ApiResult<FacetResponse> {
    let key = parse_path(&req.key).map_err(|e| ApiError::BadRequest(format!("key: {e}")))?;
    let limit = super::points::page_limit(req.limit, 10)?;
    let snapshot = state.registry.get(&name)?.snapshot();
    let faceted = [
        FieldType::Keyword,
        FieldType::Integer,
        FieldType::Bool,
        FieldType::Uuid,
    ];
    let kind = index_kind(&snapshot, &key, &faceted).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "key: facets count the values of a keyword, integer, bool or uuid index, and \"{}\" has none; create one with PUT /collections/{name}/index",
            req.key
        ))
    })?;
    let filter = snapshot.bind(req.filter);
    let hits = run_search(&state, move || {
        count_values(&snapshot, &key, kind, filter.as_ref(), limit)
    })
    .await?;
    Ok(ok(FacetResponse { hits }))
}

/// The kind of the first index on `key` among `kinds`.
fn index_kind(snapshot: &Snapshot, key: &JsonPath, kinds: &[FieldType]) -> Option<FieldType> {
    snapshot
        .schema
        .iter()
        .filter(|(field, _)| names_path(field, key))
        .map(|(_, spec)| spec.data_type)
        .find(|t| kinds.contains(t))
}

/// Reads scroll's `order_by`: a key, or `{key, direction, start_from}`; the key needs an
/// integer, float or datetime index.
pub fn order_by(snapshot: &Snapshot, value: &Value) -> Result<OrderBy, ApiError> {
    let bad = |m: String| ApiError::BadRequest(format!("order_by{m}"));
    let (key_text, direction, start_from) = match value {
        Value::String(key) => (key.as_str(), None, None),
        Value::Object(map) => {
            if let Some(other) = map
                .keys()
                .find(|k| !["key", "direction", "start_from"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    ".{other}: unknown field; expected key, direction or start_from"
                )));
            }
            let key = map.get("key").and_then(Value::as_str);
            let key = key.ok_or_else(|| bad(".key: expected a payload key (string)".into()))?;
            (key, map.get("direction"), map.get("start_from"))
        }
        other => return Err(bad(format!(": expected a key or an object, got {other}"))),
    };
    let key = parse_path(key_text).map_err(|e| bad(format!(".key: {e}")))?;
    let kinds = [FieldType::Integer, FieldType::Float, FieldType::Datetime];
    let kind = index_kind(snapshot, &key, &kinds).ok_or_else(|| {
        bad(format!(
            ".key: ordering reads an integer, float or datetime index, and \"{key_text}\" has none; create one with PUT /collections/{{name}}/index"
        ))
    })?;
    let descending = match direction {
        None | Some(Value::Null) => false,
        Some(Value::String(d)) if d == "asc" => false,
        Some(Value::String(d)) if d == "desc" => true,
        Some(other) => {
            return Err(bad(format!(
                ".direction: expected \"asc\" or \"desc\", got {other}"
            )))
        }
    };
    let start_from = match start_from {
        None | Some(Value::Null) => None,
        Some(v) => Some(OrderValue::parse(v).ok_or_else(|| {
            bad(format!(
                ".start_from: expected a number or a datetime, got {v}"
            ))
        })?),
    };
    Ok(OrderBy {
        key,
        kind,
        descending,
        start_from,
    })
}
