//! Queries of a cluster collection: the same query trees as on one node ([`evaluate`]), with
//! a source whose base queries ask every shard (each for its best `offset + limit`) and merge
//! the answers exactly. Prefetches, fusion, MMR and rescoring run here, over whole-collection
//! lists, so a cluster answers each query kind as one node holding the same points does.

use std::collections::HashMap;

use axum::http::Method;
use futures::future::{BoxFuture, FutureExt};
use serde_json::{json, Value};

use super::{lists_of, Question, Target};
use crate::api::error::{from_value, ApiError};
use crate::api::models::{ScoredPoint, WithPayload, WithVector};
use crate::api::query::eval::{evaluate, Output, Source};
use crate::api::query::groups::{
    groups, IntoGroups, QueryGroupsRequest, RecommendGroupsRequest, SearchGroupsRequest,
};
use crate::api::query::legacy::{
    DiscoverRequest, DiscoverRequestBatch, RecommendRequest, RecommendRequestBatch, SearchRequest,
    SearchRequestBatch,
};
use crate::api::query::matrix::{matrix, vector_in, MatrixRequest};
use crate::api::query::model::{LookupFrom, Node};
use crate::api::query::{trees, Base, IntoTree, QueryRequest, QueryRequestBatch, Scoring};
use crate::cluster::merge::{self, Order};
use crate::cluster::meta::ClusterCollection;
use crate::cluster::ring::shard_of;
use crate::collection::config::VectorSpace;
use crate::collection::sparse_search::IdfStats;
use crate::filter::Filter;
use crate::point_id::PointId;

/// The shards of one cluster collection, asked at one consistency level.
struct Shards<'a> {
    target: &'a Target<'a>,
    level: &'a Question,
    spaces: Vec<VectorSpace>,
}

impl Target<'_> {
    /// Answers the query routes (`tail` is the path after the collection): the universal
    /// query and the older search, recommend and discover endpoints, each with its batch.
    pub(super) async fn query_route(
        &self,
        q: &Question,
        tail: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let source = Shards {
            target: self,
            level: q,
            spaces: self.collection.config.spaces(),
        };
        if let Some(answer) = source.grouped_or_matrix(tail, &body).await {
            return answer;
        }
        let (trees, shape) = match tail {
            "/points/query" => (
                vec![from_value::<QueryRequest>(body)?.into_tree()?],
                Shape::Points,
            ),
            "/points/query/batch" => (
                trees(from_value::<QueryRequestBatch>(body)?.searches)?,
                Shape::PointsBatch,
            ),
            "/points/search" => (
                vec![from_value::<SearchRequest>(body)?.into_tree()?],
                Shape::List,
            ),
            "/points/search/batch" => (
                trees(from_value::<SearchRequestBatch>(body)?.searches)?,
                Shape::ListBatch,
            ),
            "/points/recommend" => (
                vec![from_value::<RecommendRequest>(body)?.into_tree()?],
                Shape::List,
            ),
            "/points/recommend/batch" => (
                trees(from_value::<RecommendRequestBatch>(body)?.searches)?,
                Shape::ListBatch,
            ),
            "/points/discover" => (
                vec![from_value::<DiscoverRequest>(body)?.into_tree()?],
                Shape::List,
            ),
            "/points/discover/batch" => (
                trees(from_value::<DiscoverRequestBatch>(body)?.searches)?,
                Shape::ListBatch,
            ),
            _ => return Err(ApiError::BadRequest(format!("{tail} is not a query route"))),
        };
        let runs = trees
            .into_iter()
            .map(|(node, out): (Node, Output)| evaluate(&source, node, out));
        let lists = futures::future::try_join_all(runs).await?;
        let points = |list: Vec<ScoredPoint>| json!({ "points": list });
        Ok(match shape {
            Shape::Points => points(lists.into_iter().next().unwrap_or_default()),
            Shape::PointsBatch => Value::Array(lists.into_iter().map(points).collect()),
            Shape::List => json!(lists.into_iter().next().unwrap_or_default()),
            Shape::ListBatch => json!(lists),
        })
    }
}

/// How a route's answer is laid out.
enum Shape {
    /// `{"points": [...]}`
    Points,
    PointsBatch,
    /// `[...]`
    List,
    ListBatch,
}

impl<'t> Target<'t> {
    /// The same request's view of another collection.
    fn sibling<'s>(&'s self, name: &'s str, collection: &'s ClusterCollection) -> Target<'s>
    where
        't: 's,
    {
        Target {
            state: self.state,
            node: self.node,
            name,
            collection,
        }
    }
}

impl Shards<'_> {
    /// Answers the group and matrix routes; `None` for the others.
    async fn grouped_or_matrix(&self, tail: &str, body: &Value) -> Option<Result<Value, ApiError>> {
        let body = body.clone();
        let answer = match tail {
            "/points/query/groups" => self.grouped(from_value::<QueryGroupsRequest>(body)).await,
            "/points/search/groups" => self.grouped(from_value::<SearchGroupsRequest>(body)).await,
            "/points/recommend/groups" => {
                self.grouped(from_value::<RecommendGroupsRequest>(body))
                    .await
            }
            "/points/search/matrix/pairs" | "/points/search/matrix/offsets" => {
                let req = if body.as_object().is_some_and(|m| m.is_empty()) {
                    Ok(MatrixRequest::default())
                } else {
                    from_value::<MatrixRequest>(body)
                };
                match req {
                    Ok(req) => matrix(self, req).await.map(|m| {
                        if tail.ends_with("pairs") {
                            json!(m.pairs())
                        } else {
                            json!(m.offsets())
                        }
                    }),
                    Err(e) => Err(e),
                }
            }
            _ => return None,
        };
        Some(answer)
    }

    async fn grouped(&self, req: Result<impl IntoGroups, ApiError>) -> Result<Value, ApiError> {
        let (node, out, grouping) = req?.into_groups()?;
        Ok(json!(groups(self, node, out, grouping).await?))
    }

    /// The cluster collection `name` as the metadata group has it.
    /// The collection `name` names (directly or as an alias), with its own name.
    fn other(&self, name: &str) -> Result<(String, ClusterCollection), ApiError> {
        let meta = self.target.node.meta();
        let known = meta.state.resolve(name);
        let known = known.map(|(own, collection)| (own.clone(), collection.clone()));
        known.ok_or_else(|| ApiError::NotFound(format!("Collection `{name}` doesn't exist!")))
    }

    /// A question like the client's, for another route of the shards.
    fn question(&self, path: &str) -> Question {
        Question {
            method: Method::POST,
            path: path.to_string(),
            level: self.level.level,
            deadline: self.level.deadline,
        }
    }

    /// How the shards' answers to `base` are merged.
    fn order(&self, base: &Base) -> Order {
        match &base.scoring {
            Scoring::All => Order::ById,
            Scoring::Sample => Order::Shuffled,
            Scoring::Custom(_) | Scoring::Sparse(..) | Scoring::SparseCustom(..) => {
                Order::HigherFirst
            }
            Scoring::OrderBy(key) => Order::ByValue {
                descending: key.get("direction").and_then(Value::as_str) == Some("desc"),
            },
            Scoring::Nearest(_) => match self.spaces.iter().find(|s| s.name == base.using) {
                Some(space) if !space.distance.higher_is_better() => Order::LowerFirst,
                _ => Order::HigherFirst,
            },
        }
    }

    /// The points `ids` of `target`'s collection, as retrieve returns them.
    async fn retrieve(
        &self,
        target: &Target<'_>,
        ids: &[PointId],
        with_payload: Value,
        with_vector: Value,
    ) -> Result<Vec<Value>, ApiError> {
        let shards = target.collection.shards.len() as u32;
        let mut by_shard: HashMap<usize, Vec<PointId>> = HashMap::new();
        for &id in ids {
            by_shard
                .entry(shard_of(id, shards) as usize)
                .or_default()
                .push(id);
        }
        let bodies = by_shard
            .into_iter()
            .map(|(shard, ids)| {
                let body =
                    json!({"ids": ids, "with_payload": with_payload, "with_vector": with_vector});
                (shard, Some(body))
            })
            .collect();
        let found = target.gather(&self.question("/points"), bodies).await?;
        Ok(lists_of(found).concat())
    }
}

fn points(values: Vec<Value>) -> Result<Vec<ScoredPoint>, ApiError> {
    serde_json::from_value(Value::Array(values))
        .map_err(|e| ApiError::Internal(format!("a shard answered an unreadable point: {e}")))
}

impl Source for Shards<'_> {
    fn name(&self) -> &str {
        self.target.name
    }

    fn spaces(&self) -> &[VectorSpace] {
        &self.spaces
    }

    fn sparse_idf(&self, name: &str) -> Option<bool> {
        self.target.collection.config.sparse_idf(name)
    }

    fn idf_stats<'a>(
        &'a self,
        using: &'a str,
        dims: Vec<u32>,
        corpus: Option<&'a Filter>,
    ) -> BoxFuture<'a, Result<IdfStats, ApiError>> {
        async move {
            let body = json!({"using": using, "indices": dims, "corpus": corpus});
            let question = self.question("/points/sparse/idf");
            let answers = self.target.everywhere(&question, body).await?;
            let mut total = IdfStats::default();
            for answer in answers {
                let part: IdfStats = serde_json::from_value(answer).map_err(|e| {
                    ApiError::Internal(format!("a shard answered unreadable IDF counts: {e}"))
                })?;
                total.add(&part);
            }
            Ok(total)
        }
        .boxed()
    }

    fn base(&self, base: Base) -> BoxFuture<'_, Result<Vec<ScoredPoint>, ApiError>> {
        async move {
            let order = self.order(&base);
            let (offset, limit) = (base.offset, base.limit);
            let mut wide = base;
            wide.limit = limit.saturating_add(offset);
            wide.offset = 0;
            let answers = self
                .target
                .everywhere(&self.question("/points/query"), wide.to_json(&self.spaces))
                .await?;
            let lists = answers
                .into_iter()
                .map(|a| a.get("points").cloned().unwrap_or(Value::Null))
                .collect();
            points(merge::top_k(lists_of(lists), order, offset, limit))
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
            let collection = from.map_or(self.target.name, |l| l.collection.as_str());
            let (no_payload, only) = (
                Some(WithPayload::All(false)),
                Some(WithVector::Names(vec![using.to_string()])),
            );
            let found = self.records(collection, ids, &no_payload, &only).await?;
            let vectors = found
                .into_iter()
                .filter_map(|(id, point)| Some((id, vector_in(&point["vector"], using)?)));
            Ok(vectors.collect())
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
            let (own, other) = self.other(collection)?;
            let target = self.target.sibling(&own, &other);
            let found = self
                .retrieve(&target, &ids, json!(with_payload), json!(with_vector))
                .await?;
            Ok(found
                .into_iter()
                .filter_map(|p| Some((PointId::from_json(&p["id"]).ok()?, p)))
                .collect())
        }
        .boxed()
    }

    fn fill<'a>(
        &'a self,
        points: &'a mut [ScoredPoint],
        with_payload: &'a Option<WithPayload>,
        with_vector: &'a Option<WithVector>,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            if points.is_empty() {
                return Ok(());
            }
            let ids: Vec<PointId> = points.iter().map(|p| p.id).collect();
            // Retrieve returns payloads unless told otherwise; a query does not.
            let with_payload = json!(with_payload.clone().unwrap_or(WithPayload::All(false)));
            let with_vector = json!(with_vector.clone().unwrap_or(WithVector::All(false)));
            let found = self
                .retrieve(self.target, &ids, with_payload, with_vector)
                .await?;
            let mut by_id: HashMap<PointId, Value> = found
                .into_iter()
                .filter_map(|p| Some((PointId::from_json(&p["id"]).ok()?, p)))
                .collect();
            for p in points.iter_mut() {
                let Some(mut record) = by_id.remove(&p.id) else {
                    continue;
                };
                p.payload = serde_json::from_value(record["payload"].take()).unwrap_or(None);
                p.vector = Some(record["vector"].take()).filter(|v| !v.is_null());
            }
            Ok(())
        }
        .boxed()
    }
}
