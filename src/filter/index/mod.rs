//! Payload indexes: per-field structures over one sealed segment's payloads that answer filter
//! conditions without reading payloads, and the resolution of a whole filter into the offsets
//! it can match (see [`resolve`]).
//!
//! Offsets of a sealed segment never change their payload (an edit writes a new version
//! elsewhere and tombstones the old), so a segment's indexes are built once, for the schema of
//! the moment, and stay exact under every write; deletions are the caller's tombstones.

mod field;
mod resolve;
mod schema;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use field::FieldIndex;
pub use resolve::{Candidates, Resolver};
pub use schema::{CreateFieldIndex, FieldType, IndexSpec, PayloadSchema};

use super::{parse_path, FieldCondition, JsonPath};
use crate::collection::bitset::Bitset;

/// The payload indexes of one segment, one per indexed field.
#[derive(Default)]
pub struct SegmentIndexes {
    fields: Vec<(String, JsonPath, FieldIndex)>,
}

impl std::fmt::Debug for SegmentIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(n, _, _)| n.as_str()).collect();
        f.debug_struct("SegmentIndexes")
            .field("fields", &names)
            .finish()
    }
}

impl SegmentIndexes {
    /// Indexes the `len` payloads of a segment (`payload(offset)`) for every field of `schema`.
    pub fn build<'a>(
        schema: &PayloadSchema,
        len: usize,
        payload: impl Fn(u32) -> &'a Map<String, Value> + Copy,
    ) -> SegmentIndexes {
        let fields = schema
            .iter()
            .filter_map(|(name, spec)| {
                // Stored names were checked when the index was created.
                let key = parse_path(name).ok()?;
                let index = FieldIndex::build(spec.data_type, &key, len, payload)?;
                Some((name.clone(), key, index))
            })
            .collect();
        SegmentIndexes { fields }
    }

    /// Whether no field is indexed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The offsets matching `condition`, if an index on its key can tell, and whether all of
    /// them match.
    pub fn answer(&self, condition: &FieldCondition) -> Option<(Bitset, bool)> {
        self.fields
            .iter()
            .filter(|(_, key, _)| *key == condition.key)
            .find_map(|(_, _, index)| index.answer(condition))
    }

    /// Offsets with a value of the field named `name` (as in the schema), if it is indexed here.
    pub fn with_value(&self, name: &str) -> Option<&Bitset> {
        let found = self.fields.iter().find(|(n, _, _)| n == name);
        found.map(|(_, _, index)| index.with_value())
    }

    /// Whether some index could answer a condition on `key`.
    pub fn covers(&self, key: &JsonPath) -> bool {
        self.fields.iter().any(|(_, k, _)| k == key)
    }
}
