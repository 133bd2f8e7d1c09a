//! Rebuilding a collection's writer state at start-up from RocksDB and the sealed segment files,
//! without rebuilding any HNSW graph that was persisted.
//!
//! A stored point is live in a sealed segment exactly when the segment holds the same version
//! (LSN) of it; every other stored point goes to the append segment. A segment file that cannot
//! be read is skipped with a warning naming it: its points are all still in RocksDB, so they
//! land in the append segment and are indexed again.

use std::collections::HashMap;
use std::sync::Arc;

use super::bitset::Bitset;
use super::segment::{IndexedSegment, SegmentData, SEGMENT_FORMAT};
use super::snapshot::Loc;
use super::state::{Change, Sealed, WriterState};
use crate::point_id::PointId;
use crate::storage::codec::StoredPoint;
use crate::storage::{files, CollectionMeta, StorageError, Store};

/// Loads a collection's state.
pub fn recover(store: &Store, meta: &CollectionMeta) -> Result<WriterState, StorageError> {
    let list = store.segment_list(meta.id)?;
    let mut state = WriterState::new(meta.config.clone(), list.next_id.max(1));
    let mut points: HashMap<PointId, StoredPoint> = HashMap::new();
    store.for_each_point(meta.id, |id, p| {
        points.insert(id, p);
    })?;
    let dir = store.segment_dir(meta.id);
    for seg_id in &list.sealed {
        let path = dir.join(format!("{seg_id}.seg"));
        let loaded = files::read_checked(&path, SEGMENT_FORMAT)
            .and_then(|bytes| IndexedSegment::decode(&bytes, &state.dims));
        match loaded {
            Ok(mut segment) => {
                segment.quantize(&state.spaces);
                place_segment(&mut state, *seg_id, segment, &mut points)
            }
            Err(e) => {
                tracing::warn!(collection = %meta.name, error = %e, "skipping an unreadable segment; its points will be indexed again")
            }
        }
    }
    // Segment files no stored list names (and half-written `.tmp` files) are left by a crash.
    let keep: Vec<String> = state
        .indexed_ids()
        .iter()
        .map(|id| format!("{id}.seg"))
        .collect();
    files::remove_unlisted(&dir, &keep);
    let mut rest: Vec<(PointId, StoredPoint)> = points.into_iter().collect();
    rest.sort_by_key(|(id, _)| *id);
    state.apply(rest.into_iter().map(|(id, p)| Change::Put(id, p)).collect());
    state.lsn = store.lsn(meta.id)?;
    Ok(state)
}

/// Installs a loaded segment: live offsets take their payload from the stored point.
fn place_segment(
    state: &mut WriterState,
    seg_id: u64,
    mut segment: IndexedSegment,
    points: &mut HashMap<PointId, StoredPoint>,
) {
    let mut deleted = Bitset::default();
    let empty: crate::storage::codec::Payload = Arc::default();
    segment.payloads = Vec::with_capacity(segment.ids.len());
    for (i, id) in segment.ids.iter().enumerate() {
        let current = points
            .get(id)
            .is_some_and(|p| p.version == segment.versions[i]);
        if current {
            let point = points.remove(id).expect("checked above");
            segment.payloads.push(point.payload);
            state.locations.insert(
                *id,
                Loc {
                    segment: seg_id,
                    offset: i as u32,
                },
            );
        } else {
            segment.payloads.push(empty.clone());
            deleted.set(i);
        }
    }
    state.sealed.insert(
        seg_id,
        Sealed {
            data: Arc::new(SegmentData::Indexed(segment)),
            deleted: Arc::new(deleted),
        },
    );
}
