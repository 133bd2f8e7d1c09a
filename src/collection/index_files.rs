//! Each sealed segment's payload index file, `<id>.idx` beside its `<id>.seg`: written when a
//! segment's file is, and when the schema changes; read when the segment is loaded.
//!
//! The file only saves rebuilding: indexes are a function of the segment's payloads, which
//! never change, and the schema. So a file that is missing, damaged, of another format, or
//! built for other index specs is never an error: what it cannot give is rebuilt from the
//! payloads and the file written again.

use std::path::Path;
use std::time::Instant;

use super::segment::SegmentData;
use super::state::index_segment;
use crate::filter::index::{PayloadSchema, SegmentIndexes, INDEX_FORMAT};
use crate::storage::files;

/// Writes segment `id`'s indexes durably. A failure is logged, not returned: the next load
/// rebuilds what the file would have held.
pub fn write(dir: &Path, id: u64, indexes: &SegmentIndexes, collection: &str) {
    let path = files::SegmentFile::Indexes.path(dir, id);
    if let Err(e) = files::write_atomic(&path, INDEX_FORMAT, &indexes.encode()) {
        tracing::warn!(collection, file = %path.display(), error = %e, "could not write a payload index file; it will be rebuilt at the next start");
    }
}

/// The indexes for `schema` of a segment loaded from `dir`, read from its index file as far as
/// that holds them (rebuilt otherwise, and the file rewritten), with the space codes arranged.
pub fn load(
    dir: &Path,
    id: u64,
    data: &SegmentData,
    schema: &PayloadSchema,
    collection: &str,
) -> SegmentIndexes {
    let SegmentData::Indexed(segment) = data else {
        return SegmentIndexes::default();
    };
    if schema.is_empty() {
        return SegmentIndexes::default();
    }
    let started = Instant::now();
    let path = files::SegmentFile::Indexes.path(dir, id);
    let payload = |o: u32| &**data.payload(o);
    let restored = files::read_checked(&path, INDEX_FORMAT)
        .and_then(|bytes| SegmentIndexes::restore(&bytes, schema, data.len(), payload));
    let indexes = match restored {
        Ok(r) => {
            if r.stale {
                tracing::info!(collection, segment = id, rebuilt = ?r.rebuilt, "payload indexes built for other specs were rebuilt");
                write(dir, id, &r.indexes, collection);
            }
            let mut indexes = r.indexes;
            indexes.arrange(&segment.signs);
            indexes
        }
        Err(e) => {
            // A missing file is the normal case after an upgrade from a version without them.
            tracing::info!(collection, segment = id, reason = %e, "payload indexes rebuilt from payloads");
            let built = index_segment(data, schema);
            write(dir, id, &built, collection);
            built
        }
    };
    tracing::debug!(
        collection,
        segment = id,
        ms = started.elapsed().as_millis() as u64,
        "payload indexes loaded"
    );
    indexes
}
