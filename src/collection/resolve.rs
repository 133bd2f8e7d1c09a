//! How the writer resolves an operation into point-level changes against its current state
//! and the changes of earlier operations of the same group (not yet applied): which points a
//! selector picks, what each one becomes, and which conditions it must pass.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ops::{delete_key, set_at_key, Operation, Selector, UpdateMode};
use super::segment::SegmentData;
use super::snapshot::PointRef;
use super::state::{Change, Pending, WriterState};
use super::CollectionError;
use crate::filter::{Filter, PointView};
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;
use crate::storage::codec::StoredPoint;

struct PendingView<'a> {
    id: PointId,
    point: &'a StoredPoint,
    names: &'a [String],
    sparse_names: &'a [String],
}

impl PointView for PendingView<'_> {
    fn id(&self) -> PointId {
        self.id
    }
    fn payload(&self) -> Option<&Map<String, Value>> {
        Some(&self.point.payload)
    }
    fn has_vector(&self, name: &str) -> bool {
        let at = |names: &[String]| names.iter().position(|n| n == name);
        let dense = at(self.names).and_then(|s| self.point.vectors.get(s));
        let sparse = at(self.sparse_names).and_then(|s| self.point.sparse.get(s));
        dense.is_some_and(|v| !v.is_empty()) || sparse.is_some_and(|v| !v.is_empty())
    }
}

/// Whether an existing point may be changed under an update filter.
fn passes(filter: Option<&Filter>, id: PointId, point: &StoredPoint, state: &WriterState) -> bool {
    filter.is_none_or(|f| f.matches(&state.view(id, point)))
}

impl WriterState {
    /// A pending point as filters see it.
    fn view<'a>(&'a self, id: PointId, point: &'a StoredPoint) -> PendingView<'a> {
        PendingView {
            id,
            point,
            names: &self.names,
            sparse_names: &self.sparse_names,
        }
    }

    /// The current stored form of a point, seen through `pending` layers (newest first).
    fn lookup(&self, id: PointId, layers: &[&Pending]) -> Option<StoredPoint> {
        for layer in layers {
            if let Some(state) = layer.points.get(&id) {
                return state.clone();
            }
        }
        let loc = self.locations.get(&id)?;
        let data = self.segment_data(loc.segment)?;
        Some(StoredPoint {
            version: data.version(loc.offset),
            vectors: data.vectors(loc.offset),
            sparse: data.sparse_vectors(loc.offset),
            payload: data.payload(loc.offset).clone(),
        })
    }

    /// Whether a point exists, seen through `pending` layers, without copying it.
    fn exists(&self, id: PointId, layers: &[&Pending]) -> bool {
        match layers.iter().find_map(|layer| layer.points.get(&id)) {
            Some(state) => state.is_some(),
            None => self.locations.contains_key(&id),
        }
    }

    fn segment_data(&self, id: u64) -> Option<&SegmentData> {
        if id == self.append_id {
            return Some(&self.append);
        }
        self.sealed.get(&id).map(|s| &*s.data)
    }

    /// Ids selected by `selector`, seen through `layers`; for id lists, `must_exist` makes a
    /// missing id an error (payload operations), otherwise missing ids are skipped (deletes).
    fn select(
        &self,
        selector: &Selector,
        layers: &[&Pending],
        must_exist: bool,
    ) -> Result<Vec<PointId>, CollectionError> {
        match selector {
            Selector::Ids(ids) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if self.exists(*id, layers) {
                        out.push(*id);
                    } else if must_exist {
                        return Err(CollectionError::NotFound(format!(
                            "No point with id {id} found"
                        )));
                    }
                }
                Ok(out)
            }
            Selector::Filter(filter) => Ok(self.select_filter(filter, layers)),
        }
    }

    fn select_filter(&self, filter: &Filter, layers: &[&Pending]) -> Vec<PointId> {
        let mut filter = filter.clone();
        crate::filter::index::bind_text(&mut filter, &self.schema);
        let shadowed = |id: &PointId| layers.iter().any(|l| l.points.contains_key(id));
        let mut out: Vec<PointId> = self
            .locations
            .iter()
            .filter(|(id, _)| !shadowed(id))
            .filter_map(|(id, loc)| {
                let data = self.segment_data(loc.segment)?;
                filter
                    .matches(&PointRef::new(data, loc.offset))
                    .then_some(*id)
            })
            .collect();
        // Pending points, newest layer wins for each id.
        let mut seen = std::collections::HashSet::new();
        for layer in layers {
            for (id, state) in &layer.points {
                if !seen.insert(*id) {
                    continue;
                }
                if let Some(point) = state {
                    if filter.matches(&self.view(*id, point)) {
                        out.push(*id);
                    }
                }
            }
        }
        out
    }

    /// Resolves one operation at `lsn` into changes, on top of earlier pending ones.
    /// Fails without side effects when the operation cannot apply (e.g. a missing point id).
    pub fn resolve(
        &self,
        op: &Operation,
        lsn: u64,
        layers: &[&Pending],
    ) -> Result<Pending, CollectionError> {
        let mut out = Pending::default();
        match op {
            Operation::Upsert(points) => {
                for p in points {
                    out.record(Change::Put(p.id, p.stored(lsn)));
                }
            }
            Operation::Delete(selector) => {
                for id in self.select(selector, layers, false)? {
                    out.record(Change::Delete(id));
                }
            }
            Operation::SetPayload {
                payload,
                selector,
                key,
            } => {
                self.rewrite_payloads(selector, lsn, layers, &mut out, |map| {
                    set_at_key(map, key.as_deref(), payload)
                })?;
            }
            Operation::OverwritePayload { payload, selector } => {
                self.rewrite_payloads(selector, lsn, layers, &mut out, |map| {
                    *map = payload.clone()
                })?;
            }
            Operation::DeletePayload { keys, selector } => {
                self.rewrite_payloads(selector, lsn, layers, &mut out, |map| {
                    keys.iter().for_each(|k| delete_key(map, k))
                })?;
            }
            Operation::ClearPayload(selector) => {
                self.rewrite_payloads(selector, lsn, layers, &mut out, Map::clear)?;
            }
            Operation::DeleteVectors {
                selector,
                spaces,
                sparse,
            } => {
                for id in self.select(selector, layers, true)? {
                    let Some(mut point) = self.current(id, layers, &out) else {
                        continue;
                    };
                    for &space in spaces {
                        if let Some(slot) = point.vectors.get_mut(space) {
                            slot.clear();
                        }
                    }
                    for &space in sparse {
                        if let Some(slot) = point.sparse.get_mut(space) {
                            *slot = SparseVector::default();
                        }
                    }
                    point.version = lsn;
                    out.record(Change::Put(id, point));
                }
            }
            Operation::UpdateVectors { updates, filter } => {
                for update in updates {
                    let id = update.id;
                    let mut point = self.current(id, layers, &out).ok_or_else(|| {
                        CollectionError::NotFound(format!("No point with id {id} found"))
                    })?;
                    if !passes(filter.as_ref(), id, &point, self) {
                        continue;
                    }
                    for (space, vector) in &update.vectors {
                        if let Some(slot) = point.vectors.get_mut(*space) {
                            slot.clone_from(vector);
                        }
                    }
                    point
                        .sparse
                        .resize(self.sparse_names.len(), SparseVector::default());
                    for (space, vector) in &update.sparse {
                        if let Some(slot) = point.sparse.get_mut(*space) {
                            slot.clone_from(vector);
                        }
                    }
                    point.version = lsn;
                    out.record(Change::Put(id, point));
                }
            }
            Operation::ConditionalUpsert {
                points,
                filter,
                mode,
            } => {
                for p in points {
                    let write = match (self.current(p.id, layers, &out), mode) {
                        (None, UpdateMode::UpdateOnly) | (Some(_), UpdateMode::InsertOnly) => false,
                        (Some(existing), _) => passes(filter.as_ref(), p.id, &existing, self),
                        (None, _) => true,
                    };
                    if write {
                        out.record(Change::Put(p.id, p.stored(lsn)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The point `id` as the operation being resolved sees it: after `out` and `layers`.
    fn current(&self, id: PointId, layers: &[&Pending], out: &Pending) -> Option<StoredPoint> {
        let mut all: Vec<&Pending> = vec![out];
        all.extend_from_slice(layers);
        self.lookup(id, &all)
    }

    fn rewrite_payloads(
        &self,
        selector: &Selector,
        lsn: u64,
        layers: &[&Pending],
        out: &mut Pending,
        edit: impl Fn(&mut Map<String, Value>),
    ) -> Result<(), CollectionError> {
        for id in self.select(selector, layers, true)? {
            let mut all: Vec<&Pending> = vec![&*out];
            all.extend_from_slice(layers);
            let Some(current) = self.lookup(id, &all) else {
                continue;
            };
            let mut payload = (*current.payload).clone();
            edit(&mut payload);
            let stored = StoredPoint {
                version: lsn,
                vectors: current.vectors,
                sparse: current.sparse,
                payload: Arc::new(payload),
            };
            out.record(Change::Put(id, stored));
        }
        Ok(())
    }
}
