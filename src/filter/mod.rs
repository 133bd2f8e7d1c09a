//! Qdrant's filter language: parsing from JSON (with precise error messages), evaluation
//! against points, and the model types whose serde/OpenAPI shape is Qdrant's.
//!
//! Semantics follow qdrant-client's local mode, which mirrors the server; see `eval.rs`.

mod datetime;
mod eval;
mod geo;
pub mod index;
mod model;
mod parse;
mod path;
pub mod text;

#[cfg(test)]
mod crosscheck_datetime;
#[cfg(test)]
mod crosscheck_geo;
#[cfg(test)]
mod crosscheck_table;
#[cfg(test)]
mod crosscheck_text;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_parse;

use crate::error::Invalid;
use serde::{de, Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use geo::haversine_m;
pub use model::{
    AnyVariants, Condition, Datetime, DatetimeRange, FieldCondition, Filter, GeoBoundingBox,
    GeoLineString, GeoPoint, GeoPolygon, GeoRadius, HasIdCondition, HasVectorCondition,
    IsEmptyCondition, IsNullCondition, Match, MatchAny, MatchExcept, MatchValue, MinShould, Nested,
    NestedCondition, PayloadField, Range, RangeInterface, ValueSet, ValueVariants, ValuesCount,
};
pub use path::{parse_path, JsonPath, PathItem};

use crate::point_id::PointId;

/// What evaluation needs from a point; implemented by the storage layer.
pub trait PointView {
    /// The point's id.
    fn id(&self) -> PointId;
    /// The point's payload object, if it has one.
    fn payload(&self) -> Option<&Map<String, Value>>;
    /// Whether the point has a vector with this name.
    fn has_vector(&self, name: &str) -> bool;
}

impl Filter {
    /// Parses a filter from JSON; errors name the place, e.g.
    /// `filter.must[2].range.gt: expected a number, got "abc"`.
    pub fn from_json(value: &Value) -> Result<Filter, Invalid> {
        parse::parse_filter(value, &parse::Loc::Root, 1)
    }

    /// Whether a point matches; a point without payload is treated as having `{}`.
    pub fn matches(&self, point: &dyn PointView) -> bool {
        let empty = Map::new();
        let payload = point.payload().unwrap_or(&empty);
        self.eval(eval::Ctx {
            payload,
            point: Some(point),
        })
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Filter::from_json(&value).map_err(de::Error::custom)
    }
}
