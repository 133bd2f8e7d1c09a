//! The single-node [`Source`]: base queries run on one snapshot of the collection (every
//! level of every query of a request sees the same state), on the search threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;

use super::base::{self, no_space, Base};
use super::eval::{evaluate, Output, Source};
use super::model::{LookupFrom, Node};
use crate::api::convert::{payload_out, record, vector_out};
use crate::api::error::ApiError;
use crate::api::models::{ScoredPoint, WithPayload, WithVector};
use crate::api::{run_search, AppState};
use crate::collection::config::VectorSpace;
use crate::collection::plan::SegmentPlan;
use crate::collection::snapshot::Snapshot;
use crate::collection::sparse_search::{corpus_idf_stats, idf_stats, IdfStats};
use crate::collection::Collection;
use crate::filter::Filter;
use crate::point_id::PointId;

/// One request's view of a collection on this node.
pub struct Local<'a> {
    state: &'a AppState,
    collection: Arc<Collection>,
    snapshot: Arc<Snapshot>,
    plans: Mutex<Vec<SegmentPlan>>,
    started: std::time::Instant,
}

impl<'a> Local<'a> {
    /// The collection `name` (or alias) as it is now.
    pub fn open(state: &'a AppState, name: &str) -> Result<Local<'a>, ApiError> {
        let collection = state.registry.get(name)?;
        Ok(Local {
            state,
            snapshot: collection.snapshot(),
            collection,
            plans: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        })
    }

    /// Records the searches in the metrics; returns how the segments were searched.
    pub fn finish(self) -> Vec<SegmentPlan> {
        let plans = self.plans.into_inner().unwrap_or_default();
        self.collection.count_search(&plans);
        let name = self.collection.name.clone();
        metrics::histogram!("vecdb_search_duration_seconds", "collection" => name)
            .record(self.started.elapsed().as_secs_f64());
        plans
    }
}

/// The IDF counts of `dims` of the sparse vector `using` in `snapshot`, on a search thread.
async fn stats(
    state: &AppState,
    snapshot: Arc<Snapshot>,
    using: String,
    dims: Vec<u32>,
    corpus: Option<Filter>,
) -> Result<IdfStats, ApiError> {
    let spaces = snapshot.config.sparse_spaces();
    let space = spaces.iter().position(|s| s.name == using);
    let space = space.ok_or_else(|| no_space(&using))?;
    run_search(state, move || match &corpus {
        None => idf_stats(&snapshot, space, &dims),
        Some(corpus) => corpus_idf_stats(&snapshot, space, &dims, corpus),
    })
    .await
}

/// `POST /collections/{name}/points/sparse/idf` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdfRequest {
    pub using: String,
    pub indices: Vec<u32>,
    /// Counted over the points matching this filter only (`params.idf.corpus`).
    #[serde(default)]
    pub corpus: Option<Filter>,
}

/// A shard replica's IDF counts, for the collection layer that sums them over the shards.
/// Served only to shard reads (see [`crate::api::shard_api`]), never on the public port.
pub async fn shard_idf_stats(
    axum::extract::State(state): axum::extract::State<AppState>,
    crate::api::error::ApiPath(name): crate::api::error::ApiPath<String>,
    crate::api::error::ApiJson(req): crate::api::error::ApiJson<IdfRequest>,
) -> crate::api::ApiResult<IdfStats> {
    let snapshot = state.registry.get(&name)?.snapshot();
    let stats = stats(&state, snapshot, req.using, req.indices, req.corpus).await?;
    Ok(crate::api::ok(stats))
}

/// Evaluates query trees on the collection's current snapshot; the answers, and how the
/// segments were searched (for `explain`).
pub async fn answer(
    state: &AppState,
    name: &str,
    trees: Vec<(Node, Output)>,
) -> Result<(Vec<Vec<ScoredPoint>>, Vec<SegmentPlan>), ApiError> {
    let source = Local::open(state, name)?;
    let runs = trees
        .into_iter()
        .map(|(node, out)| evaluate(&source, node, out));
    let lists = futures::future::try_join_all(runs).await?;
    Ok((lists, source.finish()))
}

impl Source for Local<'_> {
    fn name(&self) -> &str {
        &self.collection.name
    }

    fn spaces(&self) -> &[VectorSpace] {
        &self.snapshot.spaces
    }

    fn sparse_idf(&self, name: &str) -> Option<bool> {
        self.snapshot.config.sparse_idf(name)
    }

    fn idf_stats<'a>(
        &'a self,
        using: &'a str,
        dims: Vec<u32>,
        corpus: Option<&'a Filter>,
    ) -> BoxFuture<'a, Result<IdfStats, ApiError>> {
        let snapshot = self.snapshot.clone();
        let corpus = corpus.cloned();
        async move { stats(self.state, snapshot, using.to_string(), dims, corpus).await }.boxed()
    }

    fn base(&self, base: Base) -> BoxFuture<'_, Result<Vec<ScoredPoint>, ApiError>> {
        let snapshot = self.snapshot.clone();
        async move {
            let (points, plans) =
                run_search(self.state, move || base::run(&snapshot, &base)).await??;
            if let Ok(mut all) = self.plans.lock() {
                all.extend(plans);
            }
            Ok(points)
        }
        .boxed()
    }

    fn vectors<'a>(
        &'a self,
        from: Option<&'a LookupFrom>,
        using: &'a str,
        ids: Vec<PointId>,
    ) -> BoxFuture<'a, Result<HashMap<PointId, Vec<f32>>, ApiError>> {
        async move {
            let other;
            let snapshot = match from {
                Some(l) if l.collection != self.collection.name => {
                    other = self.state.registry.get(&l.collection)?.snapshot();
                    &other
                }
                _ => &self.snapshot,
            };
            let space = snapshot.space_index(using).ok_or_else(|| no_space(using))?;
            Ok(ids
                .into_iter()
                .filter_map(|id| Some((id, snapshot.get(id)?.vector(space)?.to_vec())))
                .collect())
        }
        .boxed()
    }

    fn records<'a>(
        &'a self,
        collection: &'a str,
        ids: Vec<PointId>,
        with_payload: &'a Option<WithPayload>,
        with_vector: &'a Option<WithVector>,
    ) -> BoxFuture<'a, Result<HashMap<PointId, Value>, ApiError>> {
        async move {
            let snapshot = self.state.registry.get(collection)?.snapshot();
            let found = ids.into_iter().filter_map(|id| {
                let point = snapshot.get(id)?;
                let r = record(&snapshot, id, &point, with_payload, with_vector);
                Some((id, serde_json::to_value(r).ok()?))
            });
            Ok(found.collect())
        }
        .boxed()
    }

    fn fill<'a>(
        &'a self,
        points: &'a mut [ScoredPoint],
        with_payload: &'a Option<WithPayload>,
        with_vector: &'a Option<WithVector>,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        let snapshot = &self.snapshot;
        for p in points.iter_mut() {
            if let Some(point) = snapshot.get(p.id) {
                p.payload = payload_out(point.payload_map(), with_payload, false);
                p.vector = vector_out(&point, &snapshot.spaces, with_vector, false);
            }
        }
        futures::future::ready(Ok(())).boxed()
    }
}
