//! Collection snapshots on disk: `<data_dir>/snapshots/<collection>/<name>.snapshot`, each a
//! [`snapshot_file`](super::snapshot_file) of one published state.
//!
//! A snapshot is taken from the immutable state searches read, so it is consistent as of one
//! LSN and writes go on meanwhile. Names are checked against a strict alphabet and resolved
//! inside the collection's folder only, so no name can reach another file.

use crate::error::{Corrupt, Invalid};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;

use super::config::VectorSpace;
use super::snapshot::Snapshot;
use super::snapshot_file::{Header, SnapshotReader, SnapshotWriter};
use crate::storage::codec::StoredPoint;

const EXTENSION: &str = ".snapshot";

/// Numbers the snapshots this process takes.
static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A stored snapshot, in Qdrant's shape.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SnapshotDescription {
    pub name: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SS`.
    pub creation_time: Option<String>,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the file (lowercase hex), as Qdrant gives it; kept beside the snapshot in
    /// `<name>.checksum`. (The file also carries its own CRC-32, checked whenever it is read.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// The folder of `collection`'s snapshots: the name with every byte outside `[A-Za-z0-9_-]`
/// percent-encoded, so no collection name can form `..` or a separator.
pub fn folder(root: &Path, collection: &str) -> PathBuf {
    let mut encoded = String::with_capacity(collection.len());
    for b in collection.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    root.join(encoded)
}

/// The file of snapshot `name`, if the name is well-formed; whether it exists is the caller's
/// question.
pub fn file(root: &Path, collection: &str, name: &str) -> Result<PathBuf, Invalid> {
    let well_formed = name.len() <= 255
        && name.len() > EXTENSION.len()
        && name.ends_with(EXTENSION)
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !well_formed {
        return invalid!(
            "`{name}` is not a snapshot name (letters, digits, `.`, `_`, `-`, ending in {EXTENSION})"
        );
    }
    Ok(folder(root, collection).join(name))
}

/// Writes a snapshot of `snapshot` into the collection's folder. Blocking.
pub fn create(
    root: &Path,
    collection: &str,
    snapshot: &Snapshot,
) -> std::io::Result<SnapshotDescription> {
    create_with(root, header_of(collection, snapshot), |w| {
        write_points(w, snapshot)
    })
}

/// What a snapshot file of `snapshot` says about itself.
fn header_of(collection: &str, snapshot: &Snapshot) -> Header {
    Header {
        collection: collection.to_string(),
        config: (*snapshot.config).clone(),
        payload_schema: (*snapshot.schema).clone(),
        lsn: snapshot.lsn,
        points: snapshot.points_count() as u64,
        written_by: written_by(),
    }
}

/// The `written_by` of snapshots this build writes.
pub fn written_by() -> String {
    format!("vecdb {}", env!("CARGO_PKG_VERSION"))
}

/// Writes every point of `snapshot`.
pub fn write_points<W: Write>(
    writer: &mut SnapshotWriter<W>,
    snapshot: &Snapshot,
) -> std::io::Result<()> {
    for (id, point) in snapshot.scan(None, None) {
        let stored = StoredPoint {
            version: point.version(),
            vectors: point.vectors(),
            sparse: point.sparse_vectors(),
            payload: point.payload_arc(),
        };
        writer.point(id, &stored)?;
    }
    Ok(())
}

/// Writes `snapshot` whole, as a snapshot file, to `out` (a peer's request for a shard).
pub fn stream_to<W: Write>(out: W, collection: &str, snapshot: &Snapshot) -> std::io::Result<W> {
    let mut writer = SnapshotWriter::new(out, &header_of(collection, snapshot))?;
    write_points(&mut writer, snapshot)?;
    Ok(writer.finish()?.0)
}

/// Writes a snapshot with `header` whose points `fill` writes, into the folder of the header's
/// collection: to a temporary file first, synced and renamed, so a crash never leaves half a
/// snapshot under a snapshot's name. Blocking.
pub fn create_with(
    root: &Path,
    header: Header,
    fill: impl FnOnce(&mut SnapshotWriter<BufWriter<File>>) -> std::io::Result<()>,
) -> std::io::Result<SnapshotDescription> {
    let collection = &header.collection;
    let dir = folder(root, collection);
    fs::create_dir_all(&dir)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let safe: String = collection
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Two snapshots of one state taken in the same millisecond still get their own names
    // (and so their own temporary and checksum files).
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "{safe}-{}-{}-{sequence}{EXTENSION}",
        header.lsn,
        now.as_millis()
    );
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut writer = SnapshotWriter::new(BufWriter::new(File::create(&tmp)?), &header)?;
        fill(&mut writer)?;
        let (out, _) = writer.finish()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path)?;
    write_checksum(&path)?;
    File::open(&dir)?.sync_all()?;
    describe(&path)
}

/// Where a snapshot's SHA-256 is kept.
pub fn checksum_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(".checksum");
    PathBuf::from(name)
}

/// The SHA-256 of a file, in lowercase hex. Blocking.
pub fn sha256(path: &Path) -> std::io::Result<String> {
    let mut file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    loop {
        let chunk = file.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        digest.update(chunk);
        let n = chunk.len();
        file.consume(n);
    }
    let hex: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(hex)
}

/// Hashes a written snapshot into its `.checksum` file (written aside and renamed).
fn write_checksum(snapshot: &Path) -> std::io::Result<()> {
    let hex = sha256(snapshot)?;
    let target = checksum_path(snapshot);
    let mut tmp = target.clone().into_os_string();
    tmp.push(".tmp");
    fs::write(&tmp, hex)?;
    fs::rename(&tmp, &target)
}

fn describe(path: &Path) -> std::io::Result<SnapshotDescription> {
    let meta = fs::metadata(path)?;
    let created = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    Ok(SnapshotDescription {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        creation_time: created.map(|d| utc(d.as_secs())),
        size: meta.len(),
        checksum: fs::read_to_string(checksum_path(path)).ok(),
    })
}

/// `collection`'s snapshots, by name. Blocking.
pub fn list(root: &Path, collection: &str) -> std::io::Result<Vec<SnapshotDescription>> {
    let Ok(entries) = fs::read_dir(folder(root, collection)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(EXTENSION) && !name.starts_with('.') {
            out.push(describe(&entry.path())?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads a whole snapshot file, checking every record and the checksum; returns its header.
/// Blocking.
/// Every point must fit the configuration's vector spaces.
pub fn verify(path: &Path) -> Result<Header, Corrupt> {
    let file = File::open(path).map_err(|e| Corrupt(format!("cannot open the snapshot: {e}")))?;
    let (mut reader, header) = SnapshotReader::open(BufReader::new(file))?;
    let spaces = header.config.spaces();
    let sizes: Vec<usize> = spaces.iter().map(|s| s.size).collect();
    // A point may lack a vector (length 0); a multivector is whole vectors of the size.
    let fits = |v: &Vec<f32>, s: &VectorSpace| match s.multi {
        false => v.is_empty() || v.len() == s.size,
        true => v.len().is_multiple_of(s.size.max(1)),
    };
    while let Some((id, point)) = reader.next_point()? {
        let dims: Vec<usize> = point.vectors.iter().map(Vec::len).collect();
        let shaped = dims.len() == spaces.len()
            && point.vectors.iter().zip(&spaces).all(|(v, s)| fits(v, s));
        if !shaped || point.vectors.iter().flatten().any(|x| !x.is_finite()) {
            return corrupt!(
                "point {id} has vectors of dimensions {dims:?} (or non-finite values); the collection's are {sizes:?}"
            );
        }
    }
    Ok(header)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC; the civil-from-days algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_collection_folder() {
        let root = Path::new("/data/snapshots");
        for bad in [
            "../x.snapshot",
            "..%2Fx.snapshot",
            "/etc/passwd",
            "a/b.snapshot",
            ".hidden.snapshot",
            "x.tmp",
            ".snapshot",
            "a\\b.snapshot",
        ] {
            assert!(file(root, "c", bad).is_err(), "{bad}");
        }
        assert_eq!(
            file(root, "c", "c-1-2.snapshot").unwrap(),
            Path::new("/data/snapshots/c/c-1-2.snapshot")
        );
        assert_eq!(folder(root, ".."), Path::new("/data/snapshots/%2E%2E"));
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(utc(1_795_903_968), "2026-11-28T22:12:48");
    }
}
