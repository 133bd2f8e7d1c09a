//! Collection snapshot files: one collection's configuration and every live point as of one
//! published state, for backup and restore.
//!
//! Layout (little-endian): `magic "VECDBSNP" | u32 format version | u32 header length |
//! header JSON | per point: u8 1, 17-byte id key, u32 record length, point record (see
//! [`codec`](crate::storage::codec)) | end: u8 0, u64 point count, u32 crc32 of every byte before it`.
//! Reading checks every length against hard bounds (never allocating what a corrupt length
//! claims), the count and the checksum; a file that fails any check is refused whole.

use crate::error::Corrupt;
use crate::index::typed::Datatype;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::config::CollectionConfig;
use crate::point_id::PointId;
use crate::storage::codec::{decode_point, encode_point, StoredPoint};

const MAGIC: &[u8; 8] = b"VECDBSNP";
const FORMAT_VERSION: u32 = 1;
/// Bounds on lengths read from a file, far above anything vecdb writes.
const MAX_HEADER: u32 = 64 << 20;
const MAX_RECORD: u32 = 1 << 30;

/// What a snapshot says about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    /// The collection it was taken from.
    pub collection: String,
    pub config: CollectionConfig,
    /// Indexed payload fields (absent in snapshots from before payload indexes).
    #[serde(default)]
    pub payload_schema: crate::filter::index::PayloadSchema,
    /// The collection's LSN at the snapshot: every write up to it is included, none after.
    pub lsn: u64,
    pub points: u64,
    /// The vecdb version that wrote it.
    pub written_by: String,
}

/// Writes a snapshot to `out`, point by point.
pub struct SnapshotWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    count: u64,
    /// What the collection's vector spaces store, for the point records.
    types: Vec<Datatype>,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(out: W, header: &Header) -> io::Result<SnapshotWriter<W>> {
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let mut w = SnapshotWriter {
            out,
            crc: crc32fast::Hasher::new(),
            count: 0,
            types: header.config.spaces().iter().map(|s| s.datatype).collect(),
        };
        w.put(MAGIC)?;
        w.put(&FORMAT_VERSION.to_le_bytes())?;
        w.put(&(json.len() as u32).to_le_bytes())?;
        w.put(&json)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    pub fn point(&mut self, id: PointId, point: &StoredPoint) -> io::Result<()> {
        let record = encode_point(point, &self.types);
        self.put(&[1])?;
        self.put(&id.to_key())?;
        self.put(&(record.len() as u32).to_le_bytes())?;
        self.put(&record)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the end marker and checksum; returns the output and the number of points.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.put(&[0])?;
        let count = self.count;
        self.put(&count.to_le_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok((self.out, count))
    }
}

/// Reads a snapshot, checking as it goes; the end marker checks the count and checksum.
pub struct SnapshotReader<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
    /// Points the header announces.
    announced: u64,
    count: u64,
    finished: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the magic, version and header.
    pub fn open(input: R) -> Result<(SnapshotReader<R>, Header), Corrupt> {
        let mut r = SnapshotReader {
            input,
            crc: crc32fast::Hasher::new(),
            announced: 0,
            count: 0,
            finished: false,
        };
        if r.bytes(8)? != MAGIC {
            return Err("not a vecdb snapshot (wrong magic bytes)".into());
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return corrupt!(
                "snapshot format version {version} is not {FORMAT_VERSION}, which this build reads"
            );
        }
        let len = r.u32()?;
        if len > MAX_HEADER {
            return corrupt!("corrupt snapshot: header length {len}");
        }
        let json = r.bytes(len as usize)?;
        let header: Header =
            serde_json::from_slice(&json).map_err(|e| format!("corrupt snapshot: header: {e}"))?;
        r.announced = header.points;
        Ok((r, header))
    }

    /// Reads exactly `n` bytes, allocating only what actually arrives.
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Corrupt> {
        let mut buf = Vec::new();
        (&mut self.input)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading the snapshot: {e}"))?;
        if buf.len() != n {
            return Err("truncated snapshot: the file ends early".into());
        }
        self.crc.update(&buf);
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// The next point, or `None` after the end marker has been checked.
    pub fn next_point(&mut self) -> Result<Option<(PointId, StoredPoint)>, Corrupt> {
        if self.finished {
            return Ok(None);
        }
        match self.bytes(1)?[0] {
            1 => {}
            0 => return self.finish().map(|()| None),
            tag => return corrupt!("corrupt snapshot: unknown record tag {tag}"),
        }
        let key = self.bytes(17)?;
        let id = PointId::from_key(&key).ok_or("corrupt snapshot: bad point id")?;
        let len = self.u32()?;
        if len > MAX_RECORD {
            return corrupt!("corrupt snapshot: record length {len}");
        }
        let record = self.bytes(len as usize)?;
        let point =
            decode_point(&record).map_err(|e| format!("corrupt snapshot: point {id}: {e}"))?;
        self.count += 1;
        Ok(Some((id, point)))
    }

    fn finish(&mut self) -> Result<(), Corrupt> {
        let count = u64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes"));
        let expected = self.crc.clone().finalize();
        let mut stored = [0u8; 4];
        self.input
            .read_exact(&mut stored)
            .map_err(|_| "truncated snapshot: the checksum is missing".to_string())?;
        if u32::from_le_bytes(stored) != expected {
            return Err("corrupt snapshot: checksum mismatch".into());
        }
        if count != self.count || count != self.announced {
            return corrupt!(
                "corrupt snapshot: {} points read, the file says {count}, its header {}",
                self.count,
                self.announced
            );
        }
        let mut extra = [0u8; 1];
        if self.input.read(&mut extra).map_err(|e| e.to_string())? != 0 {
            return Err("corrupt snapshot: bytes after the end marker".into());
        }
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sample() -> (Header, Vec<(PointId, StoredPoint)>) {
        let points: Vec<_> = (0..5u64)
            .map(|i| {
                let payload = serde_json::json!({"i": i}).as_object().unwrap().clone();
                let point = StoredPoint {
                    version: i + 1,
                    vectors: vec![vec![i as f32, 0.5]],
                    sparse: Vec::new(),
                    payload: Arc::new(payload),
                };
                (PointId::Num(i), point)
            })
            .collect();
        let req =
            serde_json::from_value(serde_json::json!({"vectors": {"size": 2, "distance": "Dot"}}));
        let config = CollectionConfig::from_request(
            req.unwrap(),
            &crate::config::Config::defaults().collection_defaults,
            crate::config::SyncPolicy::Os,
            0,
        )
        .unwrap();
        let header = Header {
            collection: "c".into(),
            config,
            payload_schema: Default::default(),
            lsn: 9,
            points: points.len() as u64,
            written_by: "test".into(),
        };
        (header, points)
    }

    fn write(header: &Header, points: &[(PointId, StoredPoint)]) -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new(), header).unwrap();
        for (id, p) in points {
            w.point(*id, p).unwrap();
        }
        w.finish().unwrap().0
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(PointId, StoredPoint)>, Corrupt> {
        let (mut r, _) = SnapshotReader::open(bytes)?;
        let mut out = Vec::new();
        while let Some(p) = r.next_point()? {
            out.push(p);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_points_and_header() {
        let (header, points) = sample();
        let bytes = write(&header, &points);
        assert_eq!(read_all(&bytes).unwrap(), points);
        assert_eq!(SnapshotReader::open(&bytes[..]).unwrap().1.lsn, 9);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let (header, points) = sample();
        let bytes = write(&header, &points);
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(read_all(&bad).is_err(), "flipped byte {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
    }
}
