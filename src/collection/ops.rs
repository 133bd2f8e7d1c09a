//! Update operations as the writer receives them: already validated against the collection's
//! vector spaces by the API layer, so the writer only resolves them against current state.
//! Serializable: in cluster mode they are the entries of a shard's replication log.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::Filter;
use crate::point_id::PointId;

/// A point to upsert: vectors in the collection's space order, already checked and normalised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointWrite {
    pub id: PointId,
    pub vectors: Vec<Vec<f32>>,
    pub payload: Map<String, Value>,
}

/// New values for some of a point's vectors, by space index (prepared); the others are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VectorsUpdate {
    pub id: PointId,
    pub vectors: Vec<(usize, Vec<f32>)>,
}

/// Which points an operation touches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Selector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

impl Selector {
    /// How many ids the selector lists (0 for a filter).
    pub fn ids(&self) -> usize {
        match self {
            Selector::Ids(ids) => ids.len(),
            Selector::Filter(_) => 0,
        }
    }
}

/// One update operation; each gets its own LSN.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Operation {
    /// Insert or replace whole points.
    Upsert(Vec<PointWrite>),
    /// Remove points.
    Delete(Selector),
    /// Merge keys into the payload (at `key`, a dotted path, when given).
    SetPayload {
        payload: Map<String, Value>,
        selector: Selector,
        key: Option<String>,
    },
    /// Replace the whole payload.
    OverwritePayload {
        payload: Map<String, Value>,
        selector: Selector,
    },
    /// Remove payload keys (dotted paths).
    DeletePayload {
        keys: Vec<String>,
        selector: Selector,
    },
    /// Remove the whole payload.
    ClearPayload(Selector),
    /// Replace some vectors of existing points, keeping their other vectors and payload.
    UpdateVectors(Vec<VectorsUpdate>),
}

impl Operation {
    /// The metric label of the operation kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Upsert(_) => "upsert",
            Operation::Delete(_) => "delete",
            Operation::SetPayload { .. } => "set_payload",
            Operation::OverwritePayload { .. } => "overwrite_payload",
            Operation::DeletePayload { .. } => "delete_payload",
            Operation::ClearPayload(_) => "clear_payload",
            Operation::UpdateVectors(_) => "update_vectors",
        }
    }
}

/// Merges `patch` into the object at dotted `key` of `payload` (creating objects on the way).
pub fn set_at_key(payload: &mut Map<String, Value>, key: Option<&str>, patch: &Map<String, Value>) {
    let mut target = payload;
    for part in key.into_iter().flat_map(|k| k.split('.')) {
        let slot = target
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        target = slot.as_object_mut().expect("slot was just made an object");
    }
    for (k, v) in patch {
        target.insert(k.clone(), v.clone());
    }
}

/// Removes the value at a dotted path; `[]` steps apply the rest of the path to every array element.
pub fn delete_key(value: &mut Map<String, Value>, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (name, fan_out) = match head.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (head, false),
    };
    match (rest, fan_out) {
        (None, false) => {
            value.remove(name);
        }
        (None, true) => {
            if let Some(Value::Array(items)) = value.get_mut(name) {
                items.clear();
            }
        }
        (Some(rest), false) => {
            if let Some(Value::Object(inner)) = value.get_mut(name) {
                delete_key(inner, rest);
            }
        }
        (Some(rest), true) => {
            if let Some(Value::Array(items)) = value.get_mut(name) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    delete_key(item, rest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn set_at_nested_key_creates_objects() {
        let mut p = obj(json!({"a": 1, "b": 5}));
        set_at_key(&mut p, Some("b.c"), &obj(json!({"x": true})));
        assert_eq!(Value::Object(p), json!({"a": 1, "b": {"c": {"x": true}}}));
    }

    #[test]
    fn delete_nested_and_array_paths() {
        let mut p = obj(json!({"a": {"b": 1, "c": 2}, "l": [{"x": 1, "y": 2}, {"x": 3}]}));
        delete_key(&mut p, "a.b");
        delete_key(&mut p, "l[].x");
        delete_key(&mut p, "missing.path");
        assert_eq!(
            Value::Object(p),
            json!({"a": {"c": 2}, "l": [{"y": 2}, {}]})
        );
    }
}
