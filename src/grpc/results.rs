//! Answers of the REST dialect (`result` of the JSON envelope) as protobuf messages.

use std::collections::HashMap;

use serde_json::Value;
use tonic::Status;

use super::common::point_id_out;
use super::json;
use super::proto;
use crate::api::in_process::Reply;
use crate::api::models::{Record, ScoredPoint, ScrollResult};
use crate::api::query::QueryResponse;
use crate::collection::aggregate::OrderValue;
use crate::point_id::PointId;

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

pub fn facet_value(v: &Value) -> Option<proto::FacetValue> {
    use proto::facet_value::Variant;
    let variant = match v {
        Value::String(s) => Variant::StringValue(s.clone()),
        Value::Bool(b) => Variant::BoolValue(*b),
        Value::Number(n) => Variant::IntegerValue(n.as_i64()?),
        _ => return None,
    };
    Some(proto::FacetValue {
        variant: Some(variant),
    })
}

pub fn some_groups(result: Value) -> Result<Option<proto::GroupsResult>, Status> {
    groups(result).map(Some)
}

/// The result of a call as JSON.
pub fn json(reply: Reply) -> Result<Value, Status> {
    reply
        .into_json()
        .map_err(|e| Status::internal(format!("the answer did not serialise: {e}")))
}

fn typed_id(id: PointId) -> proto::PointId {
    use proto::point_id::PointIdOptions;
    let options = match id {
        PointId::Num(n) => PointIdOptions::Num(n),
        PointId::Uuid(u) => PointIdOptions::Uuid(u.hyphenated().to_string()),
    };
    proto::PointId {
        point_id_options: Some(options),
    }
}

fn typed_order(value: Option<OrderValue>) -> Option<proto::OrderValue> {
    use proto::order_value::Variant;
    let variant = match value? {
        OrderValue::Integer(i) => Variant::Int(i),
        OrderValue::Float(f) => Variant::Float(f),
    };
    Some(proto::OrderValue {
        variant: Some(variant),
    })
}

fn typed_scored(p: ScoredPoint) -> proto::ScoredPoint {
    proto::ScoredPoint {
        id: Some(typed_id(p.id)),
        payload: p.payload.map(json::fields).unwrap_or_default(),
        score: p.score,
        version: p.version,
        vectors: p.vector.as_ref().and_then(vectors),
        shard_key: None,
        order_value: typed_order(p.order_value),
    }
}

fn typed_record(r: Record) -> proto::RetrievedPoint {
    proto::RetrievedPoint {
        id: Some(typed_id(r.id)),
        payload: r.payload.map(json::fields).unwrap_or_default(),
        vectors: r.vector.as_ref().and_then(vectors),
        shard_key: None,
        order_value: typed_order(r.order_value),
    }
}

/// The points a query found: from the handler's result when it came back as it is (one
/// node), else from the JSON a cluster's merge answered.
pub fn query_points(reply: Reply) -> Result<Vec<proto::ScoredPoint>, Status> {
    match reply.downcast::<QueryResponse>() {
        Ok(found) => Ok(found.points.into_iter().map(typed_scored).collect()),
        Err(reply) => scored_list(take(&mut json(reply)?, "points")),
    }
}

/// The points a search (recommend, discover) found.
pub fn search_points(reply: Reply) -> Result<Vec<proto::ScoredPoint>, Status> {
    match reply.downcast::<Vec<ScoredPoint>>() {
        Ok(found) => Ok(found.into_iter().map(typed_scored).collect()),
        Err(reply) => scored_list(json(reply)?),
    }
}

/// The points a retrieval found.
pub fn records(reply: Reply) -> Result<Vec<proto::RetrievedPoint>, Status> {
    match reply.downcast::<Vec<Record>>() {
        Ok(found) => Ok(found.into_iter().map(typed_record).collect()),
        Err(reply) => retrieved_list(json(reply)?),
    }
}

/// A page of a scroll and the offset of the next one.
pub fn scroll_page(
    reply: Reply,
) -> Result<(Vec<proto::RetrievedPoint>, Option<proto::PointId>), Status> {
    let page = match reply.downcast::<ScrollResult>() {
        Ok(page) => page,
        Err(reply) => {
            let mut page = json(reply)?;
            let next = match &page["next_page_offset"] {
                Value::Null => None,
                next => Some(id(next)?),
            };
            return Ok((retrieved_list(take(&mut page, "points"))?, next));
        }
    };
    let points = page.points.into_iter().map(typed_record).collect();
    Ok((points, page.next_page_offset.map(typed_id)))
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
