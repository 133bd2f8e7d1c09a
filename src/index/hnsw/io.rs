//! Stable little-endian serialisation of [`Graph`].
//!
//! Layout (version 1), all integers little-endian:
//! ```text
//! magic "VDBHNSW\0" | version u32 | m u32 | n u32 | entry u32 | max_level u32
//! levels    n × u8
//! counts0   n × u16
//! layer0    sum(counts0) × u32          (only the used slots)
//! upper     sum(levels) × (1 + m) × u32 (per node, per layer: count, then m slots)
//! checksum  u64 over every byte before it
//! ```

use super::{Graph, MAX_M};
use crate::bytes::{put_u32, Reader};
use crate::error::Corrupt;

const MAGIC: &[u8; 8] = b"VDBHNSW\0";
const VERSION: u32 = 1;

/// Word-at-a-time multiplicative hash. Every step is a bijection of the state for a fixed word,
/// so any single corrupted word always changes the result.
pub(super) fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for w in words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^ (h >> 29)
}

impl Graph {
    /// Serialise to a stable little-endian byte format starting with a magic and a format version.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(MAGIC);
        for v in [VERSION, self.m as u32, self.len() as u32, self.entry] {
            put_u32(out, v as usize);
        }
        put_u32(out, self.max_level);
        out.extend_from_slice(&self.levels);
        for &c in &self.counts0 {
            out.extend_from_slice(&c.to_le_bytes());
        }
        for node in 0..self.len() {
            let start = node * self.m0;
            for &nb in &self.layer0[start..start + self.counts0[node] as usize] {
                put_u32(out, nb as usize);
            }
        }
        for &v in &self.upper {
            put_u32(out, v as usize);
        }
        let sum = checksum(&out[start..]);
        out.extend_from_slice(&sum.to_le_bytes());
    }

    /// Parse what write_to wrote; validates every neighbour index < len and all lengths;
    /// returns Err(String) on any corruption, never panics.
    pub fn read_from(bytes: &[u8]) -> Result<Graph, Corrupt> {
        let body_len = bytes.len().checked_sub(8).ok_or("truncated: no checksum")?;
        let (body, sum) = bytes.split_at(body_len);
        let mut r = Reader::new(body);
        if r.take(8)? != MAGIC {
            return Err("not an HNSW graph (bad magic)".into());
        }
        let version = r.u32()?;
        if version != VERSION {
            return corrupt!("unsupported HNSW format version {version}");
        }
        let mut stored = [0u8; 8];
        stored.copy_from_slice(sum);
        if u64::from_le_bytes(stored) != checksum(body) {
            return Err("checksum mismatch".into());
        }
        let graph = parse_body(&mut r)?;
        if !r.is_empty() {
            return corrupt!("{} unexpected trailing bytes", r.remaining());
        }
        graph.validate()?;
        Ok(graph)
    }
}

/// Parses everything after the version; only lengths are checked here, links in `validate`.
fn parse_body(r: &mut Reader) -> Result<Graph, Corrupt> {
    let m = r.u32()? as usize;
    if !(2..=MAX_M).contains(&m) {
        return corrupt!("link capacity m={m} out of range");
    }
    let m0 = 2 * m;
    let n = r.u32()? as usize;
    let entry = r.u32()?;
    let max_level = r.u32()? as usize;
    let levels = r.take(n)?.to_vec();
    let counts0: Vec<u16> = r.take_array::<2>(n)?.map(u16::from_le_bytes).collect();
    // `take` checked that n is backed by input bytes; the checksum already vouched for m.
    let slots = n.checked_mul(m0).ok_or("layer-0 size overflows")?;
    let mut layer0 = vec![0u32; slots];
    for (node, &count) in counts0.iter().enumerate() {
        let count = count as usize;
        if count > m0 {
            return corrupt!("node {node} has {count} layer-0 links, max {m0}");
        }
        let row = &mut layer0[node * m0..node * m0 + count];
        for (slot, b) in row.iter_mut().zip(r.take_array::<4>(count)?) {
            *slot = u32::from_le_bytes(b);
        }
    }
    let mut upper_start = Vec::with_capacity(n + 1);
    let mut total = 0usize;
    for &level in &levels {
        upper_start.push(total);
        total += level as usize * (m + 1);
    }
    upper_start.push(total);
    let upper = r.take_array::<4>(total)?.map(u32::from_le_bytes).collect();
    Ok(Graph {
        m,
        m0,
        layer0,
        counts0,
        levels,
        upper_start,
        upper,
        entry,
        max_level,
    })
}
