//! The metadata group's state machine: which collections exist, with what configuration and
//! payload indexes, and where their shards' replicas live.
//!
//! The state is small, so every applied batch rewrites it whole, together with the last
//! applied log id and membership, in one RocksDB write: after a crash the state and the index
//! it reflects always match, and openraft re-applies what follows from the log. No fsync is
//! needed there, because the log itself is durable. Readers load the published state through
//! `ArcSwap`, like a collection's snapshot.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use arc_swap::ArcSwap;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::log_store::{blocking, decode, encode, Result};
use super::rebalance::Placements;
use super::types::{GroupId, NodeId, Peer};
use crate::collection::aliases::{self, AliasAction, Aliases};
use crate::collection::config::CollectionConfig;
use crate::filter::index::PayloadSchema;
use crate::storage::Store;

openraft::declare_raft_types!(
    /// The metadata group's types.
    pub MetaTypes:
        D = MetaCommand,
        R = MetaReply,
        Node = Peer,
);

/// Where one shard lives: its Raft group and the peers holding its replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardPlacement {
    pub group: GroupId,
    pub replicas: Vec<NodeId>,
    /// The replicas the group was created with. Each of them initializes the group with this
    /// same membership (which openraft allows); a replica placed later is added by the
    /// group's leader instead, and must never initialize.
    #[serde(default)]
    pub initial: Vec<NodeId>,
    /// The replicas placed before the last move that are not placed now: until the move is
    /// done they are still members of the group, and serve it.
    #[serde(default)]
    pub previous: Vec<NodeId>,
}

/// A collection as the cluster knows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterCollection {
    pub config: CollectionConfig,
    #[serde(default)]
    pub payload_schema: PayloadSchema,
    /// Indexed by shard number.
    pub shards: Vec<ShardPlacement>,
}

/// What the metadata group agrees on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetaState {
    pub collections: BTreeMap<String, ClusterCollection>,
    /// Other names of collections.
    #[serde(default)]
    pub aliases: Aliases,
    /// The next shard group id to hand out (group 0 is this group).
    pub next_group: GroupId,
}

/// A change to the metadata. Commands are checked before they are proposed; applying one that
/// no longer fits (a collection created twice by racing requests) changes nothing and answers
/// [`MetaReply::Rejected`], the same on every peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateCollection {
        name: String,
        config: CollectionConfig,
        /// Replica peers of each shard, in shard order.
        replicas: Vec<Vec<NodeId>>,
    },
    DeleteCollection {
        name: String,
    },
    UpdateCollection {
        name: String,
        config: CollectionConfig,
    },
    SetPayloadSchema {
        name: String,
        schema: PayloadSchema,
    },
    /// Alias changes, applied all or nothing.
    UpdateAliases {
        actions: Vec<AliasAction>,
    },
    /// A dead peer leaves: its replicas are re-placed as listed (collection, shard, new
    /// replica peers).
    RemovePeer {
        id: NodeId,
        placements: Placements,
    },
    /// Shards move (a peer joined, or is drained): each listed shard gets the listed replica
    /// peers, which its group's leader then brings its membership to.
    Place {
        placements: Placements,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaReply {
    Done,
    Rejected(String),
}

impl MetaState {
    /// The collection `name` names, directly or as an alias, with its own name.
    pub fn resolve(&self, name: &str) -> Option<(&String, &ClusterCollection)> {
        let target = self.aliases.get(name).map_or(name, String::as_str);
        self.collections
            .get_key_value(name)
            .or_else(|| self.collections.get_key_value(target))
    }

    /// Applies one command; the reply says whether it changed anything.
    pub fn apply(&mut self, command: MetaCommand) -> MetaReply {
        match command {
            MetaCommand::CreateCollection {
                name,
                config,
                replicas,
            } => {
                if self.collections.contains_key(&name) {
                    return MetaReply::Rejected(format!("collection `{name}` already exists"));
                }
                if self.aliases.contains_key(&name) {
                    return MetaReply::Rejected(format!("alias `{name}` already exists"));
                }
                let first = self.next_group.max(1);
                self.next_group = first + replicas.len() as u64;
                let shards = (first..)
                    .zip(replicas)
                    .map(|(group, replicas)| ShardPlacement {
                        group,
                        initial: replicas.clone(),
                        replicas,
                        previous: Vec::new(),
                    })
                    .collect();
                let collection = ClusterCollection {
                    config,
                    payload_schema: PayloadSchema::default(),
                    shards,
                };
                self.collections.insert(name, collection);
            }
            MetaCommand::DeleteCollection { name } => {
                if self.collections.remove(&name).is_none() {
                    return MetaReply::Rejected(format!("collection `{name}` does not exist"));
                }
                self.aliases.retain(|_, target| *target != name);
            }
            MetaCommand::UpdateCollection { name, config } => match self.collections.get_mut(&name)
            {
                Some(c) => c.config = config,
                None => return MetaReply::Rejected(format!("collection `{name}` does not exist")),
            },
            MetaCommand::Place { placements } => self.place(placements),
            MetaCommand::RemovePeer { id, placements } => {
                self.place(placements);
                // Whatever the listed placements missed (a collection created meanwhile).
                for collection in self.collections.values_mut() {
                    for placement in &mut collection.shards {
                        placement.replicas.retain(|r| *r != id);
                    }
                }
            }
            MetaCommand::UpdateAliases { actions } => {
                let collections = &self.collections;
                let is_collection = |n: &str| collections.contains_key(n);
                match aliases::apply(&self.aliases, is_collection, &actions) {
                    Ok(next) => self.aliases = next,
                    Err(e) => return MetaReply::Rejected(e.to_string()),
                }
            }
            MetaCommand::SetPayloadSchema { name, schema } => {
                match self.collections.get_mut(&name) {
                    Some(c) => c.payload_schema = schema,
                    None => {
                        return MetaReply::Rejected(format!("collection `{name}` does not exist"))
                    }
                }
            }
        }
        MetaReply::Done
    }
}

impl MetaState {
    /// Gives each listed shard its listed replicas. A collection deleted since the list was
    /// made, or an empty replica list, changes nothing.
    fn place(&mut self, placements: Placements) {
        for (name, shard, replicas) in placements {
            let placement = self
                .collections
                .get_mut(&name)
                .and_then(|c| c.shards.get_mut(shard));
            if let Some(placement) = placement.filter(|_| !replicas.is_empty()) {
                let old = std::mem::replace(&mut placement.replicas, replicas);
                placement.previous = old
                    .into_iter()
                    .filter(|r| !placement.replicas.contains(r))
                    .collect();
            }
        }
    }
}

/// The state with the log position it reflects: what is persisted and published.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetaView {
    pub applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, Peer>,
    pub state: MetaState,
}

/// A snapshot as stored: openraft's description of it and the view it holds.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Peer>,
    data: Vec<u8>,
}

const VIEW: &str = "sm";
const SNAPSHOT: &str = "snapshot";

/// The metadata state machine. Clones share the published view.
#[derive(Clone)]
pub struct MetaStateMachine {
    store: Arc<Store>,
    group: GroupId,
    view: Arc<ArcSwap<MetaView>>,
    /// Wakes whoever acts on the metadata (starting and stopping shard replicas).
    changed: Arc<tokio::sync::Notify>,
}

impl MetaStateMachine {
    /// Opens the state machine of `group`, loading the view it last persisted.
    pub fn open(store: Arc<Store>, group: GroupId) -> Result<Self> {
        let view = match store.raft_state(group, VIEW).map_err(|e| {
            super::log_store::io_error(ErrorSubject::StateMachine, ErrorVerb::Read, e)
        })? {
            Some(bytes) => decode(&bytes, ErrorSubject::StateMachine)?,
            None => MetaView::default(),
        };
        Ok(MetaStateMachine {
            store,
            group,
            view: Arc::new(ArcSwap::from_pointee(view)),
            changed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Resolves after the next published change (a future made before a change sees it).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The published view; never waits for the Raft core.
    pub fn view(&self) -> Arc<MetaView> {
        self.view.load_full()
    }

    /// Persists `view` (and `snapshot`, if given) in one write, then publishes it.
    async fn persist(&self, view: MetaView, snapshot: Option<Vec<u8>>) -> Result<()> {
        let bytes = encode(&view, ErrorSubject::StateMachine)?;
        let (store, group) = (self.store.clone(), self.group);
        // A snapshot is fsynced because openraft may purge the log it covers right after.
        let sync = snapshot.is_some();
        blocking(ErrorSubject::StateMachine, ErrorVerb::Write, move || {
            let mut batch = store.raft_batch(group);
            batch.put(&store, VIEW, &bytes);
            if let Some(snapshot) = &snapshot {
                batch.put(&store, SNAPSHOT, snapshot);
            }
            store.raft_commit(batch, sync)
        })
        .await?;
        self.view.store(Arc::new(view));
        self.changed.notify_waiters();
        Ok(())
    }
}

impl RaftSnapshotBuilder<MetaTypes> for MetaStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaTypes>> {
        let view = self.view();
        let data = encode(&view.state, ErrorSubject::StateMachine)?;
        let snapshot_id = match view.applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, now_micros()),
            None => format!("0-0-{}", now_micros()),
        };
        let meta = SnapshotMeta {
            last_log_id: view.applied,
            last_membership: view.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let stored = encode(&stored, subject)?;
        self.persist((*view).clone(), Some(stored)).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

fn now_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

impl RaftStateMachine<MetaTypes> for MetaStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Peer>)> {
        let view = self.view();
        Ok((view.applied, view.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaReply>>
    where
        I: IntoIterator<Item = openraft::Entry<MetaTypes>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut view = (*self.view()).clone();
        let mut replies = Vec::new();
        for entry in entries {
            view.applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => MetaReply::Done,
                EntryPayload::Normal(command) => view.state.apply(command),
                EntryPayload::Membership(m) => {
                    view.membership = StoredMembership::new(Some(entry.log_id), m);
                    MetaReply::Done
                }
            });
        }
        self.persist(view, None).await?;
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
        let data = snapshot.into_inner();
        let view = MetaView {
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            state: decode(&data, subject.clone())?,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let stored = encode(&stored, subject)?;
        self.persist(view, Some(stored)).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaTypes>>> {
        let (store, group) = (self.store.clone(), self.group);
        let bytes = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Read, move || {
            store.raft_state(group, SNAPSHOT)
        })
        .await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let stored: StoredSnapshot = decode(&bytes, ErrorSubject::Snapshot(None))?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::StorageError;
    use tempfile::TempDir;

    use super::*;
    use crate::cluster::log_store::LogStore;

    struct Builder;

    impl StoreBuilder<MetaTypes, LogStore<MetaTypes>, MetaStateMachine, TempDir> for Builder {
        async fn build(
            &self,
        ) -> std::result::Result<
            (TempDir, LogStore<MetaTypes>, MetaStateMachine),
            StorageError<NodeId>,
        > {
            let dir = TempDir::new().expect("temporary directory");
            let store = Arc::new(Store::open(dir.path()).expect("store"));
            let log = LogStore::new(store.clone(), 7, true);
            let sm = MetaStateMachine::open(store, 7)?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own conformance suite for log and state-machine storage.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).expect("openraft storage suite");
    }
}
