//! Conversions shared by every service: point ids, filters, selectors, vectors, consistency.

use serde_json::{json, Map, Number, Value};
use tonic::Status;

use super::json;
use super::proto::{self, condition::ConditionOneOf, r#match::MatchValue};

/// A JSON object of `{"key": value, ...}`, each value moved in with `Value::from`. (`json!`
/// would copy every interpolated value through `Serialize`: a deep copy of each vector.)
macro_rules! object {
    ({ $($key:literal : $value:expr),* $(,)? }) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::new();
        $( map.insert($key.to_string(), serde_json::Value::from($value)); )*
        serde_json::Value::Object(map)
    }};
}
pub(crate) use object;

/// `Status::invalid_argument` with `format!` arguments.
macro_rules! bad_arg {
    ($($arg:tt)*) => { tonic::Status::invalid_argument(format!($($arg)*)) };
}
pub(crate) use bad_arg;

/// A required message field that the request left out.
pub fn required<T>(value: Option<T>, what: &str) -> Result<T, Status> {
    value.ok_or_else(|| bad_arg!("{what} is required"))
}

/// Inserts `value` under `key` when it is set.
pub fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_string(), value.into());
    }
}

pub fn point_id(id: proto::PointId) -> Result<Value, Status> {
    use proto::point_id::PointIdOptions;
    match id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(json!(n)),
        Some(PointIdOptions::Uuid(u)) => Ok(json!(u)),
        None => Err(bad_arg!("a point id has neither `num` nor `uuid`")),
    }
}

pub fn point_ids(ids: Vec<proto::PointId>) -> Result<Value, Status> {
    ids.into_iter()
        .map(point_id)
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

/// A point id of an answer.
pub fn point_id_out(id: &Value) -> Option<proto::PointId> {
    use proto::point_id::PointIdOptions;
    let options = match id {
        Value::Number(n) => PointIdOptions::Num(n.as_u64()?),
        Value::String(s) => PointIdOptions::Uuid(s.clone()),
        _ => return None,
    };
    Some(proto::PointId {
        point_id_options: Some(options),
    })
}

/// A float as a JSON number; NaN and infinities are refused.
pub fn number(x: f64, what: &str) -> Result<Value, Status> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| bad_arg!("{what}: {x} is not a finite number"))
}

fn floats(data: Vec<f32>, what: &str) -> Result<Value, Status> {
    let mut out = Vec::with_capacity(data.len());
    for x in data {
        out.push(number(f64::from(x), what)?);
    }
    Ok(Value::Array(out))
}

pub fn filter(f: proto::Filter) -> Result<Value, Status> {
    let mut out = Map::new();
    for (key, list) in [
        ("must", f.must),
        ("should", f.should),
        ("must_not", f.must_not),
    ] {
        if !list.is_empty() {
            out.insert(key.into(), conditions(list)?);
        }
    }
    if let Some(min) = f.min_should {
        let conditions = conditions(min.conditions)?;
        out.insert(
            "min_should".into(),
            object!({"conditions": conditions, "min_count": min.min_count}),
        );
    }
    Ok(Value::Object(out))
}

pub fn optional_filter(f: Option<proto::Filter>) -> Result<Option<Value>, Status> {
    f.map(filter).transpose()
}

fn conditions(list: Vec<proto::Condition>) -> Result<Value, Status> {
    list.into_iter()
        .map(condition)
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn condition(c: proto::Condition) -> Result<Value, Status> {
    Ok(match c.condition_one_of {
        Some(ConditionOneOf::Field(field)) => field_condition(field)?,
        Some(ConditionOneOf::IsEmpty(c)) => object!({"is_empty": object!({"key": c.key})}),
        Some(ConditionOneOf::IsNull(c)) => object!({"is_null": object!({"key": c.key})}),
        Some(ConditionOneOf::HasId(c)) => object!({"has_id": point_ids(c.has_id)?}),
        Some(ConditionOneOf::Filter(f)) => filter(f)?,
        Some(ConditionOneOf::Nested(n)) => {
            let inner = filter(required(n.filter, "nested.filter")?)?;
            object!({"nested": object!({"key": n.key, "filter": inner})})
        }
        Some(ConditionOneOf::HasVector(c)) => object!({"has_vector": c.has_vector}),
        Some(ConditionOneOf::Slice(_)) => {
            return Err(bad_arg!("the `slice` condition is not supported"))
        }
        None => return Err(bad_arg!("a condition has no variant set")),
    })
}

fn field_condition(c: proto::FieldCondition) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("key".into(), json!(c.key));
    if let Some(m) = c.r#match {
        out.insert("match".into(), matcher(m)?);
    }
    if let Some(r) = c.range {
        let mut range = Map::new();
        for (key, bound) in [("lt", r.lt), ("gt", r.gt), ("gte", r.gte), ("lte", r.lte)] {
            if let Some(bound) = bound {
                range.insert(key.into(), number(bound, "range")?);
            }
        }
        out.insert("range".into(), Value::Object(range));
    }
    if let Some(r) = c.datetime_range {
        let mut range = Map::new();
        for (key, bound) in [("lt", r.lt), ("gt", r.gt), ("gte", r.gte), ("lte", r.lte)] {
            if let Some(bound) = bound {
                range.insert(key.into(), json!(timestamp(bound)?));
            }
        }
        out.insert("range".into(), Value::Object(range));
    }
    if let Some(b) = c.geo_bounding_box {
        let top_left = geo_point(required(b.top_left, "geo_bounding_box.top_left")?);
        let bottom_right = geo_point(required(b.bottom_right, "geo_bounding_box.bottom_right")?);
        out.insert(
            "geo_bounding_box".into(),
            object!({"top_left": top_left, "bottom_right": bottom_right}),
        );
    }
    if let Some(r) = c.geo_radius {
        let center = geo_point(required(r.center, "geo_radius.center")?);
        let radius = number(f64::from(r.radius), "geo_radius.radius")?;
        out.insert(
            "geo_radius".into(),
            object!({"center": center, "radius": radius}),
        );
    }
    if let Some(p) = c.geo_polygon {
        let exterior = line(required(p.exterior, "geo_polygon.exterior")?);
        let interiors: Vec<Value> = p.interiors.into_iter().map(line).collect();
        out.insert(
            "geo_polygon".into(),
            object!({"exterior": exterior, "interiors": interiors}),
        );
    }
    if let Some(v) = c.values_count {
        let mut count = Map::new();
        for (key, bound) in [("lt", v.lt), ("gt", v.gt), ("gte", v.gte), ("lte", v.lte)] {
            put(&mut count, key, bound);
        }
        out.insert("values_count".into(), Value::Object(count));
    }
    put(&mut out, "is_empty", c.is_empty);
    put(&mut out, "is_null", c.is_null);
    Ok(Value::Object(out))
}

fn matcher(m: proto::Match) -> Result<Value, Status> {
    Ok(match m.match_value {
        Some(MatchValue::Keyword(s)) => object!({"value": s}),
        Some(MatchValue::Integer(i)) => object!({"value": i}),
        Some(MatchValue::Boolean(b)) => object!({"value": b}),
        Some(MatchValue::Text(s)) => object!({"text": s}),
        Some(MatchValue::Keywords(k)) => object!({"any": k.strings}),
        Some(MatchValue::Integers(k)) => object!({"any": k.integers}),
        Some(MatchValue::ExceptIntegers(k)) => object!({"except": k.integers}),
        Some(MatchValue::ExceptKeywords(k)) => object!({"except": k.strings}),
        Some(MatchValue::Phrase(s)) => object!({"phrase": s}),
        Some(MatchValue::TextAny(s)) => object!({"text_any": s}),
        Some(MatchValue::Prefix(_) | MatchValue::Substring(_)) => {
            return Err(bad_arg!(
                "`prefix` and `substring` matches are not supported"
            ))
        }
        None => return Err(bad_arg!("a match has no variant set")),
    })
}

fn geo_point(p: proto::GeoPoint) -> Value {
    object!({"lon": p.lon, "lat": p.lat})
}

fn line(l: proto::GeoLineString) -> Value {
    let points: Vec<Value> = l.points.into_iter().map(geo_point).collect();
    object!({ "points": points })
}

/// A protobuf timestamp as RFC 3339 (what REST clients send).
pub fn timestamp(t: prost_types::Timestamp) -> Result<String, Status> {
    let nanos = u32::try_from(t.nanos).map_err(|_| bad_arg!("timestamp: negative nanos"))?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .ok_or_else(|| bad_arg!("timestamp: {}s is out of range", t.seconds))
}

pub fn with_payload(s: Option<proto::WithPayloadSelector>) -> Option<Value> {
    use proto::with_payload_selector::SelectorOptions;
    Some(match s?.selector_options? {
        SelectorOptions::Enable(b) => json!(b),
        SelectorOptions::Include(i) => object!({"include": i.fields}),
        SelectorOptions::Exclude(e) => object!({"exclude": e.fields}),
    })
}

pub fn with_vectors(s: Option<proto::WithVectorsSelector>) -> Option<Value> {
    use proto::with_vectors_selector::SelectorOptions;
    Some(match s?.selector_options? {
        SelectorOptions::Enable(b) => json!(b),
        SelectorOptions::Include(i) => json!(i.names),
    })
}

/// `?consistency=` of a read.
pub fn consistency(c: Option<proto::ReadConsistency>) -> Option<String> {
    use proto::read_consistency::Value as Level;
    Some(match c?.value? {
        Level::Factor(n) => n.to_string(),
        Level::Type(t) => match proto::ReadConsistencyType::try_from(t) {
            Ok(proto::ReadConsistencyType::All) => "all".into(),
            Ok(proto::ReadConsistencyType::Majority) => "majority".into(),
            Ok(proto::ReadConsistencyType::Quorum) => "quorum".into(),
            // An unknown level is passed on for the REST layer to refuse.
            Err(_) => t.to_string(),
        },
    })
}

/// `{"points": [...]}` or `{"filter": {...}}`.
pub fn points_selector(
    s: Option<proto::PointsSelector>,
    what: &str,
) -> Result<Map<String, Value>, Status> {
    use proto::points_selector::PointsSelectorOneOf;
    let mut out = Map::new();
    match required(s, what)?.points_selector_one_of {
        Some(PointsSelectorOneOf::Points(list)) => {
            out.insert("points".into(), point_ids(list.ids)?);
        }
        Some(PointsSelectorOneOf::Filter(f)) => {
            out.insert("filter".into(), filter(f)?);
        }
        None => return Err(bad_arg!("{what} selects neither points nor a filter")),
    }
    Ok(out)
}

/// Shard keys are not supported; a request that names one is passed on for the REST layer to
/// refuse with its own message.
pub fn shard_key(out: &mut Map<String, Value>, s: Option<proto::ShardKeySelector>) {
    use proto::shard_key::Key;
    let Some(s) = s else { return };
    let keys: Vec<Value> = s
        .shard_keys
        .into_iter()
        .filter_map(|k| match k.key? {
            Key::Keyword(k) => Some(json!(k)),
            Key::Number(n) => Some(json!(n)),
        })
        .collect();
    out.insert("shard_key".into(), Value::Array(keys));
}

/// A vector of a point or a query: dense, sparse or multi, in the current `oneof` or in the
/// deprecated `data`/`indices`/`vectors_count` fields older clients send.
#[allow(deprecated)]
pub fn vector(v: proto::Vector, what: &str) -> Result<Value, Status> {
    use proto::vector::Vector as V;
    match v.vector {
        Some(V::Dense(d)) => floats(d.data, what),
        Some(V::Sparse(s)) => sparse(s.indices, s.values, what),
        Some(V::MultiDense(m)) => multi(m, what),
        Some(V::Document(_) | V::Image(_) | V::Object(_)) => Err(inference(what)),
        None => match (v.indices, v.vectors_count) {
            (Some(indices), _) => sparse(indices.data, v.data, what),
            (None, Some(count)) if count > 0 => {
                let count = count as usize;
                if !v.data.len().is_multiple_of(count) {
                    return Err(bad_arg!(
                        "{what}: {} numbers do not split into {count} vectors",
                        v.data.len()
                    ));
                }
                let size = v.data.len() / count;
                v.data
                    .chunks(size.max(1))
                    .map(|row| floats(row.to_vec(), what))
                    .collect::<Result<_, _>>()
                    .map(Value::Array)
            }
            _ => floats(v.data, what),
        },
    }
}

fn sparse(indices: Vec<u32>, values: Vec<f32>, what: &str) -> Result<Value, Status> {
    Ok(object!({"indices": indices, "values": floats(values, what)?}))
}

fn multi(m: proto::MultiDenseVector, what: &str) -> Result<Value, Status> {
    m.vectors
        .into_iter()
        .map(|row| floats(row.data, what))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn inference(what: &str) -> Status {
    bad_arg!("{what}: documents, images and inference objects need an inference service, which vecdb does not have; send vectors")
}

/// A query's vector input: an id, or a vector.
pub fn vector_input(v: proto::VectorInput, what: &str) -> Result<Value, Status> {
    use proto::vector_input::Variant;
    match required(v.variant, what)? {
        Variant::Id(id) => point_id(id),
        Variant::Dense(d) => floats(d.data, what),
        Variant::Sparse(s) => sparse(s.indices, s.values, what),
        Variant::MultiDense(m) => multi(m, what),
        Variant::Document(_) | Variant::Image(_) | Variant::Object(_) => Err(inference(what)),
    }
}

/// A point's vectors: one unnamed vector, or named ones.
pub fn vectors(v: proto::Vectors, what: &str) -> Result<Value, Status> {
    use proto::vectors::VectorsOptions;
    match required(v.vectors_options, what)? {
        VectorsOptions::Vector(v) => vector(v, what),
        VectorsOptions::Vectors(named) => named
            .vectors
            .into_iter()
            .map(|(name, v)| {
                let value = vector(v, &format!("{what}.{name}"))?;
                Ok((name, value))
            })
            .collect::<Result<Map<_, _>, Status>>()
            .map(Value::Object),
    }
}

/// A payload map as JSON.
pub fn payload(
    fields: std::collections::HashMap<String, proto::Value>,
) -> Result<Map<String, Value>, Status> {
    json::object(fields, "payload")
}
