//! The RocksDB handle and every key layout vecdb uses in it.

use crate::error::Corrupt;
use crate::index::typed::Datatype;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::codec::{decode_point, encode_point, StoredPoint};
use crate::point_id::PointId;

/// On-disk format version; `migrations/` describes each one and how an older database is upgraded.
pub const FORMAT_VERSION: u32 = 1;

pub(super) const CF_META: &str = "meta";
pub(super) const CF_POINTS: &str = "points";
/// Raft groups' logs and state ([`raft_log`](super::raft_log)).
pub(super) const CF_RAFT_LOG: &str = "raft_log";
pub(super) const CF_RAFT_STATE: &str = "raft_state";
const FAMILIES: [&str; 4] = [CF_META, CF_POINTS, CF_RAFT_LOG, CF_RAFT_STATE];
const KEY_FORMAT: &[u8] = b"format_version";
const KEY_NEXT_COLLECTION: &[u8] = b"next_collection_id";
const KEY_NODE_ID: &[u8] = b"node_id";
const KEY_ALIASES: &[u8] = b"aliases";

/// What went wrong below the collection layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Less free space than `storage.min_free_disk_mb`; nothing was written.
    #[error("{0}")]
    DiskFull(String),
    /// The data directory's filesystem is read-only or fails writes; nothing was written.
    #[error("{0}")]
    ReadOnly(String),
}

/// The sealed segments that make up a collection's index, and the next segment id to hand out.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SegmentList {
    pub next_id: u64,
    pub sealed: Vec<u64>,
}

/// The database: RocksDB plus the folder of segment files.
pub struct Store {
    pub(super) db: DB,
    dir: PathBuf,
    /// See [`Store::set_reserve`].
    reserve: std::sync::atomic::AtomicU64,
    probe: super::disk::Probe,
}

/// Calls `f` with each point record of `collection` that `iter` (positioned at the
/// collection's first key) yields; an error from `f` is reported as corruption of that point.
pub(super) fn point_records<E>(
    iter: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), E>>,
    collection: u64,
    mut f: impl FnMut(PointId, &[u8]) -> Result<(), Corrupt>,
) -> Result<(), StorageError>
where
    StorageError: From<E>,
{
    let prefix = collection.to_be_bytes();
    for item in iter {
        let (key, value) = item?;
        if !key.starts_with(&prefix) {
            break;
        }
        let id = PointId::from_key(&key[8..])
            .ok_or_else(|| StorageError::Corrupt(format!("point key {key:?}")))?;
        f(id, &value).map_err(|e| StorageError::Corrupt(format!("point {id}: {e}")))?;
    }
    Ok(())
}

/// Effects of one or more operations, committed atomically by [`Store::commit`].
pub struct Batch {
    pub(super) collection: u64,
    pub(super) inner: WriteBatch,
    len: usize,
}

pub(super) fn point_key(collection: u64, id: PointId) -> [u8; 25] {
    let mut key = [0u8; 25];
    key[..8].copy_from_slice(&collection.to_be_bytes());
    key[8..].copy_from_slice(&id.to_key());
    key
}

pub(super) fn meta_key(kind: &str, collection: u64) -> Vec<u8> {
    let mut key = kind.as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(&collection.to_be_bytes());
    key
}

impl Store {
    /// Opens (creating if needed) the database under `dir`, checking its format version.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        std::fs::create_dir_all(dir.join("segments"))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = FAMILIES.map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir.join("rocksdb"), cfs)?;
        let store = Store {
            db,
            dir: dir.to_path_buf(),
            reserve: std::sync::atomic::AtomicU64::new(0),
            probe: super::disk::Probe::open(dir)?,
        };
        store.check_format()?;
        Ok(store)
    }

    pub(super) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    fn check_format(&self) -> Result<(), StorageError> {
        let meta = self.cf(CF_META);
        match self.db.get_cf(meta, KEY_FORMAT)? {
            None => {
                self.db.put_cf(meta, KEY_FORMAT, FORMAT_VERSION.to_le_bytes())?;
                Ok(())
            }
            Some(v) if v.as_slice() == FORMAT_VERSION.to_le_bytes() => Ok(()),
            Some(v) => Err(StorageError::Corrupt(format!(
                "database format version {} is not {FORMAT_VERSION}, which this build reads; see migrations/ for upgrades",
                v.as_slice()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .map_or_else(|_| format!("{v:?}"), |n| n.to_string())
            ))),
        }
    }

    /// Folder holding a collection's segment files.
    pub fn segment_dir(&self, collection: u64) -> PathBuf {
        self.dir.join("segments").join(collection.to_string())
    }

    /// Removes segment folders of collections that no longer exist (an index build that was
    /// still running when its collection was deleted can leave one behind).
    pub fn remove_segment_dirs_except(&self, keep: &[u64]) {
        let keep: Vec<String> = keep.iter().map(u64::to_string).collect();
        super::files::remove_unlisted(&self.dir.join("segments"), &keep);
    }

    /// Every stored collection record, as [`Store::put_collection`] stored it.
    pub fn collections<T: DeserializeOwned>(&self) -> Result<Vec<T>, StorageError> {
        let meta = self.cf(CF_META);
        let prefix = b"collection/";
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(meta, IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            let parsed = serde_json::from_slice(&value)
                .map_err(|e| StorageError::Corrupt(format!("collection record: {e}")))?;
            out.push(parsed);
        }
        Ok(out)
    }

    /// Hands out a new collection id (callers serialise creation).
    pub fn allocate_collection_id(&self) -> Result<u64, StorageError> {
        let meta = self.cf(CF_META);
        let next = match self.db.get_cf(meta, KEY_NEXT_COLLECTION)? {
            Some(v) => u64::from_le_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("next collection id".into()))?,
            ),
            None => 1,
        };
        self.db
            .put_cf(meta, KEY_NEXT_COLLECTION, (next + 1).to_le_bytes())?;
        Ok(next)
    }

    /// This data directory's peer id in a cluster: drawn at random (non-zero) the first time
    /// and stored durably, so it never changes while the directory lives, and a wiped directory
    /// gets a new one.
    pub fn node_id(&self) -> Result<u64, StorageError> {
        let meta = self.cf(CF_META);
        if let Some(v) = self.db.get_cf(meta, KEY_NODE_ID)? {
            let bytes = v.as_slice().try_into();
            return bytes
                .map(u64::from_le_bytes)
                .map_err(|_| StorageError::Corrupt("node id".into()));
        }
        // 53 bits, so the id survives JSON clients that read numbers as doubles.
        let id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 11).max(1);
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, KEY_NODE_ID, id.to_le_bytes());
        self.write(batch, true)?;
        Ok(id)
    }

    /// The collection aliases as [`Store::put_aliases`] stored them (`None` before the first).
    pub fn aliases<T: DeserializeOwned>(&self) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META), KEY_ALIASES)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("aliases record: {e}")))
    }

    /// Replaces the collection aliases durably (fsync).
    pub fn put_aliases<T: Serialize>(&self, aliases: &T) -> Result<(), StorageError> {
        let value =
            serde_json::to_vec(aliases).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), KEY_ALIASES, value);
        self.write(batch, true)
    }

    /// Stores the record of collection `name` durably (fsync).
    pub fn put_collection<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StorageError> {
        let value = serde_json::to_vec(record).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), format!("collection/{name}"), value);
        self.write(batch, true)
    }

    /// Removes collection `name`'s record and its points, LSN and segment list (under `id`)
    /// durably, then its files.
    pub fn delete_collection(&self, id: u64, name: &str) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let m = self.cf(CF_META);
        batch.delete_cf(m, format!("collection/{name}"));
        batch.delete_cf(m, meta_key("lsn", id));
        batch.delete_cf(m, meta_key("segments", id));
        batch.delete_range_cf(self.cf(CF_POINTS), id.to_be_bytes(), (id + 1).to_be_bytes());
        self.write(batch, true)?;
        // The collection is gone once the batch is durable. An index build still running for
        // it can add a file while the folder is removed; it stops on its own, and a folder
        // left behind is swept at the next start ([`Store::remove_segment_dirs_except`]).
        let dir = self.segment_dir(id);
        for attempt in 1..=5 {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    if attempt == 5 {
                        tracing::warn!(collection = name, error = %e, "segment folder of a deleted collection left for the next start");
                    } else {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The last LSN committed for a collection (0 if none).
    pub fn lsn(&self, collection: u64) -> Result<u64, StorageError> {
        match self
            .db
            .get_cf(self.cf(CF_META), meta_key("lsn", collection))?
        {
            None => Ok(0),
            Some(v) => {
                Ok(u64::from_le_bytes(v.as_slice().try_into().map_err(
                    |_| StorageError::Corrupt("collection LSN".into()),
                )?))
            }
        }
    }

    /// The collection's sealed segment list.
    pub fn segment_list(&self, collection: u64) -> Result<SegmentList, StorageError> {
        match self
            .db
            .get_cf(self.cf(CF_META), meta_key("segments", collection))?
        {
            None => Ok(SegmentList::default()),
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| StorageError::Corrupt(format!("segment list: {e}"))),
        }
    }

    /// Records the sealed segment list durably (after the segment files are on disk).
    pub fn put_segment_list(
        &self,
        collection: u64,
        list: &SegmentList,
    ) -> Result<(), StorageError> {
        let value = serde_json::to_vec(list).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), meta_key("segments", collection), value);
        self.write(batch, true)
    }

    /// Calls `f` with every stored point of a collection, in key order.
    pub fn for_each_point(
        &self,
        collection: u64,
        mut f: impl FnMut(PointId, StoredPoint),
    ) -> Result<(), StorageError> {
        self.for_each_point_record(collection, |id, bytes| {
            f(id, decode_point(bytes)?);
            Ok(())
        })
    }

    /// Calls `f` with every stored point record of a collection, undecoded, in key order; an
    /// error from `f` is reported as corruption of that point.
    pub fn for_each_point_record(
        &self,
        collection: u64,
        f: impl FnMut(PointId, &[u8]) -> Result<(), Corrupt>,
    ) -> Result<(), StorageError> {
        let prefix = collection.to_be_bytes();
        let iter = self.db.iterator_cf(
            self.cf(CF_POINTS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        point_records(iter, collection, f)
    }

    /// Starts a batch of changes to one collection.
    pub fn batch(&self, collection: u64) -> Batch {
        Batch {
            collection,
            inner: WriteBatch::default(),
            len: 0,
        }
    }

    /// Adds a point record to a batch; the collection's vector spaces store `types`.
    pub fn put_point(
        &self,
        batch: &mut Batch,
        id: PointId,
        point: &StoredPoint,
        types: &[Datatype],
    ) {
        let key = point_key(batch.collection, id);
        batch
            .inner
            .put_cf(self.cf(CF_POINTS), key, encode_point(point, types));
        batch.len += 1;
    }

    /// Adds a point deletion to a batch.
    pub fn delete_point(&self, batch: &mut Batch, id: PointId) {
        batch
            .inner
            .delete_cf(self.cf(CF_POINTS), point_key(batch.collection, id));
        batch.len += 1;
    }

    /// Commits a batch together with the collection's new LSN, syncing the WAL if asked.
    /// Refused while the disk guard says no ([`disk::check`](super::disk::check)).
    pub fn commit(&self, mut batch: Batch, lsn: u64, sync: bool) -> Result<(), StorageError> {
        self.check_disk()?;
        batch.inner.put_cf(
            self.cf(CF_META),
            meta_key("lsn", batch.collection),
            lsn.to_le_bytes(),
        );
        self.write(batch.inner, sync)
    }

    /// Bytes that must stay free on the data directory's filesystem for writes to go on.
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn check_disk(&self) -> Result<(), StorageError> {
        let reserve = self.reserve.load(std::sync::atomic::Ordering::Relaxed);
        let verdict = super::disk::check(&self.dir, reserve)
            .map_err(Some)
            .and_then(|()| {
                self.probe.touch().map_err(|e| match e.raw_os_error() {
                    Some(libc::EROFS) => Some(super::disk::Refusal::ReadOnly),
                    _ => {
                        tracing::error!(error = %e, "the data directory fails writes");
                        None
                    }
                })
            });
        match verdict {
            Ok(()) => Ok(()),
            Err(None) => Err(StorageError::ReadOnly(format!(
                "the data directory {} fails writes (see the log); nothing was applied",
                self.dir.display()
            ))),
            Err(Some(super::disk::Refusal::ReadOnly)) => Err(StorageError::ReadOnly(format!(
                "the data directory {} is on a read-only filesystem; nothing was applied",
                self.dir.display()
            ))),
            Err(Some(super::disk::Refusal::Full(free))) => Err(StorageError::DiskFull(format!(
                "the disk holding {} has {} MB free, less than storage.min_free_disk_mb ({} MB); nothing was applied. Free space or delete collections to resume writes",
                self.dir.display(),
                free >> 20,
                reserve >> 20
            ))),
        }
    }

    pub(super) fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        let start = Instant::now();
        self.db.write_opt(batch, &opts)?;
        let secs = start.elapsed().as_secs_f64();
        let synced = if sync { "true" } else { "false" };
        metrics::histogram!("vecdb_rocksdb_write_seconds", "synced" => synced).record(secs);
        if sync {
            metrics::histogram!("vecdb_rocksdb_fsync_seconds", "kind" => "wal").record(secs);
        }
        Ok(())
    }

    /// At shutdown on a filesystem that fails writes: keeps RocksDB from closing, since closing
    /// writes (and the Debian build then aborts on an assertion). Its WAL already holds every
    /// acknowledged write; the next start recovers from it.
    pub fn leave_open_if_failing(self: &Arc<Store>) {
        if let Err(StorageError::ReadOnly(e)) = self.check_disk() {
            tracing::warn!(error = %e, "leaving the database unclosed");
            std::mem::forget(self.clone());
        }
    }

    /// Forces everything written so far to disk (used at shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        // On a filesystem that fails writes, a flush can only fail (and may abort inside
        // RocksDB); the WAL already holds every acknowledged write. On a full one, memtables
        // stay in the WAL rather than being written out as new files.
        let health = self.check_disk();
        if let Err(StorageError::ReadOnly(e)) = &health {
            tracing::warn!(error = %e, "skipping the flush at shutdown");
            return Ok(());
        }
        self.db.flush_wal(true)?;
        if let Err(e) = health {
            tracing::warn!(error = %e, "skipping the memtable flush at shutdown");
            return Ok(());
        }
        for cf in FAMILIES {
            self.db.flush_cf(self.cf(cf))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_another_format_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let meta = store.cf(CF_META);
            store
                .db
                .put_cf(meta, KEY_FORMAT, 99u32.to_le_bytes())
                .unwrap();
        }
        let err = Store::open(dir.path())
            .err()
            .expect("format 99 must be refused");
        assert!(err.to_string().contains("migrations/"), "{err}");
        // Still refused: nothing was rewritten by the failed open.
        assert!(Store::open(dir.path()).is_err());
    }

    #[test]
    fn points_round_trip_through_a_committed_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let point = StoredPoint {
            version: 3,
            vectors: vec![vec![1.0, 2.0]],
            sparse: Vec::new(),
            payload: Default::default(),
        };
        let mut batch = store.batch(7);
        store.put_point(&mut batch, PointId::Num(5), &point, &[]);
        store.put_point(&mut batch, PointId::Num(6), &point, &[]);
        store.delete_point(&mut batch, PointId::Num(6));
        store.commit(batch, 3, true).unwrap();
        let mut seen = Vec::new();
        store.for_each_point(7, |id, p| seen.push((id, p))).unwrap();
        assert_eq!(seen, vec![(PointId::Num(5), point)]);
        assert_eq!(store.lsn(7).unwrap(), 3);
        store
            .for_each_point(8, |_, _| panic!("another collection's points leaked"))
            .unwrap();
    }
}
