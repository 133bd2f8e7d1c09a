//! Requests to a cluster collection's shards: a write is proposed on its shard's leader (the
//! Raft log index it gets is its LSN); a read goes to the replica its consistency level allows,
//! which first catches up to the LSN the client has seen.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;

use super::engine::{Consensus, ConsensusError, GroupStatus};
use super::meta::ShardPlacement;
use super::network::P2pError;
use super::node::{ClusterNode, Forwarded};
use super::replicas::Replica;
use super::route::Consistency;
use super::shard::{ShardCommand, ShardReply};
use super::types::{GroupId, NodeId, Peer};
use crate::collection::ops::Operation;
use crate::collection::Collection;
use crate::telemetry::sync::WaitSite;

/// A read of one shard replica: an API request of the replica's local collection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardRead {
    pub method: String,
    /// The path after `/collections/{name}`, e.g. `/points/search`.
    pub path: String,
    pub body: Option<Value>,
    /// The replica must have applied this far before it reads.
    pub min_lsn: u64,
    /// Only the leader may answer, after confirming with a quorum that it still leads.
    pub strong: bool,
    /// How long the replica may wait to catch up before it refuses.
    pub wait_ms: u64,
}

impl ShardRead {
    /// The replica's collection info, once it has applied `min_lsn` (waiting up to `wait`):
    /// what a write's replication and a schema change are checked with.
    pub fn info(min_lsn: u64, wait: Duration) -> ShardRead {
        ShardRead {
            method: "GET".into(),
            path: String::new(),
            body: None,
            min_lsn,
            strong: false,
            wait_ms: wait.as_millis() as u64,
        }
    }
}

/// A replica's answer: the API's status and JSON body, and the LSN the answer reflects (at
/// least; it is read after the answer).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardAnswer {
    pub status: u16,
    pub body: Value,
    pub lsn: u64,
}

/// Why a shard request failed, for the API to answer with.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// No replica could do it before the deadline; nothing was changed.
    #[error("shard {shard} (group {group}) has no reachable replica that can serve this: {why}")]
    Unavailable {
        shard: usize,
        group: GroupId,
        why: String,
    },
    /// The write was sent but its outcome is unknown: it may still be applied.
    #[error("shard {shard} (group {group}): the write was sent but not confirmed in time ({why}); it may still be applied")]
    Indeterminate {
        shard: usize,
        group: GroupId,
        why: String,
    },
    /// The group refused it.
    #[error("{0}")]
    Rejected(String),
}

const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The waits of the cluster's request path, made once (the recorder is installed at start).
static REPLICATION_ACK: LazyLock<WaitSite> =
    LazyLock::new(|| WaitSite::new("replication_ack", None));
static READ_INDEX: LazyLock<WaitSite> = LazyLock::new(|| WaitSite::new("read_index", None));
static CONSISTENCY_WAIT: LazyLock<WaitSite> =
    LazyLock::new(|| WaitSite::new("consistency_wait", None));

impl ClusterNode {
    pub(super) fn peer_of(&self, id: NodeId) -> Option<Peer> {
        self.meta().membership.membership().get_node(&id).cloned()
    }

    /// The order in which to try a shard's replicas: the last known leader first when
    /// `leader_first`, else this node's own replica first; then the rest in placement order,
    /// then those a move is taking away (they serve until it is done).
    fn candidates(&self, placement: &ShardPlacement, leader_first: bool) -> Vec<NodeId> {
        let leader = self.leaders.get(&placement.group).map(|l| *l);
        let holds =
            |id: &NodeId| placement.replicas.contains(id) || placement.previous.contains(id);
        let first = match (leader_first, leader) {
            (true, Some(leader)) => Some(leader),
            _ if holds(&self.id) => Some(self.id),
            _ => leader,
        };
        let mut order: Vec<NodeId> = first.into_iter().collect();
        let rest = placement.replicas.iter().chain(&placement.previous);
        for r in rest {
            if !order.contains(r) {
                order.push(*r);
            }
        }
        order
    }

    /// Commits `ops` through shard `shard`'s group; returns once the leader has applied them,
    /// with their LSN and what applying did.
    pub async fn propose_shard(
        &self,
        shard: usize,
        placement: &ShardPlacement,
        ops: Vec<Operation>,
        deadline: Instant,
    ) -> Result<(u64, ShardReply), ShardError> {
        let group = placement.group;
        let command = ShardCommand { ops };
        let path = format!("/shard/{group}/propose");
        let unavailable = |why: String| ShardError::Unavailable { shard, group, why };
        let indeterminate = |why: String| ShardError::Indeterminate { shard, group, why };
        let mut order = self.candidates(placement, true);
        let mut next = 0;
        let mut last = String::from("no replica tried");
        let site = &*REPLICATION_ACK;
        let started = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                site.gave_up(started);
                return Err(unavailable(last));
            }
            let target = order[next % order.len()];
            let answer: Forwarded<(u64, ShardReply)> = if target == self.id {
                match tokio::time::timeout(left, self.propose_shard_here(group, command.clone()))
                    .await
                {
                    Ok(answer) => answer,
                    Err(_) => return Err(indeterminate("no quorum answered".into())),
                }
            } else {
                match self.peer_of(target) {
                    None => Err(ConsensusError::Unavailable(format!(
                        "peer {target} unknown"
                    ))),
                    // Binary, like Raft messages: a forwarded write carries its vectors.
                    Some(peer) => match self
                        .client
                        .post_wire(&peer.p2p, &path, &command, left)
                        .await
                    {
                        Ok(answer) => answer,
                        // Never sent: safe to try another replica.
                        Err(e @ P2pError::Unreachable(..)) => {
                            Err(ConsensusError::Unavailable(e.to_string()))
                        }
                        Err(e) => return Err(indeterminate(e.to_string())),
                    },
                }
            };
            match answer {
                Ok(done) => {
                    self.leaders.insert(group, target);
                    site.waited(started);
                    return Ok(done);
                }
                Err(ConsensusError::NotLeader {
                    leader: Some((leader, _)),
                }) if leader != target => {
                    self.leaders.insert(group, leader);
                    order = self.candidates(placement, true);
                    next = 0;
                    continue;
                }
                Err(ConsensusError::Rejected(why)) => return Err(ShardError::Rejected(why)),
                Err(e) => last = e.to_string(),
            }
            next += 1;
            tokio::time::sleep(RETRY_PAUSE.min(left)).await;
        }
    }

    /// Proposes on this node's replica of `group`: what a forwarded proposal runs.
    pub async fn propose_shard_here(
        &self,
        group: GroupId,
        command: ShardCommand,
    ) -> Forwarded<(u64, ShardReply)> {
        let replica = self
            .replicas
            .get(group)
            .ok_or(ConsensusError::NotLeader { leader: None })?;
        replica.raft.propose(command).await
    }

    /// Reads shard `shard` at `level`: from a replica that has applied at least `read.min_lsn`
    /// (the leader, after a read-index check, when strong).
    pub async fn read_shard(
        &self,
        shard: usize,
        placement: &ShardPlacement,
        mut read: ShardRead,
        level: Consistency,
        deadline: Instant,
    ) -> Result<ShardAnswer, ShardError> {
        let group = placement.group;
        read.strong = level == Consistency::Strong;
        // Without a token, read-your-writes reads where every acknowledged write is applied.
        let leader_first =
            read.strong || (level == Consistency::ReadYourWrites && read.min_lsn == 0);
        let mut order = self.candidates(placement, leader_first);
        let mut last = String::from("no replica tried");
        let mut next = 0;
        while next < order.len() * 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            read.wait_ms = left.as_millis().min(2_000) as u64;
            let target = order[next % order.len()];
            match self.read_at(target, group, &read, left).await {
                Ok(answer) => return Ok(answer),
                Err(ConsensusError::NotLeader {
                    leader: Some((leader, _)),
                }) if leader != target && read.strong => {
                    self.leaders.insert(group, leader);
                    order = self.candidates(placement, true);
                    next = 0;
                    continue;
                }
                Err(e) => last = format!("peer {target}: {e}"),
            }
            next += 1;
            if next % order.len() == 0 {
                tokio::time::sleep(RETRY_PAUSE.min(left)).await;
            }
        }
        Err(ShardError::Unavailable {
            shard,
            group,
            why: last,
        })
    }

    /// Reads the replica of `group` on peer `target`.
    pub async fn read_at(
        &self,
        target: NodeId,
        group: GroupId,
        read: &ShardRead,
        timeout: Duration,
    ) -> Forwarded<ShardAnswer> {
        if target == self.id {
            return self.read_shard_here(group, read.clone()).await;
        }
        let Some(peer) = self.peer_of(target) else {
            return Err(ConsensusError::Unavailable(format!(
                "peer {target} unknown"
            )));
        };
        let path = format!("/shard/{group}/read");
        let sent = self.client.post(&peer.p2p, &path, read, timeout).await;
        sent.unwrap_or_else(|e| Err(ConsensusError::Unavailable(e.to_string())))
    }

    /// Waits until `count` replicas of the shard (the leader, which has applied it, among
    /// them) have applied `lsn`: Qdrant's `write_consistency_factor`.
    pub async fn wait_replicas(
        &self,
        shard: usize,
        placement: &ShardPlacement,
        lsn: u64,
        count: usize,
        deadline: Instant,
    ) -> Result<(), ShardError> {
        let group = placement.group;
        let leader = self.leaders.get(&group).map(|l| *l);
        let left = deadline.saturating_duration_since(Instant::now());
        // An empty read at the LSN: it answers once the replica has applied that far.
        let probe = ShardRead::info(lsn, left);
        let followers = placement.replicas.iter().filter(|r| Some(**r) != leader);
        let mut asks: futures::stream::FuturesUnordered<_> = followers
            .map(|r| self.read_at(*r, group, &probe, left))
            .collect();
        let site = &*REPLICATION_ACK;
        let started = Instant::now();
        let mut applied = 0;
        while applied + 1 < count {
            match futures::StreamExt::next(&mut asks).await {
                Some(Ok(_)) => applied += 1,
                Some(Err(_)) => {}
                None => break,
            }
        }
        if applied + 1 >= count {
            site.waited(started);
            return Ok(());
        }
        site.gave_up(started);
        Err(ShardError::Indeterminate {
            shard,
            group,
            why: format!(
                "write_consistency_factor {count}: only {} replica(s) applied it in time",
                applied + 1
            ),
        })
    }

    /// The state of shard group `placement` as one of its replicas sees it (this node's own
    /// first), with the peer it came from; the last error if none answered.
    pub async fn shard_status(
        &self,
        placement: &ShardPlacement,
    ) -> Result<(NodeId, GroupStatus), String> {
        let group = placement.group;
        if let Some(replica) = self.replicas.get(group) {
            return Ok((self.id, replica.raft.status()));
        }
        let mut last = String::from("no replica");
        for target in self.candidates(placement, true) {
            let Some(peer) = self.peer_of(target) else {
                continue;
            };
            let path = format!("/shard/{group}/status");
            let timeout = self.rpc_timeout().min(Duration::from_secs(1));
            let answer: Result<Forwarded<GroupStatus>, _> =
                self.client.post(&peer.p2p, &path, &(), timeout).await;
            match answer {
                Ok(Ok(status)) => return Ok((target, status)),
                Ok(Err(e)) => last = format!("peer {target}: {e}"),
                Err(e) => last = format!("peer {target}: {e}"),
            }
        }
        Err(last)
    }

    /// The state of this node's replica of `group`.
    pub fn shard_status_here(&self, group: GroupId) -> Forwarded<GroupStatus> {
        let replica = self
            .replicas
            .get(group)
            .ok_or(ConsensusError::NotLeader { leader: None })?;
        Ok(replica.raft.status())
    }

    /// The local collection of `replica` once it has applied `lsn`, waiting up to `wait`.
    pub(super) async fn caught_up(
        &self,
        replica: &Replica,
        lsn: u64,
        wait: Duration,
    ) -> Forwarded<std::sync::Arc<Collection>> {
        let site = &*CONSISTENCY_WAIT;
        let started = Instant::now();
        if !replica.raft.wait_applied(lsn, wait).await {
            site.gave_up(started);
            return Err(ConsensusError::Unavailable(format!(
                "this replica has not applied LSN {lsn} yet"
            )));
        }
        site.waited(started);
        self.replicas
            .collection(replica)
            .map_err(ConsensusError::Unavailable)
    }

    /// Reads this node's replica of `group`, once it has applied what `read` asks for.
    pub async fn read_shard_here(&self, group: GroupId, read: ShardRead) -> Forwarded<ShardAnswer> {
        let replica = self
            .replicas
            .get(group)
            .ok_or(ConsensusError::NotLeader { leader: None })?;
        // A learner may not even have the shard's snapshot yet: it answers nothing until it
        // votes, and the reader tries another replica.
        if !replica.raft.status().votes(self.id) {
            let why = "this replica is still catching up (a learner of its group)";
            return Err(ConsensusError::Unavailable(why.into()));
        }
        let mut need = read.min_lsn;
        if read.strong {
            let site = &*READ_INDEX;
            let started = Instant::now();
            let index = replica.raft.read_index().await;
            site.waited(started);
            need = need.max(index?);
        }
        let wait = Duration::from_millis(read.wait_ms);
        let collection = self.caught_up(&replica, need, wait).await?;
        let api = self
            .shard_api
            .get()
            .ok_or_else(|| ConsensusError::Unavailable("the node is starting".into()))?;
        let body = match &read.body {
            Some(body) => Body::from(serde_json::to_vec(body).unwrap_or_default()),
            None => Body::empty(),
        };
        let request = axum::http::Request::builder()
            .method(read.method.as_str())
            .uri(format!("/collections/{}{}", replica.local, read.path))
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| ConsensusError::Rejected(format!("bad shard read: {e}")))?;
        let response = api
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| ConsensusError::Unavailable(e.to_string()))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let lsn = collection.snapshot().lsn;
        Ok(ShardAnswer { status, body, lsn })
    }
}
