//! Byte-level primitives of every binary format vecdb writes (point records, segment, graph,
//! index and tenant files): little-endian integers, length-prefixed bytes, and a reader that
//! fails instead of panicking when the input is short or damaged.

use crate::error::Corrupt;

/// Appends `n` as a little-endian u32 (counts and lengths of the derived files).
pub fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Appends `bytes` after their length as a u32: what [`Reader::prefixed`] reads.
pub fn put_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A cursor over bytes that fails instead of panicking when the input runs short.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.bytes.len() < n {
            return corrupt!("truncated: wanted {n} bytes, {} left", self.bytes.len());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `count` fixed-size items of `W` bytes each.
    pub fn take_array<const W: usize>(
        &mut self,
        count: usize,
    ) -> Result<impl Iterator<Item = [u8; W]> + 'a, Corrupt> {
        let len = count.checked_mul(W).ok_or("length overflow")?;
        Ok(self.take(len)?.chunks_exact(W).map(|c| {
            let mut a = [0u8; W];
            a.copy_from_slice(c);
            a
        }))
    }

    pub fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Corrupt> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, Corrupt> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// `n` little-endian f32 values.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>, Corrupt> {
        let len = n.checked_mul(4).ok_or("vector length overflows")?;
        let bytes = self.take(len)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A u32 count of items at least `min_bytes` long each, refused when the bytes left
    /// cannot hold them (so a damaged count cannot make a huge allocation).
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, Corrupt> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.remaining() {
            return corrupt!("implausible count {n}");
        }
        Ok(n)
    }

    /// Bytes written by [`put_prefixed`].
    pub fn prefixed(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// A UTF-8 string written by [`put_prefixed`].
    pub fn string(&mut self) -> Result<String, Corrupt> {
        let bytes = self.prefixed()?;
        String::from_utf8(bytes.to_vec()).map_err(|e| Corrupt(e.to_string()))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
