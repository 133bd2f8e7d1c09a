//! Between the wire and the engine: validating incoming vectors and points against a
//! collection's vector spaces, and shaping outgoing records.

use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::models::{
    parse_dense, parse_multi, Batch, NamedVector, PointInsert, PointStruct, PointVectors, Record,
    VectorInput, WithPayload, WithVector,
};
use super::projection;
use crate::error::Invalid;
use std::sync::Arc;

use crate::collection::config::VectorSpace;
use crate::collection::ops::{PointWrite, Selector, VectorsUpdate};
use crate::collection::snapshot::{PointRef, Snapshot};
use crate::collection::sparse_config::SparseSpace;
use crate::filter::{parse_path, Filter};
use crate::index::distance::to_unit;
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;

/// Checks a vector's dimension (values are already finite) and normalises it for cosine. In a
/// multivector space `v` is the multivector's vectors one after another, each checked and
/// normalised alike. Queries are used so; stored vectors are also converted ([`to_store`]).
pub fn prepare(space: &VectorSpace, mut v: Vec<f32>, what: &str) -> Result<Vec<f32>, ApiError> {
    let fits = match space.multi {
        false => v.len() == space.size,
        true => !v.is_empty() && v.len().is_multiple_of(space.size),
    };
    if !fits {
        return Err(ApiError::BadRequest(format!(
            "Wrong input: Vector dimension error: expected dim: {}, got {} ({what}, vector{})",
            space.size,
            v.len(),
            quoted(&space.name)
        )));
    }
    if space.normalises() {
        v.chunks_exact_mut(space.size).for_each(to_unit);
    }
    Ok(v)
}

/// A point's vector as sent, prepared ([`prepare_dense`]) and converted to the space's
/// datatype (see [`crate::collection::config::Datatype`]), or the value the type cannot hold.
fn to_store(space: &VectorSpace, v: DenseInput, what: &str) -> Result<Vec<f32>, ApiError> {
    let mut v = prepare_dense(space, v, what)?;
    space.datatype.convert(&mut v).map_err(|e| {
        ApiError::BadRequest(format!(
            "Wrong input: {what}: vector{} holds {} values: {e}",
            quoted(&space.name),
            space.datatype.name()
        ))
    })?;
    Ok(v)
}

/// ` `name`` for a named vector, nothing for the unnamed one.
fn quoted(name: &str) -> String {
    match name.is_empty() {
        true => String::new(),
        false => format!(" `{name}`"),
    }
}

/// Checks a vector as sent (one vector, or a multivector's vectors) against its space, and
/// prepares it: a multivector space takes only multivectors, any other only single vectors.
pub fn prepare_dense(space: &VectorSpace, v: DenseInput, what: &str) -> Result<Vec<f32>, ApiError> {
    let name = quoted(&space.name);
    // Emptiness is a validation error in Qdrant's words, at the vector's path.
    let empty = |why: &str| {
        let path = match space.name.is_empty() {
            true => what.to_string(),
            false => format!("{what}.{}", space.name),
        };
        ApiError::from(Invalid::field(&path, why))
    };
    match (space.multi, v) {
        (false, DenseInput::One(v)) if v.is_empty() => Err(empty("dense vector must not be empty")),
        (false, DenseInput::One(v)) => prepare(space, v, what),
        (true, DenseInput::One(v)) if v.is_empty() => Err(empty("multivector must not be empty")),
        (true, DenseInput::Multi(rows)) => {
            if rows.iter().any(Vec::is_empty) {
                return Err(empty("all vectors must be non-empty"));
            }
            if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != space.size) {
                return Err(ApiError::BadRequest(format!(
                    "Wrong input: Vector dimension error: expected dim: {}, got {} ({what}[{i}], vector{name})",
                    space.size,
                    row.len()
                )));
            }
            prepare(space, rows.concat(), what)
        }
        (true, DenseInput::One(_)) => Err(ApiError::BadRequest(format!(
            "{what}: vector{name} is a multivector: send a list of vectors"
        ))),
        (false, DenseInput::Multi(_)) => Err(ApiError::BadRequest(format!(
            "{what}: vector{name} is not a multivector: send one vector"
        ))),
    }
}

/// A dense vector as sent: one vector or a multivector's vectors.
pub enum DenseInput {
    One(Vec<f32>),
    Multi(Vec<Vec<f32>>),
}

/// The vector spaces of a collection that writes are checked against.
pub struct Spaces {
    pub dense: Arc<[VectorSpace]>,
    pub sparse: Vec<SparseSpace>,
}

impl Spaces {
    /// Whether points carry one unnamed dense vector.
    fn single(&self) -> bool {
        self.dense.len() == 1 && self.dense[0].name.is_empty()
    }

    /// Every vector name, for error messages.
    fn names(&self) -> String {
        let sparse = self.sparse.iter().map(|s| format!("sparse `{}`", s.name));
        let all: Vec<String> = names(&self.dense).into_iter().chain(sparse).collect();
        all.join(", ")
    }

    /// Where the vector named `name` goes.
    pub fn slot(&self, name: &str, what: &str) -> Result<Slot, ApiError> {
        if let Some(i) = self.dense.iter().position(|s| s.name == name) {
            return Ok(Slot::Dense(i));
        }
        if let Some(i) = self.sparse.iter().position(|s| s.name == name) {
            return Ok(Slot::Sparse(i));
        }
        Err(ApiError::BadRequest(format!(
            "Wrong input: Not existing vector name error: {name} ({what}; the collection has {})",
            self.names()
        )))
    }

    /// Checks one named vector against its space and prepares it.
    fn named(&self, name: &str, v: NamedVector, what: &str) -> Result<Prepared, ApiError> {
        let wrong = |kind: &str| {
            ApiError::BadRequest(format!(
                "{what}: `{name}` is a {kind} vector of this collection"
            ))
        };
        let dense = |i: usize, v: DenseInput| {
            let space = &self.dense[i];
            Ok(Prepared::Dense(i, to_store(space, v, what)?))
        };
        match (self.slot(name, what)?, v) {
            (Slot::Dense(i), NamedVector::Dense(v)) => dense(i, DenseInput::One(v)),
            (Slot::Dense(i), NamedVector::Multi(rows)) => dense(i, DenseInput::Multi(rows)),
            (Slot::Sparse(i), NamedVector::Sparse(v)) => Ok(Prepared::Sparse(i, v)),
            (Slot::Dense(_), NamedVector::Sparse(_)) => Err(wrong("dense")),
            (Slot::Sparse(_), NamedVector::Dense(_) | NamedVector::Multi(_)) => {
                Err(wrong("sparse"))
            }
        }
    }
}

/// Which space a vector name is.
pub enum Slot {
    Dense(usize),
    Sparse(usize),
}

/// A named vector checked against its space.
enum Prepared {
    Dense(usize, Vec<f32>),
    Sparse(usize, SparseVector),
}

/// Resolves a point's vector input into one prepared vector per dense space and one sparse
/// vector per sparse space, in space order; a named vector the input leaves out is empty
/// (the point lacks it, as Qdrant allows).
pub fn point_vectors(
    spaces: &Spaces,
    input: VectorInput,
    what: &str,
) -> Result<(Vec<Vec<f32>>, Vec<SparseVector>), ApiError> {
    let mut dense = vec![Vec::new(); spaces.dense.len()];
    let mut sparse = vec![SparseVector::default(); spaces.sparse.len()];
    for prepared in prepared(spaces, input, what)? {
        match prepared {
            Prepared::Dense(i, v) => dense[i] = v,
            Prepared::Sparse(i, v) => sparse[i] = v,
        }
    }
    if sparse.iter().all(SparseVector::is_empty) {
        sparse.clear();
    }
    Ok((dense, sparse))
}

/// Each vector of an input, checked and prepared.
fn prepared(spaces: &Spaces, input: VectorInput, what: &str) -> Result<Vec<Prepared>, ApiError> {
    let unnamed = |v: DenseInput| {
        let v = to_store(&spaces.dense[0], v, what)?;
        Ok(vec![Prepared::Dense(0, v)])
    };
    match input {
        VectorInput::Dense(v) if spaces.single() => unnamed(DenseInput::One(v)),
        VectorInput::Multi(rows) if spaces.single() => unnamed(DenseInput::Multi(rows)),
        VectorInput::Dense(_) | VectorInput::Multi(_) => Err(ApiError::BadRequest(format!(
            "{what}: this collection has named vectors ({}); send {{\"name\": [...]}}",
            spaces.names()
        ))),
        VectorInput::Named(map) => map
            .into_iter()
            .map(|(name, v)| spaces.named(&name, v, what))
            .collect(),
    }
}

/// New vectors of existing points, each checked and prepared for its space.
pub fn vector_updates(
    spaces: &Spaces,
    points: Vec<PointVectors>,
) -> Result<Vec<VectorsUpdate>, ApiError> {
    let updates = points.into_iter().enumerate().map(|(i, p)| {
        let what = format!("points[{i}].vector");
        let all = prepared(spaces, p.vector, &what)?;
        if all.is_empty() {
            let why = "must specify vectors to update for point";
            return Err(Invalid::field(&what, why).into());
        }
        let mut update = VectorsUpdate {
            id: p.id,
            vectors: Vec::new(),
            sparse: Vec::new(),
        };
        for prepared in all {
            match prepared {
                Prepared::Dense(i, v) => update.vectors.push((i, v)),
                Prepared::Sparse(i, v) => update.sparse.push((i, v)),
            }
        }
        Ok(update)
    });
    updates.collect()
}

fn names(spaces: &[VectorSpace]) -> Vec<String> {
    spaces
        .iter()
        .map(|s| {
            if s.name.is_empty() {
                "one unnamed vector".to_string()
            } else {
                format!("`{}`", s.name)
            }
        })
        .collect()
}

/// Turns an upsert body into validated point writes.
pub fn point_writes(spaces: &Spaces, insert: PointInsert) -> Result<Vec<PointWrite>, ApiError> {
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
                    let (vectors, sparse) =
                        point_vectors(spaces, vector, &format!("points[{i}].vector"))?;
                    Ok(PointWrite {
                        id,
                        vectors,
                        sparse,
                        payload: payload.unwrap_or_default(),
                    })
                },
            )
            .collect(),
        PointInsert::Batch(batch) => batch_writes(&spaces.dense, batch),
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
                names(spaces).join(", ")
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
                    let Some(column) = column else {
                        return Ok(Vec::new());
                    };
                    let v = match space.multi {
                        false => DenseInput::One(parse_dense(&column[i], &what)?),
                        true => DenseInput::Multi(parse_multi(&column[i], &what)?),
                    };
                    to_store(space, v, &what)
                })
                .collect::<Result<_, _>>()?;
            Ok(PointWrite {
                id: batch.ids[i],
                vectors,
                sparse: Vec::new(),
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
    let sparse_names = point.sparse_names();
    if spaces.len() == 1 && spaces[0].name.is_empty() && sparse_names.is_empty() {
        let only = &spaces[0];
        return wanted("").then(|| point.vector(0).map_or(Value::Null, |v| dense_out(only, &v)));
    }
    let mut map: Map<String, Value> = spaces
        .iter()
        .enumerate()
        .filter(|(_, s)| wanted(&s.name))
        .filter_map(|(i, s)| Some((s.name.clone(), dense_out(s, &point.vector(i)?))))
        .collect();
    for (i, name) in sparse_names.iter().enumerate() {
        if let Some(v) = point.sparse(i).filter(|_| wanted(name)) {
            let sparse = json!({"indices": v.indices(), "values": floats(v.values())});
            map.insert(name.clone(), sparse);
        }
    }
    // Asked for vectors, a point without any of them shows an empty map, as in Qdrant.
    let asked = match with {
        None => default,
        Some(WithVector::All(all)) => *all,
        Some(WithVector::Names(_)) => true,
    };
    asked.then_some(Value::Object(map))
}

/// A stored dense vector as JSON: numbers, or for a multivector a list of vectors.
pub fn dense_out(space: &VectorSpace, v: &[f32]) -> Value {
    match space.multi {
        false => floats(v),
        true => v.chunks(space.size.max(1)).map(floats).collect(),
    }
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
