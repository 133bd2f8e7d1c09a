//! Request and response bodies of the points API, in Qdrant's JSON shapes.
//!
//! Shapes with alternatives (a vector or named vectors, a list of points or a columnar batch)
//! are parsed from `serde_json::Value` by hand so the error says exactly which alternative was
//! expected and where it went wrong.

use crate::error::Invalid;
use std::collections::BTreeMap;

use serde::{de, Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::collection::ops::UpdateMode;
use crate::filter::Filter;
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;

/// Parses a dense vector: a non-empty array of finite numbers.
pub fn parse_dense(value: &Value, what: &str) -> Result<Vec<f32>, Invalid> {
    let Value::Array(items) = value else {
        return match value {
            Value::Object(_) => invalid!(
                "{what}: sparse and multi-vectors are not supported; expected an array of numbers"
            ),
            other => invalid!("{what}: expected an array of numbers, got {}", kind(other)),
        };
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = x
                .as_f64()
                .ok_or_else(|| format!("{what}[{i}]: expected a number, got {}", kind(x)))?;
            let v = f as f32;
            if v.is_finite() {
                Ok(v)
            } else {
                invalid!("{what}[{i}]: {f} is out of the float32 range")
            }
        })
        .collect()
}

/// A short name of a JSON value's type, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A point's vector(s): one unnamed dense vector, or named dense and sparse vectors.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorInput {
    Dense(Vec<f32>),
    /// The vectors of one unnamed multivector.
    Multi(Vec<Vec<f32>>),
    Named(BTreeMap<String, NamedVector>),
}

/// One named vector: dense numbers, or a sparse `{"indices": [...], "values": [...]}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum NamedVector {
    Dense(Vec<f32>),
    Sparse(SparseVector),
    /// A multivector: several dense vectors of the space's size.
    Multi(Vec<Vec<f32>>),
}

impl VectorInput {
    fn from_json(value: &Value, what: &str) -> Result<VectorInput, Invalid> {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(name, v)| Ok((name.clone(), named(v, &format!("{what}.{name}"))?)))
                .collect::<Result<_, Invalid>>()
                .map(VectorInput::Named),
            other if is_multi(other) => parse_multi(other, what).map(VectorInput::Multi),
            other => parse_dense(other, what).map(VectorInput::Dense),
        }
    }
}

fn named(value: &Value, what: &str) -> Result<NamedVector, Invalid> {
    match value {
        Value::Object(_) => parse_sparse(value, what).map(NamedVector::Sparse),
        other if is_multi(other) => parse_multi(other, what).map(NamedVector::Multi),
        other => parse_dense(other, what).map(NamedVector::Dense),
    }
}

/// Whether a vector value is a multivector: a list whose first item is a list.
pub fn is_multi(value: &Value) -> bool {
    matches!(value, Value::Array(items) if items.first().is_some_and(Value::is_array))
}

/// Parses a multivector: a list of dense vectors (their sizes are checked against the
/// collection's later).
pub fn parse_multi(value: &Value, what: &str) -> Result<Vec<Vec<f32>>, Invalid> {
    let Value::Array(rows) = value else {
        return invalid!("{what}: expected a list of vectors, got {}", kind(value));
    };
    let rows = rows.iter().enumerate();
    rows.map(|(i, row)| parse_dense(row, &format!("{what}[{i}]")))
        .collect()
}

/// A sparse vector as JSON gives it: `{"indices": [...], "values": [...]}`, checked (as
/// many values as indices, each index once, finite values) and sorted by index.
pub fn parse_sparse(value: &Value, what: &str) -> Result<SparseVector, Invalid> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parts {
        indices: Vec<u32>,
        values: Vec<f64>,
    }
    let parts: Parts = serde_json::from_value(value.clone()).map_err(|e| {
        Invalid(format!(
            "{what}: expected a sparse vector {{\"indices\": [non-negative integers], \"values\": [numbers]}}: {e}"
        ))
    })?;
    let values = parts.values.iter().map(|&v| v as f32).collect();
    SparseVector::new(parts.indices, values).map_err(|e| Invalid::field(what, e))
}

impl<'de> Deserialize<'de> for VectorInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        VectorInput::from_json(&Value::deserialize(d)?, "vector").map_err(de::Error::custom)
    }
}

/// A point's new vectors (`PUT .../points/vectors`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointVectors {
    pub id: PointId,
    pub vector: VectorInput,
}

/// One point to upsert.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointStruct {
    pub id: PointId,
    pub vector: VectorInput,
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
}

/// Columnar vectors: a list of vectors (unnamed vector), or vector name → list of vectors.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only: the batch parser reads the JSON itself
pub enum BatchVectors {
    Dense(Vec<Vec<f32>>),
    Named(BTreeMap<String, Vec<Vec<f32>>>),
}

/// The query of the legacy search: a vector, or a named one.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only: the search handler reads the JSON itself
pub enum SearchVector {
    Dense(Vec<f32>),
    Named { name: String, vector: Vec<f32> },
}

/// `PUT /collections/{c}/points`: a list of points or a columnar batch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only: [`PointInsert::from_json`] reads the JSON itself
pub enum PointInsertBody {
    #[schema(title = "PointsList")]
    Points { points: Vec<PointStruct> },
    #[schema(title = "PointsBatch")]
    Batch { batch: Batch },
}

/// Columnar upsert: ids, vectors and payloads side by side.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub ids: Vec<PointId>,
    /// A list of vectors, or a map from vector name to a list of vectors.
    #[schema(value_type = BatchVectors)]
    pub vectors: Value,
    #[schema(value_type = Option<Vec<Object>>)]
    pub payloads: Option<Vec<Option<Map<String, Value>>>>,
}

/// `PUT /collections/{c}/points` body: `{"points": [...]}` or `{"batch": {...}}`.
#[derive(Clone, Debug, ToSchema)]
pub enum PointInsert {
    Points(Vec<PointStruct>),
    Batch(Batch),
}

/// The conditions of an upsert (`update_filter`, `update_mode`).
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    pub filter: Option<Filter>,
    pub mode: UpdateMode,
}

impl PointInsert {
    /// Parses either form, naming the one that was meant in errors, and the conditions.
    pub fn from_json(value: Value) -> Result<(PointInsert, Conditions), Invalid> {
        let Value::Object(mut map) = value else {
            return Err("expected an object with `points` or `batch`".into());
        };
        if map.remove("shard_key").is_some_and(|v| !v.is_null()) {
            return invalid!("`shard_key` is not supported");
        }
        let conditions = Conditions {
            filter: match map.remove("update_filter") {
                None | Some(Value::Null) => None,
                Some(f) => Some(Filter::from_json(&f).map_err(|e| format!("update_filter: {e}"))?),
            },
            mode: match map.remove("update_mode") {
                None | Some(Value::Null) => UpdateMode::Upsert,
                Some(m) => serde_path(m, "update_mode")?,
            },
        };
        let one = |map: Map<String, Value>, key: &str| -> Result<Value, Invalid> {
            if let Some(extra) = map.keys().find(|k| *k != key) {
                return invalid!("unknown field `{extra}` next to `{key}`");
            }
            Ok(map.get(key).cloned().unwrap_or(Value::Null))
        };
        let insert = if map.contains_key("points") {
            let points = one(map, "points")?;
            serde_path(points, "points").map(PointInsert::Points)
        } else if map.contains_key("batch") {
            let batch = one(map, "batch")?;
            serde_path(batch, "batch").map(PointInsert::Batch)
        } else {
            Err("expected an object with `points` (a list of points) or `batch` (columnar ids/vectors/payloads)".into())
        }?;
        Ok((insert, conditions))
    }
}

/// Deserialises `value`, prefixing errors with where they happened.
pub fn serde_path<T: serde::de::DeserializeOwned>(value: Value, root: &str) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner().to_string();
        if let Some(invalid) = super::error::validation_at(root, e.path(), &inner) {
            return invalid;
        }
        let at = match e.path().to_string() {
            path if path == "." => root.to_string(),
            path if path.starts_with('[') => format!("{root}{path}"),
            path => format!("{root}.{path}"),
        };
        Invalid(format!("{at}: {inner}"))
    })
}

/// Which points an operation selects: `{"points": [...]}` or `{"filter": {...}}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PointsSelector {
    pub points: Option<Vec<PointId>>,
    pub filter: Option<Filter>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/payload` and `PUT .../points/payload` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPayload {
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
    pub points: Option<Vec<PointId>>,
    pub filter: Option<Filter>,
    /// Dotted path of the nested object to merge into.
    pub key: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/payload/delete` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePayload {
    pub keys: Vec<String>,
    pub points: Option<Vec<PointId>>,
    pub filter: Option<Filter>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// Which payload keys to return: all, none, or a key list (`include`/`exclude` forms too).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WithPayload {
    All(bool),
    Keys(Vec<String>),
    Selector(PayloadSelector),
}

/// `{"include": [...]}` or `{"exclude": [...]}`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadSelector {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

/// Whether to return vectors: all, none, or by name.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WithVector {
    All(bool),
    Names(Vec<String>),
}

/// A point as returned by retrieve and scroll.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Record {
    pub id: PointId,
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<VectorInput>)]
    pub vector: Option<Value>,
    /// The value the point was listed by, when scrolling with `order_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_value: Option<crate::collection::aggregate::OrderValue>,
}

/// A search result.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ScoredPoint {
    pub id: PointId,
    /// The LSN of the write that produced this version of the point.
    pub version: u64,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<VectorInput>)]
    pub vector: Option<Value>,
    /// The value the point was ordered by, for an `order_by` query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value: Option<crate::collection::aggregate::OrderValue>,
}

/// The answer to a write.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UpdateResult {
    /// The operation's LSN.
    pub operation_id: u64,
    /// `completed` (applied and visible) or `acknowledged` (in the WAL, being applied).
    pub status: &'static str,
}

/// `POST .../points` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointRequest {
    pub ids: Vec<PointId>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/scroll` body.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrollRequest {
    pub offset: Option<PointId>,
    pub limit: Option<usize>,
    pub filter: Option<Filter>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    #[schema(value_type = Option<Object>)]
    pub order_by: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/scroll` result.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScrollResult {
    pub points: Vec<Record>,
    pub next_page_offset: Option<PointId>,
}

/// `POST .../points/count` body.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    pub filter: Option<Filter>,
    /// Count every match (the default), or estimate from payload indexes (their candidate
    /// counts, an upper bound when part of the filter has no index) and payload samples.
    pub exact: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// `POST .../points/count` result.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CountResult {
    pub count: usize,
}

/// Query parameters of reads (search, query, scroll, count).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Seconds the read may take, including the wait for a search slot, before it gets 503;
    /// shortens `service.request_timeout_sec`.
    pub timeout: Option<u64>,
    /// Cluster mode: `eventual`, `monotonic`, `read_your_writes` (the default) or `strong`;
    /// Qdrant's `1` means eventual, a larger number, `majority`, `quorum` and `all` mean strong.
    /// Monotonic and read-your-writes reads wait for the LSNs of the
    /// `x-vecdb-consistency-token` header. A single node always reads its latest state.
    pub consistency: Option<String>,
    /// Add `explain` to the response: how each segment was searched (single queries only).
    pub explain: Option<bool>,
}
