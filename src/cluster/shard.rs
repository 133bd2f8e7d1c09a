//! A shard replica's state machine: the shard's Raft log entries are write operations, and
//! applying them is what the single-node writer does (resolve, commit, apply, publish), with
//! the log index as the LSN. The replica's points live in a local collection; the group's
//! mark (last applied log id and membership) commits in the same RocksDB batch as the points.
//!
//! A Raft snapshot of the shard is our snapshot file, read from one RocksDB snapshot of the
//! points and the mark, so it is always the durable state at exactly its log id. Because the
//! durable state always is such a snapshot, none is kept: the current one is read when asked
//! for. Installing one replaces the points and restarts the collection through recovery.

use std::io::Cursor;
use std::sync::Arc;

use arc_swap::ArcSwap;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::log_store::{decode, encode, io_error, Result};
use super::types::{GroupId, NodeId, Peer};
use crate::collection::ops::Operation;
use crate::collection::registry::Registry;
use crate::collection::snapshot_file::{Header, SnapshotReader, SnapshotWriter};
use crate::collection::{Collection, CollectionError, RaftMark};

openraft::declare_raft_types!(
    /// A shard group's types.
    pub ShardTypes:
        D = ShardCommand,
        R = ShardReply,
        Node = Peer,
);

/// One log entry of a shard: operations applied atomically, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardCommand {
    pub ops: Vec<Operation>,
}

/// What applying an entry did: every replica answers the same.
pub type ShardReply = std::result::Result<(), CollectionError>;

/// The group's position, committed with the points it describes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Mark {
    pub applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, Peer>,
}

const MARK: &str = "sm";

/// The state machine of one shard replica. Clones share the mark.
#[derive(Clone)]
pub struct ShardStateMachine {
    registry: Arc<Registry>,
    /// The local collection holding the replica's points.
    collection: String,
    group: GroupId,
    mark: Arc<ArcSwap<Mark>>,
}

fn storage_error(e: impl std::fmt::Display) -> openraft::StorageError<NodeId> {
    io_error(ErrorSubject::StateMachine, ErrorVerb::Write, e)
}

impl ShardStateMachine {
    /// The state machine of `group` over local collection `collection`, at its stored mark.
    pub fn open(registry: Arc<Registry>, collection: String, group: GroupId) -> Result<Self> {
        let stored = registry
            .store
            .raft_state(group, MARK)
            .map_err(storage_error)?;
        let mark = match stored {
            Some(bytes) => decode(&bytes, ErrorSubject::StateMachine)?,
            None => Mark::default(),
        };
        Ok(ShardStateMachine {
            registry,
            collection,
            group,
            mark: Arc::new(ArcSwap::from_pointee(mark)),
        })
    }

    fn local(&self) -> Result<Arc<Collection>> {
        self.registry.get(&self.collection).map_err(storage_error)
    }

    /// The durable state as a snapshot: our snapshot file of the points, described by the mark
    /// read with them.
    async fn read_snapshot(&self) -> Result<Snapshot<ShardTypes>> {
        let local = self.local()?;
        let published = local.snapshot();
        let (store, id, group) = (self.registry.store.clone(), local.id, self.group);
        let name = self.collection.clone();
        let (mark, data) = tokio::task::spawn_blocking(move || {
            let (mark, points) = store.raft_view(id, group, MARK).map_err(storage_error)?;
            let mark: Mark = match mark {
                Some(bytes) => decode(&bytes, ErrorSubject::Snapshot(None))?,
                None => Mark::default(),
            };
            let header = Header {
                collection: name,
                config: (*published.config).clone(),
                payload_schema: (*published.schema).clone(),
                lsn: mark.applied.map_or(0, |id| id.index),
                points: points.len() as u64,
                written_by: format!("vecdb {}", env!("CARGO_PKG_VERSION")),
            };
            let mut writer = SnapshotWriter::new(Vec::new(), &header).map_err(storage_error)?;
            for (id, point) in &points {
                writer.point(*id, point).map_err(storage_error)?;
            }
            let (data, _) = writer.finish().map_err(storage_error)?;
            Ok::<_, openraft::StorageError<NodeId>>((mark, data))
        })
        .await
        .map_err(storage_error)??;
        let snapshot_id = match mark.applied {
            Some(id) => format!("{}-{}", id.leader_id.term, id.index),
            None => "0-0".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: mark.applied,
            last_membership: mark.membership,
            snapshot_id,
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftSnapshotBuilder<ShardTypes> for ShardStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ShardTypes>> {
        self.read_snapshot().await
    }
}

impl RaftStateMachine<ShardTypes> for ShardStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Peer>)> {
        let mark = self.mark.load();
        Ok((mark.applied, mark.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ShardReply>>
    where
        I: IntoIterator<Item = openraft::Entry<ShardTypes>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut mark = (**self.mark.load()).clone();
        // Blank and membership entries apply no operation but still advance the LSN, so the
        // collection's LSN is always the last applied log index.
        let batch: Vec<(u64, Vec<Operation>)> = entries
            .into_iter()
            .map(|entry| {
                mark.applied = Some(entry.log_id);
                let ops = match entry.payload {
                    EntryPayload::Normal(command) => command.ops,
                    EntryPayload::Membership(m) => {
                        mark.membership = StoredMembership::new(Some(entry.log_id), m);
                        Vec::new()
                    }
                    EntryPayload::Blank => Vec::new(),
                };
                (entry.log_id.index, ops)
            })
            .collect();
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let value = encode(&mark, ErrorSubject::StateMachine)?;
        let raft_mark = RaftMark {
            group: self.group,
            name: MARK,
            value,
        };
        // A commit that fails stops the group rather than skipping entries.
        let replies = self
            .local()?
            .replicate(batch, raft_mark)
            .await
            .map_err(storage_error)?;
        self.mark.store(Arc::new(mark));
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Peer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let mark = Mark {
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let value = encode(&mark, subject.clone())?;
        let lsn = meta.last_log_id.map_or(0, |id| id.index);
        let (registry, name, group) = (self.registry.clone(), self.collection.clone(), self.group);
        let installed = tokio::task::spawn_blocking(move || {
            let (mut reader, _) =
                SnapshotReader::open(snapshot.get_ref().as_slice()).map_err(|e| e.0)?;
            let mut points = Vec::new();
            while let Some(point) = reader.next_point().map_err(|e| e.0)? {
                points.push(point);
            }
            let wait = std::time::Duration::from_secs(600);
            registry
                .install(&name, points, lsn, (group, MARK, &value), wait)
                .map_err(|e| e.to_string())
        })
        .await;
        match installed {
            Ok(Ok(())) => {
                self.mark.store(Arc::new(mark));
                Ok(())
            }
            Ok(Err(e)) => Err(io_error(subject, ErrorVerb::Write, e)),
            Err(e) => Err(io_error(subject, ErrorVerb::Write, e)),
        }
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<ShardTypes>>> {
        if self.mark.load().applied.is_none() {
            return Ok(None);
        }
        Ok(Some(self.read_snapshot().await?))
    }
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
