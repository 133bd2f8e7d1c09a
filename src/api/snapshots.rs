//! `/collections/{name}/snapshots`: create, list, download, delete, recover and upload
//! collection snapshots, in Qdrant's shape.
//!
//! Recovery replaces the collection with the snapshot's configuration and points. The file is
//! checked whole before anything is touched; the points are then loaded with indexing off and
//! the snapshot's indexing settings restored at the end, so the load is never stalled behind
//! index builds. It runs as its own task: a client that stops waiting does not cut it short.

use crate::error::Corrupt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::{ok, run_blocking, ApiResult, AppState};
use crate::collection::backup::{self, SnapshotDescription};
use crate::collection::ops::{Operation, PointWrite};
use crate::collection::snapshot_file::SnapshotReader;

/// Points per write while a snapshot is loaded.
const LOAD_BATCH: usize = 512;
/// How long creating the restored collection may wait for another create or delete.
const ADMIN_WAIT: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/{name}/snapshots", get(list).post(create))
        .route("/collections/{name}/snapshots/recover", put(recover))
        .route(
            "/collections/{name}/snapshots/{snapshot}",
            get(download).delete(remove),
        )
}

/// The upload route, kept apart so the request timeout does not apply to it: snapshots are as
/// large as their collections, so neither the body limit nor the timeout would let one through.
pub fn upload_router() -> Router<AppState> {
    Router::new().route(
        "/collections/{name}/snapshots/upload",
        post(upload).layer(DefaultBodyLimit::disable()),
    )
}

/// The snapshots folder: `storage.snapshots_dir`, or `snapshots` inside the data directory.
fn root(state: &AppState) -> PathBuf {
    snapshots_root(&state.config)
}

fn snapshots_root(config: &crate::config::Config) -> PathBuf {
    let storage = &config.storage;
    storage
        .snapshots_dir
        .clone()
        .unwrap_or_else(|| storage.data_dir.join("snapshots"))
}

/// Removes what uploads cut off by a crash or a dropped connection left behind. At start-up.
pub fn clear_uploads(config: &crate::config::Config) {
    let _ = std::fs::remove_dir_all(snapshots_root(config).join("uploads"));
}

/// Query parameters of snapshot operations (accepted for compatibility: they always complete
/// before answering).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotParams {
    pub wait: Option<bool>,
    pub priority: Option<String>,
    pub checksum: Option<String>,
}

/// Take a snapshot of the collection as of its latest state; writes go on meanwhile. With
/// `?wait=false` the answer is 202 at once and the snapshot is written in the background.
#[utoipa::path(post, path = "/collections/{name}/snapshots", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), SnapshotParams),
    responses((status = 200, body = inline(super::Envelope<SnapshotDescription>)), (status = 202, description = "accepted: being written", body = super::Accepted)))]
pub async fn create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<SnapshotParams>,
) -> Result<Response, ApiError> {
    if super::distributed::cluster_collection(&state, &name).is_none() {
        state.registry.get(&name)?;
    }
    // The task outlives a request that does not wait: it gets its own time bound (the
    // request's own when it waits).
    let limit = match params.wait {
        Some(false) => BACKGROUND_LIMIT,
        _ => super::time_left().min(BACKGROUND_LIMIT),
    };
    let work = tokio::spawn(async move {
        let made = super::within(limit, take(&state, &name)).await;
        if let Err(e) = &made {
            tracing::warn!(collection = %name, error = %e, "snapshot failed");
        }
        made
    });
    if params.wait == Some(false) {
        return Ok(super::accepted());
    }
    let made = work
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot task failed: {e}")))??;
    Ok(ok(made).into_response())
}

/// How long a snapshot taken in the background may take.
const BACKGROUND_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Writes a snapshot of `name` (every shard of it in cluster mode).
async fn take(state: &AppState, name: &str) -> Result<SnapshotDescription, ApiError> {
    let root = root(state);
    if let Some((node, collection)) = super::distributed::cluster_collection(state, name) {
        return super::cluster_snapshots::create(&node, name, &collection, root).await;
    }
    let snapshot = state.registry.get(name)?.snapshot();
    let name = name.to_string();
    run_blocking(move || {
        backup::create(&root, &name, &snapshot)
            .map_err(|e| storage_error(format!("cannot write the snapshot: {e}"), &e))
    })
    .await
}

/// A full disk is 507; other I/O failures are 503.
pub(super) fn storage_error(message: String, e: &std::io::Error) -> ApiError {
    if crate::storage::disk::is_full(e) {
        ApiError::InsufficientStorage(message)
    } else {
        ApiError::Unavailable(message)
    }
}

/// The collection's snapshots.
#[utoipa::path(get, path = "/collections/{name}/snapshots", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<Vec<SnapshotDescription>>))))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Vec<SnapshotDescription>> {
    if super::distributed::cluster_collection(&state, &name).is_none() {
        state.registry.get(&name)?;
    }
    let root = root(&state);
    let found = run_blocking(move || {
        backup::list(&root, &name)
            .map_err(|e| ApiError::Unavailable(format!("cannot list snapshots: {e}")))
    })
    .await?;
    Ok(ok(found))
}

/// The file of an existing snapshot, or 404.
fn existing(state: &AppState, name: &str, snapshot: &str) -> Result<PathBuf, ApiError> {
    let path = backup::file(&root(state), name, snapshot)?;
    if !path.is_file() {
        return Err(ApiError::NotFound(format!(
            "Snapshot `{snapshot}` of collection `{name}` doesn't exist!"
        )));
    }
    Ok(path)
}

/// Download a snapshot file.
#[utoipa::path(get, path = "/collections/{name}/snapshots/{snapshot}", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 200, description = "The snapshot file", content_type = "application/octet-stream")))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath((name, snapshot)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let path = existing(&state, &name, &snapshot)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot open the snapshot: {e}")))?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{snapshot}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Delete a snapshot file.
#[utoipa::path(delete, path = "/collections/{name}/snapshots/{snapshot}", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 200, body = inline(super::Envelope<bool>))))]
pub async fn remove(
    State(state): State<AppState>,
    ApiPath((name, snapshot)): ApiPath<(String, String)>,
) -> ApiResult<bool> {
    let path = existing(&state, &name, &snapshot)?;
    tokio::fs::remove_file(&path)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot delete the snapshot: {e}")))?;
    let _ = tokio::fs::remove_file(backup::checksum_path(&path)).await;
    Ok(ok(true))
}

/// Where to recover from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecover {
    /// `file:///absolute/path.snapshot` on the server's machine.
    pub location: String,
    /// Accepted for compatibility (a single node has no replicas to prefer).
    pub priority: Option<String>,
    /// SHA-256 the file must have (hex); the file's own CRC-32 is always checked as well.
    pub checksum: Option<String>,
    /// Accepted for compatibility (remote locations are not fetched).
    pub api_key: Option<String>,
}

/// Replace the collection with a snapshot from a file on the server.
#[utoipa::path(put, path = "/collections/{name}/snapshots/recover", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), SnapshotParams),
    request_body = SnapshotRecover,
    responses((status = 200, body = inline(super::Envelope<bool>))))]
pub async fn recover(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<SnapshotParams>,
    ApiJson(req): ApiJson<SnapshotRecover>,
) -> ApiResult<bool> {
    crate::collection::config::validate_name(&name)?;
    let Some(path) = req.location.strip_prefix("file://") else {
        return Err(ApiError::BadRequest(format!(
            "location `{}`: only file:// locations are supported; send the file to .../snapshots/upload instead",
            req.location
        )));
    };
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(ApiError::BadRequest(
            "location: the file:// path must be absolute".into(),
        ));
    }
    check_sum(&path, req.checksum.or(params.checksum)).await?;
    spawn_restore(state, name, path, false).await?;
    Ok(ok(true))
}

/// Replace the collection with an uploaded snapshot (multipart form, field `snapshot`).
#[utoipa::path(post, path = "/collections/{name}/snapshots/upload", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), SnapshotParams),
    request_body(content_type = "multipart/form-data", content = Object, description = "Form field `snapshot`: the snapshot file"),
    responses((status = 200, body = inline(super::Envelope<bool>))))]
pub async fn upload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<SnapshotParams>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<bool> {
    crate::collection::config::validate_name(&name)?;
    let mut form =
        form.map_err(|e| ApiError::BadRequest(format!("bad multipart body: {}", e.body_text())))?;
    let dir = root(&state).join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| storage_error(format!("cannot store the upload: {e}"), &e))?;
    let path = dir.join(format!("{}.upload", uuid::Uuid::new_v4()));
    let received = receive(&mut form, &path).await;
    let checked = match received {
        Ok(()) => check_sum(&path, params.checksum).await,
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    spawn_restore(state, name, path, true).await?;
    Ok(ok(true))
}

/// Refuses a snapshot file whose SHA-256 is not the `expected` one (when given), as Qdrant
/// does: hex digits compared without regard to case or surrounding space.
async fn check_sum(path: &Path, expected: Option<String>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let file = path.to_path_buf();
    let actual = run_blocking(move || {
        backup::sha256(&file)
            .map_err(|e| ApiError::BadRequest(format!("cannot read the snapshot: {e}")))
    })
    .await?;
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        return Err(ApiError::BadRequest(format!(
            "Snapshot checksum mismatch: expected {}, got {actual}",
            expected.trim()
        )));
    }
    Ok(())
}

/// Streams the form's `snapshot` field into `path`.
async fn receive(form: &mut Multipart, path: &Path) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("bad multipart body: {}", e.body_text()))
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        if field.name() != Some("snapshot") {
            continue;
        }
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| storage_error(format!("cannot store the upload: {e}"), &e))?;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            file.write_all(&chunk)
                .await
                .map_err(|e| storage_error(format!("cannot store the upload: {e}"), &e))?;
        }
        file.flush()
            .await
            .map_err(|e| storage_error(format!("cannot store the upload: {e}"), &e))?;
        return Ok(());
    }
    Err(ApiError::BadRequest(
        "the multipart body has no `snapshot` field".into(),
    ))
}

/// Runs the restore as its own task and waits for it.
async fn spawn_restore(
    state: AppState,
    name: String,
    path: PathBuf,
    remove_file: bool,
) -> Result<(), ApiError> {
    let task = tokio::spawn(async move {
        let result = restore(&state, &name, &path).await;
        if remove_file {
            let _ = tokio::fs::remove_file(&path).await;
        }
        if let Err(e) = &result {
            tracing::warn!(collection = %name, error = %e, "snapshot recovery failed");
        }
        result
    });
    task.await
        .map_err(|e| ApiError::Internal(format!("snapshot recovery task failed: {e}")))?
}

async fn restore(state: &AppState, name: &str, path: &Path) -> Result<(), ApiError> {
    let checked = path.to_path_buf();
    let header = run_blocking(move || {
        backup::verify(&checked).map_err(|e| ApiError::BadRequest(format!("snapshot: {e}")))
    })
    .await?;
    header
        .config
        .validate()
        .map_err(|e| ApiError::BadRequest(format!("snapshot: its configuration: {e}")))?;
    if let Some(node) = &state.cluster {
        return super::cluster_snapshots::restore(node, name, path, header).await;
    }
    let final_config = header.config.clone();
    let mut loading = header.config;
    loading.optimizer_config.indexing_threshold = Some(0);
    let registry = state.registry.clone();
    let owned = name.to_string();
    run_blocking(move || {
        registry.delete(&owned, ADMIN_WAIT)?;
        registry
            .create(&owned, loading, ADMIN_WAIT)
            .map_err(ApiError::from)
    })
    .await?;
    let collection = state.registry.get(name)?;
    load_points(&collection, path).await?;
    collection.reconfigure(final_config, ADMIN_WAIT).await?;
    for (field, spec) in header.payload_schema {
        let key = crate::filter::parse_path(&field)
            .map_err(|e| ApiError::BadRequest(format!("snapshot: indexed field {field:?}: {e}")))?;
        let change = crate::collection::IndexChange::Create {
            name: field,
            key,
            spec,
        };
        collection.change_index(change, ADMIN_WAIT).await?;
    }
    tracing::info!(collection = %name, points = header.points, lsn = header.lsn, "recovered from snapshot");
    Ok(())
}

/// Reads the points on a blocking thread and writes them through the collection's writer.
async fn load_points(
    collection: &crate::collection::Collection,
    path: &Path,
) -> Result<(), ApiError> {
    let mut batches = read_batches(path);
    while let Some(batch) = batches.recv().await {
        let batch = batch.map_err(|e| ApiError::BadRequest(format!("snapshot: {e}")))?;
        collection
            .update(vec![Operation::Upsert(batch)], false, ADMIN_WAIT)
            .await?;
    }
    // One waited write makes every earlier one visible before the recovery answers.
    collection
        .update(vec![Operation::Upsert(Vec::new())], true, ADMIN_WAIT)
        .await?;
    Ok(())
}

/// The points of a snapshot file in batches, read on a blocking thread; a read error ends
/// them. The file was checked whole before, so an error here means it changed since.
pub(super) fn read_batches(
    path: &Path,
) -> tokio::sync::mpsc::Receiver<Result<Vec<PointWrite>, Corrupt>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let send = |batch| tx.blocking_send(batch).is_ok();
        let opened = std::fs::File::open(&path)
            .map_err(|e| Corrupt(format!("cannot open the snapshot: {e}")))
            .and_then(|f| SnapshotReader::open(std::io::BufReader::new(f)));
        let mut reader = match opened {
            Ok((reader, _)) => reader,
            Err(e) => return send(Err(e)),
        };
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        loop {
            match reader.next_point() {
                Ok(Some((id, p))) => batch.push(PointWrite {
                    id,
                    vectors: p.vectors,
                    sparse: p.sparse,
                    payload: (*p.payload).clone(),
                }),
                Ok(None) => return batch.is_empty() || send(Ok(batch)),
                Err(e) => return send(Err(e)),
            }
            if batch.len() == LOAD_BATCH && !send(Ok(std::mem::take(&mut batch))) {
                return false;
            }
        }
    });
    rx
}
