//! [`IndexedSegment`]: a sealed segment's contiguous vectors, one HNSW graph per vector space,
//! inverted indexes of its sparse vectors and the codes made from its vectors; never mutated.

use std::borrow::Cow;
use std::sync::Arc;

use super::config::{Datatype, VectorSpace};
use crate::bitset::Bitset;
use crate::index::distance::Kernel;
use crate::index::hnsw::{multi_span, prefetch_row, Flat, Graph, Multi, Rows, Scorer};
use crate::index::quant::Quantized;
use crate::index::signs::{self, SignCodes};
use crate::index::sparse::{InvertedIndex, SparseVector};
use crate::index::typed::{Elements, Kernels};
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
    /// Per vector space: `len × dim` elements in the space's datatype (float32 while the
    /// segment is built, until [`IndexedSegment::narrow`]); in a multivector space (kept in
    /// float32), each point's vectors one after another.
    pub vectors: Vec<Elements>,
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

impl<'a> SpaceRows<'a> {
    /// Float rows of one space: `dim` each, or multivectors ending at `ends`.
    pub fn new(vectors: &'a [f32], ends: Option<&'a [usize]>, dim: usize) -> SpaceRows<'a> {
        match ends {
            None => SpaceRows::Single(Flat { vectors, dim }),
            Some(ends) => SpaceRows::Multi(Multi { vectors, ends, dim }),
        }
    }
}

/// How a graph walk over a sealed segment's stored rows scores a node.
pub(crate) enum Measure<'a> {
    /// The kernels' distance from a float32 query.
    Kernels(Kernels, &'a [f32]),
    /// A distance the caller computes from the row (widened to float32).
    Fn(&'a dyn Fn(&[f32]) -> f32),
}

/// A graph walk's view of one space of a sealed segment, in whatever datatype it is stored:
/// node `i` is offset `i`, or `picked[i]` for a graph over some of the points.
pub(crate) struct SpaceScorer<'a> {
    pub segment: &'a IndexedSegment,
    pub space: usize,
    pub picked: Option<&'a [u32]>,
    pub measure: Measure<'a>,
}

impl SpaceScorer<'_> {
    #[inline(always)]
    fn offset(&self, id: u32) -> u32 {
        self.picked.map_or(id, |p| p[id as usize])
    }
}

impl Scorer for SpaceScorer<'_> {
    #[inline]
    fn dist(&self, id: u32) -> f32 {
        let (seg, space, offset) = (self.segment, self.space, self.offset(id));
        match self.measure {
            Measure::Kernels(k, query) => seg.distance(space, &k, query, offset),
            Measure::Fn(f) => seg.vectors[space].with_floats(seg.span(space, offset), f),
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        if self.picked.is_some_and(|p| p.len() <= id as usize) {
            return;
        }
        let (seg, space) = (self.segment, self.space);
        let span = seg.span(space, self.offset(id));
        let store = &seg.vectors[space];
        let bytes = seg.dims[space] * store.datatype().bytes();
        prefetch_row(store.addr(span.start), bytes, max_lines);
    }
}

impl IndexedSegment {
    /// Every element of space `space` as float32: borrowed when stored so, else widened.
    pub fn floats(&self, space: usize) -> Cow<'_, [f32]> {
        match self.vectors[space].as_f32() {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(self.vectors[space].to_f32()),
        }
    }

    /// Where the point at `offset` has its vector of space `space` in `vectors[space]`.
    #[inline]
    pub fn span(&self, space: usize, offset: u32) -> std::ops::Range<usize> {
        let (i, dim) = (offset as usize, self.dims[space]);
        match &self.ends[space] {
            None => i * dim..(i + 1) * dim,
            Some(ends) => multi_span(ends, i),
        }
    }

    /// The vector of space `space` of the point at `offset`, as float32.
    pub fn row(&self, space: usize, offset: u32) -> Cow<'_, [f32]> {
        let span = self.span(space, offset);
        match self.vectors[space].as_f32() {
            Some(v) => Cow::Borrowed(&v[span]),
            None => Cow::Owned(self.vectors[space].widen(span)),
        }
    }

    /// Distance under `kernels` from `query` to the point at `offset` in space `space`
    /// (late interaction in a multivector space), computed on the stored elements.
    #[inline]
    pub fn distance(&self, space: usize, kernels: &Kernels, query: &[f32], offset: u32) -> f32 {
        let multi = self.ends[space].as_ref().map(|_| self.dims[space]);
        self.vectors[space].distance(kernels, query, self.span(space, offset), multi)
    }

    /// Stores every single-vector space in its datatype; float32 until now, so that graphs and
    /// codes were made from borrowed rows. Multivectors stay float32. Float32 arrays, grown
    /// while points were gathered, give back their spare capacity.
    pub fn narrow(&mut self, spaces: &[VectorSpace]) {
        for (store, space) in self.vectors.iter_mut().zip(spaces) {
            if space.multi || store.datatype() == space.datatype {
                store.shrink_to_fit();
            } else {
                *store = Elements::new(space.datatype, std::mem::take(store).into_f32());
            }
        }
    }

    /// Encodes the vectors of every quantized space, and the sign codes of every dot-product
    /// space of at least [`signs::MIN_DIM`] dimensions (on the current rayon pool).
    pub fn quantize(&mut self, spaces: &[VectorSpace]) {
        self.signs = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                let dot = space.metric() == Metric::Dot;
                let codes = dot && space.size >= signs::MIN_DIM && !space.multi;
                codes.then(|| SignCodes::new(&self.floats(i), space.size))
            })
            .collect();
        self.quantized = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                // Multivectors are not quantized, nor uint8 vectors: they are bytes already.
                let bytes = space.datatype == Datatype::Uint8;
                let scalar = space
                    .quantization
                    .as_ref()
                    .filter(|_| !space.multi && !bytes)?;
                let metric = space.metric();
                let quantile = scalar.quantile.map(|q| q as f32);
                Some(Quantized::new(
                    &self.floats(i),
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
