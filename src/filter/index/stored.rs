//! A segment's payload indexes as the bytes of one file, so that loading a segment reads its
//! indexes instead of rebuilding each from every payload.
//!
//! Layout (little-endian): `u32 fields | per field: u32 length, name | u32 length, the index
//! spec as JSON | the field index (see `field/stored.rs`)`. The file is written whole and
//! checksummed by [`crate::storage::files`] under [`INDEX_FORMAT`]; a file of another format
//! is not read, so all its fields are rebuilt. Each field keeps the spec it was built as: a
//! field of the schema whose spec differs, or that the file lacks, is rebuilt from payloads,
//! and a field the schema no longer has is left out.

use crate::error::Corrupt;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{FieldIndex, IndexSpec, PayloadSchema, SegmentIndexes};
use crate::bytes::{put_prefixed, put_u32, Reader};

/// Format version of index files; a change in how any index is laid out or built (what it
/// holds for a value) must bump it, so that older files are rebuilt rather than misread.
pub const INDEX_FORMAT: u32 = 1;

/// Indexes restored from a file, and how far the file fell short of the schema.
pub struct Restored {
    pub indexes: SegmentIndexes,
    /// Fields built from payloads: the file lacked them or held them built otherwise.
    pub rebuilt: Vec<String>,
    /// Whether the file differs from what it would be written as now.
    pub stale: bool,
}

impl SegmentIndexes {
    /// The bytes of every field's index, for [`SegmentIndexes::restore`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, self.fields.len());
        for (name, _, index) in &self.fields {
            let spec = serde_json::to_vec(index.spec()).unwrap_or_default();
            put_prefixed(&mut out, name.as_bytes());
            put_prefixed(&mut out, &spec);
            index.encode(&mut out);
        }
        out
    }

    /// The indexes of `schema` over a segment of `len` payloads (`payload(offset)`): those
    /// `bytes` hold as the schema says, the others built. Fails, building nothing, when the
    /// bytes do not decode.
    pub fn restore<'a>(
        bytes: &[u8],
        schema: &PayloadSchema,
        len: usize,
        payload: impl Fn(u32) -> &'a Map<String, Value> + Copy,
    ) -> Result<Restored, Corrupt> {
        let mut stored = decode(bytes, len)?;
        let mut rebuilt = Vec::new();
        let indexes = Self::assemble(schema, |spec, key, name| match stored.remove(name) {
            Some(index) if index.spec() == spec => index,
            _ => {
                rebuilt.push(name.to_string());
                FieldIndex::build(spec, key, len, payload)
            }
        });
        let stale = !rebuilt.is_empty() || !stored.is_empty();
        Ok(Restored {
            indexes,
            rebuilt,
            stale,
        })
    }
}

/// The field indexes in `bytes`, by name.
fn decode(bytes: &[u8], len: usize) -> Result<HashMap<String, FieldIndex>, Corrupt> {
    let mut r = Reader::new(bytes);
    let count = r.u32()? as usize;
    let mut fields = HashMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let spec: IndexSpec = serde_json::from_slice(r.prefixed()?)
            .map_err(|e| format!("index spec of {name}: {e}"))?;
        let index = FieldIndex::decode(&mut r, &spec, len).map_err(|e| format!("{name}: {e}"))?;
        fields.insert(name, index);
    }
    if !r.is_empty() {
        return corrupt!("{} bytes after the last field", r.remaining());
    }
    Ok(fields)
}
