//! Update operations as the writer receives them: already validated against the collection's
//! vector spaces by the API layer, so the writer only resolves them against current state.
//! Serializable: in cluster mode they are the entries of a shard's replication log.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::{parse_path, Filter, PathItem};
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;
use crate::storage::codec::StoredPoint;

/// A point to upsert: vectors in the collection's space order, already checked and normalised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointWrite {
    pub id: PointId,
    pub vectors: Vec<Vec<f32>>,
    /// One per sparse space (empty where the point has none), or none at all.
    #[serde(default)]
    pub sparse: Vec<SparseVector>,
    pub payload: Map<String, Value>,
}

impl PointWrite {
    /// The point as stored by the write at `lsn`.
    pub fn stored(&self, lsn: u64) -> StoredPoint {
        StoredPoint {
            version: lsn,
            vectors: self.vectors.clone(),
            sparse: self.sparse.clone(),
            payload: std::sync::Arc::new(self.payload.clone()),
        }
    }
}

/// New values for some of a point's vectors, by space index (prepared); the others are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VectorsUpdate {
    pub id: PointId,
    pub vectors: Vec<(usize, Vec<f32>)>,
    /// New sparse vectors, by sparse space index.
    #[serde(default)]
    pub sparse: Vec<(usize, SparseVector)>,
}

/// Which points an upsert may write (Qdrant's `update_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateMode {
    /// New points are inserted, existing ones replaced.
    #[default]
    Upsert,
    /// Only new points are inserted; existing ones stay as they are.
    InsertOnly,
    /// Only existing points are replaced; new ones are not inserted.
    UpdateOnly,
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
    /// Replace some vectors of existing points, keeping their other vectors and payload; with
    /// a filter, only of the points it matches.
    UpdateVectors {
        updates: Vec<VectorsUpdate>,
        filter: Option<Filter>,
    },
    /// Remove some vectors (by space index) of the selected points, keeping the rest.
    DeleteVectors {
        selector: Selector,
        spaces: Vec<usize>,
        /// Sparse spaces, by index.
        #[serde(default)]
        sparse: Vec<usize>,
    },
    /// An upsert with conditions: existing points are replaced only if they match `filter`,
    /// and `mode` may restrict it to new or to existing points.
    ConditionalUpsert {
        points: Vec<PointWrite>,
        filter: Option<Filter>,
        mode: UpdateMode,
    },
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
            Operation::UpdateVectors { .. } => "update_vectors",
            Operation::DeleteVectors { .. } => "delete_vectors",
            Operation::ConditionalUpsert { .. } => "upsert",
        }
    }
}

/// Merges `patch` into `payload` (at `key`, a payload path, when given), as Qdrant does: a
/// null in `patch` removes the key; missing objects on the way are created, and a value in
/// the way that is not the object or array the path expects is replaced by one. `[N]` sets
/// inside an existing element, `[]` inside every element.
pub fn set_at_key(payload: &mut Map<String, Value>, key: Option<&str>, patch: &Map<String, Value>) {
    let Some(key) = key else {
        merge(payload, patch);
        return;
    };
    let items = match parse_path(key) {
        Ok(path) => path.items().to_vec(),
        // Validated when the request came in; a key logged before paths were parsed is one
        // dotted path of plain keys.
        Err(_) => key.split('.').map(|k| PathItem::Key(k.into())).collect(),
    };
    let mut root = Value::Object(std::mem::take(payload));
    set_at(&mut root, &items, patch);
    if let Value::Object(map) = root {
        *payload = map;
    }
}

fn merge(into: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => into.remove(k),
            v => into.insert(k.clone(), v.clone()),
        };
    }
}

/// Merges `patch` into the object at `value` (replacing what is not an object).
fn merge_into(value: &mut Value, patch: &Map<String, Value>) {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    if let Value::Object(map) = value {
        merge(map, patch);
    }
}

fn set_at(data: &mut Value, items: &[PathItem], patch: &Map<String, Value>) {
    let Some((first, rest)) = items.split_first() else {
        return;
    };
    match first {
        PathItem::Key(k) => {
            if !data.is_object() {
                *data = Value::Object(Map::new());
            }
            let Value::Object(map) = data else { return };
            let slot = map
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if rest.is_empty() {
                merge_into(slot, patch);
            } else {
                set_at(slot, rest, patch);
            }
        }
        PathItem::Index(_) | PathItem::Wildcard => {
            let Value::Array(elements) = data else {
                *data = Value::Array(Vec::new());
                return;
            };
            let chosen: Vec<&mut Value> = match first {
                PathItem::Index(i) => elements.get_mut(*i).into_iter().collect(),
                _ => elements.iter_mut().collect(),
            };
            for element in chosen {
                if rest.is_empty() {
                    merge_into(element, patch);
                } else {
                    set_at(element, rest, patch);
                }
            }
        }
    }
}

/// Removes the value at a payload path: `[]` applies the rest of the path to every element
/// (and at the end empties the array), `[N]` to one element (at the end: nothing, as in
/// Qdrant, since removing by position is not idempotent).
pub fn delete_key(value: &mut Map<String, Value>, path: &str) {
    let items = match parse_path(path) {
        Ok(p) => p.items().to_vec(),
        Err(_) => path.split('.').map(|k| PathItem::Key(k.into())).collect(),
    };
    let mut root = Value::Object(std::mem::take(value));
    delete_at(&mut root, &items);
    if let Value::Object(map) = root {
        *value = map;
    }
}

fn delete_at(data: &mut Value, items: &[PathItem]) {
    let Some((first, rest)) = items.split_first() else {
        return;
    };
    match (first, data) {
        (PathItem::Key(k), Value::Object(map)) if rest.is_empty() => {
            map.remove(k);
        }
        (PathItem::Key(k), Value::Object(map)) => {
            if let Some(inner) = map.get_mut(k) {
                delete_at(inner, rest);
            }
        }
        (PathItem::Wildcard, Value::Array(elements)) if rest.is_empty() => elements.clear(),
        (PathItem::Wildcard, Value::Array(elements)) => {
            elements.iter_mut().for_each(|e| delete_at(e, rest))
        }
        (PathItem::Index(i), Value::Array(elements)) if !rest.is_empty() => {
            if let Some(e) = elements.get_mut(*i) {
                delete_at(e, rest);
            }
        }
        _ => {}
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
    fn set_at_array_paths_and_null_removes() {
        let mut p = obj(json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "x": 1, "s": "text"}));
        set_at_key(&mut p, Some("a.b[1]"), &obj(json!({"d": true})));
        set_at_key(&mut p, Some("a.b[].e"), &obj(json!({"f": 0})));
        set_at_key(&mut p, Some("a.b[7]"), &obj(json!({"never": 1})));
        set_at_key(&mut p, Some("s.inner"), &obj(json!({"y": 2})));
        set_at_key(&mut p, None, &obj(json!({"x": null})));
        let want = json!({
            "a": {"b": [{"c": 1, "e": {"f": 0}}, {"c": 2, "d": true, "e": {"f": 0}}]},
            "s": {"inner": {"y": 2}},
        });
        assert_eq!(Value::Object(p), want);
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
