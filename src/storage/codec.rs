//! Binary encoding of point records as stored in the `points` column family.
//!
//! Layout (little-endian): `u8 codec version (1) | u64 point version (LSN) | u32 vector count |
//! per vector: u32 dim, dim × f32 | u32 payload length | payload as JSON`. A vector of
//! dimension 0 is one the point lacks (a named vector left out; real vectors have dim ≥ 1).
//! Version 2, written only for points with a sparse vector, adds before the payload
//! `u32 sparse count | per sparse vector: u32 n, n × u32 index, n × f32 value` (n = 0: the
//! point lacks it); version 1 records, which have no sparse section, are still read.
//! Version 3, written for points of collections with `float16` or `uint8` vector spaces, has
//! the sparse section and stores each vector as `u32 dim | u8 element type | dim elements`,
//! in its space's type where that holds it exactly (else [`Datatype::narrowest`]): a
//! `uint8` vector takes a quarter of the bytes.
//! Decoding validates every length and never panics on corrupted bytes.

use crate::error::Corrupt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::bytes::Reader;
use crate::index::sparse::SparseVector;
use crate::index::typed::Datatype;

/// A point's JSON payload, shared between snapshots without copying.
pub type Payload = Arc<Map<String, Value>>;

/// Records without sparse vectors are written as version 1, byte for byte what builds
/// without sparse vectors wrote and read.
const CODEC_DENSE_ONLY: u8 = 1;
const CODEC_WITH_SPARSE: u8 = 2;
const CODEC_TYPED: u8 = 3;

/// A point as stored: its version (the LSN of the write that produced it), vectors and payload.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPoint {
    pub version: u64,
    /// One vector per vector space of the collection, in the collection's space order; empty
    /// where the point lacks that vector.
    pub vectors: Vec<Vec<f32>>,
    /// One sparse vector per sparse space, in name order; empty where the point lacks it
    /// (and empty altogether in a collection without sparse spaces).
    pub sparse: Vec<SparseVector>,
    pub payload: Payload,
}

/// Encodes a point record whose vector spaces store `types` (float32 past its end). Records
/// of float32 spaces are written as earlier builds wrote them.
pub fn encode_point(point: &StoredPoint, types: &[Datatype]) -> Vec<u8> {
    let payload = serde_json::to_vec(&*point.payload).unwrap_or_else(|_| b"{}".to_vec());
    let floats: usize = point.vectors.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(17 + 5 * point.vectors.len() + 4 * floats + payload.len());
    let declared = |i: usize| types.get(i).copied().unwrap_or_default();
    let typed = (0..point.vectors.len()).any(|i| declared(i) != Datatype::Float32);
    // A space's values are converted to its type on write; a vector its type does not hold
    // (which should not happen) keeps the narrowest type that does.
    let types: Vec<Datatype> = (0..point.vectors.len())
        .map(|i| match declared(i).holds(&point.vectors[i]) {
            true => declared(i),
            false => Datatype::narrowest(&point.vectors[i]),
        })
        .collect();
    let with_sparse = typed || point.sparse.iter().any(|s| !s.is_empty());
    out.push(match (typed, with_sparse) {
        (true, _) => CODEC_TYPED,
        (false, true) => CODEC_WITH_SPARSE,
        (false, false) => CODEC_DENSE_ONLY,
    });
    out.extend_from_slice(&point.version.to_le_bytes());
    out.extend_from_slice(&(point.vectors.len() as u32).to_le_bytes());
    for (v, t) in point.vectors.iter().zip(types) {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        let t = match typed {
            true => {
                out.push(t.tag());
                t
            }
            false => Datatype::Float32,
        };
        t.write(v, &mut out);
    }
    if with_sparse {
        encode_sparse(&point.sparse, &mut out);
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn encode_sparse(sparse: &[SparseVector], out: &mut Vec<u8>) {
    out.extend_from_slice(&(sparse.len() as u32).to_le_bytes());
    for s in sparse {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        s.indices()
            .iter()
            .for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
        s.values()
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    }
}

/// Decodes a point record.
pub fn decode_point(bytes: &[u8]) -> Result<StoredPoint, Corrupt> {
    decode(bytes, true)
}

/// Decodes a point record's version, sparse vectors and payload, checking but not copying its
/// dense vectors (which recovery already has from a segment file).
pub fn decode_point_without_vectors(bytes: &[u8]) -> Result<StoredPoint, Corrupt> {
    decode(bytes, false)
}

/// The version of a point record, read without decoding the rest.
pub fn record_version(bytes: &[u8]) -> Result<u64, Corrupt> {
    let mut r = Reader::new(bytes);
    r.u8()?;
    r.u64()
}

fn decode(bytes: &[u8], with_vectors: bool) -> Result<StoredPoint, Corrupt> {
    let mut r = Reader::new(bytes);
    let codec = r.u8()?;
    if !(CODEC_DENSE_ONLY..=CODEC_TYPED).contains(&codec) {
        return corrupt!("unknown point record codec version {codec}");
    }
    let version = r.u64()?;
    let count = r.u32()? as usize;
    if count > 4096 {
        return corrupt!("implausible vector count {count}");
    }
    let mut vectors = Vec::with_capacity(if with_vectors { count } else { 0 });
    for _ in 0..count {
        let dim = r.u32()? as usize;
        let t = match codec {
            CODEC_TYPED => Datatype::from_tag(r.u8()?)?,
            _ => Datatype::Float32,
        };
        if with_vectors {
            vectors.push(t.read(&mut r, dim)?);
        } else {
            r.take(
                dim.checked_mul(t.bytes())
                    .ok_or("implausible vector size")?,
            )?;
        }
    }
    let sparse = match codec {
        CODEC_DENSE_ONLY => Vec::new(),
        _ => decode_sparse(&mut r)?,
    };
    let len = r.u32()? as usize;
    let payload: Map<String, Value> = serde_json::from_slice(r.take(len)?)
        .map_err(|e| format!("payload is not a JSON object: {e}"))?;
    if !r.is_empty() {
        return Err("trailing bytes after point record".into());
    }
    Ok(StoredPoint {
        version,
        vectors,
        sparse,
        payload: Arc::new(payload),
    })
}

fn decode_sparse(r: &mut Reader) -> Result<Vec<SparseVector>, Corrupt> {
    let count = r.u32()? as usize;
    if count > 4096 {
        return corrupt!("implausible sparse vector count {count}");
    }
    (0..count)
        .map(|_| {
            let n = r.u32()? as usize;
            let bytes = n.checked_mul(4).ok_or("implausible sparse vector size")?;
            let indices = r.take(bytes)?.chunks_exact(4);
            let indices = indices.map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let indices = indices.collect();
            SparseVector::from_sorted(indices, r.f32s(n)?).map_err(|e| Corrupt(e.0))
        })
        .collect()
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
            sparse: Vec::new(),
            payload: Arc::new(map),
        }
    }

    #[test]
    fn sparse_vectors_are_written_only_where_a_point_has_one() {
        let mut p = point(3, vec![vec![0.1]], serde_json::json!({"k": 1}));
        let dense_only = encode_point(&p, &[]);
        assert_eq!(dense_only[0], CODEC_DENSE_ONLY);
        p.sparse = vec![
            SparseVector::default(),
            SparseVector::new(vec![9, 2], vec![1.5, -0.5]).unwrap(),
        ];
        let bytes = encode_point(&p, &[]);
        assert_eq!(bytes[0], CODEC_WITH_SPARSE);
        assert_eq!(decode_point(&bytes).unwrap(), p);
        let light = decode_point_without_vectors(&bytes).unwrap();
        assert_eq!((&light.sparse, &light.payload), (&p.sparse, &p.payload));
        for cut in 0..bytes.len() {
            assert!(decode_point(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Only empty sparse vectors: nothing to write, the record stays version 1.
        p.sparse = vec![SparseVector::default()];
        let bytes = encode_point(&p, &[]);
        assert_eq!(bytes, dense_only);
        p.sparse.clear();
        assert_eq!(decode_point(&bytes).unwrap(), p);
    }

    #[test]
    fn vectors_of_narrow_spaces_are_stored_in_their_type() {
        let vectors = vec![vec![3.0, 255.0, 0.0], vec![0.5, -2.0], vec![0.1], vec![]];
        let p = point(4, vectors, serde_json::json!({"k": 1}));
        // Float32 spaces are written as before, whatever their values.
        assert_eq!(encode_point(&p, &[])[0], CODEC_DENSE_ONLY);
        let types = [
            Datatype::Uint8,
            Datatype::Float16,
            Datatype::Uint8,
            Datatype::Float16,
        ];
        let bytes = encode_point(&p, &types);
        assert_eq!(bytes[0], CODEC_TYPED);
        let float32 = point(
            4,
            vec![vec![0.1; 3], vec![0.1; 2], vec![0.1], vec![]],
            serde_json::json!({"k": 1}),
        );
        // 3 + 4 element bytes instead of 12 + 8, for four type tags and an empty sparse count;
        // 0.1, which a uint8 space should never hold, is kept whole as float32.
        assert_eq!(encode_point(&float32, &[]).len() - 13 + 4 + 4, bytes.len());
        assert_eq!(decode_point(&bytes).unwrap(), p);
        let light = decode_point_without_vectors(&bytes).unwrap();
        assert_eq!((light.version, &light.payload), (4, &p.payload));
        for cut in 0..bytes.len() {
            assert!(decode_point(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn round_trips_a_record() {
        let p = point(
            7,
            vec![vec![1.0, -2.5], vec![]],
            serde_json::json!({"a": [1, "x"], "b": null}),
        );
        assert_eq!(decode_point(&encode_point(&p, &[])).unwrap(), p);
    }

    #[test]
    fn decodes_the_version_and_payload_alone() {
        let p = point(
            9,
            vec![vec![1.0; 5], vec![2.0]],
            serde_json::json!({"k": "v"}),
        );
        let bytes = encode_point(&p, &[]);
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
        let bytes = encode_point(
            &point(1, vec![vec![0.5; 3]], serde_json::json!({"k": 1})),
            &[],
        );
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
        fn round_trips_arbitrary_vectors(version in any::<u64>(), v in proptest::collection::vec(-1e30f32..1e30, 0..64), bytes in proptest::collection::vec(any::<u8>(), 0..64), t in 0u8..3) {
            let bytes = bytes.into_iter().map(f32::from).collect();
            let p = point(version, vec![v, bytes], serde_json::json!({}));
            let t = Datatype::from_tag(t).unwrap();
            prop_assert_eq!(decode_point(&encode_point(&p, &[t, t])).unwrap(), p);
        }
    }
}
