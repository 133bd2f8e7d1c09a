//! Payload indexes: per-field structures over one sealed segment's payloads that answer filter
//! conditions without reading payloads, and the resolution of a whole filter into the offsets
//! it can match (see [`narrow`]).
//!
//! Offsets of a sealed segment never change their payload (an edit writes a new version
//! elsewhere and tombstones the old), so a segment's indexes are built once, for the schema of
//! the moment, and stay exact under every write; deletions are the caller's tombstones.

mod field;
mod narrow;
mod schema;
mod stored;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use field::FieldIndex;
pub use narrow::{Candidates, Narrower};
pub use schema::{names_path, CreateFieldIndex, FieldType, IndexSpec, PayloadSchema};
pub use stored::{Restored, INDEX_FORMAT};

use std::ops::Range;

use super::text::Tokenizer;
use super::{parse_path, Condition, FieldCondition, Filter, JsonPath, Match};
use crate::bitset::Bitset;
use crate::index::signs::SignCodes;

/// The payload indexes of one segment, one per indexed field.
#[derive(Default)]
pub struct SegmentIndexes {
    /// By name, principal fields (see [`IndexSpec::is_principal`]) first.
    fields: Vec<(String, JsonPath, FieldIndex)>,
    /// Per vector space with sign codes, per field: the codes in the field's order (see
    /// [`SegmentIndexes::arrange`]).
    arranged: Vec<Option<Vec<Vec<u64>>>>,
}

/// Fields per vector space whose order gets a copy of the sign codes: each copy is a 32nd of
/// the float vectors, so eight cost at most a quarter more memory.
pub const MAX_ARRANGED_FIELDS: usize = 8;

/// Where a filter's candidates lie in one field's order, with the sign codes in that order.
pub struct CodeRuns<'a> {
    pub order: &'a [u32],
    pub arranged: &'a [u64],
    pub runs: Vec<Range<usize>>,
    /// Entries of `order` the runs cover.
    pub len: usize,
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
        Self::assemble(schema, |spec, key, _| {
            FieldIndex::build(spec, key, len, payload)
        })
    }

    /// The indexes of `schema`'s fields, principal ones first, each made by
    /// `make(spec, path, name)`.
    fn assemble(
        schema: &PayloadSchema,
        mut make: impl FnMut(&IndexSpec, &JsonPath, &str) -> FieldIndex,
    ) -> SegmentIndexes {
        let principal_first = schema.iter().filter(|(_, spec)| spec.is_principal());
        let others = schema.iter().filter(|(_, spec)| !spec.is_principal());
        let fields = principal_first
            .chain(others)
            .filter_map(|(name, spec)| {
                // Stored names were checked when the index was created.
                let key = parse_path(name).ok()?;
                let index = make(spec, &key, name);
                Some((name.clone(), key, index))
            })
            .collect();
        SegmentIndexes {
            fields,
            arranged: Vec::new(),
        }
    }

    /// Copies each space's sign codes into the order of each field that has one (the first
    /// [`MAX_ARRANGED_FIELDS`]: principal fields, then by name), so a filtered search reads
    /// its candidates' codes in runs ([`SegmentIndexes::code_runs`]).
    pub fn arrange(&mut self, signs: &[Option<SignCodes>]) {
        self.arranged = signs
            .iter()
            .map(|codes| {
                let codes = codes.as_ref()?;
                let mut ordered = 0;
                let copies = self.fields.iter().map(|(_, _, f)| {
                    let wanted = !f.order().is_empty() && ordered < MAX_ARRANGED_FIELDS;
                    ordered += usize::from(wanted);
                    if wanted {
                        codes.arrange(f.order())
                    } else {
                        Vec::new()
                    }
                });
                Some(copies.collect())
            })
            .collect();
    }

    /// Bytes of the arranged sign codes (for telemetry).
    pub fn arranged_bytes(&self) -> usize {
        let all = self.arranged.iter().flatten().flatten();
        all.map(|codes| codes.capacity() * 8).sum()
    }

    /// The runs of one field's order holding every candidate of `filter` in `space`: those of
    /// the `must` condition whose runs are shortest, if any has runs.
    pub fn code_runs(&self, space: usize, filter: &Filter) -> Option<CodeRuns<'_>> {
        let arranged = self.arranged.get(space)?.as_ref()?;
        let mut best: Option<CodeRuns> = None;
        for condition in &filter.must {
            let Condition::Field(c) = condition else {
                continue;
            };
            for (i, (_, key, index)) in self.fields.iter().enumerate() {
                if *key != c.key || arranged[i].is_empty() {
                    continue;
                }
                let Some(runs) = index.runs(c) else {
                    continue;
                };
                let len = runs.iter().map(|r| r.len()).sum();
                if best.as_ref().is_none_or(|b| len < b.len) {
                    best = Some(CodeRuns {
                        order: index.order(),
                        arranged: &arranged[i],
                        runs,
                        len,
                    });
                }
            }
        }
        best
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
        self.field_named(name).map(FieldIndex::with_value)
    }

    /// The index of the field named `name` (as in the schema), if it is indexed here.
    pub fn field_named(&self, name: &str) -> Option<&FieldIndex> {
        let found = self.fields.iter().find(|(n, _, _)| n == name);
        found.map(|(_, _, index)| index)
    }

    /// The index on `key`, if there is one.
    pub fn field(&self, key: &JsonPath) -> Option<&FieldIndex> {
        self.fields
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, i)| i)
    }
}

/// Gives each full-text condition the tokenizer of the text index on its key (the default
/// word tokenizer where there is none), so segments read through the index and segments whose
/// payloads are read split text alike. Conditions inside `nested` keep the default: their keys
/// are relative to array elements.
pub fn bind_text(filter: &mut Filter, schema: &PayloadSchema) {
    if !schema.values().any(|s| s.data_type == FieldType::Text) {
        return;
    }
    let clauses = [&mut filter.must, &mut filter.should, &mut filter.must_not];
    let min_should = filter.min_should.as_mut().map(|m| &mut m.conditions);
    for condition in clauses.into_iter().chain(min_should).flatten() {
        match condition {
            Condition::Field(field) => bind_field(field, schema),
            Condition::Filter(inner) => bind_text(inner, schema),
            _ => {}
        }
    }
}

fn bind_field(field: &mut FieldCondition, schema: &PayloadSchema) {
    let slot = match &mut field.r#match {
        Some(Match::Text(m)) => &mut m.tokenizer,
        Some(Match::TextAny(m)) => &mut m.tokenizer,
        Some(Match::Phrase(m)) => &mut m.tokenizer,
        _ => return,
    };
    let spec = schema
        .iter()
        .find(|(name, spec)| spec.data_type == FieldType::Text && names_path(name, &field.key));
    if let Some((_, spec)) = spec {
        let params = spec.params.clone().unwrap_or_default();
        *slot = Tokenizer::from_params(&params).unwrap_or_default();
    }
}
