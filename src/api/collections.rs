//! `/collections`: create, list, inspect, update and delete collections.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath};
use super::{ok, run_blocking, ApiResult, AppState};
use crate::collection::config::{
    validate_name, CollectionConfig, CreateCollection, UpdateCollection,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections", get(list))
        .route(
            "/collections/{name}",
            get(info).put(create).patch(update).delete(delete),
        )
        .route("/collections/{name}/exists", get(exists))
}

/// One entry of the collection list.
#[derive(Serialize, ToSchema)]
pub struct CollectionDescription {
    pub name: String,
}

/// `GET /collections` result.
#[derive(Serialize, ToSchema)]
pub struct CollectionsResponse {
    pub collections: Vec<CollectionDescription>,
}

/// `GET /collections/{name}` result.
#[derive(Serialize, ToSchema)]
pub struct CollectionInfo {
    /// `green`: fully indexed; `yellow`: an index build is running or waiting.
    pub status: &'static str,
    pub optimizer_status: &'static str,
    pub indexed_vectors_count: usize,
    pub points_count: usize,
    pub segments_count: usize,
    pub config: CollectionConfig,
    /// Indexed payload fields: their type, parameters and live point counts.
    #[schema(value_type = Object)]
    pub payload_schema: Map<String, Value>,
}

/// `GET /collections/{name}/exists` result.
#[derive(Serialize, ToSchema)]
pub struct CollectionExistence {
    pub exists: bool,
}

/// List all collections.
#[utoipa::path(get, path = "/collections", tag = "collections",
    responses((status = 200, body = inline(super::Envelope<CollectionsResponse>))))]
pub async fn list(State(state): State<AppState>) -> ApiResult<CollectionsResponse> {
    let collections = state
        .registry
        .names()
        .into_iter()
        .map(|name| CollectionDescription { name })
        .collect();
    Ok(ok(CollectionsResponse { collections }))
}

/// Status, counts and configuration of a collection.
#[utoipa::path(get, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<CollectionInfo>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn info(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<CollectionInfo> {
    let collection = state.registry.get(&name)?;
    let snap = collection.snapshot();
    Ok(ok(CollectionInfo {
        status: if snap.optimizing { "yellow" } else { "green" },
        optimizer_status: "ok",
        indexed_vectors_count: snap.indexed_points(),
        points_count: snap.points_count(),
        segments_count: snap.segments.len(),
        config: (*snap.config).clone(),
        payload_schema: super::indexes::payload_schema(&snap),
    }))
}

/// Whether a collection exists.
#[utoipa::path(get, path = "/collections/{name}/exists", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<CollectionExistence>))))]
pub async fn exists(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<CollectionExistence> {
    Ok(ok(CollectionExistence {
        exists: state.registry.get(&name).is_ok(),
    }))
}

/// Create a collection with one unnamed vector or several named ones.
#[utoipa::path(put, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    request_body = CreateCollection,
    responses((status = 200, body = inline(super::Envelope<bool>)), (status = 400, body = super::error::ErrorResponse), (status = 409, body = super::error::ErrorResponse)))]
pub async fn create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<CreateCollection>,
) -> ApiResult<bool> {
    validate_name(&name)?;
    let storage = &state.config.storage;
    let config = CollectionConfig::from_request(
        req,
        &state.config.collection_defaults,
        storage.sync_policy,
        storage.group_commit_interval_ms,
    )?;
    let registry = state.registry.clone();
    let max_wait = super::time_left();
    run_blocking(move || {
        registry
            .create(&name, config, max_wait)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(ok(true))
}

/// Change HNSW and optimizer settings; they apply to the next index build.
#[utoipa::path(patch, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    request_body = UpdateCollection,
    responses((status = 200, body = inline(super::Envelope<bool>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateCollection>,
) -> ApiResult<bool> {
    let collection = state.registry.get(&name)?;
    let next = collection.snapshot().config.updated(&req)?;
    collection.reconfigure(next, super::time_left()).await?;
    Ok(ok(true))
}

/// Delete a collection and all its data. `result` is false when it did not exist.
#[utoipa::path(delete, operation_id = "delete_collection", path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<bool>))))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<bool> {
    let registry = state.registry.clone();
    let max_wait = super::time_left();
    let deleted =
        run_blocking(move || registry.delete(&name, max_wait).map_err(ApiError::from)).await?;
    Ok(ok(deleted))
}
