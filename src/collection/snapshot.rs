//! The immutable view of a collection that searches read: published by the writer through
//! `ArcSwap::store`, loaded by readers with one `load_full()`, never locked.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::config::{CollectionConfig, VectorSpace};
use super::segment::SegmentData;
use super::tenants::TenantGraphs;
use crate::bitset::Bitset;
use crate::filter::index::{PayloadSchema, SegmentIndexes};
use crate::filter::{Filter, PointView};
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;

/// Where a live point is: a segment id and an offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub segment: u64,
    pub offset: u32,
}

/// A segment as one snapshot sees it: its data and its tombstones at publication time.
#[derive(Clone, Debug)]
pub struct SegmentView {
    pub id: u64,
    pub data: Arc<SegmentData>,
    pub deleted: Arc<Bitset>,
    /// Payload indexes; `None` on the append segment, whose payloads are read instead.
    pub indexes: Option<Arc<SegmentIndexes>>,
    /// Graphs per tenant (see [`super::tenants`]); none on plain segments.
    pub tenants: Arc<TenantGraphs>,
}

impl SegmentView {
    /// Whether `offset` holds a live point in this snapshot.
    #[inline]
    pub fn is_live(&self, offset: u32) -> bool {
        (offset as usize) < self.data.len() && !self.deleted.get(offset as usize)
    }

    /// Live points in this segment.
    pub fn live(&self) -> usize {
        self.data.len() - self.deleted.count()
    }

    /// The point at `offset`, for filters and responses.
    pub fn point(&self, offset: u32) -> PointRef<'_> {
        PointRef::new(&self.data, offset)
    }

    /// The segment as a search of vector space `space` sees it: points lacking that vector
    /// count as deleted, so every plan, scan and count leaves them out alike.
    pub fn for_space(&self, space: usize) -> std::borrow::Cow<'_, SegmentView> {
        let Some(absent) = self.data.absent(space) else {
            return std::borrow::Cow::Borrowed(self);
        };
        let mut gone = (*self.deleted).clone();
        gone.or(&absent);
        std::borrow::Cow::Owned(SegmentView {
            deleted: Arc::new(gone),
            ..self.clone()
        })
    }
}

/// One consistent state of a collection.
#[derive(Debug)]
pub struct Snapshot {
    /// Increments with every publication.
    pub generation: u64,
    /// LSN of the last operation this snapshot includes.
    pub lsn: u64,
    pub config: Arc<CollectionConfig>,
    pub spaces: Arc<[VectorSpace]>,
    /// Indexed payload fields.
    pub schema: Arc<PayloadSchema>,
    /// Sealed segments first, the append segment last.
    pub segments: Vec<SegmentView>,
    /// Every live point, ordered by id (scroll order).
    pub locations: imbl::OrdMap<PointId, Loc>,
    /// Whether an index build is running or waiting (collection status yellow).
    pub optimizing: bool,
}

impl Snapshot {
    /// The segment with id `id`.
    pub fn segment(&self, id: u64) -> Option<&SegmentView> {
        self.segments.iter().find(|s| s.id == id)
    }

    /// The live point with id `id`.
    pub fn get(&self, id: PointId) -> Option<PointRef<'_>> {
        let loc = self.locations.get(&id)?;
        Some(self.segment(loc.segment)?.point(loc.offset))
    }

    /// `filter` ready to run on this snapshot: full-text conditions take the tokenizer of the
    /// text index on their key (see [`crate::filter::index::bind_text`]).
    pub fn bind(&self, filter: Option<Filter>) -> Option<Filter> {
        filter.map(|mut f| {
            crate::filter::index::bind_text(&mut f, &self.schema);
            f
        })
    }

    /// Number of live points.
    pub fn points_count(&self) -> usize {
        self.locations.len()
    }

    /// Index of the vector space named `name` ("" = the unnamed vector).
    pub fn space_index(&self, name: &str) -> Option<usize> {
        self.spaces.iter().position(|s| s.name == name)
    }

    /// Points held by indexed segments (reported as `indexed_vectors_count`).
    pub fn indexed_points(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(*s.data, SegmentData::Indexed(_)))
            .map(|s| s.live() * self.spaces.len())
            .sum()
    }

    /// Live points matching `filter`, in id order, starting at `from`.
    pub fn scan<'a>(
        &'a self,
        from: Option<PointId>,
        filter: Option<&'a Filter>,
    ) -> impl Iterator<Item = (PointId, PointRef<'a>)> + 'a {
        let range = match from {
            Some(start) => self.locations.range(start..),
            None => self.locations.range::<_, PointId>(..),
        };
        range.filter_map(move |(id, loc)| {
            let point = self.segment(loc.segment)?.point(loc.offset);
            filter
                .is_none_or(|f| f.matches(&point))
                .then_some((*id, point))
        })
    }
}

/// A borrowed live point of a snapshot.
#[derive(Clone, Copy)]
pub struct PointRef<'a> {
    data: &'a SegmentData,
    offset: u32,
}

impl<'a> PointRef<'a> {
    /// The point at `offset` of `data` (the caller knows it is live).
    pub fn new(data: &'a SegmentData, offset: u32) -> PointRef<'a> {
        PointRef { data, offset }
    }

    /// The point's version (the LSN that wrote it).
    pub fn version(&self) -> u64 {
        self.data.version(self.offset)
    }

    /// The point's payload object.
    pub fn payload_map(&self) -> &'a Map<String, Value> {
        self.data.payload(self.offset)
    }

    /// The point's payload, shared.
    pub fn payload_arc(&self) -> crate::storage::codec::Payload {
        self.data.payload(self.offset).clone()
    }

    /// The vector of space `space` as float32, unless the point lacks it.
    pub fn vector(&self, space: usize) -> Option<std::borrow::Cow<'a, [f32]>> {
        self.data
            .has_vector(space, self.offset)
            .then(|| self.data.vector(space, self.offset))
    }

    /// All vectors, one per space.
    pub fn vectors(&self) -> Vec<Vec<f32>> {
        self.data.vectors(self.offset)
    }

    /// The sparse vector of sparse space `space`, unless the point lacks it.
    pub fn sparse(&self, space: usize) -> Option<&'a SparseVector> {
        Some(self.data.sparse(space, self.offset)).filter(|v| !v.is_empty())
    }

    /// The names of the sparse spaces of the point's collection.
    pub fn sparse_names(&self) -> &'a [String] {
        self.data.sparse_names()
    }

    /// All sparse vectors, one per sparse space.
    pub fn sparse_vectors(&self) -> Vec<SparseVector> {
        self.data.sparse_vectors(self.offset)
    }
}

impl PointView for PointRef<'_> {
    fn id(&self) -> PointId {
        self.data.id(self.offset)
    }

    fn payload(&self) -> Option<&Map<String, Value>> {
        Some(self.data.payload(self.offset))
    }

    fn has_vector(&self, name: &str) -> bool {
        // A name the collection does not have matches nothing, as in Qdrant.
        self.data.has_vector_named(name, self.offset)
    }
}
