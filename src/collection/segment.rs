//! Segments: the immutable units a snapshot is made of.
//!
//! - [`PlainSegment`]: append-only chunks. The writer appends to the last chunk through
//!   `Arc::make_mut`, so a published snapshot keeps its own copy of that one chunk and shares
//!   every full chunk. While indexing is on, the writer also inserts each point into a
//!   [`LiveGraph`] per vector space before it publishes, so the points are searched through
//!   HNSW from the moment they are visible; once the segment is full it is sealed as it is.
//! - [`IndexedSegment`]: contiguous vectors plus one HNSW graph per vector space; never mutated.
//!
//! Deletions never touch a segment: they are tombstones in the snapshot ([`crate::bitset::Bitset`]).

use std::borrow::Cow;
use std::sync::Arc;

use super::config::VectorSpace;
pub use super::indexed::IndexedSegment;
pub(crate) use super::indexed::SpaceRows;
use crate::bitset::Bitset;
use crate::index::distance::{max_sim, Kernel};
use crate::index::hnsw::{prefetch_row, Accept, Graph, HnswParams, LiveGraph, Rows};
use crate::index::sparse::SparseVector;
use crate::index::typed::{Elements, Kernels};
use crate::point_id::PointId;
use crate::storage::codec::{Payload, StoredPoint};

/// Points per chunk of a plain segment: small enough that copying the tail chunk per publish is cheap.
pub const CHUNK: usize = 64;

/// Version of the sealed segment file format: 4 stores vectors in their space's datatype; 3 may
/// hold multivector spaces; 2 records which points lack a vector; 1 (read as "every point has
/// every vector") did not.
pub const SEGMENT_FORMAT: u32 = 4;

/// Segment file formats this build reads.
pub const SEGMENT_FORMATS_READ: [u32; 4] = [1, 2, 3, 4];

/// Up to [`CHUNK`] points of a plain segment, stored column-wise.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    ids: Vec<PointId>,
    versions: Vec<u64>,
    payloads: Vec<Payload>,
    /// One contiguous `len × dim` array per vector space; a missing vector is zeros. In a
    /// multivector space, each point's vectors one after another (none where it lacks them).
    vectors: Vec<Vec<f32>>,
    /// Per multivector space, where each point's vectors end in `vectors` (empty elsewhere).
    ends: Vec<Vec<u32>>,
    /// Per vector space, bit `i` set when point `i` lacks that vector ([`CHUNK`] is 64).
    absent: Vec<u64>,
    /// Per sparse space, each point's sparse vector (empty where it lacks one).
    sparse: Vec<Vec<SparseVector>>,
}

/// An append-only segment, searched by exact scan or through its live graphs.
#[derive(Clone, Debug)]
pub struct PlainSegment {
    chunks: Vec<Arc<Chunk>>,
    dims: Arc<[usize]>,
    /// Per vector space, whether it holds multivectors.
    multi: Arc<[bool]>,
    /// Vector space names, for `has_vector` conditions.
    names: Arc<[String]>,
    /// Sparse vector space names.
    sparse_names: Arc<[String]>,
    len: usize,
    /// One graph per vector space, grown by the writer (`None`: the segment is only scanned).
    /// Shared by every snapshot; each searches only the nodes it holds.
    live: Option<Arc<[LiveGraph]>>,
    /// Offsets below this are in the live graphs, whose entry points were these then.
    indexed: usize,
    entries: Arc<[Option<(u32, usize)>]>,
}

/// The vectors of one space of a plain segment, as graph rows.
struct PlainRows<'a> {
    segment: &'a PlainSegment,
    space: usize,
    /// Whether the space holds multivectors.
    multi: bool,
}

impl<'a> PlainRows<'a> {
    fn new(segment: &'a PlainSegment, space: usize) -> PlainRows<'a> {
        let multi = segment.multi[space];
        PlainRows {
            segment,
            space,
            multi,
        }
    }
}

impl Chunk {
    /// Where point `i`'s vector of space `space` lies in `vectors[space]`.
    #[inline]
    fn span(&self, space: usize, i: usize, dim: usize, multi: bool) -> std::ops::Range<usize> {
        match multi {
            false => i * dim..(i + 1) * dim,
            true => {
                let ends = &self.ends[space];
                let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                start..ends[i] as usize
            }
        }
    }
}

impl Rows for PlainRows<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.segment.row(self.space, id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        if let Some(chunk) = self.segment.chunks.get(id as usize / CHUNK) {
            let d = self.segment.dims[self.space];
            let start = chunk
                .span(self.space, id as usize % CHUNK, d, self.multi)
                .start;
            let row = chunk.vectors[self.space].as_ptr().wrapping_add(start);
            crate::index::hnsw::prefetch_row(row as *const u8, d * 4, max_lines);
        }
    }

    fn present(&self, id: u32) -> bool {
        let (chunk, i) = self.segment.at(id);
        chunk.absent[self.space] & (1 << i) == 0
    }

    #[inline(always)]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        match self.multi {
            false => kernel(query, row),
            true => max_sim(kernel, self.segment.dims[self.space], query, row),
        }
    }
}

impl PlainSegment {
    /// An empty segment for vector spaces of the given dimensions, kinds (multivector or not)
    /// and names, and the sparse spaces `sparse_names`.
    pub fn new(
        dims: Arc<[usize]>,
        multi: Arc<[bool]>,
        names: Arc<[String]>,
        sparse_names: Arc<[String]>,
    ) -> PlainSegment {
        PlainSegment {
            chunks: Vec::new(),
            dims,
            multi,
            names,
            sparse_names,
            len: 0,
            live: None,
            indexed: 0,
            entries: Arc::from([]),
        }
    }

    /// Number of offsets (live and deleted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment holds no offsets.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the segment has live graphs.
    pub fn is_indexed(&self) -> bool {
        self.live.is_some()
    }

    /// Offsets the live graphs can hold (0 without graphs; unbounded when indexing is on in a
    /// collection without dense vectors, which has no graph to fill).
    pub fn capacity(&self) -> usize {
        match &self.live {
            None => 0,
            Some(graphs) => graphs.first().map_or(usize::MAX, LiveGraph::capacity),
        }
    }

    /// Starts live graphs for up to `capacity` points, one per space, and inserts the points
    /// already here. `seed` varies the level draws between segments.
    pub fn start_index(&mut self, spaces: &[VectorSpace], capacity: usize, seed: u64) {
        let graphs = spaces.iter().enumerate().map(|(i, space)| {
            let params = HnswParams {
                m: space.hnsw.m,
                ef_construct: space.hnsw.ef_construct,
                seed: seed ^ (i as u64) << 32,
            };
            LiveGraph::new(space.metric(), params, capacity.max(self.len))
        });
        self.live = Some(graphs.collect());
        self.indexed = 0;
        self.index_new();
    }

    /// Drops the live graphs: the segment is scanned from now on.
    pub fn stop_index(&mut self) {
        self.live = None;
        self.indexed = 0;
        self.entries = Arc::from([]);
    }

    /// Inserts the points appended since the last call into the live graphs, in parallel on
    /// the current rayon pool.
    pub fn index_new(&mut self) {
        let Some(graphs) = &self.live else {
            return;
        };
        if self.indexed == self.len {
            return;
        }
        for (space, graph) in graphs.iter().enumerate() {
            graph.insert_all(&PlainRows::new(self, space), self.indexed..self.len);
        }
        self.indexed = self.len.min(self.capacity());
        self.entries = graphs.iter().map(LiveGraph::entry).collect();
    }

    /// HNSW search of space `space` over the live graph, when every point is in it.
    pub fn search_live(
        &self,
        space: usize,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Option<Vec<(u32, f32)>> {
        let graph = self.live.as_ref()?.get(space)?;
        if self.indexed < self.len {
            return None;
        }
        let Some(entry) = self.entries.get(space).copied().flatten() else {
            return Some(Vec::new());
        };
        let rows = PlainRows::new(self, space);
        Some(graph.search(&rows, self.indexed, entry, query, k, ef, accept))
    }

    /// The segment as an indexed one, its live graphs frozen, when every point is in them.
    pub fn seal(&self, spaces: &[VectorSpace]) -> Option<IndexedSegment> {
        let graphs = self.live.as_ref().filter(|_| self.indexed == self.len)?;
        let mut segment = IndexedSegment {
            ids: self
                .chunks
                .iter()
                .flat_map(|c| c.ids.iter().copied())
                .collect(),
            versions: self
                .chunks
                .iter()
                .flat_map(|c| c.versions.iter().copied())
                .collect(),
            payloads: self
                .chunks
                .iter()
                .flat_map(|c| c.payloads.iter().cloned())
                .collect(),
            vectors: (0..self.dims.len())
                .map(|s| {
                    let floats = self
                        .chunks
                        .iter()
                        .flat_map(|c| c.vectors[s].iter().copied());
                    Elements::F32(floats.collect())
                })
                .collect(),
            ends: (0..self.dims.len()).map(|s| self.ends(s)).collect(),
            absent: (0..self.dims.len()).map(|s| self.absent(s)).collect(),
            sparse: (0..self.sparse_names.len())
                .map(|s| {
                    self.chunks
                        .iter()
                        .flat_map(|c| c.sparse[s].iter().cloned())
                        .collect()
                })
                .collect(),
            inverted: Vec::new(),
            dims: self.dims.clone(),
            names: self.names.clone(),
            sparse_names: self.sparse_names.clone(),
            graphs: graphs.iter().map(|g| g.freeze(self.len)).collect(),
            quantized: Vec::new(),
            signs: Vec::new(),
        };
        segment.quantize(spaces);
        segment.narrow(spaces);
        segment.index_sparse();
        Some(segment)
    }

    /// Appends a point and returns its offset. `point.vectors` has one entry per space, of the
    /// right size or empty where the point lacks that vector; `point.sparse` one per sparse
    /// space or none.
    pub fn push(&mut self, id: PointId, point: StoredPoint) -> u32 {
        let StoredPoint {
            version,
            vectors,
            mut sparse,
            payload,
        } = point;
        if self.len.is_multiple_of(CHUNK) {
            let chunk = Chunk {
                vectors: self
                    .dims
                    .iter()
                    .map(|d| Vec::with_capacity(CHUNK * d))
                    .collect(),
                ends: vec![Vec::new(); self.dims.len()],
                absent: vec![0; self.dims.len()],
                sparse: vec![Vec::with_capacity(CHUNK); self.sparse_names.len()],
                ..Chunk::default()
            };
            self.chunks.push(Arc::new(chunk));
        }
        let tail = self.chunks.last_mut().expect("a chunk was just ensured");
        let chunk = Arc::make_mut(tail);
        chunk.ids.push(id);
        chunk.versions.push(version);
        chunk.payloads.push(payload);
        let bit = 1 << (self.len % CHUNK);
        sparse.resize(self.sparse_names.len(), SparseVector::default());
        for (store, v) in chunk.sparse.iter_mut().zip(sparse) {
            store.push(v);
        }
        for (s, (store, v)) in chunk.vectors.iter_mut().zip(&vectors).enumerate() {
            if v.is_empty() {
                chunk.absent[s] |= bit;
            }
            match (self.multi[s], v.is_empty()) {
                (false, true) => store.resize(store.len() + self.dims[s], 0.0),
                _ => store.extend_from_slice(v),
            }
            if self.multi[s] {
                chunk.ends[s].push(store.len() as u32);
            }
        }
        self.len += 1;
        (self.len - 1) as u32
    }

    /// For a multivector space, where each point's vectors end in the sealed array.
    fn ends(&self, space: usize) -> Option<Vec<usize>> {
        if !self.multi[space] {
            return None;
        }
        let mut ends = Vec::with_capacity(self.len);
        let mut base = 0;
        for chunk in &self.chunks {
            ends.extend(chunk.ends[space].iter().map(|&e| base + e as usize));
            base += chunk.vectors[space].len();
        }
        Some(ends)
    }

    /// The points lacking the vector of space `space`, if any does.
    fn absent(&self, space: usize) -> Option<Bitset> {
        let words: Vec<u64> = self.chunks.iter().map(|c| c.absent[space]).collect();
        words
            .iter()
            .any(|&w| w != 0)
            .then(|| Bitset::from_words(words))
    }

    fn at(&self, offset: u32) -> (&Chunk, usize) {
        let o = offset as usize;
        (&self.chunks[o / CHUNK], o % CHUNK)
    }

    /// The vector of space `space` of the point at `offset`.
    #[inline]
    fn row(&self, space: usize, offset: u32) -> &[f32] {
        let (chunk, i) = self.at(offset);
        let span = chunk.span(space, i, self.dims[space], self.multi[space]);
        &chunk.vectors[space][span]
    }
}

/// The data of a segment, either kind.
#[derive(Debug)]
pub enum SegmentData {
    Plain(PlainSegment),
    Indexed(IndexedSegment),
}

impl SegmentData {
    /// The plain segment inside; only called on the writer's append segment.
    pub fn plain_mut(&mut self) -> &mut PlainSegment {
        match self {
            SegmentData::Plain(p) => p,
            SegmentData::Indexed(_) => unreachable!("the append segment is always plain"),
        }
    }

    /// A copy sharing all chunks (cheap: one `Arc` per chunk); indexed data is never cloned.
    pub fn clone_plain(&self) -> SegmentData {
        match self {
            SegmentData::Plain(p) => SegmentData::Plain(p.clone()),
            SegmentData::Indexed(_) => unreachable!("only plain segments are copied"),
        }
    }

    /// Number of offsets (live and deleted).
    pub fn len(&self) -> usize {
        match self {
            SegmentData::Plain(p) => p.len(),
            SegmentData::Indexed(s) => s.ids.len(),
        }
    }

    /// Whether the segment holds no offsets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id of the point at `offset`.
    pub fn id(&self, offset: u32) -> PointId {
        match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                c.ids[i]
            }
            SegmentData::Indexed(s) => s.ids[offset as usize],
        }
    }

    /// Version (LSN of the producing write) of the point at `offset`.
    pub fn version(&self, offset: u32) -> u64 {
        match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                c.versions[i]
            }
            SegmentData::Indexed(s) => s.versions[offset as usize],
        }
    }

    /// Payload of the point at `offset`.
    pub fn payload(&self, offset: u32) -> &Payload {
        match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                &c.payloads[i]
            }
            SegmentData::Indexed(s) => &s.payloads[offset as usize],
        }
    }

    /// The sparse vector of sparse space `space` of the point at `offset` (empty where the
    /// point lacks it).
    pub fn sparse(&self, space: usize, offset: u32) -> &SparseVector {
        static NONE: SparseVector = SparseVector::EMPTY;
        let found = match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                c.sparse.get(space).and_then(|s| s.get(i))
            }
            SegmentData::Indexed(s) => s.sparse.get(space).and_then(|s| s.get(offset as usize)),
        };
        found.unwrap_or(&NONE)
    }

    /// Every sparse vector of the point at `offset`, one per sparse space.
    pub fn sparse_vectors(&self, offset: u32) -> Vec<SparseVector> {
        let spaces = self.sparse_names().len();
        (0..spaces)
            .map(|s| self.sparse(s, offset).clone())
            .collect()
    }

    /// Sparse vector space names.
    pub fn sparse_names(&self) -> &[String] {
        match self {
            SegmentData::Plain(p) => &p.sparse_names,
            SegmentData::Indexed(s) => &s.sparse_names,
        }
    }

    /// Whether the point at `offset` has the vector of space `space`.
    pub fn has_vector(&self, space: usize, offset: u32) -> bool {
        match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                c.absent.get(space).is_some_and(|w| w & (1 << i) == 0)
            }
            SegmentData::Indexed(s) => s
                .absent
                .get(space)
                .is_some_and(|a| a.as_ref().is_none_or(|a| !a.get(offset as usize))),
        }
    }

    /// Whether the point at `offset` has the dense or sparse vector named `name`.
    pub fn has_vector_named(&self, name: &str, offset: u32) -> bool {
        let names = match self {
            SegmentData::Plain(p) => &p.names,
            SegmentData::Indexed(s) => &s.names,
        };
        if let Some(space) = names.iter().position(|n| n == name) {
            return self.has_vector(space, offset);
        }
        let sparse = self.sparse_names().iter().position(|n| n == name);
        sparse.is_some_and(|s| !self.sparse(s, offset).is_empty())
    }

    /// The points lacking the vector of space `space`, if any does.
    pub fn absent(&self, space: usize) -> Option<std::borrow::Cow<'_, Bitset>> {
        match self {
            SegmentData::Plain(p) => p.absent(space).map(std::borrow::Cow::Owned),
            SegmentData::Indexed(s) => s
                .absent
                .get(space)?
                .as_ref()
                .map(std::borrow::Cow::Borrowed),
        }
    }

    /// Vector of space `space` of the point at `offset` as float32 (zeros where the point
    /// lacks it: see [`SegmentData::has_vector`]); widened when stored narrower.
    pub fn vector(&self, space: usize, offset: u32) -> Cow<'_, [f32]> {
        match self {
            SegmentData::Plain(p) => Cow::Borrowed(p.row(space, offset)),
            SegmentData::Indexed(s) => s.row(space, offset),
        }
    }

    /// Distance under `kernels` from `query` to the point at `offset` in space `space` (late
    /// interaction in a multivector space), on the stored elements.
    #[inline]
    pub fn distance(&self, space: usize, kernels: &Kernels, query: &[f32], offset: u32) -> f32 {
        match self {
            SegmentData::Plain(p) => match p.multi[space] {
                false => (kernels.float)(query, p.row(space, offset)),
                true => max_sim(kernels.float, p.dims[space], query, p.row(space, offset)),
            },
            SegmentData::Indexed(s) => s.distance(space, kernels, query, offset),
        }
    }

    /// Starts pulling the vector of space `space` of the point at `offset` into cache.
    #[inline]
    pub fn prefetch(&self, space: usize, offset: u32) {
        const LINES: usize = 32;
        match self {
            SegmentData::Plain(p) => PlainRows::new(p, space).prefetch(offset, LINES),
            SegmentData::Indexed(s) => {
                let (store, span) = (&s.vectors[space], s.span(space, offset));
                let bytes = span.len() * store.datatype().bytes();
                prefetch_row(store.addr(span.start), bytes, LINES);
            }
        }
    }

    /// Every vector of the point at `offset`, one per space, empty where it lacks one.
    pub fn vectors(&self, offset: u32) -> Vec<Vec<f32>> {
        let spaces = match self {
            SegmentData::Plain(p) => p.dims.len(),
            SegmentData::Indexed(s) => s.dims.len(),
        };
        (0..spaces)
            .map(|s| match self.has_vector(s, offset) {
                true => self.vector(s, offset).into_owned(),
                false => Vec::new(),
            })
            .collect()
    }

    /// The HNSW graph of a space, when the segment is indexed.
    pub fn graph(&self, space: usize) -> Option<&Graph> {
        match self {
            SegmentData::Plain(_) => None,
            SegmentData::Indexed(s) => s.graphs.get(space),
        }
    }
}
