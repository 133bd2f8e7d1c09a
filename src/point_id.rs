//! Point identifiers: unsigned integers or UUIDs, as in Qdrant's `ExtendedPointId`.

use crate::error::Invalid;
use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A point's id. Integers sort before UUIDs; that order is the scroll order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    /// An unsigned 64-bit integer id.
    Num(u64),
    /// A UUID, written in its hyphenated string form.
    Uuid(Uuid),
}

impl utoipa::PartialSchema for PointId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into()))),
            )
            .description(Some("An unsigned integer or a UUID string"))
            .into()
    }
}

impl utoipa::ToSchema for PointId {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExtendedPointId".into()
    }
}

impl PointId {
    /// Parses a JSON value the way Qdrant does: a non-negative integer, or a UUID string.
    pub fn from_json(value: &serde_json::Value) -> Result<PointId, Invalid> {
        match value {
            serde_json::Value::Number(n) => n.as_u64().map(PointId::Num).ok_or_else(|| {
                Invalid(format!(
                    "point id {n} is not an unsigned integer (ids are unsigned integers or UUIDs)"
                ))
            }),
            serde_json::Value::String(s) => Self::parse_str(s),
            other => invalid!("point id {other} is neither an unsigned integer nor a UUID string"),
        }
    }

    /// Parses a path segment or string: digits are an integer id, anything else must be a UUID.
    pub fn parse_str(s: &str) -> Result<PointId, Invalid> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<u64>().map(PointId::Num).map_err(|_| {
                Invalid(format!(
                    "point id {s} does not fit in an unsigned 64-bit integer"
                ))
            });
        }
        Uuid::parse_str(s).map(PointId::Uuid).map_err(|_| {
            Invalid(format!(
                "point id \"{s}\" is neither an unsigned integer nor a valid UUID"
            ))
        })
    }

    /// A compact, order-preserving byte key: tag byte, then big-endian bytes.
    pub fn to_key(self) -> [u8; 17] {
        let mut key = [0u8; 17];
        match self {
            PointId::Num(n) => key[1..9].copy_from_slice(&n.to_be_bytes()),
            PointId::Uuid(u) => {
                key[0] = 1;
                key[1..17].copy_from_slice(u.as_bytes());
            }
        }
        key
    }

    /// Inverse of [`PointId::to_key`].
    pub fn from_key(key: &[u8]) -> Option<PointId> {
        match (key.first()?, key.get(1..17)?) {
            (0, rest) => Some(PointId::Num(u64::from_be_bytes(rest[..8].try_into().ok()?))),
            (1, rest) => Some(PointId::Uuid(Uuid::from_bytes(rest.try_into().ok()?))),
            _ => None,
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{u}"),
        }
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PointId::Num(n) => s.serialize_u64(*n),
            PointId::Uuid(u) => s.collect_str(u),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        PointId::from_json(&value).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_and_uuids() {
        assert_eq!(
            PointId::from_json(&serde_json::json!(7)),
            Ok(PointId::Num(7))
        );
        let u = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
        assert_eq!(
            PointId::parse_str(u),
            Ok(PointId::Uuid(Uuid::parse_str(u).unwrap()))
        );
        assert!(PointId::from_json(&serde_json::json!(-1)).is_err());
        assert!(PointId::from_json(&serde_json::json!(1.5)).is_err());
        assert!(PointId::from_json(&serde_json::json!("not-a-uuid")).is_err());
    }

    #[test]
    fn key_round_trips_and_keeps_order() {
        let ids = [
            PointId::Num(0),
            PointId::Num(1),
            PointId::Num(u64::MAX),
            PointId::Uuid(Uuid::from_u128(3)),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0].to_key() < pair[1].to_key());
            assert!(pair[0] < pair[1]);
        }
        for id in ids {
            assert_eq!(PointId::from_key(&id.to_key()), Some(id));
        }
    }
}
