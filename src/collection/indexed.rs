//! [`IndexedSegment`]: a sealed segment's contiguous vectors, one HNSW graph per vector space,
//! inverted indexes of its sparse vectors and the codes made from its vectors; never mutated.

use std::sync::Arc;

use super::config::VectorSpace;
use crate::bitset::Bitset;
use crate::index::distance::Kernel;
use crate::index::hnsw::{Flat, Graph, Multi, Rows};
use crate::index::quant::Quantized;
use crate::index::signs::{self, SignCodes};
use crate::index::sparse::{InvertedIndex, SparseVector};
use crate::index::Metric;
use crate::point_id::PointId;
use crate::storage::codec::Payload;

/// A sealed segment: contiguous vectors and an HNSW graph per vector space.
#[derive(Debug)]
pub struct IndexedSegment {
    pub ids: Vec<PointId>,
    pub versions: Vec<u64>,
    /// Payloads of live points; a point dead at load time has an empty payload.
    pub payloads: Vec<Payload>,
    /// Per vector space: `len × dim` floats; in a multivector space, each point's vectors
    /// one after another.
    pub vectors: Vec<Vec<f32>>,
    /// Per vector space, `None` for single vectors; for multivectors, where each point's
    /// vectors end in `vectors` (a point lacking them ends where the previous one does).
    pub ends: Vec<Option<Vec<usize>>>,
    pub dims: Arc<[usize]>,
    /// Vector space names, for `has_vector` conditions.
    pub names: Arc<[String]>,
    /// Sparse vector space names.
    pub sparse_names: Arc<[String]>,
    /// Per sparse space, each point's sparse vector (empty where it lacks one). Not stored in
    /// the segment file: recovery reads them from the point records with the payloads.
    pub sparse: Vec<Vec<SparseVector>>,
    /// Per sparse space, the inverted index of `sparse`; made like `quantized`.
    pub inverted: Vec<InvertedIndex>,
    /// Per vector space, the points lacking that vector (`None`: none does). Their rows are
    /// zeros and their graph nodes have no links.
    pub absent: Vec<Option<Bitset>>,
    pub graphs: Vec<Graph>,
    /// Per vector space, int8 codes when the space is quantized. Not stored in the segment
    /// file: encoding is fast and depends only on the vectors and the configuration.
    pub quantized: Vec<Option<Quantized>>,
    /// Per vector space, one-bit sign codes of dot-product (and cosine) spaces, which rank a
    /// filter's many candidates (see [`SignCodes`]). Made like `quantized`, never stored.
    pub signs: Vec<Option<SignCodes>>,
}

/// The vectors of one space of an indexed segment, as graph rows.
pub(crate) enum SpaceRows<'a> {
    Single(Flat<'a>),
    Multi(Multi<'a>),
}

impl<'a> SpaceRows<'a> {
    /// Row `id`, borrowed from the segment rather than from `self`.
    #[inline]
    pub fn at(self, id: u32) -> &'a [f32] {
        match self {
            SpaceRows::Single(r) => r.at(id),
            SpaceRows::Multi(r) => r.at(id),
        }
    }
}

impl Rows for SpaceRows<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        match self {
            SpaceRows::Single(r) => r.row(id),
            SpaceRows::Multi(r) => r.row(id),
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        match self {
            SpaceRows::Single(r) => r.prefetch(id, max_lines),
            SpaceRows::Multi(r) => r.prefetch(id, max_lines),
        }
    }

    #[inline(always)]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        match self {
            SpaceRows::Single(r) => r.distance(kernel, query, row),
            SpaceRows::Multi(r) => r.distance(kernel, query, row),
        }
    }
}

impl IndexedSegment {
    /// The vectors of space `space` as graph rows.
    pub(crate) fn rows(&self, space: usize) -> SpaceRows<'_> {
        let (vectors, dim) = (&self.vectors[space][..], self.dims[space]);
        match &self.ends[space] {
            None => SpaceRows::Single(Flat { vectors, dim }),
            Some(ends) => SpaceRows::Multi(Multi { vectors, ends, dim }),
        }
    }

    /// Encodes the vectors of every quantized space, and the sign codes of every dot-product
    /// space of at least [`signs::MIN_DIM`] dimensions (on the current rayon pool).
    pub fn quantize(&mut self, spaces: &[VectorSpace]) {
        self.signs = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                let dot = space.distance.metric() == Metric::Dot;
                let codes = dot && space.size >= signs::MIN_DIM && !space.multi;
                codes.then(|| SignCodes::new(&self.vectors[i], space.size))
            })
            .collect();
        self.quantized = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                // Multivectors are kept in float32 only.
                let scalar = space.quantization.as_ref().filter(|_| !space.multi)?;
                let metric = space.distance.metric();
                let quantile = scalar.quantile.map(|q| q as f32);
                Some(Quantized::new(
                    &self.vectors[i],
                    space.size,
                    metric,
                    quantile,
                ))
            })
            .collect();
    }

    /// Builds the inverted index of every sparse space (on the current rayon pool).
    pub fn index_sparse(&mut self) {
        use rayon::prelude::*;
        self.inverted = self
            .sparse
            .par_iter()
            .map(|vectors| {
                let all = vectors.iter().enumerate();
                InvertedIndex::build(all.map(|(o, v)| (o as u32, v)))
            })
            .collect();
    }

    /// Sign codes of space `space`, if it has them.
    pub fn signs(&self, space: usize) -> Option<&SignCodes> {
        self.signs.get(space)?.as_ref()
    }

    /// Int8 codes of space `space`, if it is quantized.
    pub fn quantized(&self, space: usize) -> Option<&Quantized> {
        self.quantized.get(space)?.as_ref()
    }
}
