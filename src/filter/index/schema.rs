//! Which payload fields are indexed, and how: the `PUT /collections/{c}/index` request, as
//! Qdrant's clients send it, and the stored schema.

use crate::error::Invalid;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::filter::{parse_path, JsonPath};

/// The kind of a payload index: which values it holds and which conditions it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Strings: `match` value, `any`, `except`.
    Keyword,
    /// Integers: `match` value, `any`, `except`; every number: `range`.
    Integer,
    /// Every number: `range`.
    Float,
    /// Geo points: `geo_bounding_box`, `geo_radius`, `geo_polygon`.
    Geo,
    /// Tokenised text: `match` text and phrase.
    Text,
    /// Booleans: `match` value.
    Bool,
    /// Datetime strings: datetime `range`.
    Datetime,
    /// UUID strings (kept as written, like keywords): `match` value, `any`, `except`.
    Uuid,
}

impl FieldType {
    const NAMES: &'static str = "keyword, integer, float, geo, text, bool, datetime or uuid";

    fn parse(name: &str, place: &str) -> Result<FieldType, Invalid> {
        serde_json::from_value(Value::String(name.to_owned())).map_err(|_| {
            Invalid(format!(
                "{place}: unknown index type {name:?}; expected {}",
                Self::NAMES
            ))
        })
    }

    /// The optional parameters each kind accepts (stored and reported back; vecdb keeps every
    /// index in memory, so `on_disk` changes nothing; `is_tenant` and `is_principal` put the
    /// field first for sign codes in its order, see [`IndexSpec::is_principal`]).
    fn params(self) -> &'static [&'static str] {
        match self {
            FieldType::Keyword | FieldType::Uuid => &["is_tenant", "on_disk"],
            FieldType::Integer => &["lookup", "range", "is_principal", "on_disk"],
            FieldType::Float | FieldType::Datetime => &["is_principal", "on_disk"],
            FieldType::Geo | FieldType::Bool => &["on_disk"],
            FieldType::Text => &[
                "tokenizer",
                "min_token_len",
                "max_token_len",
                "lowercase",
                "on_disk",
                "phrase_matching",
            ],
        }
    }
}

/// One indexed field: its kind and the parameters it was created with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub data_type: FieldType,
    /// The object form of `field_schema`, when that was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
}

impl IndexSpec {
    /// Whether the field is a keyword or uuid index marked `is_tenant`: its large values get
    /// graphs of their own (see `collection::tenants`).
    pub fn is_tenant(&self) -> bool {
        let flagged = self.params.as_ref().and_then(|p| p.get("is_tenant"));
        matches!(self.data_type, FieldType::Keyword | FieldType::Uuid)
            && flagged.and_then(Value::as_bool) == Some(true)
    }

    /// Whether the field was marked as the one most filters use (Qdrant's `is_tenant` for
    /// keyword and uuid indexes, `is_principal` for numeric and datetime ones).
    pub fn is_principal(&self) -> bool {
        let flag = |name: &str| {
            self.params
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        flag("is_tenant") || flag("is_principal")
    }
}

/// The indexed fields of a collection, by field name as given.
pub type PayloadSchema = BTreeMap<String, IndexSpec>;

/// Whether the schema's field `name` is the path `key` (spellings of one path are one field).
pub fn names_path(name: &str, key: &JsonPath) -> bool {
    parse_path(name).ok().as_ref() == Some(key)
}

/// `PUT /collections/{name}/index` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFieldIndex {
    /// The payload field (a path such as `country.name` or `tags[]`).
    pub field_name: String,
    /// An index type name (`"keyword"`), or `{"type": "keyword", …parameters}`.
    #[schema(value_type = Object)]
    pub field_schema: Option<Value>,
}

impl CreateFieldIndex {
    /// The field's path and the index to build, or what is wrong with the request.
    pub fn parse(&self) -> Result<(JsonPath, IndexSpec), Invalid> {
        let path = parse_path(&self.field_name).map_err(|e| format!("field_name: {e}"))?;
        let spec = match &self.field_schema {
            None | Some(Value::Null) => {
                return invalid!("field_schema is required: one of {}", FieldType::NAMES)
            }
            Some(Value::String(name)) => IndexSpec {
                data_type: FieldType::parse(name, "field_schema")?,
                params: None,
            },
            Some(Value::Object(map)) => parse_params(map)?,
            Some(other) => {
                return invalid!(
                    "field_schema: expected a type name or an object with \"type\", got {other}"
                )
            }
        };
        Ok((path, spec))
    }
}

fn parse_params(map: &Map<String, Value>) -> Result<IndexSpec, Invalid> {
    let Some(Value::String(name)) = map.get("type") else {
        return invalid!("field_schema.type is required: one of {}", FieldType::NAMES);
    };
    let data_type = FieldType::parse(name, "field_schema.type")?;
    let allowed = data_type.params();
    if let Some(unknown) = map
        .keys()
        .find(|k| *k != "type" && !allowed.contains(&k.as_str()))
    {
        return invalid!(
            "field_schema.{unknown}: not a parameter of {name} indexes (they take {})",
            allowed.join(", ")
        );
    }
    if data_type == FieldType::Text {
        super::super::text::Tokenizer::from_params(map)?;
    }
    Ok(IndexSpec {
        data_type,
        params: Some(map.clone()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec_of(field_name: &str, field_schema: Value) -> Result<IndexSpec, Invalid> {
        let req = CreateFieldIndex {
            field_name: field_name.into(),
            field_schema: Some(field_schema),
        };
        req.parse().map(|(_, spec)| spec)
    }

    #[test]
    fn accepts_names_and_parameter_objects() {
        assert_eq!(
            spec_of("city", json!("keyword")).unwrap().data_type,
            FieldType::Keyword
        );
        let spec = spec_of("n", json!({"type": "integer", "range": true})).unwrap();
        assert_eq!(spec.data_type, FieldType::Integer);
        assert_eq!(spec.params.unwrap()["range"], json!(true));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            (json!("words"), "field_schema: unknown index type \"words\""),
            (json!({"range": true}), "field_schema.type is required"),
            (
                json!({"type": "bool", "range": true}),
                "field_schema.range: not a parameter of bool indexes",
            ),
            (json!(5), "field_schema: expected a type name"),
        ];
        for (schema, message) in cases {
            let err = spec_of("a", schema).unwrap_err();
            assert!(err.starts_with(message), "{err}");
        }
        assert!(spec_of("a[", json!("keyword"))
            .unwrap_err()
            .starts_with("field_name: "));
    }
}
