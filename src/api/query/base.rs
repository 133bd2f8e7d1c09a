//! A base query: one without prefetches, its example vectors resolved, run over one snapshot
//! (single node, or one shard replica in cluster mode). Everything the universal query does
//! comes down to these and to the arithmetic of [`super::rank`].

use std::hash::BuildHasher;

use serde_json::{json, Map, Value};

use super::rank::Custom;
use super::{check_params, SearchParamsBody};
use crate::api::aggregate::order_by;
use crate::api::convert::{dense_out, payload_out, vector_out};
use crate::api::error::ApiError;
use crate::api::models::{ScoredPoint, WithPayload, WithVector};
use crate::collection::aggregate::ordered;
use crate::collection::config::VectorSpace;
use crate::collection::plan::SegmentPlan;
use crate::collection::scored::{search_scored, ScoredSearch};
use crate::collection::search::Tuning;
use crate::collection::search::{search, SearchParams, Searched};
use crate::collection::snapshot::{PointRef, Snapshot};
use crate::collection::sparse_search::{search_sparse, IdfStats, SparseSearch};
use crate::filter::Filter;
use crate::index::sparse::SparseVector;
use crate::index::TopK;
use crate::point_id::PointId;

/// What a base query ranks points by, every example a prepared vector.
#[derive(Clone, Debug)]
pub enum Scoring {
    /// No query: matching points in id order, each scored 1 (as Qdrant does).
    All,
    Nearest(Vec<f32>),
    /// Nearest by a sparse vector (dot product over shared dimensions), weighed by the IDF
    /// counts when the space has the IDF modifier.
    Sparse(SparseVector, Option<IdfStats>),
    /// A custom scorer over sparse examples, weighed likewise.
    SparseCustom(Custom<SparseVector>, Option<IdfStats>),
    Custom(Custom),
    /// A payload key to order by, as sent (`order_by` of scroll).
    OrderBy(Value),
    Sample,
}

/// A base query with everything it needs to run.
#[derive(Clone, Debug)]
pub struct Base {
    pub scoring: Scoring,
    pub using: String,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub limit: usize,
    pub offset: usize,
    pub score_threshold: Option<f32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
}

impl Base {
    /// The same query as a `POST .../points/query` body, for the replicas of a cluster's
    /// shards: they parse it back into this base query. `spaces` are the collection's, so
    /// that multivectors go as lists of vectors.
    pub fn to_json(&self, spaces: &[VectorSpace]) -> Value {
        let space = spaces.iter().find(|s| s.name == self.using);
        let dense = |v: &Vec<f32>| space.map_or_else(|| json!(v), |s| dense_out(s, v));
        let query = match &self.scoring {
            Scoring::All => Value::Null,
            Scoring::Nearest(v) => dense(v),
            Scoring::Sparse(v, _) => json!(v),
            Scoring::Custom(custom) => custom_json(custom, dense),
            Scoring::SparseCustom(custom, _) => custom_json(custom, |v| json!(v)),
            Scoring::OrderBy(key) => json!({ "order_by": key }),
            Scoring::Sample => json!({"sample": "random"}),
        };
        let mut body = Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                body.insert(key.to_string(), value);
            }
        };
        put("query", query);
        put("using", json!(self.using));
        put("filter", json!(self.filter));
        let mut params = json!(self.params);
        if let Scoring::Sparse(_, Some(stats)) | Scoring::SparseCustom(_, Some(stats)) =
            &self.scoring
        {
            if !params.is_object() {
                params = json!({});
            }
            params["idf_stats"] = json!(stats);
        }
        put("params", params);
        put("limit", json!(self.limit));
        put("offset", json!(self.offset));
        put("score_threshold", json!(self.score_threshold));
        put("with_payload", json!(self.with_payload));
        put("with_vector", json!(self.with_vector));
        Value::Object(body)
    }
}

/// A custom scorer as the query JSON that makes it.
fn custom_json<V>(custom: &Custom<V>, vector: impl Fn(&V) -> Value) -> Value {
    let all = |vs: &[V]| -> Value { vs.iter().map(&vector).collect() };
    let pairs_json = |pairs: &[(V, V)]| -> Value {
        let pairs = pairs.iter();
        pairs
            .map(|(p, n)| json!({"positive": vector(p), "negative": vector(n)}))
            .collect()
    };
    match custom {
        Custom::Recommend {
            positive,
            negative,
            sum,
        } => json!({"recommend": {
            "positive": all(positive), "negative": all(negative),
            "strategy": if *sum { "sum_scores" } else { "best_score" },
        }}),
        Custom::Discover { target, pairs } => json!({"discover": {
            "target": vector(target), "context": pairs_json(pairs),
        }}),
        Custom::Context(pairs) => json!({"context": pairs_json(pairs)}),
        Custom::Feedback(f) => {
            let [a, b, c] = f.coefficients;
            let rated: Vec<Value> = f
                .examples
                .iter()
                .map(|(v, score)| json!({"example": vector(v), "score": score}))
                .collect();
            json!({"relevance_feedback": {
                "target": vector(&f.target), "feedback": rated,
                "strategy": {"naive": {"a": a, "b": b, "c": c}},
            }})
        }
    }
}

/// A base query's points and how its segments were searched.
pub type Answer = (Vec<ScoredPoint>, Vec<SegmentPlan>);

/// Runs a base query on a snapshot (blocking: call it on a search thread).
pub fn run(snapshot: &Snapshot, base: &Base) -> Result<Answer, ApiError> {
    let space = snapshot.space_index(&base.using);
    let tuning = check_params(&base.params, base.limit, base.offset)?;
    // Full-text conditions take the tokenizer of the text index on their key.
    let bound = snapshot.bind(base.filter.clone());
    let filter = bound.as_ref();
    let (k, skip) = (base.limit.saturating_add(base.offset), base.offset);
    let unit = |found: Vec<(PointId, PointRef)>| -> Answer {
        let points = found.into_iter().skip(skip);
        (
            points
                .map(|(id, p)| out(snapshot, base, id, &p, 1.0))
                .collect(),
            Vec::new(),
        )
    };
    match &base.scoring {
        Scoring::All => Ok(unit(snapshot.scan(None, filter).take(k).collect())),
        Scoring::Sample => Ok(unit(sample(snapshot, filter, k))),
        Scoring::OrderBy(key) => {
            let order = order_by(snapshot, key)?;
            let rows = ordered(snapshot, &order, filter, k);
            let points = rows.into_iter().skip(skip).map(|(s, o, value)| {
                let seg = &snapshot.segments[s];
                let mut p = out(snapshot, base, seg.data.id(o), &seg.point(o), 1.0);
                p.order_value = Some(value);
                p
            });
            Ok((points.collect(), Vec::new()))
        }
        Scoring::Nearest(vector) => {
            let space = space.ok_or_else(|| no_space(&base.using))?;
            let of = &snapshot.spaces[space];
            let (hits, plans) = match of.multi {
                false => nearest(snapshot, base, filter, space, vector, tuning),
                true => {
                    let score = |row: &[f32]| -of.distance_between(vector, row);
                    let found = best_scored(snapshot, base, filter, space, &score);
                    let hits = found.into_iter().skip(base.offset);
                    (
                        hits.map(|(s, o, score)| (s, o, -score)).collect(),
                        Vec::new(),
                    )
                }
            };
            let distance = of.distance;
            let points = hits.into_iter().filter_map(|(s, o, d)| {
                let score = distance.score(d);
                let passes = base.score_threshold.is_none_or(|t| {
                    if distance.higher_is_better() {
                        score >= t
                    } else {
                        score <= t
                    }
                });
                let seg = &snapshot.segments[s];
                passes.then(|| out(snapshot, base, seg.data.id(o), &seg.point(o), score))
            });
            Ok((points.collect(), plans))
        }
        Scoring::Custom(custom) => {
            let space = space.ok_or_else(|| no_space(&base.using))?;
            let found = scan_custom(snapshot, base, filter, space, custom);
            Ok((found, Vec::new()))
        }
        Scoring::Sparse(query, stats) => {
            let weighted = stats.as_ref().map(|s| s.weigh(query));
            let query = weighted.as_ref().unwrap_or(query);
            Ok((sparse(snapshot, base, filter, query)?, Vec::new()))
        }
        Scoring::SparseCustom(custom, stats) => {
            let weighted = stats.as_ref().map(|s| custom.map(|v| s.weigh(v)));
            let custom = weighted.as_ref().unwrap_or(custom);
            Ok((sparse_custom(snapshot, base, filter, custom)?, Vec::new()))
        }
    }
}

/// The best points by a custom scorer over sparse examples: every point that has the sparse
/// vector `base.using` and passes the filter, scored from its dot products with the examples
/// (0 where they share no dimension), as the client's local mode scores them.
fn sparse_custom(
    snapshot: &Snapshot,
    base: &Base,
    filter: Option<&Filter>,
    custom: &Custom<SparseVector>,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let space = sparse_space(snapshot, &base.using)?;
    let k = base.limit.saturating_add(base.offset);
    let mut best: Vec<(usize, u32, f32)> = Vec::new();
    for (i, seg) in snapshot.segments.iter().enumerate() {
        // TopK keeps the lowest: scores are negated.
        let mut top = TopK::new(k);
        for o in (0..seg.data.len() as u32).filter(|&o| seg.is_live(o)) {
            let point = seg.data.sparse(space, o);
            if point.is_empty() || filter.is_some_and(|f| !f.matches(&seg.point(o))) {
                continue;
            }
            top.push(
                o,
                -custom.score(|example| example.dot(point).unwrap_or(0.0)),
            );
        }
        best.extend(top.into_sorted_vec().into_iter().map(|(o, d)| (i, o, -d)));
    }
    let id = |&(i, o, _): &(usize, u32, f32)| snapshot.segments[i].data.id(o);
    best.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| id(a).cmp(&id(b))));
    best.truncate(k);
    let points = best.into_iter().filter_map(|(i, o, score)| {
        let seg = &snapshot.segments[i];
        let passes = base.score_threshold.is_none_or(|t| score >= t);
        passes.then(|| out(snapshot, base, seg.data.id(o), &seg.point(o), score))
    });
    Ok(points.skip(base.offset).collect())
}

/// The index of the sparse space named `name`.
fn sparse_space(snapshot: &Snapshot, name: &str) -> Result<usize, ApiError> {
    let spaces = snapshot.config.sparse_spaces();
    spaces
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| no_space(name))
}

/// The best points by a sparse query of the sparse space `base.using`.
fn sparse(
    snapshot: &Snapshot,
    base: &Base,
    filter: Option<&Filter>,
    query: &SparseVector,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let space = sparse_space(snapshot, &base.using)?;
    let search = SparseSearch {
        space,
        query,
        limit: base.limit,
        offset: base.offset,
        filter,
    };
    let hits = search_sparse(snapshot, &search).into_iter();
    let points = hits.filter_map(|hit| {
        let score = -hit.distance;
        let seg = &snapshot.segments[hit.segment];
        let point = seg.point(hit.offset);
        let passes = base.score_threshold.is_none_or(|t| score >= t);
        passes.then(|| out(snapshot, base, seg.data.id(hit.offset), &point, score))
    });
    Ok(points.collect())
}

/// The error of a query naming a vector the collection does not have (Qdrant's words).
pub fn no_space(name: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "Wrong input: Not existing vector name error: {name}"
    ))
}

/// The nearest points to a single vector through the segments' plans, as (segment, offset,
/// distance) after `base.offset`, and how each segment was searched.
fn nearest(
    snapshot: &Snapshot,
    base: &Base,
    filter: Option<&Filter>,
    space: usize,
    vector: &[f32],
    tuning: Tuning,
) -> (Vec<(usize, u32, f32)>, Vec<SegmentPlan>) {
    let params = SearchParams {
        space,
        vector,
        limit: base.limit,
        offset: base.offset,
        filter,
        tuning,
        metric: snapshot.spaces[space].metric(),
    };
    let Searched { hits, plans } = search(snapshot, &params);
    let hits = hits.into_iter().map(|h| (h.segment, h.offset, h.distance));
    (hits.collect(), plans)
}

/// The best points by a custom scorer: walked through the HNSW graphs of sealed segments
/// (scanned when exact or small); the `limit` after `offset` that reach `score_threshold`.
fn scan_custom(
    snapshot: &Snapshot,
    base: &Base,
    filter: Option<&Filter>,
    space: usize,
    custom: &Custom,
) -> Vec<ScoredPoint> {
    let of = &snapshot.spaces[space];
    let score = |row: &[f32]| custom.score(|v| -of.distance_between(v, row));
    best_scored(snapshot, base, filter, space, &score)
        .into_iter()
        .filter(|&(_, _, score)| base.score_threshold.is_none_or(|t| score >= t))
        .skip(base.offset)
        .map(|(s, o, score)| {
            let seg = &snapshot.segments[s];
            out(snapshot, base, seg.data.id(o), &seg.point(o), score)
        })
        .collect()
}

/// The `limit + offset` best points of space `space` by `score` (higher is better), as
/// (segment, offset, score), best first.
fn best_scored(
    snapshot: &Snapshot,
    base: &Base,
    filter: Option<&Filter>,
    space: usize,
    score: &dyn Fn(&[f32]) -> f32,
) -> Vec<(usize, u32, f32)> {
    let params = base.params.clone().unwrap_or_default();
    let search = ScoredSearch {
        space,
        score,
        filter,
        k: base.limit.saturating_add(base.offset),
        ef: params
            .hnsw_ef
            .unwrap_or(snapshot.spaces[space].hnsw.ef_construct),
        exact: params.exact.unwrap_or(false),
    };
    search_scored(snapshot, &search)
}

/// Up to `k` matching points chosen uniformly at random: those whose ids hash lowest under
/// a key drawn for this request.
fn sample<'a>(
    snapshot: &'a Snapshot,
    filter: Option<&'a Filter>,
    k: usize,
) -> Vec<(PointId, PointRef<'a>)> {
    let key = std::collections::hash_map::RandomState::new();
    let mut top = TopK::new(k);
    let matching: Vec<(PointId, PointRef)> = snapshot.scan(None, filter).collect();
    for (i, (id, _)) in matching.iter().enumerate() {
        top.push(i as u32, key.hash_one(id) as f32);
    }
    let mut slots: Vec<Option<(PointId, PointRef)>> = matching.into_iter().map(Some).collect();
    top.into_sorted_vec()
        .into_iter()
        .filter_map(|(i, _)| slots[i as usize].take())
        .collect()
}

/// A result point with the payload and vectors the query asked for.
fn out(snapshot: &Snapshot, base: &Base, id: PointId, point: &PointRef, score: f32) -> ScoredPoint {
    ScoredPoint {
        id,
        version: point.version(),
        score,
        payload: payload_out(point.payload_map(), &base.with_payload, false),
        vector: vector_out(point, &snapshot.spaces, &base.with_vector, false),
        order_value: None,
    }
}
