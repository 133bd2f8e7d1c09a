//! The writer's private state and the pure logic of applying operations to it.
//!
//! Ordering rule (the data path's contract): an operation is first *resolved* into point-level
//! [`Change`]s against current state, those changes are *committed* to RocksDB, and only then
//! *applied* here and *published* as a new snapshot. Nothing in this file touches RocksDB or
//! HTTP, so the rules are tested directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::config::{CollectionConfig, VectorSpace};
use super::segment::{PlainSegment, SegmentData};
use super::snapshot::{Loc, SegmentView, Snapshot};
use super::tenants::TenantGraphs;
use crate::bitset::Bitset;
use crate::filter::index::{PayloadSchema, SegmentIndexes};
use crate::point_id::PointId;
use crate::storage::codec::StoredPoint;

/// A point-level effect of an operation, as committed to storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Put(PointId, StoredPoint),
    Delete(PointId),
}

/// Changes resolved but not yet applied: later operations of the same group see them.
#[derive(Default)]
pub struct Pending {
    pub(super) points: HashMap<PointId, Option<StoredPoint>>,
    /// Every change in order, for the storage batch and for `apply`.
    pub changes: Vec<Change>,
}

impl Pending {
    pub(super) fn record(&mut self, change: Change) {
        match &change {
            Change::Put(id, p) => self.points.insert(*id, Some(p.clone())),
            Change::Delete(id) => self.points.insert(*id, None),
        };
        self.changes.push(change);
    }

    /// Adds the changes of a later, successfully resolved operation.
    pub fn extend(&mut self, other: Pending) {
        self.points.extend(other.points);
        self.changes.extend(other.changes);
    }
}

/// A sealed (indexed or frozen) segment held by the writer.
#[derive(Clone)]
pub struct Sealed {
    pub data: Arc<SegmentData>,
    pub deleted: Arc<Bitset>,
    /// Payload indexes for the schema of the moment (none on a frozen plain segment, which
    /// is scanned until its build).
    pub indexes: Arc<SegmentIndexes>,
    /// Graphs per value of the tenant fields, once a job has built them.
    pub tenants: Arc<TenantGraphs>,
}

impl Sealed {
    /// A sealed segment with its payload indexes built for `schema`.
    pub fn new(data: Arc<SegmentData>, deleted: Arc<Bitset>, schema: &PayloadSchema) -> Sealed {
        let indexes = Arc::new(index_segment(&data, schema));
        Sealed {
            data,
            deleted,
            indexes,
            tenants: Arc::default(),
        }
    }
}

/// Builds the payload indexes of an indexed segment for `schema` (none for a plain one).
pub fn index_segment(data: &SegmentData, schema: &PayloadSchema) -> SegmentIndexes {
    match data {
        SegmentData::Indexed(segment) if !schema.is_empty() => {
            let mut indexes = SegmentIndexes::build(schema, data.len(), |o| &**data.payload(o));
            indexes.arrange(&segment.signs);
            indexes
        }
        _ => SegmentIndexes::default(),
    }
}

/// Everything the writer owns. Only the writer thread touches it.
pub struct WriterState {
    pub config: Arc<CollectionConfig>,
    pub spaces: Arc<[VectorSpace]>,
    pub dims: Arc<[usize]>,
    /// Per vector space, whether it holds multivectors.
    pub multi: Arc<[bool]>,
    /// Vector space names, in space order.
    pub names: Arc<[String]>,
    /// Sparse vector space names, in sparse space order.
    pub sparse_names: Arc<[String]>,
    /// Indexed payload fields.
    pub schema: Arc<PayloadSchema>,
    /// Indexed segments and frozen plain segments waiting to be indexed, by segment id.
    pub sealed: BTreeMap<u64, Sealed>,
    pub append_id: u64,
    /// Always the `Plain` variant: the segment new versions are appended to.
    pub append: SegmentData,
    pub append_deleted: Arc<Bitset>,
    pub locations: imbl::OrdMap<PointId, Loc>,
    /// LSN of the last applied operation.
    pub lsn: u64,
    pub next_segment_id: u64,
    pub generation: u64,
    /// Segments that running index builds read; no other build may take them.
    pub busy: BTreeSet<u64>,
    /// Indexed segments sealed from the append segment whose file is not written yet: the
    /// stored segment list leaves them out, so after a crash their points are indexed again.
    pub unpersisted: BTreeSet<u64>,
}

/// Points an unindexed append segment may hold and still be indexed in place, on the writer,
/// when indexing starts (at start-up or when a PATCH turns it on); a bigger one goes to a
/// background build instead, so writes are not held up.
const CATCH_UP: usize = 2048;

/// Points an append segment's live graphs have room for. Pages are allocated as points arrive,
/// so room costs a pointer per 1,024 points; it only has to exceed what one group commit can
/// add to a segment at its sealing size.
const LIVE_CAPACITY: usize = 1 << 22;

impl WriterState {
    /// An empty state for a new collection.
    pub fn new(config: CollectionConfig, next_segment_id: u64) -> WriterState {
        let spaces: Arc<[VectorSpace]> = config.spaces().into();
        let dims: Arc<[usize]> = spaces.iter().map(|s| s.size).collect();
        let multi: Arc<[bool]> = spaces.iter().map(|s| s.multi).collect();
        let names: Arc<[String]> = spaces.iter().map(|s| s.name.clone()).collect();
        let sparse = config.sparse_spaces();
        let sparse_names: Arc<[String]> = sparse.into_iter().map(|s| s.name).collect();
        let append = PlainSegment::new(
            dims.clone(),
            multi.clone(),
            names.clone(),
            sparse_names.clone(),
        );
        WriterState {
            config: Arc::new(config),
            append: SegmentData::Plain(append),
            spaces,
            dims,
            multi,
            names,
            sparse_names,
            schema: Arc::default(),
            sealed: BTreeMap::new(),
            append_id: next_segment_id,
            append_deleted: Arc::default(),
            locations: imbl::OrdMap::new(),
            lsn: 0,
            next_segment_id: next_segment_id + 1,
            generation: 0,
            busy: BTreeSet::new(),
            unpersisted: BTreeSet::new(),
        }
    }

    fn tombstone(&mut self, loc: Loc) {
        if loc.segment == self.append_id {
            Arc::make_mut(&mut self.append_deleted).set(loc.offset as usize);
        } else if let Some(s) = self.sealed.get_mut(&loc.segment) {
            Arc::make_mut(&mut s.deleted).set(loc.offset as usize);
        }
    }

    /// Applies committed changes: tombstones old locations, appends new versions.
    pub fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Put(id, point) => {
                    if let Some(old) = self.locations.get(&id).copied() {
                        self.tombstone(old);
                    }
                    let offset = self.append.plain_mut().push(id, point);
                    self.locations.insert(
                        id,
                        Loc {
                            segment: self.append_id,
                            offset,
                        },
                    );
                }
                Change::Delete(id) => {
                    if let Some(old) = self.locations.remove(&id) {
                        self.tombstone(old);
                    }
                }
            }
        }
    }

    /// Builds the snapshot of the current state (the writer then publishes it).
    pub fn snapshot(&mut self) -> Snapshot {
        self.generation += 1;
        let mut segments: Vec<SegmentView> = self
            .sealed
            .iter()
            .map(|(id, s)| SegmentView {
                id: *id,
                data: s.data.clone(),
                deleted: s.deleted.clone(),
                // A frozen plain segment, waiting for its build, is read like the append one.
                indexes: matches!(*s.data, SegmentData::Indexed(_)).then(|| s.indexes.clone()),
                tenants: s.tenants.clone(),
            })
            .collect();
        segments.push(SegmentView {
            id: self.append_id,
            data: Arc::new(self.append.clone_plain()),
            deleted: self.append_deleted.clone(),
            indexes: None,
            tenants: Arc::default(),
        });
        Snapshot {
            generation: self.generation,
            lsn: self.lsn,
            config: self.config.clone(),
            spaces: self.spaces.clone(),
            schema: self.schema.clone(),
            segments,
            locations: self.locations.clone(),
            // An append segment over the threshold is about to be sealed: not green yet.
            optimizing: !self.busy.is_empty()
                || self.frozen_waiting()
                || self.append_live() >= self.config.indexing_threshold_points(),
        }
    }

    /// Live points in the append segment.
    pub fn append_live(&self) -> usize {
        self.append.len() - self.append_deleted.count()
    }

    /// Points not in any HNSW graph: the frozen plain segments' and an unindexed append
    /// segment's.
    pub fn unindexed_points(&self) -> usize {
        let frozen: usize = self
            .sealed
            .values()
            .filter(|s| matches!(*s.data, SegmentData::Plain(_)))
            .map(|s| s.data.len() - s.deleted.count())
            .sum();
        match &self.append {
            SegmentData::Plain(p) if p.is_indexed() => frozen,
            _ => frozen + self.append_live(),
        }
    }

    /// Indexed segments besides the largest: what merges have yet to fold in.
    pub fn merge_backlog(&self) -> usize {
        self.sealed
            .values()
            .filter(|s| matches!(*s.data, SegmentData::Indexed(_)))
            .count()
            .saturating_sub(1)
    }

    /// Whether frozen plain segments wait for indexing.
    pub fn frozen_waiting(&self) -> bool {
        self.sealed
            .values()
            .any(|s| matches!(*s.data, SegmentData::Plain(_)))
    }

    /// Inserts the append segment's new points into its live graphs (on the current rayon pool).
    pub fn index_appended(&mut self) {
        self.append.plain_mut().index_new();
    }

    /// Keeps the append segment in step with the indexing threshold (on the current rayon pool):
    /// - indexing off: the append segment has no graphs and is scanned;
    /// - indexing on: it has live graphs; once it holds the threshold's worth of live points, or
    ///   twice that counting overwritten and deleted ones, it is sealed as an indexed segment,
    ///   whose id is returned, and a new one starts. Points from before indexing was on are
    ///   indexed in place when few, else frozen for a background build.
    pub fn tend_append(&mut self) -> Option<u64> {
        let threshold = self.config.indexing_threshold_points();
        if threshold == usize::MAX {
            self.append.plain_mut().stop_index();
            return None;
        }
        let live = self.append_live();
        let plain = self.append.plain_mut();
        let mut sealed = None;
        if plain.is_indexed() {
            let full =
                plain.len() >= threshold.saturating_mul(2) || plain.len() >= plain.capacity();
            if live >= threshold || full {
                sealed = self.seal_append();
                if sealed.is_none() {
                    self.freeze_append();
                }
            }
        } else if plain.len() > CATCH_UP || live >= threshold {
            self.freeze_append();
        }
        let seed = self.append_id;
        let spaces = self.spaces.clone();
        let plain = self.append.plain_mut();
        if !plain.is_indexed() {
            plain.start_index(&spaces, LIVE_CAPACITY, seed);
        }
        sealed
    }

    /// Puts the append segment's data in the sealed set under its id and starts an empty one.
    fn retire_append(&mut self, data: SegmentData) -> u64 {
        let deleted = std::mem::take(&mut self.append_deleted);
        let id = self.append_id;
        let sealed = Sealed::new(Arc::new(data), deleted, &self.schema);
        self.sealed.insert(id, sealed);
        self.append = SegmentData::Plain(self.empty_append());
        self.append_id = self.next_segment_id;
        self.next_segment_id += 1;
        id
    }

    fn empty_append(&self) -> PlainSegment {
        PlainSegment::new(
            self.dims.clone(),
            self.multi.clone(),
            self.names.clone(),
            self.sparse_names.clone(),
        )
    }

    /// Moves the append segment into the sealed set (to be indexed by a build) and starts a new one.
    pub fn freeze_append(&mut self) {
        let fresh = self.empty_append();
        let mut old = std::mem::replace(self.append.plain_mut(), fresh);
        old.stop_index();
        self.retire_append(SegmentData::Plain(old));
    }

    /// Seals a fully indexed append segment as an indexed segment; its points keep their
    /// locations (same segment id, same offsets). `None` if some point is not in the graphs.
    fn seal_append(&mut self) -> Option<u64> {
        let segment = self.append.plain_mut().seal(&self.spaces)?;
        let id = self.retire_append(SegmentData::Indexed(segment));
        self.unpersisted.insert(id);
        Some(id)
    }

    /// Ids of the indexed (HNSW) segments with a file: what the stored segment list records.
    pub fn indexed_ids(&self) -> Vec<u64> {
        self.sealed
            .iter()
            .filter(|(id, _)| !self.unpersisted.contains(id))
            .filter(|(_, s)| matches!(*s.data, SegmentData::Indexed(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Hands out a fresh segment id.
    pub fn allocate_segment_id(&mut self) -> u64 {
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        id
    }

    /// Puts a built segment in place of its sources. `sources[i]` says where offset `i` of the new
    /// segment came from; it is live only if that is still where its point lives.
    /// `indexes` are used when built for the current schema (else they are built here, and
    /// this returns true).
    pub fn install(
        &mut self,
        id: u64,
        data: Arc<SegmentData>,
        sources: &[Loc],
        replaces: &[u64],
        indexes: Option<(Arc<PayloadSchema>, SegmentIndexes)>,
    ) -> bool {
        let mut deleted = Bitset::default();
        for (i, source) in sources.iter().enumerate() {
            let point = data.id(i as u32);
            if self.locations.get(&point) == Some(source) {
                self.locations.insert(
                    point,
                    Loc {
                        segment: id,
                        offset: i as u32,
                    },
                );
            } else {
                deleted.set(i);
            }
        }
        for r in replaces {
            self.sealed.remove(r);
            self.unpersisted.remove(r);
        }
        let (sealed, rebuilt) = match indexes {
            Some((schema, indexes)) if *schema == *self.schema => {
                let sealed = Sealed {
                    data,
                    deleted: Arc::new(deleted),
                    indexes: Arc::new(indexes),
                    tenants: Arc::default(),
                };
                (sealed, false)
            }
            _ => (Sealed::new(data, Arc::new(deleted), &self.schema), true),
        };
        self.sealed.insert(id, sealed);
        rebuilt
    }
}
