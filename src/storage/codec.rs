//! Binary encoding of point records as stored in the `points` column family.
//!
//! Layout (little-endian): `u8 codec version (1) | u64 point version (LSN) | u32 vector count |
//! per vector: u32 dim, dim × f32 | u32 payload length | payload as JSON`.
//! Decoding validates every length and never panics on corrupted bytes.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A point's JSON payload, shared between snapshots without copying.
pub type Payload = Arc<Map<String, Value>>;

const CODEC_VERSION: u8 = 1;

/// A point as stored: its version (the LSN of the write that produced it), vectors and payload.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPoint {
    pub version: u64,
    /// One vector per vector space of the collection, in the collection's space order.
    pub vectors: Vec<Vec<f32>>,
    pub payload: Payload,
}

/// Encodes a point record.
pub fn encode_point(point: &StoredPoint) -> Vec<u8> {
    let payload = serde_json::to_vec(&*point.payload).unwrap_or_else(|_| b"{}".to_vec());
    let floats: usize = point.vectors.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(17 + 4 * point.vectors.len() + 4 * floats + payload.len());
    out.push(CODEC_VERSION);
    out.extend_from_slice(&point.version.to_le_bytes());
    out.extend_from_slice(&(point.vectors.len() as u32).to_le_bytes());
    for v in &point.vectors {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

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
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!(
                "truncated: wanted {n} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// `n` little-endian f32 values.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let len = n.checked_mul(4).ok_or("vector length overflows")?;
        let bytes = self.take(len)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A u32 count of items at least `min_bytes` long each, refused when the bytes left
    /// cannot hold them (so a damaged count cannot make a huge allocation).
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.remaining() {
            return Err(format!("implausible count {n}"));
        }
        Ok(n)
    }

    /// Bytes written by [`put_prefixed`].
    pub fn prefixed(&mut self) -> Result<&'a [u8], String> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// A UTF-8 string written by [`put_prefixed`].
    pub fn string(&mut self) -> Result<String, String> {
        let bytes = self.prefixed()?;
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
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

/// Decodes a point record.
pub fn decode_point(bytes: &[u8]) -> Result<StoredPoint, String> {
    decode(bytes, true)
}

/// Decodes a point record's version and payload, checking but not copying its vectors (which
/// recovery already has from a segment file).
pub fn decode_point_without_vectors(bytes: &[u8]) -> Result<StoredPoint, String> {
    decode(bytes, false)
}

/// The version of a point record, read without decoding the rest.
pub fn record_version(bytes: &[u8]) -> Result<u64, String> {
    let mut r = Reader::new(bytes);
    r.u8()?;
    r.u64()
}

fn decode(bytes: &[u8], with_vectors: bool) -> Result<StoredPoint, String> {
    let mut r = Reader::new(bytes);
    let codec = r.u8()?;
    if codec != CODEC_VERSION {
        return Err(format!("unknown point record codec version {codec}"));
    }
    let version = r.u64()?;
    let count = r.u32()? as usize;
    if count > 4096 {
        return Err(format!("implausible vector count {count}"));
    }
    let mut vectors = Vec::with_capacity(if with_vectors { count } else { 0 });
    for _ in 0..count {
        let dim = r.u32()? as usize;
        if with_vectors {
            vectors.push(r.f32s(dim)?);
        } else {
            r.take(dim.checked_mul(4).ok_or("implausible vector size")?)?;
        }
    }
    let len = r.u32()? as usize;
    let payload: Map<String, Value> = serde_json::from_slice(r.take(len)?)
        .map_err(|e| format!("payload is not a JSON object: {e}"))?;
    if !r.is_empty() {
        return Err("trailing bytes after point record".into());
    }
    Ok(StoredPoint {
        version,
        vectors,
        payload: Arc::new(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn point(version: u64, vectors: Vec<Vec<f32>>, payload: Value) -> StoredPoint {
        let Value::Object(map) = payload else {
            panic!("payload must be an object")
        };
        StoredPoint {
            version,
            vectors,
            payload: Arc::new(map),
        }
    }

    #[test]
    fn round_trips_a_record() {
        let p = point(
            7,
            vec![vec![1.0, -2.5], vec![]],
            serde_json::json!({"a": [1, "x"], "b": null}),
        );
        assert_eq!(decode_point(&encode_point(&p)).unwrap(), p);
    }

    #[test]
    fn decodes_the_version_and_payload_alone() {
        let p = point(
            9,
            vec![vec![1.0; 5], vec![2.0]],
            serde_json::json!({"k": "v"}),
        );
        let bytes = encode_point(&p);
        assert_eq!(record_version(&bytes).unwrap(), 9);
        let light = decode_point_without_vectors(&bytes).unwrap();
        assert_eq!((light.version, &light.payload), (9, &p.payload));
        assert!(light.vectors.is_empty());
        for cut in 0..bytes.len() {
            assert!(
                decode_point_without_vectors(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode_point(&point(1, vec![vec![0.5; 3]], serde_json::json!({"k": 1})));
        for cut in 0..bytes.len() {
            assert!(decode_point(&bytes[..cut]).is_err(), "cut at {cut} decoded");
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_point(&bytes);
        }

        #[test]
        fn round_trips_arbitrary_vectors(version in any::<u64>(), v in proptest::collection::vec(-1e30f32..1e30, 0..64)) {
            let p = point(version, vec![v], serde_json::json!({}));
            prop_assert_eq!(decode_point(&encode_point(&p)).unwrap(), p);
        }
    }
}
