//! Grouped results: the best points of a query tree, taken in score order into groups by the
//! values of a payload key (a point with several values joins each of their groups), up to
//! `group_size` points per group and `limit` groups; with `with_lookup`, each group carries
//! the point of another collection whose id is the group's value.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::eval::{evaluate, Output, Source};
use super::legacy::{RecommendRequest, SearchRequest};
use super::model::{LookupFrom, Node, Strategy};
use super::{IntoTree, QueryRequest, SearchParamsBody};
use crate::api::convert::payload_out;
use crate::api::error::ApiError;
use crate::api::models::{ScoredPoint, WithPayload, WithVector};
use crate::error::Invalid;
use crate::filter::{parse_path, JsonPath};
use crate::point_id::PointId;

/// `with_lookup`: a collection's name, or the name with what to return of its points.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WithLookup {
    Collection(String),
    Spec(LookupSpec),
}

/// The points of `collection` whose ids are the groups' values.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    pub collection: String,
    /// Default: the whole payload.
    pub with_payload: Option<WithPayload>,
    /// Default: no vectors.
    #[serde(alias = "with_vector")]
    pub with_vectors: Option<WithVector>,
}

/// How a request groups its points.
#[derive(Clone, Debug)]
pub struct Grouping {
    pub group_by: String,
    pub group_size: usize,
    pub limit: usize,
    pub with_lookup: Option<WithLookup>,
}

/// One group: its value, best points first, and the looked-up point.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PointGroup {
    #[schema(value_type = Object)]
    pub id: Value,
    pub hits: Vec<ScoredPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub lookup: Option<Value>,
}

/// `result` of the group endpoints.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GroupsResult {
    pub groups: Vec<PointGroup>,
}

impl Grouping {
    /// Checks the grouping before anything runs.
    pub fn checked(
        group_by: String,
        group_size: Option<usize>,
        limit: Option<usize>,
        with_lookup: Option<WithLookup>,
    ) -> Result<Grouping, ApiError> {
        let max = crate::limits::get().max_limit;
        let (group_size, limit) = (group_size.unwrap_or(3), limit.unwrap_or(10));
        for (value, what) in [(group_size, "group_size"), (limit, "limit")] {
            if value == 0 {
                return Err(Invalid::below(what, 0, 1).into());
            }
            if value > max {
                return Err(ApiError::BadRequest(format!(
                    "{what} must be between 1 and {max} (limits.max_limit), got {value}"
                )));
            }
        }
        parse_path(&group_by).map_err(|e| ApiError::BadRequest(format!("group_by: {e}")))?;
        Ok(Grouping {
            group_by,
            group_size,
            limit,
            with_lookup,
        })
    }
}

/// Evaluates `node` for enough points to fill the groups: first for `limit × group_size`
/// points, then four times as many while the first `limit` groups are not all full and the
/// query found as many points as it was asked for (up to `limits.max_limit`).
pub async fn groups(
    source: &dyn Source,
    node: Node,
    out: Output,
    grouping: Grouping,
) -> Result<GroupsResult, ApiError> {
    let key = parse_path(&grouping.group_by)
        .map_err(|e| ApiError::BadRequest(format!("group_by: {e}")))?;
    let max = crate::limits::get().max_limit;
    let mut asked = grouping
        .limit
        .saturating_mul(grouping.group_size)
        .clamp(1, max);
    let found = loop {
        let mut wide = node.clone();
        wide.limit = asked;
        // The whole payload: the key is read from it, and the hits get what was asked.
        let all = Output {
            offset: 0,
            with_payload: Some(WithPayload::All(true)),
            with_vector: out.with_vector.clone(),
        };
        let points = evaluate(source, wide, all).await?;
        let exhausted = points.len() < asked || asked >= max;
        let groups = gather(points, &key, &grouping);
        let full = groups.len() >= grouping.limit
            && groups.iter().all(|g| g.hits.len() >= grouping.group_size);
        if full || exhausted {
            break groups;
        }
        asked = asked.saturating_mul(4).min(max);
    };
    let mut groups = found;
    for group in &mut groups {
        for hit in &mut group.hits {
            let payload = hit.payload.take().unwrap_or_default();
            hit.payload = payload_out(&payload, &out.with_payload, false);
        }
    }
    if let Some(lookup) = &grouping.with_lookup {
        look_up(source, lookup, &mut groups).await?;
    }
    Ok(GroupsResult { groups })
}

/// The first `limit` groups of `points` (best first), each with its best `group_size`.
fn gather(points: Vec<ScoredPoint>, key: &JsonPath, grouping: &Grouping) -> Vec<PointGroup> {
    let mut groups: Vec<PointGroup> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for point in points {
        let Some(values) = point.payload.as_ref().and_then(|p| group_values(p, key)) else {
            continue;
        };
        for value in values {
            let i = *at.entry(value.to_string()).or_insert_with(|| {
                groups.push(PointGroup {
                    id: value.clone(),
                    hits: Vec::new(),
                    lookup: None,
                });
                groups.len() - 1
            });
            if groups[i].hits.len() < grouping.group_size {
                groups[i].hits.push(point.clone());
            }
        }
    }
    groups.truncate(grouping.limit);
    groups
}

/// The distinct values of `key` in a payload, in order; `None` (the point joins no group)
/// when the key is missing or any value is not a string or an integer, as in Qdrant.
fn group_values(payload: &serde_json::Map<String, Value>, key: &JsonPath) -> Option<Vec<Value>> {
    let mut values: Vec<Value> = Vec::new();
    let mut valid = true;
    let _ = key.visit(payload, true, &mut |v| {
        let groupable = v.is_string() || v.is_i64() || v.is_u64();
        if !groupable {
            valid = false;
            return ControlFlow::Break(());
        }
        if !values.contains(v) {
            values.push(v.clone());
        }
        ControlFlow::Continue(())
    });
    (valid && !values.is_empty()).then_some(values)
}

/// Sets each group's `lookup`: the point of the lookup collection whose id is the group's value.
async fn look_up(
    source: &dyn Source,
    lookup: &WithLookup,
    groups: &mut [PointGroup],
) -> Result<(), ApiError> {
    let (collection, with_payload, with_vector) = match lookup {
        WithLookup::Collection(c) => (c.clone(), None, None),
        WithLookup::Spec(s) => (
            s.collection.clone(),
            s.with_payload.clone(),
            s.with_vectors.clone(),
        ),
    };
    let with_payload = with_payload.or(Some(WithPayload::All(true)));
    let ids: Vec<PointId> = groups
        .iter()
        .filter_map(|g| PointId::from_json(&g.id).ok())
        .collect();
    let mut found = source
        .records(&collection, ids, &with_payload, &with_vector)
        .await?;
    for group in groups {
        if let Ok(id) = PointId::from_json(&group.id) {
            group.lookup = found.remove(&id);
        }
    }
    Ok(())
}

/// `POST .../points/query/groups` body: a universal query, grouped.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryGroupsRequest {
    #[schema(value_type = Option<Object>)]
    pub prefetch: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub query: Option<Value>,
    pub using: Option<String>,
    pub filter: Option<crate::filter::Filter>,
    pub params: Option<SearchParamsBody>,
    pub score_threshold: Option<f32>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub lookup_from: Option<LookupFrom>,
    /// The payload key whose values name the groups (strings or integers).
    pub group_by: String,
    /// Points per group (default 3).
    pub group_size: Option<usize>,
    /// Groups (default 10).
    pub limit: Option<usize>,
    pub with_lookup: Option<WithLookup>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/search/groups` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchGroupsRequest {
    #[schema(value_type = crate::api::models::SearchVector)]
    pub vector: Value,
    pub filter: Option<crate::filter::Filter>,
    pub params: Option<SearchParamsBody>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
    pub group_by: String,
    pub group_size: usize,
    pub limit: usize,
    pub with_lookup: Option<WithLookup>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/recommend/groups` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendGroupsRequest {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub positive: Vec<Value>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub negative: Vec<Value>,
    pub strategy: Option<Strategy>,
    pub filter: Option<crate::filter::Filter>,
    pub params: Option<SearchParamsBody>,
    pub with_payload: Option<WithPayload>,
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
    pub using: Option<String>,
    pub lookup_from: Option<LookupFrom>,
    pub group_by: String,
    pub group_size: usize,
    pub limit: usize,
    pub with_lookup: Option<WithLookup>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// A grouped request: its query tree, and how it groups.
pub trait IntoGroups {
    fn into_groups(self) -> Result<(Node, Output, Grouping), ApiError>;
}

impl IntoGroups for QueryGroupsRequest {
    fn into_groups(self) -> Result<(Node, Output, Grouping), ApiError> {
        let grouping =
            Grouping::checked(self.group_by, self.group_size, self.limit, self.with_lookup)?;
        let query = QueryRequest {
            prefetch: self.prefetch,
            query: self.query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: Some(grouping.limit),
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            lookup_from: self.lookup_from,
            shard_key: self.shard_key,
        };
        let (node, out) = query.into_tree()?;
        Ok((node, out, grouping))
    }
}

impl IntoGroups for SearchGroupsRequest {
    fn into_groups(self) -> Result<(Node, Output, Grouping), ApiError> {
        let grouping = Grouping::checked(
            self.group_by,
            Some(self.group_size),
            Some(self.limit),
            self.with_lookup,
        )?;
        let search = SearchRequest {
            vector: self.vector,
            filter: self.filter,
            params: self.params,
            limit: grouping.limit,
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            score_threshold: self.score_threshold,
            shard_key: self.shard_key,
        };
        let (node, out) = search.into_tree()?;
        Ok((node, out, grouping))
    }
}

impl IntoGroups for RecommendGroupsRequest {
    fn into_groups(self) -> Result<(Node, Output, Grouping), ApiError> {
        let grouping = Grouping::checked(
            self.group_by,
            Some(self.group_size),
            Some(self.limit),
            self.with_lookup,
        )?;
        let recommend = RecommendRequest {
            positive: self.positive,
            negative: self.negative,
            strategy: self.strategy,
            filter: self.filter,
            params: self.params,
            limit: grouping.limit,
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            score_threshold: self.score_threshold,
            using: self.using,
            lookup_from: self.lookup_from,
            shard_key: self.shard_key,
        };
        let (node, out) = recommend.into_tree()?;
        Ok((node, out, grouping))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(id: u64, payload: Value) -> ScoredPoint {
        ScoredPoint {
            id: PointId::Num(id),
            version: 0,
            score: -(id as f32),
            payload: payload.as_object().cloned(),
            vector: None,
            order_value: None,
        }
    }

    #[test]
    fn groups_in_score_order_with_multi_valued_keys() {
        let points = vec![
            hit(1, json!({"g": "a"})),
            hit(2, json!({"g": ["b", "a"]})),
            hit(3, json!({"g": "a"})),
            hit(4, json!({"g": 1.5})),
            hit(5, json!({"g": [2, true]})),
            hit(6, json!({})),
            hit(7, json!({"g": 2})),
        ];
        let grouping = Grouping::checked("g".into(), Some(2), Some(5), None).unwrap();
        let groups = gather(points, &parse_path("g").unwrap(), &grouping);
        let shape: Vec<(Value, Vec<u64>)> = groups
            .iter()
            .map(|g| {
                let ids = g.hits.iter().map(|h| match h.id {
                    PointId::Num(n) => n,
                    PointId::Uuid(_) => 0,
                });
                (g.id.clone(), ids.collect())
            })
            .collect();
        // Floats and a list holding a bool join no group; "a" stops at two points.
        assert_eq!(
            shape,
            vec![
                (json!("a"), vec![1, 2]),
                (json!("b"), vec![2]),
                (json!(2), vec![7])
            ]
        );
    }
}
