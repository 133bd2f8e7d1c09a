//! Qdrant's JSON values in protobuf (`json_with_int.proto`) and `serde_json` values, both ways.
//! Integers stay integers: `integer_value` is an `i64`, `double_value` an `f64`.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use tonic::Status;

use super::proto::{self, value::Kind};

/// A protobuf value as JSON. A double that JSON cannot hold (NaN, infinity) is refused.
pub fn to_json(value: proto::Value, at: &str) -> Result<Value, Status> {
    Ok(match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::IntegerValue(i)) => Value::from(i),
        Some(Kind::DoubleValue(d)) => Value::Number(Number::from_f64(d).ok_or_else(|| {
            Status::invalid_argument(format!("{at}: {d} is not a number JSON can hold"))
        })?),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => Value::Object(object(s.fields, at)?),
    })
}

/// A protobuf map of values (a payload, metadata) as a JSON object.
pub fn object(
    fields: HashMap<String, proto::Value>,
    at: &str,
) -> Result<Map<String, Value>, Status> {
    fields
        .into_iter()
        .map(|(key, v)| {
            let value = to_json(v, &format!("{at}.{key}"))?;
            Ok((key, value))
        })
        .collect()
}

/// A JSON value as protobuf. Integers beyond `i64` become doubles, as in Qdrant.
pub fn from_json(value: Value) -> proto::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(proto::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(proto::ListValue {
            values: items.into_iter().map(from_json).collect(),
        }),
        Value::Object(map) => Kind::StructValue(proto::Struct {
            fields: fields(map),
        }),
    };
    proto::Value { kind: Some(kind) }
}

/// A JSON object as a protobuf map.
pub fn fields(map: Map<String, Value>) -> HashMap<String, proto::Value> {
    map.into_iter().map(|(k, v)| (k, from_json(v))).collect()
}

/// A JSON object (or null: empty) as a protobuf map.
pub fn fields_of(value: Value) -> HashMap<String, proto::Value> {
    match value {
        Value::Object(map) => fields(map),
        _ => HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_and_keep_integers_apart_from_doubles() {
        let original = json!({
            "int": 7, "neg": -3, "big": 18446744073709551615u64, "float": 1.5,
            "s": "x", "b": true, "n": null, "list": [1, 2.5, {"deep": [false]}]
        });
        let proto = from_json(original.clone());
        let Some(Kind::StructValue(s)) = &proto.kind else {
            panic!("an object became {proto:?}")
        };
        assert!(matches!(s.fields["int"].kind, Some(Kind::IntegerValue(7))));
        assert!(matches!(s.fields["float"].kind, Some(Kind::DoubleValue(f)) if f == 1.5));
        let back = to_json(proto, "payload").unwrap();
        let mut expected = original;
        expected["big"] = json!(18446744073709551615.0);
        assert_eq!(back, expected);
    }

    #[test]
    fn a_double_json_cannot_hold_is_refused_with_its_path() {
        let nan = proto::Value {
            kind: Some(Kind::DoubleValue(f64::NAN)),
        };
        let err = to_json(nan, "payload.x").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("payload.x:"), "{}", err.message());
    }
}
