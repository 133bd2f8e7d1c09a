//! `/collections/{name}/points/vectors`: replacing and removing some vectors of existing
//! points, keeping their other vectors and their payload.

use axum::extract::State;
use axum::routing::{post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::convert::{selector, vector_updates, Slot, Spaces};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::models::{PointVectors, UpdateResult};
use super::points::{spaces, submit_one, WriteParams};
use super::{ApiResult, AppState};
use crate::collection::ops::Operation;
use crate::filter::Filter;
use crate::point_id::PointId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/points/vectors", put(update_vectors))
        .route(
            "/collections/{name}/points/vectors/delete",
            post(delete_vectors),
        )
}

/// `PUT .../points/vectors` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVectors {
    /// Points and their new vectors (the unnamed one, or some named ones).
    pub points: Vec<PointVectors>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
    /// Only points matching this filter are changed.
    pub update_filter: Option<Filter>,
}

/// `POST .../points/vectors/delete` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteVectors {
    /// Ids of the points to change; give this or `filter`.
    pub points: Option<Vec<PointId>>,
    /// The points to change; give this or `points`.
    pub filter: Option<Filter>,
    /// Names of the vectors to remove.
    pub vector: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

pub(super) fn update_vectors_op(
    spaces: &Spaces,
    req: UpdateVectors,
) -> Result<Operation, ApiError> {
    let updates = vector_updates(spaces, req.points)?;
    let filter = req.update_filter;
    Ok(Operation::UpdateVectors { updates, filter })
}

pub(super) fn delete_vectors_op(
    spaces: &Spaces,
    req: DeleteVectors,
) -> Result<Operation, ApiError> {
    if req.vector.is_empty() {
        return Err(ApiError::BadRequest(
            "vector: name at least one vector to delete".into(),
        ));
    }
    let (mut dense, mut sparse) = (Vec::new(), Vec::new());
    for name in &req.vector {
        match spaces.slot(name, "vector")? {
            Slot::Dense(i) => dense.push(i),
            Slot::Sparse(i) => sparse.push(i),
        }
    }
    Ok(Operation::DeleteVectors {
        selector: selector(req.points, req.filter)?,
        spaces: dense,
        sparse,
    })
}

/// Replace vectors of existing points, keeping their other vectors and their payload.
#[utoipa::path(put, path = "/collections/{name}/points/vectors", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = UpdateVectors,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn update_vectors(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<UpdateVectors>,
) -> ApiResult<UpdateResult> {
    let op = update_vectors_op(&spaces(&state, &name)?, req)?;
    submit_one(&state, &name, op, &params).await
}

/// Remove named vectors of selected points, keeping their other vectors and their payload.
#[utoipa::path(post, path = "/collections/{name}/points/vectors/delete", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WriteParams),
    request_body = DeleteVectors,
    responses((status = 200, body = inline(super::Envelope<UpdateResult>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn delete_vectors(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(req): ApiJson<DeleteVectors>,
) -> ApiResult<UpdateResult> {
    let op = delete_vectors_op(&spaces(&state, &name)?, req)?;
    submit_one(&state, &name, op, &params).await
}
