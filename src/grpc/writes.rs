//! Writes in the REST dialect: points and their vectors, payload edits, batches of
//! operations, payload indexes.

use serde_json::{json, Map, Value};
use tonic::Status;

use super::common::{
    object, optional_filter, payload, point_id, points_selector, put, required, shard_key, vectors,
};
use super::proto;

fn point_structs(list: Vec<proto::PointStruct>) -> Result<Value, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut point = Map::new();
            point.insert(
                "id".into(),
                point_id(required(p.id, &format!("points[{i}].id"))?)?,
            );
            let v = required(p.vectors, &format!("points[{i}].vectors"))?;
            point.insert("vector".into(), vectors(v, &format!("points[{i}].vector"))?);
            point.insert("payload".into(), Value::Object(payload(p.payload)?));
            Ok(Value::Object(point))
        })
        .collect::<Result<_, Status>>()
        .map(Value::Array)
}

fn update_mode(mode: Option<i32>) -> Option<&'static str> {
    match proto::UpdateMode::try_from(mode?) {
        Ok(proto::UpdateMode::InsertOnly) => Some("insert_only"),
        Ok(proto::UpdateMode::UpdateOnly) => Some("update_only"),
        _ => Some("upsert"),
    }
}

/// The body of an upsert.
pub(super) fn upsert_body(
    list: Vec<proto::PointStruct>,
    update_filter: Option<proto::Filter>,
    mode: Option<i32>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("points".into(), point_structs(list)?);
    put(&mut out, "update_filter", optional_filter(update_filter)?);
    put(&mut out, "update_mode", update_mode(mode));
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

fn point_vectors(list: Vec<proto::PointVectors>) -> Result<Value, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let id = point_id(required(p.id, &format!("points[{i}].id"))?)?;
            let v = required(p.vectors, &format!("points[{i}].vectors"))?;
            let vector = vectors(v, &format!("points[{i}].vector"))?;
            Ok(object!({"id": id, "vector": vector}))
        })
        .collect::<Result<_, Status>>()
        .map(Value::Array)
}

pub(super) fn set_payload_body(
    fields: std::collections::HashMap<String, proto::Value>,
    selector: Option<proto::PointsSelector>,
    key: Option<String>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = points_selector(selector, "points_selector")?;
    out.insert("payload".into(), Value::Object(payload(fields)?));
    put(&mut out, "key", key);
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

pub(super) fn delete_payload_body(
    keys: Vec<String>,
    selector: Option<proto::PointsSelector>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = points_selector(selector, "points_selector")?;
    out.insert("keys".into(), json!(keys));
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

pub(super) fn selector_body(
    selector: Option<proto::PointsSelector>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = points_selector(selector, "points")?;
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

pub(super) fn delete_vectors_body(
    selector: Option<proto::PointsSelector>,
    names: Option<proto::VectorsSelector>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = points_selector(selector, "points_selector")?;
    let names = required(names, "vectors")?.names;
    out.insert("vector".into(), json!(names));
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

pub(super) fn update_vectors_body(
    list: Vec<proto::PointVectors>,
    update_filter: Option<proto::Filter>,
    shard: Option<proto::ShardKeySelector>,
) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("points".into(), point_vectors(list)?);
    put(&mut out, "update_filter", optional_filter(update_filter)?);
    shard_key(&mut out, shard);
    Ok(Value::Object(out))
}

/// One operation of `UpdateBatch`, as `{"upsert": {...}}` and the like.
#[allow(deprecated)]
pub(super) fn batch_operation(op: proto::PointsUpdateOperation) -> Result<Value, Status> {
    use proto::points_update_operation::Operation as Op;
    Ok(match required(op.operation, "operation")? {
        Op::Upsert(u) => object!({
            "upsert": upsert_body(u.points, u.update_filter, u.update_mode, u.shard_key_selector)?
        }),
        Op::DeleteDeprecated(s) => object!({"delete": selector_body(Some(s), None)?}),
        Op::DeletePoints(d) => object!({"delete": selector_body(d.points, d.shard_key_selector)?}),
        Op::SetPayload(s) => object!({
            "set_payload": set_payload_body(s.payload, s.points_selector, s.key, s.shard_key_selector)?
        }),
        Op::OverwritePayload(s) => object!({
            "overwrite_payload": set_payload_body(s.payload, s.points_selector, s.key, s.shard_key_selector)?
        }),
        Op::DeletePayload(d) => object!({
            "delete_payload": delete_payload_body(d.keys, d.points_selector, d.shard_key_selector)?
        }),
        Op::ClearPayloadDeprecated(s) => object!({"clear_payload": selector_body(Some(s), None)?}),
        Op::ClearPayload(c) => {
            object!({"clear_payload": selector_body(c.points, c.shard_key_selector)?})
        }
        Op::UpdateVectors(u) => object!({
            "update_vectors": update_vectors_body(u.points, u.update_filter, u.shard_key_selector)?
        }),
        Op::DeleteVectors(d) => object!({
            "delete_vectors": delete_vectors_body(d.points_selector, d.vectors, d.shard_key_selector)?
        }),
    })
}

/// A payload index's schema: a type name, or an object with its parameters.
pub(super) fn field_schema(
    kind: Option<i32>,
    params: Option<proto::PayloadIndexParams>,
) -> Result<Value, Status> {
    use proto::payload_index_params::IndexParams as P;
    use proto::FieldType as T;
    let type_name = |t: i32| match T::try_from(t) {
        Ok(T::Keyword) => Ok("keyword"),
        Ok(T::Integer) => Ok("integer"),
        Ok(T::Float) => Ok("float"),
        Ok(T::Geo) => Ok("geo"),
        Ok(T::Text) => Ok("text"),
        Ok(T::Bool) => Ok("bool"),
        Ok(T::Datetime) => Ok("datetime"),
        Ok(T::Uuid) => Ok("uuid"),
        Err(_) => Err(super::common::bad_arg!("field_type: unknown type {t}")),
    };
    let Some(params) = params.and_then(|p| p.index_params) else {
        return Ok(json!(type_name(required(kind, "field_type")?)?));
    };
    let mut out = Map::new();
    #[allow(deprecated)]
    let name = match params {
        P::KeywordIndexParams(p) => {
            put(&mut out, "is_tenant", p.is_tenant);
            put(&mut out, "on_disk", p.on_disk);
            "keyword"
        }
        P::IntegerIndexParams(p) => {
            put(&mut out, "lookup", p.lookup);
            put(&mut out, "range", p.range);
            put(&mut out, "is_principal", p.is_principal);
            put(&mut out, "on_disk", p.on_disk);
            "integer"
        }
        P::FloatIndexParams(p) => {
            put(&mut out, "is_principal", p.is_principal);
            put(&mut out, "on_disk", p.on_disk);
            "float"
        }
        P::GeoIndexParams(p) => {
            put(&mut out, "on_disk", p.on_disk);
            "geo"
        }
        P::TextIndexParams(p) => {
            let tokenizer = proto::TokenizerType::try_from(p.tokenizer)
                .unwrap_or(proto::TokenizerType::Word)
                .as_str_name()
                .to_ascii_lowercase();
            let tokenizer = if tokenizer == "unknown" {
                "word".into()
            } else {
                tokenizer
            };
            out.insert("tokenizer".into(), json!(tokenizer));
            put(&mut out, "lowercase", p.lowercase);
            put(&mut out, "min_token_len", p.min_token_len);
            put(&mut out, "max_token_len", p.max_token_len);
            put(&mut out, "on_disk", p.on_disk);
            put(&mut out, "phrase_matching", p.phrase_matching);
            put(&mut out, "ascii_folding", p.ascii_folding);
            "text"
        }
        P::BoolIndexParams(p) => {
            put(&mut out, "on_disk", p.on_disk);
            "bool"
        }
        P::DatetimeIndexParams(p) => {
            put(&mut out, "is_principal", p.is_principal);
            put(&mut out, "on_disk", p.on_disk);
            "datetime"
        }
        P::UuidIndexParams(p) => {
            put(&mut out, "is_tenant", p.is_tenant);
            put(&mut out, "on_disk", p.on_disk);
            "uuid"
        }
    };
    out.insert("type".into(), json!(name));
    Ok(Value::Object(out))
}
