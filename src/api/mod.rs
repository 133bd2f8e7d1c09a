//! The HTTP API: Qdrant's REST dialect for what vecdb implements, plus service endpoints.
//!
//! Every success is `{"result": ..., "status": "ok", "time": seconds}`; every error is
//! `{"status": {"error": "..."}, "time": seconds}` ([`error::ApiError`]).

pub mod aggregate;
pub mod aliases;
pub mod auth;
pub mod cluster;
pub mod cluster_ops;
pub mod cluster_snapshots;
pub mod collections;
pub mod convert;
pub mod distributed;
pub mod docs;
pub mod error;
pub mod fan_out;
pub mod in_process;
pub mod indexes;
pub mod models;
pub mod points;
mod projection;
pub mod query;
pub mod service;
pub mod snapshots;
pub mod vectors;

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
    /// This node in its cluster; `None` on a single node.
    pub cluster: Option<Arc<crate::cluster::node::ClusterNode>>,
}

tokio::task_local! {
    /// When the current request started, for the `time` field of responses.
    static REQUEST_START: Instant;
    /// When the current request must have answered: the server-wide limit, or the request's own
    /// `timeout` query parameter when that is shorter.
    static REQUEST_DEADLINE: Instant;
}

/// Time left before the current request's deadline (unbounded outside a request). Bounded waits
/// on the request path (writer queue, search slots, write completion) never wait past it.
pub fn time_left() -> Duration {
    REQUEST_DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(Duration::MAX)
}

/// Runs `work` as if it were a request with `limit` to answer: for steps of work that outlive
/// the request that started them (a snapshot recovery), each bounded on its own.
pub async fn within<F: std::future::Future>(limit: Duration, work: F) -> F::Output {
    REQUEST_DEADLINE.scope(Instant::now() + limit, work).await
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

/// A success: the envelope as JSON, or for an in-process caller the result itself.
pub struct Answer<T>(pub Envelope<T>);

impl<T: Serialize + Send + 'static> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        match in_process::active() {
            true => in_process::response(self.0.result),
            false => Json(self.0).into_response(),
        }
    }
}

/// Wraps a result in the success envelope.
pub fn ok<T: Serialize>(result: T) -> Answer<T> {
    Answer(Envelope {
        result,
        status: "ok",
        time: elapsed_secs(),
    })
}

/// Qdrant's answer to work started but not waited for (`?wait=false`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// `accepted`
    pub status: &'static str,
    pub time: f64,
}

/// 202 with [`Accepted`].
pub fn accepted() -> axum::response::Response {
    let body = Accepted {
        status: "accepted",
        time: elapsed_secs(),
    };
    (axum::http::StatusCode::ACCEPTED, Json(body)).into_response()
}

/// What handlers return.
pub type ApiResult<T> = Result<Answer<T>, ApiError>;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let cors = cors_layer(&state.config.service.cors_origins);
    let router = guarded(&state);
    let router = match cors {
        // Outside the key check: browsers send preflight requests without credentials.
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(middleware::from_fn(track))
        .layer(catch_panic())
        .with_state(state)
}

/// The router the gRPC services hand their requests to: the same routes, keys, limits and
/// cluster layer as [`app`], without what only HTTP clients need (CORS, HTTP metrics; the gRPC
/// services count their own calls).
pub fn for_grpc(state: AppState) -> Router {
    guarded(&state).layer(catch_panic()).with_state(state)
}

/// The routes with their body limit and key check.
fn guarded(state: &AppState) -> Router<AppState> {
    let body_limit = state.config.service.max_request_size_mb * 1024 * 1024;
    let (full, read_only) = state.config.service.keys();
    let keys = auth::Keys::new(full, read_only);
    // A single node has no cluster layer at all: it costs every request something.
    let distributed = state.cluster.is_some();
    let router = routes(state, distributed).layer(DefaultBodyLimit::max(body_limit));
    match keys {
        Some(keys) => router.layer(middleware::from_fn(move |req, next| {
            auth::check(keys.clone(), req, next)
        })),
        None => router,
    }
}

fn catch_panic() -> tower_http::catch_panic::CatchPanicLayer<
    impl tower_http::catch_panic::ResponseForPanic<ResponseBody = axum::body::Body>,
> {
    tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::Internal("internal error: a request handler panicked".into()).into_response()
    })
}

/// The routes without the outer layers (keys, CORS, metrics): what a shard replica's reads
/// are served with, in process, for the node that fans a read out.
pub fn shard_api(state: AppState) -> Router {
    let internal = Router::new().route(
        "/collections/{name}/points/sparse/idf",
        axum::routing::post(query::local::shard_idf_stats),
    );
    routes(&state, false)
        .merge(internal)
        .layer(middleware::from_fn(|req: Request, next: Next| {
            in_process::serve_as_json(next.run(req))
        }))
        .with_state(state)
}

/// The API's routes with their request timeout; `distributed` adds the cluster layer.
fn routes(state: &AppState, distributed: bool) -> Router<AppState> {
    let timeout = Duration::from_secs(state.config.service.request_timeout_sec.max(1));
    let router = Router::new()
        .merge(service::router())
        .merge(cluster::router())
        .merge(collections::router())
        .merge(aliases::router())
        .merge(indexes::router())
        .merge(aggregate::router())
        .merge(points::router())
        .merge(vectors::router())
        .merge(query::router())
        .merge(snapshots::router())
        .merge(docs::router());
    // In cluster mode, cluster collections are answered by the cluster (inside the timeout).
    let router = match distributed {
        true => router.route_layer(middleware::from_fn_with_state(
            state.clone(),
            distributed::dispatch,
        )),
        false => router,
    };
    router
        // Only on matched routes: an unknown path or method answers 404/405 whatever its query.
        .route_layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }))
        .merge(snapshots::upload_router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|req: Request| async move {
            ApiError::MethodNotAllowed(format!(
                "{} is not allowed on {}",
                req.method(),
                req.uri().path()
            ))
        })
}

/// CORS for the configured origins; `None` (no CORS headers at all) when there are none.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(Any)
            .allow_headers(Any),
    )
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

/// Bounds every request's time: the server-wide limit, shortened by Qdrant's `timeout` query
/// parameter (seconds). The waits inside a request end at the deadline with their own, more
/// precise errors; this outer bound (a little later) only catches what does not wait on anything.
/// The JSON error keeps the envelope (unlike a bare 408).
async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    let limit = match request_timeout(req.uri()) {
        Ok(Some(asked)) => asked.min(limit),
        Ok(None) => limit,
        Err(e) => return e.into_response(),
    };
    let limit = match req.extensions().get::<GrpcDeadline>() {
        Some(GrpcDeadline(at)) => limit.min(at.saturating_duration_since(Instant::now())),
        None => limit,
    };
    let deadline = Instant::now() + limit;
    let run = REQUEST_DEADLINE.scope(deadline, next.run(req));
    match tokio::time::timeout(limit + DEADLINE_GRACE, run).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "request took longer than its {}s timeout",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// A gRPC request's deadline (`grpc-timeout`), which bounds its time like `timeout` does.
#[derive(Clone, Copy, Debug)]
pub struct GrpcDeadline(pub Instant);

/// How much later than the deadline the outer bound fires.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// The `timeout` query parameter of any route: a positive number of seconds.
fn request_timeout(uri: &axum::http::Uri) -> Result<Option<Duration>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Timeout {
        timeout: Option<String>,
    }
    let Ok(axum::extract::Query(Timeout { timeout: Some(raw) })) =
        axum::extract::Query::<Timeout>::try_from_uri(uri)
    else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Some(Duration::from_secs(secs))),
        _ => Err(ApiError::BadRequest(format!(
            "bad query string: timeout: expected a positive whole number of seconds, got `{raw}`"
        ))),
    }
}

/// Runs CPU-bound work on the blocking pool, admitted by the search gate.
pub async fn run_search<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let wait = Duration::from_millis(state.config.service.search_queue_timeout_ms).min(time_left());
    let permit = state.search_gate.enter(wait).await.map_err(|_| {
        ApiError::Overloaded(format!(
            "too many concurrent searches: no search slot came free within {} ms; retry later",
            wait.as_millis()
        ))
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
