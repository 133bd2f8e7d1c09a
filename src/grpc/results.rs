//! Answers of the REST dialect (`result` of the JSON envelope) as protobuf messages.

use std::collections::HashMap;

use serde_json::Value;
use tonic::Status;

use super::common::point_id_out;
use super::json;
use super::proto;

fn malformed(what: &str) -> Status {
    Status::internal(format!("the answer has no well-formed {what}"))
}

/// A field of an answer, taken out.
pub fn take(value: &mut Value, key: &str) -> Value {
    value.get_mut(key).map(Value::take).unwrap_or(Value::Null)
}

/// A list of an answer, taken out.
pub fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

pub fn id(value: &Value) -> Result<proto::PointId, Status> {
    point_id_out(value).ok_or_else(|| malformed("point id"))
}

fn payload(value: Value) -> HashMap<String, proto::Value> {
    json::fields_of(value)
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .map(|xs| {
            xs.iter()
                .map(|x| x.as_f64().unwrap_or_default() as f32)
                .collect()
        })
        .unwrap_or_default()
}

/// One vector: dense numbers, a multivector (rows), or sparse `{indices, values}`.
fn vector_out(value: &Value) -> proto::VectorOutput {
    use proto::vector_output::Vector as V;
    let vector = match value {
        Value::Object(map) => V::Sparse(proto::SparseVector {
            indices: map
                .get("indices")
                .and_then(Value::as_array)
                .map(|xs| {
                    xs.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect()
                })
                .unwrap_or_default(),
            values: floats(map.get("values").unwrap_or(&Value::Null)),
        }),
        Value::Array(rows) if rows.first().is_some_and(Value::is_array) => {
            V::MultiDense(proto::MultiDenseVector {
                vectors: rows
                    .iter()
                    .map(|row| proto::DenseVector { data: floats(row) })
                    .collect(),
            })
        }
        other => V::Dense(proto::DenseVector {
            data: floats(other),
        }),
    };
    #[allow(deprecated)]
    proto::VectorOutput {
        vector: Some(vector),
        ..Default::default()
    }
}

/// A point's vectors as REST lists them: one unnamed vector, or a map of named ones.
pub fn vectors(value: &Value) -> Option<proto::VectorsOutput> {
    use proto::vectors_output::VectorsOptions;
    let options = match value {
        Value::Null => return None,
        Value::Object(named) => VectorsOptions::Vectors(proto::NamedVectorsOutput {
            vectors: named
                .iter()
                .map(|(name, v)| (name.clone(), vector_out(v)))
                .collect(),
        }),
        single => VectorsOptions::Vector(vector_out(single)),
    };
    Some(proto::VectorsOutput {
        vectors_options: Some(options),
    })
}

fn order_value(value: &Value) -> Option<proto::OrderValue> {
    use proto::order_value::Variant;
    let variant = match value.as_i64() {
        Some(i) => Variant::Int(i),
        None => Variant::Float(value.as_f64()?),
    };
    Some(proto::OrderValue {
        variant: Some(variant),
    })
}

/// A point of retrieve and scroll.
pub fn retrieved(mut value: Value) -> Result<proto::RetrievedPoint, Status> {
    Ok(proto::RetrievedPoint {
        id: Some(id(&value["id"])?),
        vectors: vectors(&value["vector"]),
        order_value: order_value(&value["order_value"]),
        payload: payload(take(&mut value, "payload")),
        shard_key: None,
    })
}

pub fn retrieved_list(value: Value) -> Result<Vec<proto::RetrievedPoint>, Status> {
    items(value).into_iter().map(retrieved).collect()
}

/// A point of a search answer.
pub fn scored(mut value: Value) -> Result<proto::ScoredPoint, Status> {
    Ok(proto::ScoredPoint {
        id: Some(id(&value["id"])?),
        score: value["score"].as_f64().unwrap_or_default() as f32,
        version: value["version"].as_u64().unwrap_or_default(),
        vectors: vectors(&value["vector"]),
        order_value: order_value(&value["order_value"]),
        payload: payload(take(&mut value, "payload")),
        shard_key: None,
    })
}

pub fn scored_list(value: Value) -> Result<Vec<proto::ScoredPoint>, Status> {
    items(value).into_iter().map(scored).collect()
}

/// The answer of a batch of searches.
pub fn batches(value: Value) -> Result<Vec<proto::BatchResult>, Status> {
    items(value)
        .into_iter()
        .map(|one| {
            // `/points/query/batch` answers `{"points": [...]}` per query, the others lists.
            let points = match one {
                Value::Object(mut map) => map.remove("points").unwrap_or(Value::Null),
                list => list,
            };
            Ok(proto::BatchResult {
                result: scored_list(points)?,
            })
        })
        .collect()
}

/// The answer of a grouped search.
pub fn groups(mut value: Value) -> Result<proto::GroupsResult, Status> {
    let groups = items(take(&mut value, "groups"))
        .into_iter()
        .map(|mut group| {
            let lookup = match take(&mut group, "lookup") {
                Value::Null => None,
                point => Some(retrieved(point)?),
            };
            Ok(proto::PointGroup {
                id: Some(group_id(&group["id"])?),
                hits: scored_list(take(&mut group, "hits"))?,
                lookup,
            })
        })
        .collect::<Result<_, Status>>()?;
    Ok(proto::GroupsResult { groups })
}

fn group_id(value: &Value) -> Result<proto::GroupId, Status> {
    use proto::group_id::Kind;
    let kind = match value {
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Kind::UnsignedValue(u),
            (None, Some(i)) => Kind::IntegerValue(i),
            _ => return Err(malformed("group id")),
        },
        _ => return Err(malformed("group id")),
    };
    Ok(proto::GroupId { kind: Some(kind) })
}

/// The answer of a write.
pub fn update(value: &Value) -> proto::UpdateResult {
    let status = match value["status"].as_str() {
        Some("completed") => proto::UpdateStatus::Completed,
        Some("acknowledged") => proto::UpdateStatus::Acknowledged,
        _ => proto::UpdateStatus::UnknownUpdateStatus,
    };
    proto::UpdateResult {
        operation_id: value["operation_id"].as_u64(),
        status: status as i32,
    }
}

/// A `{"status": "accepted"}` style answer or `true`: whether it succeeded.
pub fn flag(value: &Value) -> bool {
    value.as_bool().unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_of_every_shape_come_out_in_the_current_oneof() {
        let named =
            json!({"d": [1.0, 2.0], "m": [[1.0], [2.0]], "s": {"indices": [3], "values": [0.5]}});
        let Some(proto::VectorsOutput {
            vectors_options: Some(proto::vectors_output::VectorsOptions::Vectors(map)),
        }) = vectors(&named)
        else {
            panic!("named vectors were not a map")
        };
        use proto::vector_output::Vector as V;
        assert!(matches!(&map.vectors["d"].vector, Some(V::Dense(d)) if d.data == [1.0, 2.0]));
        assert!(matches!(&map.vectors["m"].vector, Some(V::MultiDense(m)) if m.vectors.len() == 2));
        assert!(
            matches!(&map.vectors["s"].vector, Some(V::Sparse(s)) if s.indices == [3] && s.values == [0.5])
        );
        assert!(vectors(&Value::Null).is_none());
    }

    #[test]
    fn scored_points_keep_ids_scores_and_payloads() {
        let point = json!({"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "version": 3, "score": 0.25, "payload": {"a": 1}});
        let p = scored(point).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.score, 0.25);
        assert!(matches!(
            p.payload["a"].kind,
            Some(proto::value::Kind::IntegerValue(1))
        ));
        assert!(scored(json!({"id": -1})).is_err());
    }
}
