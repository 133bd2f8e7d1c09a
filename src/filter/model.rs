//! The parsed filter: Qdrant's filter types, shaped so that serde and the OpenAPI schema
//! produce Qdrant's JSON, with lookup sets precomputed for evaluation.
//!
//! `deny_unknown_fields` does nothing for serialisation; it makes the schema say
//! `additionalProperties: false`, which the parser enforces, and which keeps the `oneOf`
//! of untagged enums such as `Condition` exclusive (a field condition is not a filter).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;

use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::ToSchema;

pub use super::datetime::Datetime;
pub use super::geo::{GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon, GeoRadius};
use super::path::JsonPath;
use super::text::Tokenizer;
use crate::point_id::PointId;

/// A filter: every `must` holds, no `must_not` holds, some `should` holds (if any are
/// given) and at least `min_should.min_count` of its conditions hold. Empty means "all".
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// At least one of these conditions should match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = clause_schema, required = false)]
    pub should: Vec<Condition>,
    /// At least `min_count` of the given conditions should match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_should: Option<MinShould>,
    /// All conditions must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = clause_schema, required = false)]
    pub must: Vec<Condition>,
    /// All conditions must NOT match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = clause_schema, required = false)]
    pub must_not: Vec<Condition>,
}

/// A clause accepts one condition or a list; the parser normalises both to a list.
fn clause_schema() -> RefOr<Schema> {
    let condition = Ref::from_schema_name("Condition");
    let any_of = AnyOfBuilder::new()
        .item(ArrayBuilder::new().items(condition.clone()))
        .item(condition)
        .build();
    RefOr::T(Schema::AnyOf(any_of))
}

/// At least `min_count` of `conditions` must match.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinShould {
    /// The candidate conditions.
    pub conditions: Vec<Condition>,
    /// How many of them must match; at least 1.
    #[schema(minimum = 1)]
    pub min_count: u64,
}

/// One condition of a filter clause.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Condition {
    /// A check on one payload field.
    Field(FieldCondition),
    /// The field is missing, null or an empty array.
    IsEmpty(IsEmptyCondition),
    /// The field is null (or an array holding null).
    IsNull(IsNullCondition),
    /// The point's id is one of the given ids.
    HasId(HasIdCondition),
    /// The point has the named vector.
    HasVector(HasVectorCondition),
    /// Some element of an array of objects matches a filter.
    Nested(NestedCondition),
    /// A nested filter.
    #[schema(no_recursion)]
    Filter(Filter),
}

/// A check on one payload field; exactly one of the checks is set (the parser ensures it).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// Payload key (path).
    #[schema(value_type = String)]
    pub key: JsonPath,
    /// Some value of the field equals the given one (or is in / not in a list).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    /// Some numeric (or, with datetime bounds, datetime) value of the field lies in the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeInterface>,
    /// The field's number of values lies in the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_count: Option<ValuesCount>,
    /// The field is (or, with `false`, is not) empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    /// The field is (or, with `false`, is not) null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
    /// Some geo point of the field lies inside the box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_bounding_box: Option<Box<GeoBoundingBox>>,
    /// Some geo point of the field lies within the radius.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_radius: Option<Box<GeoRadius>>,
    /// Some geo point of the field lies inside the polygon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_polygon: Option<Box<GeoPolygon>>,
}

/// A match condition on a field's values.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Match {
    /// Exact match of one value.
    Value(MatchValue),
    /// Exact match of any of the given values.
    Any(MatchAny),
    /// Some value is none of the given values.
    Except(MatchExcept),
    /// Some string value contains every word of the text (any order).
    Text(MatchText),
    /// Some string value contains at least one word of the text.
    TextAny(MatchTextAny),
    /// Some string value contains the words of the phrase, consecutively and in order.
    Phrase(MatchPhrase),
}

/// Full-text match: every word of `text` is a word of the value.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchText {
    /// The words, split and lowercased like the value's.
    pub text: String,
    /// How the value and `text` are split: the text index's tokenizer, once bound.
    #[serde(skip)]
    pub tokenizer: Tokenizer,
}

/// Full-text match: some word of `text_any` is a word of the value.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchTextAny {
    /// The words, split and lowercased like the value's.
    pub text_any: String,
    /// How the value and `text_any` are split: the text index's tokenizer, once bound.
    #[serde(skip)]
    pub tokenizer: Tokenizer,
}

/// Phrase match: the words of `phrase` appear in the value consecutively, in order.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchPhrase {
    /// The words, split and lowercased like the value's.
    pub phrase: String,
    /// How the value and `phrase` are split: the text index's tokenizer, once bound.
    #[serde(skip)]
    pub tokenizer: Tokenizer,
}

/// Exact match of the given value.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchValue {
    /// The value to match.
    pub value: ValueVariants,
}

/// Exact match on any of the given values.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchAny {
    /// The values to match.
    pub any: AnyVariants,
}

/// Should have at least one value not matching any of the given values.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchExcept {
    /// The excluded values.
    #[serde(rename = "except")]
    pub except: AnyVariants,
}

/// A value to match exactly: booleans, integers and strings never match each other.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ValueVariants {
    /// A string.
    String(String),
    /// A signed 64-bit integer; never matches a float payload value.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

/// A list of strings or a list of integers to match against.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AnyVariants {
    /// Strings (an empty list parses as this).
    #[schema(value_type = Vec<String>)]
    Strings(ValueSet<String>),
    /// Integers.
    #[schema(value_type = Vec<i64>)]
    Integers(ValueSet<i64>),
}

/// Numeric bounds; a missing bound does not constrain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// point.key < range.lt
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// point.key > range.gt
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// point.key >= range.gte
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// point.key <= range.lte
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

/// Numeric bounds, or datetime bounds (all given as RFC 3339 strings).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RangeInterface {
    /// Numeric bounds.
    Number(Range),
    /// Datetime bounds.
    Datetime(DatetimeRange),
}

/// Datetime bounds; a missing bound does not constrain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatetimeRange {
    /// point.key < range.lt
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub lt: Option<Datetime>,
    /// point.key > range.gt
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub gt: Option<Datetime>,
    /// point.key >= range.gte
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub gte: Option<Datetime>,
    /// point.key <= range.lte
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub lte: Option<Datetime>,
}

/// Bounds on the number of values of a field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuesCount {
    /// point.key.length() < values_count.lt
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lt: Option<u64>,
    /// point.key.length() > values_count.gt
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gt: Option<u64>,
    /// point.key.length() >= values_count.gte
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gte: Option<u64>,
    /// point.key.length() <= values_count.lte
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lte: Option<u64>,
}

/// A payload field reference.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadField {
    /// Payload key (path).
    #[schema(value_type = String)]
    pub key: JsonPath,
}

/// Select points whose field is missing, null or an empty array.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyCondition {
    /// The field.
    pub is_empty: PayloadField,
}

/// Select points whose field is null.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsNullCondition {
    /// The field.
    pub is_null: PayloadField,
}

/// Select points by id.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    /// The ids to select.
    #[schema(value_type = Vec<PointId>)]
    pub has_id: ValueSet<PointId>,
}

/// Select points that have the named vector.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HasVectorCondition {
    /// The vector's name.
    pub has_vector: String,
}

/// Select points where some object in an array field matches a filter.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedCondition {
    /// The array field and the filter its elements are checked against.
    pub nested: Nested,
}

/// An array-of-objects field and a filter applied to each element on its own.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// Path to the array (`a` and `a[]` are the same).
    #[schema(value_type = String)]
    pub key: JsonPath,
    /// Filter whose keys are relative to each element.
    #[schema(no_recursion)]
    pub filter: Filter,
}

/// Lists at least this long also get a hash index; shorter ones are scanned, which is faster.
const INDEX_FROM_LEN: usize = 8;

/// A list of values to test membership in; keeps the list (for serialisation) and, when
/// long, a hash set (for evaluation, which runs once per candidate point).
#[derive(Clone, Debug)]
pub struct ValueSet<T> {
    list: Vec<T>,
    index: Option<HashSet<T>>,
}

impl<T: Eq + Hash + Clone> ValueSet<T> {
    /// Builds the set, indexing it if it is long.
    pub fn new(list: Vec<T>) -> Self {
        let index = (list.len() >= INDEX_FROM_LEN).then(|| list.iter().cloned().collect());
        ValueSet { list, index }
    }

    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match &self.index {
            Some(index) => index.contains(value),
            None => self.list.iter().any(|item| item.borrow() == value),
        }
    }

    /// The values, in the order given.
    pub fn as_slice(&self) -> &[T] {
        &self.list
    }
}

impl<T: PartialEq> PartialEq for ValueSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl<T: Serialize> Serialize for ValueSet<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(s)
    }
}
