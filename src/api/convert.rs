//! Between the wire and the engine: validating incoming vectors and points against a
//! collection's vector spaces, and shaping outgoing records.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::models::{
    parse_dense, Batch, PointInsert, PointStruct, PointVectors, Record, VectorInput, WithPayload,
    WithVector,
};
use super::projection;
use crate::collection::config::{Distance, VectorSpace};
use crate::collection::ops::{PointWrite, Selector, VectorsUpdate};
use crate::collection::snapshot::{PointRef, Snapshot};
use crate::filter::{parse_path, Filter};
use crate::point_id::PointId;

/// Checks a vector's dimension (values are already finite) and normalises it for cosine.
pub fn prepare(space: &VectorSpace, mut v: Vec<f32>, what: &str) -> Result<Vec<f32>, ApiError> {
    if v.len() != space.size {
        let name = if space.name.is_empty() {
            String::new()
        } else {
            format!(" `{}`", space.name)
        };
        return Err(ApiError::BadRequest(format!(
            "Wrong input: Vector dimension error: expected dim: {}, got {} ({what}, vector{name})",
            space.size,
            v.len()
        )));
    }
    if space.distance == Distance::Cosine {
        let norm = crate::index::distance::dot(&v, &v).sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Ok(v)
}

/// Resolves a point's vector input into one prepared vector per space, in space order; a
/// named vector the input leaves out is empty (the point lacks it, as Qdrant allows).
pub fn point_vectors(
    spaces: &[VectorSpace],
    input: VectorInput,
    what: &str,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let single = spaces.len() == 1 && spaces[0].name.is_empty();
    match input {
        VectorInput::Dense(v) if single => Ok(vec![prepare(&spaces[0], v, what)?]),
        VectorInput::Dense(_) => Err(ApiError::BadRequest(format!(
            "{what}: this collection has named vectors ({}); send {{\"name\": [...]}}",
            names(spaces)
        ))),
        VectorInput::Named(mut map) => {
            if let Some(unknown) = map.keys().find(|k| !spaces.iter().any(|s| &s.name == *k)) {
                return Err(ApiError::BadRequest(format!(
                    "Wrong input: Not existing vector name error: {unknown} ({what}; the collection has {})",
                    names(spaces)
                )));
            }
            spaces
                .iter()
                .map(|space| match map.remove(&space.name) {
                    Some(v) => prepare(space, v, what),
                    None => Ok(Vec::new()),
                })
                .collect()
        }
    }
}

/// New vectors of existing points, each checked and prepared for its space.
pub fn vector_updates(
    spaces: &[VectorSpace],
    points: Vec<PointVectors>,
) -> Result<Vec<VectorsUpdate>, ApiError> {
    let single = spaces.len() == 1 && spaces[0].name.is_empty();
    let updates = points.into_iter().enumerate().map(|(i, p)| {
        let what = format!("points[{i}]");
        let named = match p.vector {
            VectorInput::Dense(v) if single => vec![(String::new(), v)],
            VectorInput::Dense(_) => {
                return Err(ApiError::BadRequest(format!(
                    "{what}: this collection has named vectors ({}); send {{\"name\": [...]}}",
                    names(spaces)
                )))
            }
            VectorInput::Named(map) => map.into_iter().collect(),
        };
        if named.is_empty() {
            return Err(ApiError::BadRequest(format!("{what}: no vectors to update")));
        }
        let vectors = named.into_iter().map(|(name, v)| {
            let space = spaces.iter().position(|s| s.name == name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Wrong input: Not existing vector name error: {name} ({what}; the collection has {})",
                    names(spaces)
                ))
            })?;
            Ok((space, prepare(&spaces[space], v, &what)?))
        });
        Ok(VectorsUpdate {
            id: p.id,
            vectors: vectors.collect::<Result<_, ApiError>>()?,
        })
    });
    updates.collect()
}

fn names(spaces: &[VectorSpace]) -> String {
    spaces
        .iter()
        .map(|s| {
            if s.name.is_empty() {
                "one unnamed vector".to_string()
            } else {
                format!("`{}`", s.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns an upsert body into validated point writes.
pub fn point_writes(
    spaces: &[VectorSpace],
    insert: PointInsert,
) -> Result<Vec<PointWrite>, ApiError> {
    match insert {
        PointInsert::Points(points) => points
            .into_iter()
            .enumerate()
            .map(
                |(
                    i,
                    PointStruct {
                        id,
                        vector,
                        payload,
                    },
                )| {
                    Ok(PointWrite {
                        id,
                        vectors: point_vectors(spaces, vector, &format!("points[{i}]"))?,
                        payload: payload.unwrap_or_default(),
                    })
                },
            )
            .collect(),
        PointInsert::Batch(batch) => batch_writes(spaces, batch),
    }
}

fn batch_writes(spaces: &[VectorSpace], batch: Batch) -> Result<Vec<PointWrite>, ApiError> {
    let n = batch.ids.len();
    let bad = |m: String| ApiError::BadRequest(m);
    // One column per space; `None` where the batch leaves a named vector out.
    let columns: Vec<Option<Vec<Value>>> = match (&batch.vectors, spaces) {
        (Value::Array(rows), [only]) if only.name.is_empty() => vec![Some(rows.clone())],
        (Value::Object(map), _) => {
            if let Some(unknown) = map.keys().find(|k| !spaces.iter().any(|s| &s.name == *k)) {
                return Err(bad(format!(
                    "Wrong input: Not existing vector name error: {unknown}"
                )));
            }
            spaces
                .iter()
                .map(|s| match map.get(&s.name) {
                    Some(Value::Array(rows)) => Ok(Some(rows.clone())),
                    Some(_) => Err(bad(format!(
                        "batch.vectors.{}: expected a list of vectors",
                        s.name
                    ))),
                    None => Ok(None),
                })
                .collect::<Result<_, _>>()?
        }
        _ => {
            return Err(bad(format!(
                "batch.vectors: expected a list of vectors for {}",
                names(spaces)
            )))
        }
    };
    if let Some(c) = columns.iter().flatten().find(|c| c.len() != n) {
        return Err(bad(format!("batch: {n} ids but {} vectors", c.len())));
    }
    let payloads = batch.payloads.unwrap_or_default();
    if !payloads.is_empty() && payloads.len() != n {
        return Err(bad(format!(
            "batch: {n} ids but {} payloads",
            payloads.len()
        )));
    }
    let mut payloads = payloads.into_iter();
    (0..n)
        .map(|i| {
            let vectors = spaces
                .iter()
                .zip(&columns)
                .map(|(space, column)| {
                    let what = format!("batch.vectors[{i}]");
                    match column {
                        Some(column) => prepare(space, parse_dense(&column[i], &what)?, &what),
                        None => Ok(Vec::new()),
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(PointWrite {
                id: batch.ids[i],
                vectors,
                payload: payloads.next().flatten().unwrap_or_default(),
            })
        })
        .collect()
}

/// Builds a selector from the `points`/`filter` pair of a request; exactly one must be given.
pub fn selector(
    points: Option<Vec<PointId>>,
    filter: Option<Filter>,
) -> Result<Selector, ApiError> {
    match (points, filter) {
        (Some(ids), None) => Ok(Selector::Ids(ids)),
        (None, Some(f)) => Ok(Selector::Filter(f)),
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "give either `points` or `filter`, not both".into(),
        )),
        (None, None) => Err(ApiError::BadRequest(
            "expected `points` (a list of ids) or `filter`".into(),
        )),
    }
}

/// Checks payload key lists given in `with_payload`.
pub fn check_with_payload(with: &Option<WithPayload>) -> Result<(), ApiError> {
    let keys: Vec<&String> = match with {
        Some(WithPayload::Keys(k)) => k.iter().collect(),
        Some(WithPayload::Selector(s)) => {
            s.include.iter().chain(s.exclude.iter()).flatten().collect()
        }
        _ => Vec::new(),
    };
    for k in keys {
        parse_path(k).map_err(|e| ApiError::BadRequest(format!("with_payload: {e}")))?;
    }
    Ok(())
}

/// The part of a payload a client asked for (`None` when it asked for none).
pub fn payload_out(
    payload: &Map<String, Value>,
    with: &Option<WithPayload>,
    default: bool,
) -> Option<Map<String, Value>> {
    match with {
        None if default => Some(payload.clone()),
        None | Some(WithPayload::All(false)) => None,
        Some(WithPayload::All(true)) => Some(payload.clone()),
        Some(WithPayload::Keys(keys)) => Some(projection::include(payload, keys)),
        Some(WithPayload::Selector(s)) => Some(match (&s.include, &s.exclude) {
            (Some(keys), _) => projection::include(payload, keys),
            (None, Some(keys)) => projection::exclude(payload, keys),
            (None, None) => payload.clone(),
        }),
    }
}

/// The vectors a client asked for: a plain list for an unnamed vector, else a name → vector map.
pub fn vector_out(
    point: &PointRef,
    spaces: &[VectorSpace],
    with: &Option<WithVector>,
    default: bool,
) -> Option<Value> {
    let wanted = |name: &str| match with {
        None => default,
        Some(WithVector::All(all)) => *all,
        Some(WithVector::Names(names)) => names.iter().any(|n| n == name),
    };
    if spaces.len() == 1 && spaces[0].name.is_empty() {
        return wanted("").then(|| point.vector(0).map_or(Value::Null, floats));
    }
    let map: Map<String, Value> = spaces
        .iter()
        .enumerate()
        .filter(|(_, s)| wanted(&s.name))
        .filter_map(|(i, s)| Some((s.name.clone(), floats(point.vector(i)?))))
        .collect();
    // Asked for vectors, a point without any of them shows an empty map, as in Qdrant.
    let asked = match with {
        None => default,
        Some(WithVector::All(all)) => *all,
        Some(WithVector::Names(_)) => true,
    };
    asked.then_some(Value::Object(map))
}

/// A vector as JSON numbers that read back as stored: each float is written with the fewest
/// digits that identify it as a 32-bit float (`0.15`, not `0.15000000596046448`, which is the
/// same f32 widened to f64).
pub fn floats(v: &[f32]) -> Value {
    use std::fmt::Write;
    let mut text = String::with_capacity(16);
    let numbers = v.iter().map(|x| {
        text.clear();
        let _ = write!(text, "{x}");
        let shortest = text.parse::<f64>().unwrap_or(f64::from(*x));
        serde_json::Number::from_f64(shortest).map_or(Value::Null, Value::Number)
    });
    Value::Array(numbers.collect())
}

/// A point as retrieve and scroll return it.
pub fn record(
    snapshot: &Snapshot,
    id: PointId,
    point: &PointRef,
    with_payload: &Option<WithPayload>,
    with_vector: &Option<WithVector>,
) -> Record {
    Record {
        id,
        payload: payload_out(point.payload_map(), with_payload, true),
        vector: vector_out(point, &snapshot.spaces, with_vector, false),
        order_value: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn floats_read_back_as_they_were_written() {
        let v = super::floats(&[0.15, -1e-7, 3.0, 0.1 + 0.2]);
        // 0.15f32 widened to f64 would be 0.15000000596046448.
        assert_eq!(v, json!([0.15, -1e-7, 3.0, 0.3]));
    }
}
