//! The write guard on the data directory's filesystem: writes are refused (and nothing applied)
//! while it is read-only, fails writes, or has less free space than the configured reserve.
//!
//! RocksDB turns a failed WAL write into a sticky error that only reopening the database clears,
//! and the RocksDB Debian ships is built with assertions that abort the process on some such
//! paths. So vecdb checks first and lets no write reach RocksDB on a filesystem that would fail
//! it: `statvfs` for the read-only flag and free space (the reserve also leaves room for memtable
//! flushes and segment files), and a one-byte overwrite of a probe file, which catches a
//! filesystem that fails writes without saying so (ext4's emergency read-only after an error).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why the filesystem cannot take writes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ReadOnly,
    /// Free bytes, when below the reserve.
    Full(u64),
}

/// Free bytes for unprivileged users and the read-only flag of the filesystem holding `dir`.
fn stat(dir: &Path) -> std::io::Result<(u64, bool)> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("data directory path contains a NUL byte"))?;
    let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `out` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut out) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let free = out.f_bavail.saturating_mul(out.f_frsize);
    Ok((free, out.f_flag & libc::ST_RDONLY != 0))
}

/// Whether `dir`'s filesystem can take a write with `reserve` bytes to spare. A failed `statvfs`
/// lets the write through: RocksDB then reports what is wrong itself.
pub fn check(dir: &Path, reserve: u64) -> Result<(), Refusal> {
    match stat(dir) {
        Ok((_, true)) => Err(Refusal::ReadOnly),
        Ok((free, false)) if free < reserve => Err(Refusal::Full(free)),
        _ => Ok(()),
    }
}

/// Whether an I/O error means the disk is full.
pub fn is_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// A file overwritten in place before each write: no allocation, so only a failing filesystem
/// makes it fail.
pub struct Probe {
    file: std::fs::File,
}

impl Probe {
    pub fn open(dir: &Path) -> std::io::Result<Probe> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("write-probe"))?;
        Ok(Probe { file })
    }

    /// Overwrites the probe's byte; the error is the filesystem's.
    pub fn touch(&self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(b"v", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_above_free_space_refuses() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path(), 0), Ok(()));
        assert!(matches!(check(dir.path(), u64::MAX), Err(Refusal::Full(_))));
    }
}
