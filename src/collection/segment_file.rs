//! The sealed segment file: everything of an [`IndexedSegment`] but payloads and sparse
//! vectors (which live in RocksDB's point records), in format
//! [`SEGMENT_FORMAT`](super::segment::SEGMENT_FORMAT).
//!
//! Layout (little-endian): `u64 points | u32 spaces | per point: 17-byte id key, u64 version |
//! per space: u32 dim, vectors, absence (u8 0 = every point has the vector, 1 = a bitset of
//! ⌈points/64⌉ u64 follows, bit set where the point lacks it; not in format 1), u64 graph
//! length, graph`. Vectors are `points × dim × f32`; in a multivector space (from format 3, and
//! known from the collection's configuration) `u64 floats, floats × f32, points × u64 end`,
//! where each point's vectors end. From format 4 the vectors of a single-vector space are
//! preceded by a `u8` element type (0 float32, 1 float16, 2 uint8) and stored in it.

use std::sync::Arc;

use super::segment::IndexedSegment;
use crate::bitset::Bitset;
use crate::bytes::Reader;
use crate::error::Corrupt;
use crate::index::hnsw::Graph;
use crate::index::typed::{Datatype, Elements};
use crate::point_id::PointId;

impl IndexedSegment {
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
            match self.ends[space] {
                Some(_) => out.extend_from_slice(&(self.vectors[space].len() as u64).to_le_bytes()),
                None => out.push(self.vectors[space].datatype().tag()),
            }
            self.vectors[space].write(&mut out);
            for end in self.ends[space].iter().flatten() {
                out.extend_from_slice(&(*end as u64).to_le_bytes());
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
        multi: &[bool],
        names: Arc<[String]>,
        sparse_names: Arc<[String]>,
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
        let mut ends = Vec::with_capacity(spaces);
        for (&dim, &multi) in expected_dims.iter().zip(multi) {
            let stored = r.u32()? as usize;
            if stored != dim {
                return corrupt!("segment vector size {stored}, the collection's {dim}");
            }
            if multi && format < 3 {
                return corrupt!("a multivector space in a segment of format {format}");
            }
            let (data, space_ends) = match multi {
                false => {
                    let datatype = match format {
                        ..=3 => Datatype::Float32,
                        _ => Datatype::from_tag(r.u8()?)?,
                    };
                    let n = len.checked_mul(dim).ok_or("vector data overflows")?;
                    (Elements::read(&mut r, datatype, n)?, None)
                }
                true => decode_multi(&mut r, len, dim)?,
            };
            vectors.push(data);
            ends.push(space_ends);
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
            ends,
            dims: expected_dims.into(),
            names,
            sparse_names,
            sparse: Vec::new(),
            inverted: Vec::new(),
            absent,
            graphs,
            quantized: Vec::new(),
            signs: Vec::new(),
        })
    }
}

/// Reads a space's absence flag and, when set, its bitset of `len` bits.
/// A multivector space's floats and per-point ends, checked to be ascending whole vectors
/// within the floats.
fn decode_multi(
    r: &mut Reader,
    len: usize,
    dim: usize,
) -> Result<(Elements, Option<Vec<usize>>), Corrupt> {
    let floats = usize::try_from(r.u64()?).map_err(|_| "vector data overflows")?;
    let data = Elements::F32(r.f32s(floats)?);
    let mut ends = Vec::with_capacity(len);
    let mut last = 0;
    for _ in 0..len {
        let end = usize::try_from(r.u64()?).map_err(|_| "vector end overflows")?;
        if end < last || end > floats || (end - last) % dim.max(1) != 0 {
            return corrupt!("bad multivector end {end} after {last} of {floats} floats");
        }
        ends.push(end);
        last = end;
    }
    Ok((data, Some(ends)))
}

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
