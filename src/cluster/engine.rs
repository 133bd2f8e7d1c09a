//! The one place that drives openraft: a Raft group behind the [`Consensus`] trait, and the
//! endpoint that feeds it the messages its peers send. Upgrading the engine touches this file,
//! the storage adapters and the network adapter, nothing above them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openraft::error::{
    ChangeMembershipError, CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError,
};
use openraft::raft::responder::OneshotResponder;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{ChangeMembers, Entry, Raft, RaftTypeConfig, ServerState};
use serde::Serialize;

use super::network::GroupNetwork;
use super::types::{GroupId, NodeId, Peer};
use super::wire;

/// Why a group could not do what was asked.
#[derive(Clone, Debug, thiserror::Error, Serialize, serde::Deserialize)]
pub enum ConsensusError {
    /// Only the leader can do it; the leader, when known, is where to send it.
    #[error("not the leader of the group (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, Peer)> },
    /// No quorum answered, or the group is shutting down; retrying later may succeed.
    #[error("consensus unavailable: {0}")]
    Unavailable(String),
    /// The request itself cannot apply (a membership change that does not fit).
    #[error("{0}")]
    Rejected(String),
}

/// A node's role in a group, in Qdrant's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    Learner,
    Shutdown,
}

/// What a group looks like from this node, for `/cluster` and `/metrics`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct GroupStatus {
    pub group: GroupId,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub role: Role,
    pub last_log_index: u64,
    pub applied: u64,
    /// Members and whether each votes.
    pub members: BTreeMap<NodeId, (Peer, bool)>,
    /// The log index of the membership `members` comes from.
    #[serde(default)]
    pub membership_index: u64,
    /// On the leader: how many entries each follower is behind the leader's log.
    pub lag: BTreeMap<NodeId, u64>,
}

impl GroupStatus {
    /// The members that vote (not learners).
    pub fn voters(&self) -> BTreeSet<NodeId> {
        let voting = self.members.iter().filter(|(_, (_, voter))| *voter);
        voting.map(|(id, _)| *id).collect()
    }

    /// Whether `id` is a voting member.
    pub fn votes(&self, id: NodeId) -> bool {
        self.members.get(&id).is_some_and(|(_, voter)| *voter)
    }
}

/// What the rest of vecdb needs from a consensus group.
pub trait Consensus: Send + Sync {
    type Command: Send;
    type Reply: Send;

    /// Commits `command` through the group (this node must lead it) and returns its log index
    /// and the reply of applying it here.
    fn propose(
        &self,
        command: Self::Command,
    ) -> impl Future<Output = Result<(u64, Self::Reply), ConsensusError>> + Send;

    /// A read index: once this node has applied up to it, a read here is linearizable. Fails
    /// unless this node leads the group and a quorum confirms it.
    fn read_index(&self) -> impl Future<Output = Result<u64, ConsensusError>> + Send;

    /// Adds `id` as a learner and returns once it has caught up with the log.
    fn add_learner(
        &self,
        id: NodeId,
        peer: Peer,
    ) -> impl Future<Output = Result<(), ConsensusError>> + Send;

    /// Makes the learner `id` a voter.
    fn promote(&self, id: NodeId) -> impl Future<Output = Result<(), ConsensusError>> + Send;

    /// Adds `id` as a voter: first a learner that catches up, then a member.
    fn add_voter(
        &self,
        id: NodeId,
        peer: Peer,
    ) -> impl Future<Output = Result<(), ConsensusError>> + Send {
        async move {
            self.add_learner(id, peer).await?;
            self.promote(id).await
        }
    }

    /// Removes `id` from the group, voter or learner.
    fn remove_voter(&self, id: NodeId) -> impl Future<Output = Result<(), ConsensusError>> + Send;

    fn status(&self) -> GroupStatus;
}

/// How far behind the leader's log a learner may be when it is promoted: a few appends'
/// worth, which it replays as a voter.
const CATCH_UP_LAG: u64 = 64;

/// The timing of every group. Election timeouts are generous because a loaded 2-core machine
/// stalls the runtime for hundreds of milliseconds, and a needless election costs writes.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
}

fn engine_config(name: String, timing: &Timing) -> anyhow::Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: name,
        heartbeat_interval: timing.heartbeat_ms,
        // openraft 0.9 lets a follower that has seen a leader elect only after a lease of
        // `election_timeout_max` and then a random timeout between min and max: a narrow range
        // keeps failover near twice the timeout (it was three times with max = 2 × min, 5.9 s
        // measured), while a third of the timeout (500 ms at the default, two heartbeats)
        // still spreads candidates apart.
        election_timeout_min: timing.election_timeout_ms,
        election_timeout_max: timing.election_timeout_ms + timing.election_timeout_ms / 3,
        // An entry can be a batch of hundreds of vectors: a few dozen per append keep each
        // message well within the RPC timeout (openraft's default is 300).
        max_payload_entries: 32,
        ..Default::default()
    };
    Ok(config.validate()?)
}

/// The type configurations of vecdb's groups: what they share whatever their commands.
pub trait GroupTypes:
    RaftTypeConfig<
    NodeId = NodeId,
    Node = Peer,
    Entry = Entry<Self>,
    Responder = OneshotResponder<Self>,
>
{
}

impl<C> GroupTypes for C where
    C: RaftTypeConfig<
        NodeId = NodeId,
        Node = Peer,
        Entry = Entry<C>,
        Responder = OneshotResponder<C>,
    >
{
}

/// One Raft group on this node.
pub struct RaftGroup<C: RaftTypeConfig> {
    group: GroupId,
    raft: Raft<C>,
}

impl<C> RaftGroup<C>
where
    C: GroupTypes,
{
    /// Starts the group's Raft core on recovered storage. It neither initializes nor joins:
    /// see [`RaftGroup::initialize`].
    pub async fn start<LS, SM>(
        id: NodeId,
        group: GroupId,
        timing: &Timing,
        network: GroupNetwork<C>,
        log: LS,
        state_machine: SM,
    ) -> anyhow::Result<Self>
    where
        LS: RaftLogStorage<C>,
        SM: RaftStateMachine<C>,
    {
        let config = engine_config(format!("group-{group}"), timing)?;
        let raft = Raft::new(id, config.into(), network, log, state_machine).await?;
        report(group, &raft);
        Ok(RaftGroup { group, raft })
    }

    /// Whether the group has ever had a membership on this node (from its own start or from a
    /// leader that added it). Initializing again would fork the group, so it is done only when
    /// this is false.
    pub async fn is_initialized(&self) -> anyhow::Result<bool> {
        Ok(self.raft.is_initialized().await?)
    }

    /// Makes this node the only member of a new group.
    pub async fn initialize(&self, members: BTreeMap<NodeId, Peer>) -> anyhow::Result<()> {
        self.raft.initialize(members).await?;
        Ok(())
    }

    /// Waits until the group has a leader known here.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, ConsensusError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .map_err(|e| ConsensusError::Unavailable(e.to_string()))?;
        metrics
            .current_leader
            .ok_or_else(|| ConsensusError::Unavailable("no leader".into()))
    }

    /// Waits until this node has applied the log up to `index`; false if `timeout` passed
    /// first.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        if index == 0 {
            return true;
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "a read's LSN")
            .await
            .is_ok()
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(group = self.group, "stopping the Raft core: {e}");
        }
    }

    fn leader_of(&self, f: ForwardToLeader<NodeId, Peer>) -> ConsensusError {
        ConsensusError::NotLeader {
            leader: f.leader_id.zip(f.leader_node),
        }
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, Peer>>) -> ConsensusError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => self.leader_of(f),
            // Another membership change is still committing (peers joining at once): retry.
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                e @ ChangeMembershipError::InProgress(_),
            )) => ConsensusError::Unavailable(e.to_string()),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                ConsensusError::Rejected(e.to_string())
            }
            RaftError::Fatal(f) => ConsensusError::Unavailable(f.to_string()),
        }
    }
}

impl<C> Consensus for RaftGroup<C>
where
    C: GroupTypes,
{
    type Command = C::D;
    type Reply = C::R;

    async fn propose(&self, command: C::D) -> Result<(u64, C::R), ConsensusError> {
        let written = self.raft.client_write(command).await;
        let response = written.map_err(|e| self.write_error(e))?;
        Ok((response.log_id.index, response.data))
    }

    async fn read_index(&self) -> Result<u64, ConsensusError> {
        match self.raft.ensure_linearizable().await {
            Ok(read) => Ok(read.map_or(0, |id| id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(self.leader_of(f))
            }
            Err(e) => Err(ConsensusError::Unavailable(e.to_string())),
        }
    }

    async fn add_learner(&self, id: NodeId, peer: Peer) -> Result<(), ConsensusError> {
        if self.status().votes(id) {
            return Ok(());
        }
        self.raft
            .add_learner(id, peer, false)
            .await
            .map_err(|e| self.write_error(e))?;
        // Promoting a learner that holds nothing would leave the group waiting on it (or
        // without a quorum, if its peer is down). openraft's own blocking wait counts any
        // learner within `replication_lag_threshold` entries as caught up, one never reached
        // included, so this waits for a match near the end of the log instead.
        let caught_up = |m: &openraft::RaftMetrics<NodeId, Peer>| {
            let Some(replication) = &m.replication else {
                return true; // No longer the leader: promoting will say so.
            };
            let Some(Some(matched)) = replication.get(&id) else {
                return false;
            };
            let last = m.last_log_index.unwrap_or(0);
            last.saturating_sub(matched.index) <= CATCH_UP_LAG
        };
        self.raft
            .wait(None)
            .metrics(caught_up, "a learner catching up")
            .await
            .map_err(|e| ConsensusError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn promote(&self, id: NodeId) -> Result<(), ConsensusError> {
        if self.status().votes(id) {
            return Ok(());
        }
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft
            .change_membership(voters, false)
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    async fn remove_voter(&self, id: NodeId) -> Result<(), ConsensusError> {
        let Some((_, voter)) = self.status().members.get(&id).cloned() else {
            return Ok(());
        };
        let ids = BTreeSet::from([id]);
        let change = match voter {
            true => ChangeMembers::RemoveVoters(ids),
            false => ChangeMembers::RemoveNodes(ids),
        };
        // `false`: a voter leaves the group altogether, not as a learner.
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    fn status(&self) -> GroupStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, peer)| (*id, (peer.clone(), voters.contains(id))))
            .collect();
        let last = m.last_log_index.unwrap_or(0);
        let lag = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, matched)| (*id, last - matched.map_or(0, |l| l.index).min(last)))
            .collect();
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Candidate => Role::Candidate,
            ServerState::Follower if !voters.contains(&m.id) => Role::Learner,
            ServerState::Follower => Role::Follower,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        GroupStatus {
            group: self.group,
            term: m.current_term,
            leader: m.current_leader,
            role,
            last_log_index: last,
            applied: m.last_applied.map_or(0, |l| l.index),
            members,
            membership_index: m.membership_config.log_id().map_or(0, |l| l.index),
            lag,
        }
    }
}

/// Exports a group's progress to `/metrics` as it changes, until the group stops: term,
/// leader changes, last log and applied index, whether this node leads, and on the leader
/// each follower's lag in entries.
fn report<C: GroupTypes>(group: GroupId, raft: &Raft<C>) {
    let mut changes = raft.metrics();
    let label = group.to_string();
    tokio::spawn(async move {
        let labels = [("group", label.clone())];
        let term = metrics::gauge!("vecdb_raft_term", &labels);
        let last_log = metrics::gauge!("vecdb_raft_last_log_index", &labels);
        let applied = metrics::gauge!("vecdb_raft_applied_index", &labels);
        let leading = metrics::gauge!("vecdb_raft_is_leader", &labels);
        let leader_changes = metrics::counter!("vecdb_raft_leader_changes_total", &labels);
        let mut leader = None;
        loop {
            let m = changes.borrow_and_update().clone();
            term.set(m.current_term as f64);
            last_log.set(m.last_log_index.unwrap_or(0) as f64);
            applied.set(m.last_applied.map_or(0, |l| l.index) as f64);
            leading.set(f64::from(u8::from(m.state == ServerState::Leader)));
            if m.current_leader.is_some() && m.current_leader != leader {
                leader_changes.increment(1);
            }
            leader = m.current_leader;
            let last = m.last_log_index.unwrap_or(0);
            for (peer, matched) in m.replication.iter().flatten() {
                let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
                let labels = [("group", label.clone()), ("peer", peer.to_string())];
                metrics::gauge!("vecdb_raft_replication_lag", &labels).set(behind as f64);
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    });
}

/// A boxed future, for the endpoint table that holds groups of different types.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Receives the Raft messages peers send to one group: `rpc` is `append`, `vote` or
/// `snapshot`, `body` the request in the binary form of [`super::wire`]; the answer is the
/// `Result` openraft returned, in the same form.
pub trait RaftEndpoint: Send + Sync {
    fn handle<'a>(&'a self, rpc: &'a str, body: &'a [u8])
        -> BoxFuture<'a, Result<Vec<u8>, String>>;
}

impl<C> RaftEndpoint for RaftGroup<C>
where
    C: GroupTypes,
{
    fn handle<'a>(
        &'a self,
        rpc: &'a str,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
            wire::from_bytes(body).map_err(|e| format!("bad Raft message: {e}"))
        }
        fn answer<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
            wire::to_bytes(value).map_err(|e| e.to_string())
        }
        Box::pin(async move {
            match rpc {
                "append" => answer(&self.raft.append_entries(parse(body)?).await),
                "vote" => answer(&self.raft.vote(parse(body)?).await),
                "snapshot" => answer(&self.raft.install_snapshot(parse(body)?).await),
                other => Err(format!("unknown Raft message `{other}`")),
            }
        })
    }
}
