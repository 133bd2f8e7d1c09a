//! Raft groups' durable state in the same RocksDB as the points, so that a state machine's
//! effects and its last applied log id commit in one `WriteBatch`.
//!
//! Column families (bytes only; the cluster layer encodes entries, votes and log ids):
//! - `raft_log`: group id (u64 BE) + log index (u64 BE) → entry;
//! - `raft_state`: group id (u64 BE) + `/` + name → value (vote, last purged log id, committed
//!   log id, a state machine's last applied log id and state).
//!
//! Every write here is synchronous with respect to the caller: when a method returns with
//! `sync`, the bytes are fsynced in RocksDB's WAL. Callers run these on blocking threads.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::codec::{decode_point, encode_point, StoredPoint};
use super::store::{
    meta_key, point_key, point_records, Batch, Store, CF_META, CF_POINTS, CF_RAFT_LOG,
    CF_RAFT_STATE,
};
use super::StorageError;
use crate::index::typed::Datatype;
use crate::point_id::PointId;

fn log_key(group: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn state_key(group: u64, name: &str) -> Vec<u8> {
    let mut key = group.to_be_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(name.as_bytes());
    key
}

fn index_of(key: &[u8]) -> Result<u64, StorageError> {
    key.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corrupt(format!("raft log key {key:?}")))
}

/// Changes to one group's Raft state, committed together by [`Store::raft_commit`] or inside
/// a collection's batch.
pub struct RaftBatch {
    group: u64,
    pub(super) inner: WriteBatch,
}

impl RaftBatch {
    /// Sets the value `name` of the group's state.
    pub fn put(&mut self, store: &Store, name: &str, value: &[u8]) {
        self.inner
            .put_cf(store.cf(CF_RAFT_STATE), state_key(self.group, name), value);
    }

    /// Removes the value `name` of the group's state.
    pub fn delete(&mut self, store: &Store, name: &str) {
        self.inner
            .delete_cf(store.cf(CF_RAFT_STATE), state_key(self.group, name));
    }
}

impl Store {
    /// Starts a batch of changes to group `group`'s state.
    pub fn raft_batch(&self, group: u64) -> RaftBatch {
        RaftBatch {
            group,
            inner: WriteBatch::default(),
        }
    }

    /// Commits a batch, fsyncing the WAL if `sync`.
    pub fn raft_commit(&self, batch: RaftBatch, sync: bool) -> Result<(), StorageError> {
        self.write(batch.inner, sync)
    }

    /// The value `name` of group `group`'s state.
    pub fn raft_state(&self, group: u64, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_RAFT_STATE), state_key(group, name))?)
    }

    /// Appends (or overwrites) log entries `(index, bytes)` of group `group` in one write.
    pub fn raft_append<'a>(
        &self,
        group: u64,
        entries: impl IntoIterator<Item = (u64, &'a [u8])>,
        sync: bool,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_RAFT_LOG);
        for (index, bytes) in entries {
            batch.put_cf(cf, log_key(group, index), bytes);
        }
        self.write(batch, sync)
    }

    /// The entries of group `group` with `from <= index < to`, in index order.
    pub fn raft_entries(
        &self,
        group: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(group, to).to_vec());
        let start = log_key(group, from);
        let iter = self.db.iterator_cf_opt(
            self.cf(CF_RAFT_LOG),
            opts,
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            out.push((index_of(&key)?, value.to_vec()));
        }
        Ok(out)
    }

    /// The last entry of group `group`, if it has any.
    pub fn raft_last_entry(&self, group: u64) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(group, 0).to_vec());
        let end = log_key(group, u64::MAX);
        let mut iter = self.db.iterator_cf_opt(
            self.cf(CF_RAFT_LOG),
            opts,
            IteratorMode::From(&end, Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (key, value) = item?;
                if !key.starts_with(&group.to_be_bytes()) {
                    return Ok(None);
                }
                Ok(Some((index_of(&key)?, value.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Removes group `group`'s entries with `from <= index < to`, together with the changes of
    /// `state` (a purge records the last purged log id in the same write).
    pub fn raft_remove(
        &self,
        from: u64,
        to: u64,
        mut state: RaftBatch,
        sync: bool,
    ) -> Result<(), StorageError> {
        let group = state.group;
        // The range end is exclusive, so the last possible index is removed through a point
        // delete.
        state.inner.delete_range_cf(
            self.cf(CF_RAFT_LOG),
            log_key(group, from),
            log_key(group, to),
        );
        if to == u64::MAX {
            state
                .inner
                .delete_cf(self.cf(CF_RAFT_LOG), log_key(group, u64::MAX));
        }
        self.write(state.inner, sync)
    }

    /// Removes every entry and state value of group `group`.
    pub fn raft_drop_group(&self, group: u64) -> Result<(), StorageError> {
        let mut batch = self.raft_batch(group);
        let prefix = |g: u64| g.to_be_bytes().to_vec();
        let end = group.checked_add(1).map_or(vec![0xff; 9], prefix);
        batch
            .inner
            .delete_range_cf(self.cf(CF_RAFT_STATE), prefix(group), end);
        self.raft_remove(0, u64::MAX, batch, true)
    }
}

/// A shard replica's state machine: its points and its mark, read or replaced together.
impl Store {
    /// Adds value `name` of group `group`'s state to a collection's batch, so a state
    /// machine's effects and its position commit together.
    pub fn put_raft_state_in(&self, batch: &mut Batch, group: u64, name: &str, value: &[u8]) {
        batch
            .inner
            .put_cf(self.cf(CF_RAFT_STATE), state_key(group, name), value);
    }

    /// Group `group`'s state value `name` and every point of `collection`, read from one
    /// RocksDB snapshot: what a Raft snapshot of the shard holds.
    #[allow(clippy::type_complexity)]
    pub fn raft_view(
        &self,
        collection: u64,
        group: u64,
        name: &str,
    ) -> Result<(Option<Vec<u8>>, Vec<(PointId, StoredPoint)>), StorageError> {
        let view = self.db.snapshot();
        let mark = view.get_cf(self.cf(CF_RAFT_STATE), state_key(group, name))?;
        let prefix = collection.to_be_bytes();
        let iter = view.iterator_cf(
            self.cf(CF_POINTS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        let mut points = Vec::new();
        point_records(iter, collection, |id, bytes| {
            points.push((id, decode_point(bytes)?));
            Ok(())
        })?;
        Ok((mark, points))
    }

    /// Replaces every point of `collection` with `points`, at LSN `lsn`, and sets group
    /// `group`'s state value `name`, in one fsynced write: installing a Raft snapshot.
    pub fn raft_install(
        &self,
        collection: u64,
        types: &[Datatype],
        points: impl IntoIterator<Item = (PointId, StoredPoint)>,
        lsn: u64,
        mark: (u64, &str, &[u8]),
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_POINTS);
        batch.delete_range_cf(cf, collection.to_be_bytes(), (collection + 1).to_be_bytes());
        for (id, point) in points {
            batch.put_cf(cf, point_key(collection, id), encode_point(&point, types));
        }
        batch.put_cf(
            self.cf(CF_META),
            meta_key("lsn", collection),
            lsn.to_le_bytes(),
        );
        let (group, name, value) = mark;
        batch.put_cf(self.cf(CF_RAFT_STATE), state_key(group, name), value);
        self.write(batch, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(store: &Store, group: u64) -> Vec<u64> {
        store
            .raft_entries(group, 0, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn groups_keep_their_entries_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let body = b"x".as_slice();
        store
            .raft_append(1, (1..=5).map(|i| (i, body)), true)
            .unwrap();
        store.raft_append(2, [(7, body)], false).unwrap();
        assert_eq!(entries(&store, 1), vec![1, 2, 3, 4, 5]);
        assert_eq!(store.raft_entries(1, 2, 4).unwrap().len(), 2);
        assert_eq!(store.raft_last_entry(1).unwrap().unwrap().0, 5);
        assert_eq!(store.raft_last_entry(2).unwrap().unwrap().0, 7);
        assert_eq!(store.raft_last_entry(3).unwrap(), None);
        assert_eq!(store.raft_last_entry(0).unwrap(), None);

        let mut purge = store.raft_batch(1);
        purge.put(&store, "purged", b"2");
        store.raft_remove(0, 3, purge, true).unwrap();
        store
            .raft_remove(5, u64::MAX, store.raft_batch(1), true)
            .unwrap();
        assert_eq!(entries(&store, 1), vec![3, 4]);
        assert_eq!(
            store.raft_state(1, "purged").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(entries(&store, 2), vec![7], "another group was touched");

        store.raft_drop_group(1).unwrap();
        assert!(entries(&store, 1).is_empty());
        assert_eq!(store.raft_state(1, "purged").unwrap(), None);
        assert_eq!(entries(&store, 2), vec![7]);
    }
}
