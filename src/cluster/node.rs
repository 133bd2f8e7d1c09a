//! This node's place in the cluster: its id and addresses, the metadata group, the groups its
//! peers can reach, and how it enters a cluster (start a new one, join one, or rejoin).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::engine::{Consensus, ConsensusError, RaftEndpoint, RaftGroup, Timing};
use super::log_store::LogStore;
use super::meta::{MetaCommand, MetaReply, MetaStateMachine, MetaView};
use super::network::{GroupNetwork, P2pClient, P2pError};
use super::replicas::{ReplicaSettings, Replicas};
use super::types::{GroupId, NodeId, Peer, META_GROUP};
use crate::collection::registry::Registry;
use crate::config::{Config, SyncPolicy};

/// A request to add a peer to the cluster, sent to any member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: NodeId,
    pub peer: Peer,
}

/// Why a peer could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemovePeerError {
    #[error("peer {0} is not in the cluster")]
    Unknown(NodeId),
    #[error("{0}")]
    Refused(String),
    /// Its replicas did not all move away within the request's time.
    #[error("{0}")]
    Draining(String),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
}

/// How often a drain looks whether the peer still runs replicas.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// A group's answer to a request forwarded to its leader.
pub type Forwarded<T> = Result<T, ConsensusError>;

/// This node in the cluster.
pub struct ClusterNode {
    pub id: NodeId,
    pub peer: Peer,
    meta: Arc<RaftGroup<super::meta::MetaTypes>>,
    meta_sm: MetaStateMachine,
    pub(super) client: P2pClient,
    pub(super) replicas: Replicas,
    /// The last known leader of each shard group, where proposals go first.
    pub(super) leaders: dashmap::DashMap<GroupId, NodeId>,
    /// The API's routes without the cluster layer, for reads of local shard replicas.
    pub(super) shard_api: OnceLock<axum::Router>,
    rpc_timeout: Duration,
    stopping: std::sync::atomic::AtomicBool,
}

/// Where this node is reached: the configured host (or `advertise_host`) and the bound ports.
pub fn advertised_peer(config: &Config, api_port: u16, p2p_port: u16) -> anyhow::Result<Peer> {
    let host = config
        .cluster
        .advertise_host
        .clone()
        .unwrap_or_else(|| config.service.host.clone());
    if host == "0.0.0.0" || host == "::" || host == "[::]" {
        anyhow::bail!(
            "service.host {host} is a wildcard peers cannot connect to: set cluster.advertise_host (VECDB__CLUSTER__ADVERTISE_HOST)"
        );
    }
    Ok(Peer {
        api: format!("{host}:{api_port}"),
        p2p: format!("{host}:{p2p_port}"),
    })
}

/// How long a rejoining peer waits for each other peer's view of the members.
const MEMBERS_WAIT: Duration = Duration::from_secs(2);

impl ClusterNode {
    /// Recovers the metadata group from `store` and starts its Raft core. The node takes part
    /// in the cluster once [`ClusterNode::enter`] returns.
    pub async fn start(
        registry: Arc<Registry>,
        config: &Config,
        peer: Peer,
    ) -> anyhow::Result<Self> {
        let cluster = &config.cluster;
        let secret = cluster.required_secret().map_err(anyhow::Error::msg)?;
        let store = registry.store.clone();
        let id = store.node_id()?;
        let client = P2pClient::new(secret, cluster.dial_table().map_err(anyhow::Error::msg)?)?;
        let timing = Timing {
            heartbeat_ms: cluster.heartbeat_ms,
            election_timeout_ms: cluster.election_timeout_ms,
        };
        let sync = config.storage.sync_policy != SyncPolicy::Os;
        let log = LogStore::new(store.clone(), META_GROUP, sync);
        let meta_sm = MetaStateMachine::open(store, META_GROUP)?;
        let network = GroupNetwork::new(client.clone(), META_GROUP);
        let meta = RaftGroup::start(id, META_GROUP, &timing, network, log, meta_sm.clone()).await?;
        let settings = ReplicaSettings {
            id,
            client: client.clone(),
            timing,
            sync,
        };
        Ok(ClusterNode {
            id,
            peer,
            meta: Arc::new(meta),
            meta_sm,
            client,
            replicas: Replicas::new(registry, settings),
            leaders: Default::default(),
            shard_api: OnceLock::new(),
            rpc_timeout: Duration::from_millis(cluster.rpc_timeout_ms),
            stopping: Default::default(),
        })
    }

    /// Takes this node into a cluster: a node that ever had a membership rejoins from its data
    /// directory (and ignores `bootstrap`); a new one joins through `bootstrap` or, without it,
    /// starts a cluster of its own. The group is initialized only in that last case, once.
    pub async fn enter(&self, bootstrap: Option<&str>) -> anyhow::Result<()> {
        if self.meta.is_initialized().await? {
            self.check_still_member().await?;
            tracing::info!(
                peer_id = self.id,
                "rejoining the cluster from the data directory"
            );
            return Ok(());
        }
        match bootstrap {
            None => {
                let members = BTreeMap::from([(self.id, self.peer.clone())]);
                self.meta.initialize(members).await?;
                tracing::info!(peer_id = self.id, "started a new cluster");
            }
            Some(url) => self.join(url).await?,
        }
        Ok(())
    }

    /// Refuses to rejoin when the cluster removed this peer while it was away (`DELETE
    /// /cluster/peer`): its data directory still says it is a member, and running on would
    /// have it call elections in groups that went on without it. Only a peer whose membership
    /// comes from further along the log than this one's can tell; peers that cannot be
    /// reached tell nothing (the whole cluster may be restarting).
    async fn check_still_member(&self) -> anyhow::Result<()> {
        let mine = self.meta_status();
        let others = mine.members.iter().filter(|(id, _)| **id != self.id);
        let asks = others.map(|(other, (peer, _))| async move {
            let path = "/cluster/members";
            let answer = self.client.post(&peer.p2p, path, &(), MEMBERS_WAIT).await;
            (*other, answer)
        });
        for (other, answer) in futures::future::join_all(asks).await {
            let answer: Result<(Vec<NodeId>, u64), P2pError> = answer;
            let Ok((members, index)) = answer else {
                continue;
            };
            if index > mine.last_log_index && !members.contains(&self.id) {
                anyhow::bail!(
                    "this peer ({}) was removed from the cluster while it was away (peer {other} \
                     no longer lists it); start it with an empty data directory to join as a \
                     new peer",
                    self.id
                );
            }
        }
        Ok(())
    }

    async fn join(&self, url: &str) -> anyhow::Result<()> {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let request = JoinRequest {
            id: self.id,
            peer: self.peer.clone(),
        };
        let mut delay = Duration::from_millis(200);
        loop {
            // Joining includes catching up as a learner, which may take a while.
            let answer: Result<Forwarded<()>, P2pError> = self
                .client
                .post(&addr, "/cluster/join", &request, Duration::from_secs(120))
                .await;
            match answer {
                Ok(Ok(())) => {
                    tracing::info!(peer_id = self.id, bootstrap = url, "joined the cluster");
                    return Ok(());
                }
                Ok(Err(ConsensusError::Rejected(why))) => {
                    anyhow::bail!("the cluster at {url} refused this peer: {why}")
                }
                Err(P2pError::Status {
                    status, message, ..
                }) if status == 401 || status == 403 => {
                    anyhow::bail!("the cluster at {url} refused this peer: {message}")
                }
                Ok(Err(e)) => tracing::warn!("joining through {url}: {e}; retrying"),
                Err(e) => tracing::warn!("joining through {url}: {e}; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Adds a peer to the metadata group (on its leader, wherever that is), then gives it its
    /// share of the shard replicas.
    pub async fn admit(&self, request: JoinRequest) -> Forwarded<()> {
        let deadline = Instant::now() + Duration::from_secs(110);
        let JoinRequest { id, peer } = request.clone();
        self.on_leader(deadline, "/cluster/join", &request, || {
            self.meta.add_voter(id, peer.clone())
        })
        .await?;
        self.place_on(id, deadline).await
    }

    /// Moves to peer `joined` its share of the replicas, taken from the most loaded peers.
    /// Idempotent: a peer that has its share is given nothing more.
    async fn place_on(&self, joined: NodeId, deadline: Instant) -> Forwarded<()> {
        self.sync_meta(deadline.saturating_duration_since(Instant::now()))
            .await;
        let mut voters = self.voters();
        voters.insert(joined);
        let placements = super::rebalance::with_peer(&self.meta().state, joined, &voters);
        if placements.is_empty() {
            return Ok(());
        }
        let moves = placements.len();
        let command = MetaCommand::Place { placements };
        let left = deadline.saturating_duration_since(Instant::now());
        self.propose_meta(command, left).await?;
        tracing::info!(
            peer_id = joined,
            moves,
            "replicas placed on the joined peer"
        );
        Ok(())
    }

    /// Where peer `id`'s replicas go when it leaves: to the least loaded of the others.
    fn placements_without(&self, id: NodeId) -> super::rebalance::Placements {
        let mut voters = self.voters();
        voters.remove(&id);
        super::rebalance::without_peer(&self.meta().state, id, &voters)
    }

    /// The voting members of the metadata group: the peers that hold data.
    pub fn voters(&self) -> std::collections::BTreeSet<NodeId> {
        self.meta_status().voters()
    }

    /// Commits a metadata change, forwarding it to the group's leader if need be.
    pub async fn propose_meta(
        &self,
        command: MetaCommand,
        timeout: Duration,
    ) -> Forwarded<(u64, MetaReply)> {
        let deadline = Instant::now() + timeout;
        self.on_leader(deadline, "/meta/propose", &command, || {
            self.meta.propose(command.clone())
        })
        .await
    }

    /// Removes a peer: re-places its shard replicas on the others (whose groups' leaders then
    /// add the new replicas and drop the old one) and takes it out of the metadata group. A
    /// peer that still answers is drained first, unless `force`: its replicas move while it
    /// serves them, so no shard has fewer replicas meanwhile.
    pub async fn remove_peer(
        &self,
        id: NodeId,
        force: bool,
        timeout: Duration,
    ) -> Result<(), RemovePeerError> {
        let deadline = Instant::now() + timeout;
        let members = self.meta_status().members;
        let Some((peer, _)) = members.get(&id) else {
            return Err(RemovePeerError::Unknown(id));
        };
        if id == self.id {
            return Err(RemovePeerError::Refused(format!(
                "peer {id} is the one answering; remove it through another peer"
            )));
        }
        let ping: Result<(), P2pError> = self
            .client
            .post(&peer.p2p, "/cluster/ping", &(), Duration::from_secs(1))
            .await;
        if ping.is_ok() && !force {
            self.drain(id, &peer.p2p, deadline).await?;
        }
        let placements = self.placements_without(id);
        let command = MetaCommand::RemovePeer { id, placements };
        let left = deadline.saturating_duration_since(Instant::now());
        self.propose_meta(command, left).await?;
        self.on_leader(deadline, "/cluster/remove", &id, || {
            self.meta.remove_voter(id)
        })
        .await?;
        tracing::info!(peer_id = id, "peer removed; its replicas are re-placed");
        Ok(())
    }

    /// Moves every replica off the live peer `id` and waits until it runs none: each shard's
    /// leader adds the replacement first and takes the peer out last.
    async fn drain(&self, id: NodeId, p2p: &str, deadline: Instant) -> Result<(), RemovePeerError> {
        let placements = self.placements_without(id);
        if !placements.is_empty() {
            let moves = placements.len();
            let left = deadline.saturating_duration_since(Instant::now());
            self.propose_meta(MetaCommand::Place { placements }, left)
                .await?;
            tracing::info!(peer_id = id, moves, "draining the peer");
        }
        loop {
            let held: Result<Vec<GroupId>, P2pError> = self
                .client
                .post(p2p, "/cluster/replicas", &(), Duration::from_secs(2))
                .await;
            let left = match held {
                Ok(groups) if groups.is_empty() => return Ok(()),
                Ok(groups) => format!("still holds {} shard replicas", groups.len()),
                Err(e) => format!("does not answer ({e})"),
            };
            if Instant::now() + DRAIN_POLL >= deadline {
                return Err(RemovePeerError::Draining(format!(
                    "peer {id} is draining and {left}; its replicas go on moving: call again \
                     to finish removing it, or pass force=true if it is gone"
                )));
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Catches this node's metadata view up with what the group has committed (asking its
    /// leader), so that a collection another peer just created is known here. Best effort
    /// within `timeout`.
    pub async fn sync_meta(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let index = self
            .on_leader(deadline, "/meta/read_index", &(), || self.meta.read_index())
            .await;
        if let Ok(index) = index {
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_meta(index, left).await;
        }
    }

    /// The metadata group's read index, on its leader: what a forwarded sync runs.
    pub async fn meta_read_index_here(&self) -> Forwarded<u64> {
        self.meta.read_index().await
    }

    /// Removes `id` from the metadata group here: what a forwarded removal runs on the leader.
    pub async fn remove_member_here(&self, id: NodeId) -> Forwarded<()> {
        self.meta.remove_voter(id).await
    }

    /// Waits until this node's metadata view includes log index `index`, so that a change
    /// committed through another peer is seen here next; false on timeout.
    pub async fn wait_meta(&self, index: u64, timeout: Duration) -> bool {
        self.meta.wait_applied(index, timeout).await
    }

    /// Proposes on this node only: what a forwarded proposal runs on the leader.
    pub async fn propose_meta_here(&self, command: MetaCommand) -> Forwarded<(u64, MetaReply)> {
        self.meta.propose(command).await
    }

    /// Runs `local` here; when another node leads, sends `body` to `path` on the leader
    /// instead, and while there is no leader, retries until `deadline`.
    pub(super) async fn on_leader<T, B, F, Fut>(
        &self,
        deadline: Instant,
        path: &str,
        body: &B,
        local: F,
    ) -> Forwarded<T>
    where
        T: DeserializeOwned,
        B: Serialize,
        F: Fn() -> Fut,
        Fut: Future<Output = Forwarded<T>>,
    {
        loop {
            let error = match local().await {
                Err(ConsensusError::NotLeader {
                    leader: Some((leader, peer)),
                }) if leader != self.id => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let sent = self.client.post(&peer.p2p, path, body, left).await;
                    match sent {
                        Ok(answer) => return answer,
                        Err(e) => ConsensusError::Unavailable(e.to_string()),
                    }
                }
                Err(e @ (ConsensusError::NotLeader { .. } | ConsensusError::Unavailable(_))) => e,
                done => return done,
            };
            if Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The published metadata.
    pub fn meta(&self) -> Arc<MetaView> {
        self.meta_sm.view()
    }

    pub fn meta_status(&self) -> super::engine::GroupStatus {
        self.meta.status()
    }

    /// The group `group`'s endpoint for messages from peers.
    pub fn endpoint(&self, group: GroupId) -> Option<Arc<dyn RaftEndpoint>> {
        if group == META_GROUP {
            return Some(self.meta.clone());
        }
        let replica = self.replicas.get(group)?;
        Some(replica.raft.clone())
    }

    /// Keeps this node's shard replicas in step with the metadata, for as long as it runs.
    pub fn follow_placement(self: &Arc<Self>) {
        let node = self.clone();
        tokio::spawn(async move {
            while !node.stopping.load(std::sync::atomic::Ordering::Acquire) {
                let changed = node.meta_sm.changed();
                if let Err(e) = node.replicas.reconcile(&node.meta()).await {
                    tracing::warn!("placing shard replicas: {e:#}; retrying");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
            }
        });
    }

    /// Gives the node the API routes it serves shard reads with.
    pub fn serve_shards_with(&self, api: axum::Router) {
        let _ = self.shard_api.set(api);
    }

    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.replicas.shutdown().await;
        self.meta.shutdown().await;
    }
}
