//! The HTTP API: Qdrant's REST dialect for what vecdb implements, plus service endpoints.
//!
//! Every success is `{"result": ..., "status": "ok", "time": seconds}`; every error is
//! `{"status": {"error": "..."}, "time": seconds}` ([`error::ApiError`]).

pub mod collections;
pub mod convert;
pub mod docs;
pub mod error;
pub mod models;
pub mod points;
pub mod query;
pub mod service;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use utoipa::ToSchema;

use crate::collection::registry::Registry;
use crate::config::Config;
use crate::telemetry::sync::Gate;
use error::ApiError;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Admission control for searches: at most `max_search_concurrency` run at once.
    pub search_gate: Arc<Gate>,
    pub started: Instant,
}

tokio::task_local! {
    /// When the current request started, for the `time` field of responses.
    static REQUEST_START: Instant;
}

/// Seconds since the current request started (0 outside a request).
pub fn elapsed_secs() -> f64 {
    REQUEST_START
        .try_with(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0)
}

/// The success envelope.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    pub result: T,
    pub status: &'static str,
    pub time: f64,
}

/// Wraps a result in the success envelope.
pub fn ok<T: Serialize>(result: T) -> Json<Envelope<T>> {
    Json(Envelope {
        result,
        status: "ok",
        time: elapsed_secs(),
    })
}

/// What handlers return.
pub type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.service.max_request_size_mb * 1024 * 1024;
    let timeout = Duration::from_secs(state.config.service.request_timeout_sec.max(1));
    Router::new()
        .merge(service::router())
        .merge(collections::router())
        .merge(points::router())
        .merge(query::router())
        .merge(docs::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }))
        .layer(middleware::from_fn(track))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::Internal("internal error: a request handler panicked".into()).into_response()
        }))
        .with_state(state)
}

/// Times the request, counts it by route and status, and scopes `REQUEST_START`.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().to_string();
    let response = REQUEST_START.scope(start, next.run(req)).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method)];
    metrics::histogram!("vecdb_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    let mut labels = labels.to_vec();
    labels.push(("status", status));
    metrics::counter!("vecdb_http_requests_total", &labels).increment(1);
    response
}

/// Bounds every request's time; the JSON error keeps the envelope (unlike a bare 408).
async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "request took longer than the {}s limit (service.request_timeout_sec)",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Runs CPU-bound work on the blocking pool, admitted by the search gate.
pub async fn run_search<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let wait = Duration::from_millis(state.config.service.search_queue_timeout_ms);
    let permit =
        state.search_gate.enter(wait).await.map_err(|_| {
            ApiError::Overloaded("too many concurrent searches; retry later".into())
        })?;
    let result = tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await
    .map_err(|e| ApiError::Internal(format!("search task failed: {e}")))?;
    Ok(result)
}

/// Runs blocking administrative work (RocksDB sync writes, thread joins) off the executor.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

/// The state handlers extract.
pub type AppStateExt = State<AppState>;
