//! Sparse vector spaces of a collection (`sparse_vectors` in Qdrant's configuration): named,
//! each with its inverted index settings and an optional IDF modifier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Invalid;

/// One sparse vector space as a request gives it and the configuration reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<SparseIndexParams>,
    /// `idf` weighs each dimension of a query by its inverse document frequency over the
    /// collection's live points (BM25-style retrieval); `none` (the default) does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<Modifier>,
}

/// How the inverted index of a sparse vector is kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseIndexParams {
    /// Below this many candidate points a filtered search scores them one by one instead of
    /// walking the posting lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    /// Accepted for compatibility: the index is held in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// Only `float32` is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
}

/// What is applied to a sparse query's values before scoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Modifier {
    #[default]
    None,
    Idf,
}

/// A sparse vector space, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseSpace {
    pub name: String,
    pub idf: bool,
    pub full_scan_threshold: usize,
}

/// Qdrant's default `full_scan_threshold` of a sparse index.
const DEFAULT_FULL_SCAN_THRESHOLD: usize = 5000;

/// Checks a request's sparse vector spaces against the dense names `dense`.
pub fn check(
    sparse: &BTreeMap<String, SparseVectorParams>,
    dense: &[String],
) -> Result<(), Invalid> {
    for (name, params) in sparse {
        if name.is_empty() {
            return invalid!("sparse_vectors: a sparse vector needs a name");
        }
        if dense.contains(name) {
            return invalid!("sparse_vectors.{name}: the name is taken by a dense vector");
        }
        let datatype = params.index.as_ref().and_then(|i| i.datatype.as_deref());
        if let Some(other) = datatype.filter(|d| *d != "float32") {
            return invalid!(
                "sparse_vectors.{name}.index.datatype `{other}` is not supported; only float32 is"
            );
        }
    }
    Ok(())
}

/// The resolved spaces, in name order.
pub fn spaces(sparse: &BTreeMap<String, SparseVectorParams>) -> Vec<SparseSpace> {
    sparse
        .iter()
        .map(|(name, p)| SparseSpace {
            name: name.clone(),
            idf: p.modifier == Some(Modifier::Idf),
            full_scan_threshold: p
                .index
                .as_ref()
                .and_then(|i| i.full_scan_threshold)
                .unwrap_or(DEFAULT_FULL_SCAN_THRESHOLD),
        })
        .collect()
}

/// Applies a PATCH's changes to existing sparse spaces (new ones cannot be added).
pub fn update(
    current: &mut BTreeMap<String, SparseVectorParams>,
    patch: BTreeMap<String, SparseVectorParams>,
) -> Result<(), Invalid> {
    for (name, diff) in patch {
        let Some(space) = current.get_mut(&name) else {
            return invalid!("sparse_vectors.{name}: the collection has no such sparse vector");
        };
        if let Some(index) = diff.index {
            let own = space.index.get_or_insert_with(Default::default);
            own.full_scan_threshold = index.full_scan_threshold.or(own.full_scan_threshold);
            own.on_disk = index.on_disk.or(own.on_disk);
        }
        if diff.modifier.is_some() {
            space.modifier = diff.modifier;
        }
    }
    Ok(())
}
