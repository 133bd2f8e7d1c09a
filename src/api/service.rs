//! Service endpoints: identity, health probes, Prometheus metrics and telemetry.

use crate::collection::plan::Plan;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ok, ApiResult, AppState};
use crate::collection::segment::{IndexedSegment, SegmentData};
use crate::collection::snapshot::Snapshot;
use crate::index::hnsw::Graph;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/telemetry", get(telemetry))
}

/// `GET /` body, as Qdrant's clients expect it.
#[derive(Serialize, ToSchema)]
pub struct VersionInfo {
    pub title: &'static str,
    /// vecdb's own version.
    pub version: &'static str,
    /// The version of Qdrant's REST API that vecdb follows.
    pub qdrant_api_version: &'static str,
}

/// The Qdrant API version whose REST shapes vecdb follows (its published OpenAPI document).
pub const QDRANT_API_VERSION: &str = "1.18";

/// The service's name, as `GET /` and gRPC's health check give it.
pub const TITLE: &str = "vecdb - vector search engine";

/// Service name and version.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = VersionInfo)))]
pub async fn root() -> Json<VersionInfo> {
    Json(VersionInfo {
        title: TITLE,
        version: env!("CARGO_PKG_VERSION"),
        qdrant_api_version: QDRANT_API_VERSION,
    })
}

/// Readiness probe: every collection was loaded before the listener opened.
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "ready", body = String)))]
pub async fn ready() -> &'static str {
    "all shards are ready"
}

/// Health probe: the process serves HTTP (collections are loaded before the listener opens).
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "healthz check passed", body = String)))]
pub async fn health() -> &'static str {
    "healthz check passed"
}

/// Prometheus text exposition of every vecdb metric.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Per-collection figures.
#[derive(Serialize, ToSchema)]
pub struct CollectionTelemetry {
    pub name: String,
    pub points: usize,
    pub segments: usize,
    pub indexed_segments: usize,
    /// Points reachable through HNSW graphs (live or not yet vacuumed).
    pub graph_nodes: usize,
    /// Heap bytes held by HNSW graphs.
    pub graph_memory_bytes: usize,
    /// Heap bytes held by int8 codes of quantized vector spaces.
    pub quantized_memory_bytes: usize,
    /// Heap bytes held by the dense vectors of indexed segments, in their spaces' datatypes.
    pub indexed_vector_memory_bytes: usize,
    /// Graphs per tenant (values of keyword fields indexed with `is_tenant`) searches use.
    pub tenant_graphs: usize,
    /// Heap bytes held by graphs per tenant (with those a job is extending).
    pub tenant_graph_memory_bytes: usize,
    /// Heap bytes held by the one-bit sign codes of dot-product and cosine spaces, which rank
    /// a filter's candidates.
    pub sign_code_memory_bytes: usize,
    pub snapshot_generation: u64,
    pub lsn: u64,
    pub writer_queue_depth: usize,
    pub optimizing: bool,
    pub searches: u64,
    pub points_upserted: u64,
    pub operations: u64,
    pub index_builds: u64,
    /// Segment searches by plan (see `?explain=true` on a query for one query's plans).
    pub search_plans: std::collections::BTreeMap<&'static str, u64>,
    /// Searches whose filter read payloads in a sealed segment because no payload index
    /// answered (all or part of) it.
    pub unindexed_filter_searches: u64,
}

/// `GET /telemetry` result.
#[derive(Serialize, ToSchema)]
pub struct Telemetry {
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub collections: Vec<CollectionTelemetry>,
}

/// Every HNSW graph of a snapshot, all segments and vector spaces.
fn graphs(snap: &Snapshot) -> impl Iterator<Item = &Graph> {
    snap.segments
        .iter()
        .flat_map(|s| (0..snap.spaces.len()).filter_map(move |i| s.data.graph(i)))
}

/// The indexed segments of a snapshot.
fn indexed(snap: &Snapshot) -> impl Iterator<Item = &IndexedSegment> {
    snap.segments.iter().filter_map(|s| match &*s.data {
        SegmentData::Indexed(data) => Some(data),
        SegmentData::Plain(_) => None,
    })
}

/// Bytes of int8 codes over every indexed segment and vector space of a snapshot.
fn quantized_bytes(snap: &Snapshot) -> usize {
    indexed(snap)
        .flat_map(|d| d.quantized.iter().flatten())
        .map(|q| q.memory_bytes())
        .sum()
}

/// Bytes of sign codes over every indexed segment and vector space of a snapshot, with their
/// copies in payload indexes' orders.
fn sign_code_bytes(snap: &Snapshot) -> usize {
    let codes: usize = indexed(snap)
        .flat_map(|d| d.signs.iter().flatten())
        .map(|c| c.memory_bytes())
        .sum();
    let arranged = snap.segments.iter().filter_map(|s| s.indexes.as_ref());
    codes + arranged.map(|i| i.arranged_bytes()).sum::<usize>()
}

/// Counts per collection, read from atomics and the published snapshots (no locks).
#[utoipa::path(get, path = "/telemetry", tag = "service", responses((status = 200, body = inline(super::Envelope<Telemetry>))))]
pub async fn telemetry(State(state): State<AppState>) -> ApiResult<Telemetry> {
    let mut collections: Vec<CollectionTelemetry> = state
        .registry
        .all()
        .into_iter()
        .map(|c| {
            let snap = c.snapshot();
            let stats = &c.stats;
            CollectionTelemetry {
                name: c.name.clone(),
                points: snap.points_count(),
                segments: snap.segments.len(),
                indexed_segments: snap
                    .segments
                    .iter()
                    .filter(|s| s.data.graph(0).is_some())
                    .count(),
                graph_nodes: graphs(&snap).map(|g| g.len()).sum(),
                graph_memory_bytes: graphs(&snap).map(|g| g.memory_bytes()).sum(),
                quantized_memory_bytes: quantized_bytes(&snap),
                indexed_vector_memory_bytes: indexed(&snap)
                    .flat_map(|d| &d.vectors)
                    .map(|v| v.memory_bytes())
                    .sum(),
                tenant_graphs: snap.segments.iter().map(|s| s.tenants.usable()).sum(),
                tenant_graph_memory_bytes: snap
                    .segments
                    .iter()
                    .map(|s| s.tenants.memory_bytes())
                    .sum(),
                sign_code_memory_bytes: sign_code_bytes(&snap),
                snapshot_generation: snap.generation,
                lsn: snap.lsn,
                writer_queue_depth: c.queue_depth(),
                optimizing: snap.optimizing,
                searches: stats.searches.load(Ordering::Relaxed),
                points_upserted: stats.points_upserted.load(Ordering::Relaxed),
                operations: stats.operations.load(Ordering::Relaxed),
                index_builds: stats.index_builds.load(Ordering::Relaxed),
                search_plans: Plan::ALL
                    .iter()
                    .map(|p| (p.name(), stats.plans[*p as usize].load(Ordering::Relaxed)))
                    .collect(),
                unindexed_filter_searches: stats.unindexed_filters.load(Ordering::Relaxed),
            }
        })
        .collect();
    collections.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ok(Telemetry {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        collections,
    }))
}
