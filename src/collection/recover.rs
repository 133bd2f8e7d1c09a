//! Rebuilding a collection's writer state at start-up from RocksDB and the sealed segment files,
//! without rebuilding any HNSW graph that was persisted.
//!
//! A stored point is live in a sealed segment exactly when the segment holds the same version
//! (LSN) of it; every other stored point goes to the append segment. A segment file that cannot
//! be read is skipped with a warning naming it: its points are all still in RocksDB, so they
//! land in the append segment and are indexed again. Payload indexes are read from each
//! segment's index file, or rebuilt where it cannot give them (see [`index_files`]); tenant
//! graphs from the tenant graph file, or built again by a job (see [`tenants`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::index_files;
use super::segment::{IndexedSegment, SegmentData, SEGMENT_FORMATS_READ};
use super::snapshot::Loc;
use super::state::{Change, Sealed, WriterState};
use super::tenants;
use super::CollectionMeta;
use crate::bitset::Bitset;
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;
use crate::storage::codec::{self, Payload, StoredPoint};
use crate::storage::files::{self, SegmentFile};
use crate::storage::{StorageError, Store};

/// Loads a collection's state.
pub fn recover(store: &Store, meta: &CollectionMeta) -> Result<WriterState, StorageError> {
    let list = store.segment_list(meta.id)?;
    let mut state = WriterState::new(meta.config.clone(), list.next_id.max(1));
    state.schema = Arc::new(meta.payload_schema.clone());
    let dir = store.segment_dir(meta.id);
    let mut segments = Vec::new();
    for seg_id in &list.sealed {
        let path = SegmentFile::Segment.path(&dir, *seg_id);
        match files::read_versioned(&path, &SEGMENT_FORMATS_READ).and_then(|(format, bytes)| {
            let (names, sparse) = (state.names.clone(), state.sparse_names.clone());
            IndexedSegment::decode(&bytes, format, &state.dims, &state.multi, names, sparse)
        }) {
            Ok(segment) => segments.push((*seg_id, segment)),
            Err(e) => {
                tracing::warn!(collection = %meta.name, error = %e, "skipping an unreadable segment; its points will be indexed again")
            }
        }
    }
    // Where each (point, version) sits in a loaded segment: such a record's vectors are in the
    // segment already, so only its payload is decoded (a third of start-up time otherwise).
    let mut slots: HashMap<(PointId, u64), (usize, usize)> = HashMap::new();
    for (s, (_, seg)) in segments.iter().enumerate() {
        for (i, id) in seg.ids.iter().enumerate() {
            slots.insert((*id, seg.versions[i]), (s, i));
        }
    }
    let mut payloads: Vec<Vec<Option<Light>>> = segments
        .iter()
        .map(|(_, seg)| vec![None; seg.ids.len()])
        .collect();
    let mut rest: Vec<(PointId, StoredPoint)> = Vec::new();
    store.for_each_point_record(meta.id, |id, bytes| {
        match slots.get(&(id, codec::record_version(bytes)?)) {
            Some(&(s, i)) => {
                let point = codec::decode_point_without_vectors(bytes)?;
                payloads[s][i] = Some((point.payload, point.sparse));
            }
            None => rest.push((id, codec::decode_point(bytes)?)),
        }
        Ok(())
    })?;
    for ((seg_id, mut segment), found) in segments.into_iter().zip(payloads) {
        segment.quantize(&state.spaces);
        let loaded = Loaded {
            dir: &dir,
            collection: &meta.name,
            id: seg_id,
        };
        place_segment(&mut state, loaded, segment, found);
    }
    // Segment files no stored list names (and half-written `.tmp` files) are left by a crash.
    let keep: Vec<String> = state
        .indexed_ids()
        .iter()
        .flat_map(|&id| SegmentFile::ALL.map(|f| f.name(id)))
        .collect();
    files::remove_unlisted(&dir, &keep);
    rest.sort_by_key(|(id, _)| *id);
    state.apply(rest.into_iter().map(|(id, p)| Change::Put(id, p)).collect());
    state.lsn = store.lsn(meta.id)?;
    Ok(state)
}

/// What a point record adds to its loaded segment: its payload and sparse vectors.
type Light = (Payload, Vec<SparseVector>);

/// Where a segment was loaded from.
struct Loaded<'a> {
    dir: &'a Path,
    collection: &'a str,
    id: u64,
}

/// Installs a loaded segment: offsets whose stored record has the same version are live and
/// take its payload (`found`); the rest are dead. Its payload indexes come from its index file
/// as far as that holds them.
fn place_segment(
    state: &mut WriterState,
    from: Loaded,
    mut segment: IndexedSegment,
    found: Vec<Option<Light>>,
) {
    let seg_id = from.id;
    let mut deleted = Bitset::default();
    let empty: Payload = Arc::default();
    segment.payloads = Vec::with_capacity(found.len());
    let spaces = state.sparse_names.len();
    segment.sparse = vec![Vec::with_capacity(found.len()); spaces];
    for (i, light) in found.into_iter().enumerate() {
        let live = light.is_some();
        let (payload, mut sparse) = light.unwrap_or_else(|| (empty.clone(), Vec::new()));
        sparse.resize(spaces, SparseVector::default());
        for (all, v) in segment.sparse.iter_mut().zip(sparse) {
            all.push(v);
        }
        segment.payloads.push(payload);
        if live {
            let offset = i as u32;
            let loc = Loc {
                segment: seg_id,
                offset,
            };
            state.locations.insert(segment.ids[i], loc);
        } else {
            deleted.set(i);
        }
    }
    segment.index_sparse();
    let data = Arc::new(SegmentData::Indexed(segment));
    let indexes = index_files::load(from.dir, seg_id, &data, &state.schema, from.collection);
    let (len, spaces) = (data.len(), state.spaces.len());
    let tenants = tenants::load(
        from.dir,
        seg_id,
        len,
        spaces,
        &state.schema,
        from.collection,
    );
    let sealed = Sealed {
        data,
        deleted: Arc::new(deleted),
        indexes: Arc::new(indexes),
        tenants: Arc::new(tenants),
    };
    state.sealed.insert(seg_id, sealed);
}
