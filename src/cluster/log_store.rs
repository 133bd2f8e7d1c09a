//! The Raft log and vote of one group, kept in RocksDB's `raft_log` and `raft_state` families.
//!
//! Durability rules (openraft's contract, and the pitfalls its users hit): an append is
//! reported flushed only after RocksDB's WAL holds it (fsynced unless the sync policy is `os`),
//! and a vote is fsynced before `save_vote` returns, whatever the policy, because a forgotten
//! vote lets a node vote twice in one term. Every RocksDB call runs on a blocking thread so the
//! Raft core never waits on the disk.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftTypeConfig,
    StorageError, StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::{GroupId, NodeId};
use super::wire;
use crate::storage::Store;
use crate::telemetry::sync::WaitSite;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

pub type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// A storage failure in openraft's terms: what was being done to which part of the state.
pub fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::error(e)).into()
}

/// Runs storage work on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    work: impl FnOnce() -> std::result::Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T> {
    let err = subject.clone();
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(io_error(subject, verb, e)),
        Err(e) => Err(io_error(err, verb, e)),
    }
}

/// `value` as stored (see [`super::wire`]).
pub fn encode<T: Serialize>(value: &T, subject: ErrorSubject<NodeId>) -> Result<Vec<u8>> {
    wire::to_bytes(value).map_err(|e| io_error(subject, ErrorVerb::Write, e))
}

/// A stored value (see [`super::wire`]).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], subject: ErrorSubject<NodeId>) -> Result<T> {
    wire::from_bytes(bytes).map_err(|e| io_error(subject, ErrorVerb::Read, e))
}

/// One group's log. Cheap to clone: the log reader openraft asks for is a clone.
pub struct LogStore<C> {
    store: Arc<Store>,
    group: GroupId,
    /// Whether appends are fsynced (the sync policy is not `os`).
    sync: bool,
    /// How long appends wait for the disk (the `raft_append` wait in `/metrics`).
    appends: WaitSite,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            store: self.store.clone(),
            group: self.group,
            appends: self.appends.clone(),
            sync: self.sync,
            _config: PhantomData,
        }
    }
}

impl<C> LogStore<C> {
    pub fn new(store: Arc<Store>, group: GroupId, sync: bool) -> Self {
        LogStore {
            store,
            group,
            sync,
            appends: WaitSite::new("raft_append", None),
            _config: PhantomData,
        }
    }

    async fn read_state<T: DeserializeOwned + Send + 'static>(
        &self,
        name: &'static str,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>> {
        let (store, group) = (self.store.clone(), self.group);
        let bytes = blocking(subject.clone(), ErrorVerb::Read, move || {
            store.raft_state(group, name)
        })
        .await?;
        bytes.map(|b| decode(&b, subject)).transpose()
    }

    async fn write_state(
        &self,
        name: &'static str,
        bytes: Vec<u8>,
        subject: ErrorSubject<NodeId>,
    ) -> Result<()> {
        let (store, group) = (self.store.clone(), self.group);
        blocking(subject, ErrorVerb::Write, move || {
            let mut batch = store.raft_batch(group);
            batch.put(&store, name, &bytes);
            store.raft_commit(batch, true)
        })
        .await
    }
}

/// `[from, to)` of a range of log indexes.
fn index_range(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&i) => i.saturating_add(1),
        Bound::Excluded(&i) => i,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>> {
        let (from, to) = index_range(&range);
        let (store, group) = (self.store.clone(), self.group);
        let rows = blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            store.raft_entries(group, from, to)
        })
        .await?;
        rows.iter()
            .map(|(_, bytes)| decode(bytes, ErrorSubject::Logs))
            .collect()
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>> {
        let (store, group) = (self.store.clone(), self.group);
        let last = blocking(ErrorSubject::Logs, ErrorVerb::Read, move || {
            store.raft_last_entry(group)
        })
        .await?;
        let last: Option<Entry<C>> = last
            .map(|(_, bytes)| decode(&bytes, ErrorSubject::Logs))
            .transpose()?;
        let purged: Option<LogId<NodeId>> = self.read_state(PURGED, ErrorSubject::Store).await?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.map(|e| e.log_id).or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let bytes = encode(vote, ErrorSubject::Vote)?;
        self.write_state(VOTE, bytes, ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.read_state(VOTE, ErrorSubject::Vote).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        let bytes = encode(&committed, ErrorSubject::Store)?;
        self.write_state(COMMITTED, bytes, ErrorSubject::Store)
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self
            .read_state::<Option<LogId<NodeId>>>(COMMITTED, ErrorSubject::Store)
            .await?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, encode(&e, ErrorSubject::Logs)?)))
            .collect::<Result<Vec<_>>>()?;
        let (store, group, sync) = (self.store.clone(), self.group, self.sync);
        let started = std::time::Instant::now();
        let written = blocking(ErrorSubject::Logs, ErrorVerb::Write, move || {
            store.raft_append(group, rows.iter().map(|(i, b)| (*i, b.as_slice())), sync)
        })
        .await;
        // Told only now, once the WAL holds the entries; on failure the callback carries the
        // error so the Raft core stops instead of counting an entry that is not there.
        match written {
            Ok(()) => {
                self.appends.waited(started);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                self.appends.gave_up(started);
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let (store, group) = (self.store.clone(), self.group);
        blocking(ErrorSubject::Logs, ErrorVerb::Delete, move || {
            store.raft_remove(log_id.index, u64::MAX, store.raft_batch(group), true)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let bytes = encode(&log_id, ErrorSubject::Store)?;
        let (store, group) = (self.store.clone(), self.group);
        // The purge point and the removal commit together, so a crash never leaves a log
        // whose start is unknown.
        blocking(ErrorSubject::Logs, ErrorVerb::Delete, move || {
            let mut state = store.raft_batch(group);
            state.put(&store, PURGED, &bytes);
            store.raft_remove(0, log_id.index + 1, state, true)
        })
        .await
    }
}
