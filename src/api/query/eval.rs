//! Evaluating a query tree: prefetches first (each with the filters above it), then the
//! node's own query ranks what they found — fusion merges their lists, any other query
//! rescores their points — down to base queries, which a [`Source`] runs. A single node's
//! source runs them on its snapshot; a cluster's asks every shard and merges the answers, so
//! fusion, MMR and everything above the base queries happen once, over whole-collection lists,
//! and give the same answer as one node.

use std::collections::HashMap;

use futures::future::{BoxFuture, FutureExt};

use super::base::{no_space, Base, Scoring};
use super::examples::{average, multi_average, sparse_scoring, Examples};
use super::formula::{self, Formula};
use super::model::{Fusion, LookupFrom, Mmr, Node, Query, Strategy};
use super::rank::{self, Custom, Feedback, Ranked};
use crate::api::convert::prepare;
use crate::api::error::ApiError;
use crate::api::models::{ScoredPoint, WithPayload, WithVector};
use crate::collection::config::VectorSpace;
use crate::collection::sparse_search::IdfStats;
use crate::filter::{Condition, Filter, HasIdCondition, ValueSet};
use crate::index::distance::to_unit;
use crate::point_id::PointId;

/// Where base queries run and stored vectors and payloads come from.
pub trait Source: Sync {
    /// The name of the collection queried (to tell a `lookup_from` of itself).
    fn name(&self) -> &str;
    /// The collection's vector spaces.
    fn spaces(&self) -> &[VectorSpace];
    /// Whether `name` is a sparse vector of the collection (`Some`), and whether its queries
    /// are IDF-weighted.
    fn sparse_idf(&self, name: &str) -> Option<bool>;
    /// The collection-wide IDF counts of the dimensions `dims` of the sparse vector `using`,
    /// over the points matching `corpus` when given.
    fn idf_stats<'a>(
        &'a self,
        using: &'a str,
        dims: Vec<u32>,
        corpus: Option<&'a Filter>,
    ) -> BoxFuture<'a, Result<IdfStats, ApiError>>;
    /// Runs a base query.
    fn base(&self, base: Base) -> BoxFuture<'_, Result<Vec<ScoredPoint>, ApiError>>;
    /// The vectors named `using` of the points `ids` that exist, from `from` (this collection
    /// when `None`).
    fn vectors<'a>(
        &'a self,
        from: Option<&'a LookupFrom>,
        using: &'a str,
        ids: Vec<PointId>,
    ) -> BoxFuture<'a, Result<HashMap<PointId, Vec<f32>>, ApiError>>;
    /// The points `ids` of the collection `collection` that exist, as retrieve returns them.
    fn records<'a>(
        &'a self,
        collection: &'a str,
        ids: Vec<PointId>,
        with_payload: &'a Option<WithPayload>,
        with_vector: &'a Option<WithVector>,
    ) -> BoxFuture<'a, Result<HashMap<PointId, serde_json::Value>, ApiError>>;
    /// Sets the payloads and vectors of `points` as asked.
    fn fill<'a>(
        &'a self,
        points: &'a mut [ScoredPoint],
        with_payload: &'a Option<WithPayload>,
        with_vector: &'a Option<WithVector>,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// What the top of the tree returns: a page, with the fields asked for.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub offset: usize,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
}

/// Evaluates a query tree; `out` shapes the top level's answer.
pub async fn evaluate(
    source: &dyn Source,
    root: Node,
    out: Output,
) -> Result<Vec<ScoredPoint>, ApiError> {
    eval(source, root, None, out).await
}

/// A node's query with its examples looked up.
enum Resolved {
    Scoring(Scoring),
    Mmr(Vec<f32>, Mmr),
    Fusion(Fusion),
    Formula(Formula),
}

fn eval<'a>(
    source: &'a dyn Source,
    node: Node,
    outer: Option<Filter>,
    out: Output,
) -> BoxFuture<'a, Result<Vec<ScoredPoint>, ApiError>> {
    async move {
        let mut filter = merge(outer, node.filter.clone());
        let (resolved, mentioned) = resolve(source, &node).await?;
        // The examples are left out of the results; as in Qdrant's client, relevance feedback
        // leaves them out of its own level only, the other queries out of their prefetches too.
        let own_level_only = matches!(node.query, Some(Query::Feedback { .. }));
        let mut mentioned = Some(mentioned).filter(|m| !m.is_empty());
        if !own_level_only {
            if let Some(ids) = mentioned.take() {
                filter = Some(exclude(filter, ids));
            }
        }
        let base = |scoring: Scoring, filter: Option<Filter>, limit: usize, out: &Output| Base {
            scoring,
            using: node.using.clone(),
            filter,
            params: node.params.clone(),
            limit,
            offset: out.offset,
            score_threshold: node.score_threshold,
            with_payload: out.with_payload.clone(),
            with_vector: out.with_vector.clone(),
        };
        if node.prefetch.is_empty() {
            if let Some(ids) = mentioned.take() {
                filter = Some(exclude(filter, ids));
            }
            return match resolved {
                Resolved::Fusion(_) | Resolved::Formula(_) => Err(ApiError::BadRequest(
                    "query: fusion and formula queries rank the results of prefetches; give `prefetch`".into(),
                )),
                Resolved::Mmr(vector, mmr) => {
                    let candidates = base(
                        Scoring::Nearest(vector.clone()),
                        filter,
                        0,
                        &Output::default(),
                    );
                    diversify(source, candidates, vector, mmr, node.limit, out).await
                }
                Resolved::Scoring(scoring) => {
                    source.base(base(scoring, filter, node.limit, &out)).await
                }
            };
        }
        let inner = node
            .prefetch
            .iter()
            .map(|p| eval(source, p.clone(), filter.clone(), Output::default()));
        let lists = futures::future::try_join_all(inner).await?;
        let fused = match resolved {
            Resolved::Fusion(fusion) => return fuse(source, lists, fusion, &node, out).await,
            Resolved::Formula(formula) => return boost(source, lists, formula, &node, out).await,
            other => other,
        };
        let mut ids: Vec<PointId> = lists.iter().flatten().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut among = include(filter.clone(), ids);
        if let Some(ids) = mentioned.take() {
            among = exclude(Some(among), ids);
        }
        match fused {
            Resolved::Scoring(Scoring::All) => Err(ApiError::BadRequest(
                "query: a query is needed to rank the results of `prefetch`".into(),
            )),
            Resolved::Mmr(vector, mmr) => {
                let candidates = base(
                    Scoring::Nearest(vector.clone()),
                    Some(among),
                    0,
                    &Output::default(),
                );
                diversify(source, candidates, vector, mmr, node.limit, out).await
            }
            Resolved::Scoring(scoring) => {
                source
                    .base(base(scoring, Some(among), node.limit, &out))
                    .await
            }
            Resolved::Fusion(_) | Resolved::Formula(_) => unreachable!("returned above"),
        }
    }
    .boxed()
}

/// Fuses prefetched lists, keeps those reaching `score_threshold`, and pages.
async fn fuse(
    source: &dyn Source,
    lists: Vec<Vec<ScoredPoint>>,
    fusion: Fusion,
    node: &Node,
    out: Output,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let k = node.limit.saturating_add(out.offset);
    let fused = match &fusion {
        Fusion::Rrf { k: rank_k, weights } => {
            if let Some(w) = weights.as_ref().filter(|w| w.len() != lists.len()) {
                return Err(ApiError::BadRequest(format!(
                    "query.rrf.weights: {} weights for {} prefetches; give one per prefetch",
                    w.len(),
                    lists.len()
                )));
            }
            rank::rrf(lists, *rank_k, weights.as_deref(), k)
        }
        Fusion::Dbsf => rank::dbsf(lists, k),
    };
    page(source, fused, node.score_threshold, &out).await
}

/// The points of `ranked` (best first, no more than `limit + offset`) that reach `threshold`,
/// after `offset`, with the payloads and vectors asked for.
async fn page(
    source: &dyn Source,
    ranked: Vec<ScoredPoint>,
    threshold: Option<f32>,
    out: &Output,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let mut page: Vec<ScoredPoint> = ranked
        .into_iter()
        .filter(|p| threshold.is_none_or(|t| p.score >= t))
        .skip(out.offset)
        .collect();
    source
        .fill(&mut page, &out.with_payload, &out.with_vector)
        .await?;
    Ok(page)
}

/// Rescores the prefetched points with a formula (best first, ties in the order the
/// prefetches met them), keeps those reaching `score_threshold`, and pages.
async fn boost(
    source: &dyn Source,
    lists: Vec<Vec<ScoredPoint>>,
    formula: Formula,
    node: &Node,
    out: Output,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let scores: Vec<HashMap<PointId, f32>> = lists
        .iter()
        .map(|l| l.iter().map(|p| (p.id, p.score)).collect())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let points: Vec<ScoredPoint> = lists
        .into_iter()
        .flatten()
        .filter(|p| seen.insert(p.id))
        .collect();
    let ids = points.iter().map(|p| p.id).collect();
    let everything = Some(WithPayload::All(true));
    let records = source
        .records(source.name(), ids, &everything, &None)
        .await?;
    let empty = serde_json::Map::new();
    let mut rescored = Vec::with_capacity(points.len());
    for mut p in points {
        let payload = records.get(&p.id).and_then(|r| r["payload"].as_object());
        let point = formula::Point {
            id: p.id,
            payload: payload.unwrap_or(&empty),
            scores: &scores,
        };
        p.score = formula.score(&point)?;
        rescored.push(p);
    }
    rescored.sort_by(|a, b| b.score.total_cmp(&a.score));
    rescored.truncate(node.limit.saturating_add(out.offset));
    page(source, rescored, node.score_threshold, &out).await
}

/// Maximal marginal relevance: the nearest candidates (as many as `candidates_limit`, else
/// `limit`), re-ranked for diversity; the page after `offset`, with their original scores.
async fn diversify(
    source: &dyn Source,
    mut candidates: Base,
    vector: Vec<f32>,
    mmr: Mmr,
    limit: usize,
    out: Output,
) -> Result<Vec<ScoredPoint>, ApiError> {
    candidates.limit = mmr.candidates_limit.unwrap_or(limit);
    let using = candidates.using.clone();
    let space = space(source, &using)?.clone();
    let found = source.base(candidates).await?;
    let ids = found.iter().map(|p| p.id).collect();
    let mut vectors = source.vectors(None, &using, ids).await?;
    let with_vectors = found
        .into_iter()
        .filter_map(|p| vectors.remove(&p.id).map(|v| (p, v)))
        .collect();
    let sim = |a: &[f32], b: &[f32]| -space.distance_between(a, b);
    let k = limit.saturating_add(out.offset);
    let picked = rank::mmr(with_vectors, &vector, sim, mmr.diversity, k);
    page(source, picked, None, &out).await
}

fn space<'a>(source: &'a dyn Source, using: &str) -> Result<&'a VectorSpace, ApiError> {
    source
        .spaces()
        .iter()
        .find(|s| s.name == using)
        .ok_or_else(|| no_space(using))
}

/// Looks up the vectors of the points a node's query names by id, and prepares every example.
/// Returns the ids to leave out of the results: those of this collection.
async fn resolve(source: &dyn Source, node: &Node) -> Result<(Resolved, Vec<PointId>), ApiError> {
    let scoring = |s: Scoring| Ok((Resolved::Scoring(s), Vec::new()));
    let query = match &node.query {
        None => return scoring(Scoring::All),
        Some(Query::OrderBy(key)) => return scoring(Scoring::OrderBy(key.clone())),
        Some(Query::Sample) => return scoring(Scoring::Sample),
        Some(Query::Fusion(f)) => return Ok((Resolved::Fusion(f.clone()), Vec::new())),
        Some(Query::Formula(f)) => return Ok((Resolved::Formula(f.clone()), Vec::new())),
        Some(q) => q,
    };
    let ids = query.ids();
    let from = node.lookup_from.as_ref();
    let own = from.is_none_or(|l| l.collection == source.name());
    let exclude = if own { ids.clone() } else { Vec::new() };
    if let Some(idf) = source.sparse_idf(&node.using) {
        let scoring = sparse_scoring(source, node, query, idf).await?;
        return Ok((Resolved::Scoring(scoring), exclude));
    }
    let found = if ids.is_empty() {
        HashMap::new()
    } else {
        let name = from.and_then(|l| l.vector.as_deref());
        let name = name.unwrap_or(&node.using);
        source.vectors(from, name, ids.clone()).await?
    };
    let ex = Examples {
        space: space(source, &node.using)?,
        found,
    };
    let custom = |c: Custom| Resolved::Scoring(Scoring::Custom(c));
    let resolved = match query {
        Query::Nearest { target, mmr: None } => {
            Resolved::Scoring(Scoring::Nearest(ex.ready(target, "query")?))
        }
        Query::Nearest {
            target,
            mmr: Some(m),
        } => Resolved::Mmr(ex.ready(target, "query")?, *m),
        Query::Recommend {
            positive,
            negative,
            strategy: Strategy::AverageVector,
        } => {
            let mut pos = ex.raws(positive, "recommend.positive")?;
            let mut neg = ex.raws(negative, "recommend.negative")?;
            if ex.space.metric() == crate::index::Metric::Cosine {
                // Stored bytes are not unit vectors; their directions are averaged, as where
                // cosine vectors are stored normalised.
                pos.iter_mut().chain(&mut neg).for_each(|v| to_unit(v));
            }
            let mean = match ex.space.multi {
                false => average(&pos, &neg),
                true => multi_average(&pos, &neg),
            };
            let mean = prepare(ex.space, mean, "recommend")?;
            Resolved::Scoring(Scoring::Nearest(mean))
        }
        Query::Recommend {
            positive,
            negative,
            strategy,
        } => custom(Custom::Recommend {
            positive: ex.all(positive, "recommend.positive")?,
            negative: ex.all(negative, "recommend.negative")?,
            sum: *strategy == Strategy::SumScores,
        }),
        Query::Discover { target, context } => custom(Custom::Discover {
            target: ex.ready(target, "discover.target")?,
            pairs: ex.pairs(context, "discover.context")?,
        }),
        Query::Context(context) => custom(Custom::Context(ex.pairs(context, "context")?)),
        Query::Feedback {
            target,
            examples,
            coefficients,
        } => {
            let what = "relevance_feedback";
            let rated = examples
                .iter()
                .map(|(e, score)| Ok((ex.ready(e, what)?, *score)));
            let rated = rated.collect::<Result<Vec<_>, ApiError>>()?;
            let target = ex.ready(target, what)?;
            custom(Custom::Feedback(Feedback::new(
                target,
                rated,
                *coefficients,
            )))
        }
        Query::OrderBy(_) | Query::Sample | Query::Fusion(_) | Query::Formula(_) => {
            unreachable!("returned above")
        }
    };
    Ok((resolved, exclude))
}

/// Concatenates two filters clause by clause, as Qdrant merges a prefetch's filter with those
/// above it.
pub fn merge(outer: Option<Filter>, inner: Option<Filter>) -> Option<Filter> {
    let (mut a, b) = match (outer, inner) {
        (None, f) | (f, None) => return f,
        (Some(a), Some(b)) => (a, b),
    };
    a.must.extend(b.must);
    a.must_not.extend(b.must_not);
    a.should.extend(b.should);
    a.min_should = match (a.min_should.take(), b.min_should) {
        (None, m) | (m, None) => m,
        (Some(mut x), Some(y)) => {
            x.min_count = x.min_count.max(y.min_count);
            x.conditions.extend(y.conditions);
            Some(x)
        }
    };
    Some(a)
}

/// `filter` that also leaves out the points `ids`.
fn exclude(filter: Option<Filter>, ids: Vec<PointId>) -> Filter {
    let mut f = filter.unwrap_or_default();
    f.must_not.push(Condition::HasId(HasIdCondition {
        has_id: ValueSet::new(ids),
    }));
    f
}

/// `filter` that also keeps only the points `ids`.
fn include(filter: Option<Filter>, ids: Vec<PointId>) -> Filter {
    let mut f = filter.unwrap_or_default();
    f.must.push(Condition::HasId(HasIdCondition {
        has_id: ValueSet::new(ids),
    }));
    f
}

impl Ranked for ScoredPoint {
    fn id(&self) -> PointId {
        self.id
    }
    fn score(&self) -> f32 {
        self.score
    }
    fn set_score(&mut self, score: f32) {
        self.score = score;
    }
}
