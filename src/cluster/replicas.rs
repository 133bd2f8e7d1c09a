//! The shard replicas this node holds, kept in step with the placement the metadata group
//! publishes: a replica placed here gets a local collection and its group's Raft core; a
//! replica of a deleted collection is stopped and its data dropped.
//!
//! A replica's local collection is named `{collection}~{group}`. `~` is refused in collection
//! names, so these never meet a user's, and group ids are never reused, so a collection deleted
//! and created again while this node was down never finds the old data under its name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::engine::{Consensus, ConsensusError, GroupStatus, RaftGroup, Role, Timing};
use super::log_store::LogStore;
use super::meta::{ClusterCollection, MetaView, ShardPlacement};
use super::network::{GroupNetwork, P2pClient, P2pError};
use super::node::Forwarded;
use super::shard::{ShardStateMachine, ShardTypes};
use super::types::{GroupId, NodeId, Peer};
use crate::collection::registry::Registry;
use crate::collection::Collection;
use crate::collection::IndexChange;

/// The separator of a replica's local collection name.
pub const SHARD_SEPARATOR: char = '~';

/// The local collection holding the replica of `group` of collection `name`.
pub fn local_name(name: &str, group: GroupId) -> String {
    format!("{name}{SHARD_SEPARATOR}{group}")
}

/// The group of a replica's local collection name.
fn group_of(local: &str) -> Option<GroupId> {
    local.rsplit_once(SHARD_SEPARATOR)?.1.parse().ok()
}

/// One shard replica on this node.
pub struct Replica {
    pub group: GroupId,
    /// The local collection with the replica's points.
    pub local: String,
    pub raft: Arc<RaftGroup<ShardTypes>>,
}

/// What every replica is started with.
pub struct ReplicaSettings {
    pub id: NodeId,
    pub client: P2pClient,
    pub timing: Timing,
    /// Whether log appends are fsynced (the storage sync policy).
    pub sync: bool,
}

/// The replicas of this node.
pub struct Replicas {
    registry: Arc<Registry>,
    settings: ReplicaSettings,
    running: ArcSwap<HashMap<GroupId, Arc<Replica>>>,
    /// Groups whose membership this node (their leader) is changing.
    changing: Arc<std::sync::Mutex<std::collections::HashSet<GroupId>>>,
    /// The latest placement of each group led here, which a running change checks before
    /// each step.
    targets: Arc<std::sync::Mutex<HashMap<GroupId, BTreeSet<NodeId>>>>,
}

/// Every shard group `view` places, with its collection.
fn placements(view: &MetaView) -> HashMap<GroupId, (&str, &ClusterCollection, &ShardPlacement)> {
    let mut placed = HashMap::new();
    for (name, collection) in &view.state.collections {
        for placement in &collection.shards {
            placed.insert(placement.group, (name.as_str(), collection, placement));
        }
    }
    placed
}

/// Returns once `current` says the placement being followed is no longer the latest.
async fn until_changed(current: &impl Fn() -> bool) {
    while current() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long a peer may take to say what it knows of a group's membership.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// How long a replica's local collection may wait for another create or delete.
const ADMIN_WAIT: Duration = Duration::from_secs(30);

impl Replicas {
    pub fn new(registry: Arc<Registry>, settings: ReplicaSettings) -> Self {
        Replicas {
            registry,
            settings,
            running: ArcSwap::from_pointee(HashMap::new()),
            changing: Default::default(),
            targets: Default::default(),
        }
    }

    /// The replica of `group` on this node, if it holds one.
    pub fn get(&self, group: GroupId) -> Option<Arc<Replica>> {
        self.running.load().get(&group).cloned()
    }

    /// The groups this node runs a replica of.
    pub fn groups(&self) -> Vec<GroupId> {
        self.running.load().keys().copied().collect()
    }

    /// The local collection of a replica.
    pub fn collection(&self, replica: &Replica) -> Result<Arc<Collection>, String> {
        self.registry.get(&replica.local).map_err(|e| e.to_string())
    }

    /// Starts the replicas `view` places here and stops those it dropped. Called again after
    /// every metadata change; a failure leaves the rest for the next call.
    pub async fn reconcile(&self, view: &MetaView) -> anyhow::Result<()> {
        let placed = placements(view);
        let wanted: HashMap<_, _> = placed
            .iter()
            .filter(|(_, (_, _, p))| p.replicas.contains(&self.settings.id))
            .map(|(group, placed)| (*group, *placed))
            .collect();
        let peers: BTreeMap<NodeId, Peer> = view
            .membership
            .membership()
            .nodes()
            .map(|(id, peer)| (*id, peer.clone()))
            .collect();
        let running = self.running.load_full();
        for (group, replica) in running.iter() {
            if wanted.contains_key(group) {
                continue;
            }
            // A replica placed elsewhere serves on until its group has taken it out (its
            // leader may be this node), so that the shard never has fewer replicas.
            let placement = placed.get(group).map(|(_, _, p)| *p);
            match placement {
                Some(p) if self.still_member(replica, p, &peers).await => {
                    self.follow_placement(p, &peers)
                }
                _ => self.stop(replica.clone()).await?,
            }
        }
        self.drop_orphans(view, &wanted).await?;
        for (group, (name, collection, placement)) in &wanted {
            if !self.running.load().contains_key(group) {
                self.start(name, collection, placement, &peers).await?;
            }
            self.follow_settings(name, *group, collection).await?;
            self.follow_placement(placement, &peers);
        }
        Ok(())
    }

    /// On the leader of a shard's group, brings its members to the placement: adds the peers
    /// placed since (each catches up as a learner first, then votes), then removes those no
    /// longer placed, learners of an aborted move included. Runs in the background, one
    /// change at a time per group; a change whose placement changes meanwhile (an aborted
    /// transfer) stops at its next step and leaves the rest to the next reconcile.
    fn follow_placement(&self, placement: &ShardPlacement, peers: &BTreeMap<NodeId, Peer>) {
        let Some(replica) = self.get(placement.group) else {
            return;
        };
        let status = replica.raft.status();
        if status.role != Role::Leader {
            return;
        }
        let group = placement.group;
        let wanted: BTreeSet<NodeId> = placement.replicas.iter().copied().collect();
        self.targets.lock().unwrap().insert(group, wanted.clone());
        let members: BTreeSet<NodeId> = status.members.keys().copied().collect();
        let voters = status.voters();
        if (voters == wanted && members == wanted) || !self.changing.lock().unwrap().insert(group) {
            return;
        }
        let added: Vec<(NodeId, Peer)> = wanted
            .difference(&voters)
            .map(|id| (*id, peers.get(id).cloned().unwrap_or_default()))
            .collect();
        let removed: Vec<NodeId> = members.difference(&wanted).copied().collect();
        let (changing, targets) = (self.changing.clone(), self.targets.clone());
        let current = move || targets.lock().unwrap().get(&group) == Some(&wanted);
        tokio::spawn(async move {
            let raft = &replica.raft;
            let mut complete = true;
            for (id, peer) in added {
                // A learner that cannot catch up (its peer is down) waits until its transfer
                // is aborted; the next reconcile then removes it.
                let caught_up = tokio::select! {
                    caught_up = raft.add_learner(id, peer) => caught_up,
                    () = until_changed(&current) => Ok(()),
                };
                let added = match caught_up {
                    Ok(()) if current() => raft.promote(id).await,
                    Ok(()) => Err(ConsensusError::Rejected("the placement changed".into())),
                    Err(e) => Err(e),
                };
                match added {
                    Ok(()) => tracing::info!(group, peer_id = id, "replica added"),
                    Err(e) => {
                        tracing::warn!(group, peer_id = id, "adding a replica: {e}; retrying");
                        complete = false;
                    }
                }
            }
            // Replicas leave only once their replacements are in: a move that fails keeps
            // the old replicas, and the next reconcile tries it again.
            for id in removed.into_iter().filter(|_| complete && current()) {
                match raft.remove_voter(id).await {
                    Ok(()) => tracing::info!(group, peer_id = id, "replica removed"),
                    Err(e) => tracing::warn!(group, peer_id = id, "removing a replica: {e}"),
                }
            }
            changing.lock().unwrap().remove(&group);
        });
    }

    /// Whether this node is still a member of `replica`'s group: by its own view, unless a
    /// replica of the group knows a later membership without it (a removed member need not
    /// receive the entry that removes it).
    async fn still_member(
        &self,
        replica: &Replica,
        placement: &ShardPlacement,
        peers: &BTreeMap<NodeId, Peer>,
    ) -> bool {
        let mine = replica.raft.status();
        if !mine.members.contains_key(&self.settings.id) {
            return false;
        }
        let path = format!("/shard/{}/status", replica.group);
        let others = placement.replicas.iter().filter_map(|id| peers.get(id));
        let asks = others.map(|peer| {
            let answer = self
                .settings
                .client
                .post(&peer.p2p, &path, &(), STATUS_WAIT);
            async move {
                let answer: Result<Forwarded<GroupStatus>, P2pError> = answer.await;
                answer
            }
        });
        let answers = futures::future::join_all(asks).await;
        !answers.into_iter().flatten().flatten().any(|theirs| {
            theirs.membership_index > mine.membership_index
                && !theirs.members.contains_key(&self.settings.id)
        })
    }

    async fn start(
        &self,
        name: &str,
        collection: &ClusterCollection,
        placement: &ShardPlacement,
        peers: &BTreeMap<NodeId, Peer>,
    ) -> anyhow::Result<()> {
        let group = placement.group;
        let local = local_name(name, group);
        if self.registry.get(&local).is_err() {
            let (registry, config, at) = (
                self.registry.clone(),
                collection.config.clone(),
                local.clone(),
            );
            tokio::task::spawn_blocking(move || registry.create(&at, config, ADMIN_WAIT)).await??;
        }
        let s = &self.settings;
        let store = self.registry.store.clone();
        let log = LogStore::new(store, group, s.sync);
        let machine = ShardStateMachine::open(self.registry.clone(), local.clone(), group)?;
        let network = GroupNetwork::new(s.client.clone(), group);
        let raft = RaftGroup::start(s.id, group, &s.timing, network, log, machine).await?;
        if placement.initial.contains(&s.id) && !raft.is_initialized().await? {
            let members = placement
                .initial
                .iter()
                .map(|id| {
                    let peer = peers.get(id).cloned().unwrap_or_default();
                    (*id, peer)
                })
                .collect();
            raft.initialize(members).await?;
        }
        tracing::info!(collection = name, group, local = %local, "shard replica started");
        let replica = Arc::new(Replica {
            group,
            local,
            raft: Arc::new(raft),
        });
        self.running.rcu(|running| {
            let mut running = HashMap::clone(running);
            running.insert(group, replica.clone());
            running
        });
        Ok(())
    }

    /// Stops a replica whose collection is gone and drops its points and Raft log.
    async fn stop(&self, replica: Arc<Replica>) -> anyhow::Result<()> {
        self.running.rcu(|running| {
            let mut running = HashMap::clone(running);
            running.remove(&replica.group);
            running
        });
        replica.raft.shutdown().await;
        self.drop_local(replica.local.clone(), replica.group)
            .await?;
        tracing::info!(group = replica.group, "shard replica dropped");
        Ok(())
    }

    async fn drop_local(&self, local: String, group: GroupId) -> anyhow::Result<()> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            registry.delete(&local, ADMIN_WAIT)?;
            registry.store.raft_drop_group(group)?;
            Ok(())
        })
        .await?
    }

    /// Drops local replicas that `view` knows were removed while this node was away. A group
    /// the view has not handed out yet is left alone: the view may be older than the replica.
    async fn drop_orphans(
        &self,
        view: &MetaView,
        wanted: &HashMap<GroupId, (&str, &ClusterCollection, &ShardPlacement)>,
    ) -> anyhow::Result<()> {
        for local in self.registry.names() {
            let Some(group) = group_of(&local) else {
                continue;
            };
            let known = group < view.state.next_group;
            if known && !wanted.contains_key(&group) && !self.running.load().contains_key(&group) {
                tracing::info!(group, local = %local, "dropping a replica removed while away");
                self.drop_local(local, group).await?;
            }
        }
        Ok(())
    }

    /// Brings the local collection's settings and payload indexes to the cluster's. Indexes
    /// are derived data, so each replica builds them on its own.
    async fn follow_settings(
        &self,
        name: &str,
        group: GroupId,
        collection: &ClusterCollection,
    ) -> anyhow::Result<()> {
        let local = self.registry.get(&local_name(name, group))?;
        let snapshot = local.snapshot();
        // The configuration has no equality of its own; its stored form does.
        if serde_json::to_value(&*snapshot.config)? != serde_json::to_value(&collection.config)? {
            let config = collection.config.clone();
            local.reconfigure(config, Duration::from_secs(60)).await?;
        }
        let current = snapshot.schema.clone();
        let wanted = &collection.payload_schema;
        let wait = Duration::from_secs(600);
        for field in current.keys().filter(|f| !wanted.contains_key(*f)) {
            let change = IndexChange::Drop {
                name: field.clone(),
            };
            local.change_index(change, wait).await?;
        }
        for (field, spec) in wanted {
            if current.get(field) != Some(spec) {
                let key = crate::filter::parse_path(field).map_err(anyhow::Error::msg)?;
                let change = IndexChange::Create {
                    name: field.clone(),
                    key,
                    spec: spec.clone(),
                };
                local.change_index(change, wait).await?;
            }
        }
        Ok(())
    }

    /// Stops every replica's Raft core (their collections stop with the registry).
    pub async fn shutdown(&self) {
        for replica in self.running.load().values() {
            replica.raft.shutdown().await;
        }
    }
}
