//! `/collections/{name}/index`: create and drop payload indexes, and the `payload_schema`
//! that `GET /collections/{name}` reports.

use axum::extract::State;
use axum::routing::{delete, put};
use axum::Router;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{ApiJson, ApiPath, ApiQuery};
use super::models::UpdateResult;
use super::points::WriteParams;
use super::{ok, ApiResult, AppState};
use crate::collection::snapshot::Snapshot;
use crate::collection::IndexChange;
use crate::filter::index::{CreateFieldIndex, FieldType, IndexSpec, SegmentIndexes};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/index", put(create_index))
        .route("/collections/{name}/index/{field}", delete(delete_index))
}

/// One indexed field as `payload_schema` lists it.
#[derive(Serialize, ToSchema)]
pub struct PayloadIndexInfo {
    pub data_type: FieldType,
    /// The parameters the index was created with, if given as an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
    /// Live points with at least one value of the indexed kind.
    pub points: usize,
}

/// Create an index on a payload field, so filters on it are answered without reading
/// payloads; returns once every sealed segment has it.
#[utoipa::path(put, path = "/collections/{name}/index", tag = "indexes",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = CreateFieldIndex,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 400, body = super::error::ErrorResponse), (status = 404, body = super::error::ErrorResponse)))]
pub async fn create_index(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<CreateFieldIndex>,
) -> ApiResult<UpdateResult> {
    let (key, spec) = req.parse()?;
    let change = IndexChange::Create {
        name: req.field_name,
        key,
        spec,
    };
    change_index(&state, &name, change).await
}

/// Drop the index of a payload field; filters on it then read payloads.
#[utoipa::path(delete, path = "/collections/{name}/index/{field}", tag = "indexes",
    params(("name" = String, Path, description = "Collection name"), ("field" = String, Path, description = "Indexed field name"), WriteParams),
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn delete_index(
    State(state): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
    ApiQuery(_params): ApiQuery<WriteParams>,
) -> ApiResult<UpdateResult> {
    change_index(&state, &name, IndexChange::Drop { name: field }).await
}

async fn change_index(
    state: &AppState,
    name: &str,
    change: IndexChange,
) -> ApiResult<UpdateResult> {
    let collection = state.registry.get(name)?;
    let operation_id = collection.change_index(change, super::time_left()).await?;
    Ok(ok(UpdateResult {
        operation_id,
        status: "completed",
    }))
}

/// The indexed fields of a snapshot with their live point counts.
pub fn payload_schema(snapshot: &Snapshot) -> Map<String, Value> {
    snapshot
        .schema
        .iter()
        .map(|(name, spec)| {
            let info = PayloadIndexInfo {
                data_type: spec.data_type,
                params: spec.params.clone(),
                points: indexed_points(snapshot, name, spec),
            };
            let info = serde_json::to_value(info).unwrap_or(Value::Null);
            (name.clone(), info)
        })
        .collect()
}

/// Live points with a value for the index `name`; segments without that index (the append
/// segment, a segment waiting for its build) are indexed on the spot to count.
fn indexed_points(snapshot: &Snapshot, name: &str, spec: &IndexSpec) -> usize {
    let one = [(name.to_owned(), spec.clone())].into_iter().collect();
    snapshot
        .segments
        .iter()
        .map(|seg| {
            let built;
            let with_value = match seg.indexes.as_ref().and_then(|i| i.with_value(name)) {
                Some(bits) => bits,
                None => {
                    built = SegmentIndexes::build(&one, seg.data.len(), |o| &**seg.data.payload(o));
                    match built.with_value(name) {
                        Some(bits) => bits,
                        None => return 0,
                    }
                }
            };
            let mut live = with_value.clone();
            live.and_not(&seg.deleted);
            live.count()
        })
        .sum()
}
