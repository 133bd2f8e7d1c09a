//! Checksummed, atomically replaced files (sealed segments).
//!
//! Layout: `magic (8) | format version u32 | payload length u64 | crc32 of payload u32 | payload`.
//! A file is written to a temporary name, fsynced, renamed into place and its directory fsynced,
//! so after a crash a file either exists whole or not at all; the checksum catches later damage.

use crate::error::Corrupt;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const MAGIC: &[u8; 8] = b"VECDBSEG";

/// The files a sealed segment may have in its collection's folder: the one place their names
/// are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFile {
    /// `<id>.seg`: the points and their HNSW graphs.
    Segment,
    /// `<id>.idx`: the payload indexes, rebuilt from the payloads when missing.
    Indexes,
    /// `<id>.tg`: the graphs per tenant, rebuilt when missing.
    Tenants,
}

impl SegmentFile {
    /// Every kind, so that what belongs to a segment is removed or kept together.
    pub const ALL: [SegmentFile; 3] = [Self::Segment, Self::Indexes, Self::Tenants];

    /// The file's name for segment `id`.
    pub fn name(self, id: u64) -> String {
        let ext = match self {
            Self::Segment => "seg",
            Self::Indexes => "idx",
            Self::Tenants => "tg",
        };
        format!("{id}.{ext}")
    }

    /// The file of segment `id` in the collection folder `dir`.
    pub fn path(self, dir: &Path, id: u64) -> std::path::PathBuf {
        dir.join(self.name(id))
    }
}
const HEADER: usize = 8 + 4 + 8 + 4;

/// Writes `payload` to `path` durably and atomically.
pub fn write_atomic(path: &Path, version: u32, payload: &[u8]) -> std::io::Result<()> {
    // `1.seg` goes through `1.seg.tmp`: files of one segment never share a temporary name.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(MAGIC)?;
    file.write_all(&version.to_le_bytes())?;
    file.write_all(&(payload.len() as u64).to_le_bytes())?;
    file.write_all(&crc32fast::hash(payload).to_le_bytes())?;
    file.write_all(payload)?;
    let start = Instant::now();
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    metrics::histogram!("vecdb_rocksdb_fsync_seconds", "kind" => "segment_file")
        .record(start.elapsed().as_secs_f64());
    Ok(())
}

/// Removes every entry of `dir` (file or folder) whose name is not in `keep`; a missing `dir`
/// is fine. Used to clear what a crash or a deleted collection left behind.
pub fn remove_unlisted(dir: &Path, keep: &[String]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if keep.iter().any(|k| entry.file_name().to_str() == Some(k)) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// Reads a file written by [`write_atomic`], checking magic, version, length and checksum.
/// The error names the file and what is wrong with it.
pub fn read_checked(path: &Path, expected_version: u32) -> Result<Vec<u8>, Corrupt> {
    read_versioned(path, &[expected_version]).map(|(_, bytes)| bytes)
}

/// Like [`read_checked`] for a file in any of the format `versions` this build reads; returns
/// the file's version with its payload.
pub fn read_versioned(path: &Path, versions: &[u32]) -> Result<(u32, Vec<u8>), Corrupt> {
    let bytes = fs::read(path).map_err(|e| Corrupt(format!("{}: {e}", path.display())))?;
    let bad = |why: &str| Corrupt(format!("{}: {why}", path.display()));
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a vecdb segment file (bad magic or too short)"));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !versions.contains(&version) {
        return Err(bad(&format!(
            "segment format version {version}, this build reads {versions:?}"
        )));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len) as usize;
    let crc = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(bad(&format!(
            "truncated: {} of {len} payload bytes",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch (file is damaged)"));
    }
    Ok((version, payload.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        write_atomic(&path, 3, b"hello segment").unwrap();
        assert_eq!(read_checked(&path, 3).unwrap(), b"hello segment");
        assert!(read_checked(&path, 4)
            .unwrap_err()
            .contains("format version"));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(read_checked(&path, 3).unwrap_err().contains("checksum"));
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_checked(&path, 3).unwrap_err().contains("truncated"));
    }

    #[test]
    fn remove_unlisted_keeps_exact_names_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1.seg", "1.tmp", "2.seg"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::create_dir(dir.path().join("7")).unwrap();
        fs::write(dir.path().join("7").join("3.seg"), b"x").unwrap();
        remove_unlisted(dir.path(), &["1.seg".to_string()]);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        // The half-written 1.tmp goes although segment 1 is kept.
        assert_eq!(left, vec!["1.seg"]);
        remove_unlisted(&dir.path().join("missing"), &[]);
    }
}
