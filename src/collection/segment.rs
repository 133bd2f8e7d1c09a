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

use crate::error::Corrupt;
use std::sync::Arc;

use super::config::VectorSpace;
use crate::bitset::Bitset;
use crate::bytes::Reader;
use crate::index::hnsw::{Accept, Graph, HnswParams, LiveGraph, Rows};
use crate::index::quant::Quantized;
use crate::index::signs::{self, SignCodes};
use crate::index::Metric;
use crate::point_id::PointId;
use crate::storage::codec::Payload;

/// Points per chunk of a plain segment: small enough that copying the tail chunk per publish is cheap.
pub const CHUNK: usize = 64;

/// Version of the sealed segment file format: 2 records which points lack a vector; 1 (read
/// as "every point has every vector") did not.
pub const SEGMENT_FORMAT: u32 = 2;

/// Segment file formats this build reads.
pub const SEGMENT_FORMATS_READ: [u32; 2] = [1, 2];

/// Up to [`CHUNK`] points of a plain segment, stored column-wise.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    ids: Vec<PointId>,
    versions: Vec<u64>,
    payloads: Vec<Payload>,
    /// One contiguous `len × dim` array per vector space; a missing vector is zeros.
    vectors: Vec<Vec<f32>>,
    /// Per vector space, bit `i` set when point `i` lacks that vector ([`CHUNK`] is 64).
    absent: Vec<u64>,
}

/// An append-only segment, searched by exact scan or through its live graphs.
#[derive(Clone, Debug)]
pub struct PlainSegment {
    chunks: Vec<Arc<Chunk>>,
    dims: Arc<[usize]>,
    /// Vector space names, for `has_vector` conditions.
    names: Arc<[String]>,
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
}

impl Rows for PlainRows<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        let (chunk, i) = self.segment.at(id);
        let d = self.segment.dims[self.space];
        &chunk.vectors[self.space][i * d..(i + 1) * d]
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        if let Some(chunk) = self.segment.chunks.get(id as usize / CHUNK) {
            let d = self.segment.dims[self.space];
            let start = (id as usize % CHUNK) * d;
            let row = chunk.vectors[self.space].as_ptr().wrapping_add(start);
            crate::index::hnsw::prefetch_row(row as *const u8, d * 4, max_lines);
        }
    }

    fn present(&self, id: u32) -> bool {
        let (chunk, i) = self.segment.at(id);
        chunk.absent[self.space] & (1 << i) == 0
    }
}

impl PlainSegment {
    /// An empty segment for vector spaces of the given dimensions and names.
    pub fn new(dims: Arc<[usize]>, names: Arc<[String]>) -> PlainSegment {
        PlainSegment {
            chunks: Vec::new(),
            dims,
            names,
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

    /// Offsets the live graphs can hold (0 without graphs).
    pub fn capacity(&self) -> usize {
        self.live
            .as_ref()
            .and_then(|g| g.first())
            .map_or(0, LiveGraph::capacity)
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
            LiveGraph::new(space.distance.metric(), params, capacity.max(self.len))
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
            let rows = PlainRows {
                segment: self,
                space,
            };
            graph.insert_all(&rows, self.indexed..self.len);
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
        let rows = PlainRows {
            segment: self,
            space,
        };
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
                    self.chunks
                        .iter()
                        .flat_map(|c| c.vectors[s].iter().copied())
                        .collect()
                })
                .collect(),
            absent: (0..self.dims.len()).map(|s| self.absent(s)).collect(),
            dims: self.dims.clone(),
            names: self.names.clone(),
            graphs: graphs.iter().map(|g| g.freeze(self.len)).collect(),
            quantized: Vec::new(),
            signs: Vec::new(),
        };
        segment.quantize(spaces);
        Some(segment)
    }

    /// Appends a point and returns its offset. `vectors` has one entry per space, of the right
    /// size or empty where the point lacks that vector.
    pub fn push(
        &mut self,
        id: PointId,
        version: u64,
        payload: Payload,
        vectors: &[Vec<f32>],
    ) -> u32 {
        if self.len.is_multiple_of(CHUNK) {
            let chunk = Chunk {
                vectors: self
                    .dims
                    .iter()
                    .map(|d| Vec::with_capacity(CHUNK * d))
                    .collect(),
                absent: vec![0; self.dims.len()],
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
        for (s, (store, v)) in chunk.vectors.iter_mut().zip(vectors).enumerate() {
            if v.is_empty() {
                store.resize(store.len() + self.dims[s], 0.0);
                chunk.absent[s] |= bit;
            } else {
                store.extend_from_slice(v);
            }
        }
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Calls `f(offset, vector)` for every point's vector in space `space`, in offset order.
    pub fn for_each_vector(&self, space: usize, mut f: impl FnMut(u32, &[f32])) {
        let dim = self.dims[space];
        for (c, chunk) in self.chunks.iter().enumerate() {
            for (i, v) in chunk.vectors[space].chunks_exact(dim).enumerate() {
                f((c * CHUNK + i) as u32, v);
            }
        }
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
}

/// A sealed segment: contiguous vectors and an HNSW graph per vector space.
#[derive(Debug)]
pub struct IndexedSegment {
    pub ids: Vec<PointId>,
    pub versions: Vec<u64>,
    /// Payloads of live points; a point dead at load time has an empty payload.
    pub payloads: Vec<Payload>,
    /// Per vector space: `len × dim` floats.
    pub vectors: Vec<Vec<f32>>,
    pub dims: Arc<[usize]>,
    /// Vector space names, for `has_vector` conditions.
    pub names: Arc<[String]>,
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

    /// Index of the vector space named `name`.
    pub fn space_named(&self, name: &str) -> Option<usize> {
        let names = match self {
            SegmentData::Plain(p) => &p.names,
            SegmentData::Indexed(s) => &s.names,
        };
        names.iter().position(|n| n == name)
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

    /// Vector of space `space` of the point at `offset` (zeros where the point lacks it: see
    /// [`SegmentData::has_vector`]).
    pub fn vector(&self, space: usize, offset: u32) -> &[f32] {
        match self {
            SegmentData::Plain(p) => {
                let (c, i) = p.at(offset);
                let d = p.dims[space];
                &c.vectors[space][i * d..(i + 1) * d]
            }
            SegmentData::Indexed(s) => {
                let d = s.dims[space];
                let o = offset as usize;
                &s.vectors[space][o * d..(o + 1) * d]
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
                true => self.vector(s, offset).to_vec(),
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

impl IndexedSegment {
    /// Encodes the vectors of every quantized space, and the sign codes of every dot-product
    /// space of at least [`signs::MIN_DIM`] dimensions (on the current rayon pool).
    pub fn quantize(&mut self, spaces: &[VectorSpace]) {
        self.signs = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                let dot = space.distance.metric() == Metric::Dot;
                let codes = dot && space.size >= signs::MIN_DIM;
                codes.then(|| SignCodes::new(&self.vectors[i], space.size))
            })
            .collect();
        self.quantized = spaces
            .iter()
            .enumerate()
            .map(|(i, space)| {
                let scalar = space.quantization.as_ref()?;
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

    /// Sign codes of space `space`, if it has them.
    pub fn signs(&self, space: usize) -> Option<&SignCodes> {
        self.signs.get(space)?.as_ref()
    }

    /// Int8 codes of space `space`, if it is quantized.
    pub fn quantized(&self, space: usize) -> Option<&Quantized> {
        self.quantized.get(space)?.as_ref()
    }

    /// Serialises everything but payloads (which live in RocksDB) for the segment file, in
    /// format [`SEGMENT_FORMAT`].
    pub fn encode(&self) -> Vec<u8> {
        let len = self.ids.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.dims.len() as u32).to_le_bytes());
        for (i, id) in self.ids.iter().enumerate() {
            out.extend_from_slice(&id.to_key());
            out.extend_from_slice(&self.versions[i].to_le_bytes());
        }
        for (space, dim) in self.dims.iter().enumerate() {
            out.extend_from_slice(&(*dim as u32).to_le_bytes());
            for x in &self.vectors[space] {
                out.extend_from_slice(&x.to_le_bytes());
            }
            match &self.absent[space] {
                None => out.push(0),
                Some(absent) => {
                    out.push(1);
                    for w in absent
                        .words()
                        .iter()
                        .chain(std::iter::repeat(&0))
                        .take(len.div_ceil(64))
                    {
                        out.extend_from_slice(&w.to_le_bytes());
                    }
                }
            }
            let mut graph = Vec::new();
            self.graphs[space].write_to(&mut graph);
            out.extend_from_slice(&(graph.len() as u64).to_le_bytes());
            out.extend_from_slice(&graph);
        }
        out
    }

    /// Parses [`IndexedSegment::encode`] output of file format `format`; payloads are left
    /// empty for the caller to fill.
    pub fn decode(
        bytes: &[u8],
        format: u32,
        expected_dims: &[usize],
        names: Arc<[String]>,
    ) -> Result<IndexedSegment, Corrupt> {
        let mut r = Reader::new(bytes);
        let len = usize::try_from(r.u64()?).map_err(|_| "segment length overflows")?;
        let spaces = r.u32()? as usize;
        if spaces != expected_dims.len() {
            return corrupt!(
                "segment has {spaces} vector spaces, the collection {}",
                expected_dims.len()
            );
        }
        if len > bytes.len() / 25 {
            return corrupt!("implausible point count {len}");
        }
        let mut ids = Vec::with_capacity(len);
        let mut versions = Vec::with_capacity(len);
        for _ in 0..len {
            ids.push(PointId::from_key(r.take(17)?).ok_or("bad point id")?);
            versions.push(r.u64()?);
        }
        let mut vectors = Vec::with_capacity(spaces);
        let mut graphs = Vec::with_capacity(spaces);
        let mut absent = Vec::with_capacity(spaces);
        for &dim in expected_dims {
            let stored = r.u32()? as usize;
            if stored != dim {
                return corrupt!("segment vector size {stored}, the collection's {dim}");
            }
            vectors.push(r.f32s(len.checked_mul(dim).ok_or("vector data overflows")?)?);
            absent.push(match format {
                1 => None,
                _ => decode_absent(&mut r, len)?,
            });
            let glen = usize::try_from(r.u64()?).map_err(|_| "graph length overflows")?;
            let graph = Graph::read_from(r.take(glen)?)?;
            if graph.len() != len {
                return corrupt!("graph has {} nodes, segment {len} points", graph.len());
            }
            graphs.push(graph);
        }
        if !r.is_empty() {
            return Err("trailing bytes after segment".into());
        }
        Ok(IndexedSegment {
            ids,
            versions,
            payloads: Vec::new(),
            vectors,
            dims: expected_dims.into(),
            names,
            absent,
            graphs,
            quantized: Vec::new(),
            signs: Vec::new(),
        })
    }
}

/// Reads a space's absence flag and, when set, its bitset of `len` bits.
fn decode_absent(r: &mut Reader, len: usize) -> Result<Option<Bitset>, Corrupt> {
    match r.u8()? {
        0 => Ok(None),
        1 => {
            let words = (0..len.div_ceil(64))
                .map(|_| r.u64())
                .collect::<Result<Vec<u64>, Corrupt>>()?;
            Ok(Some(Bitset::from_words(words)))
        }
        flag => corrupt!("bad absence flag {flag}"),
    }
}
