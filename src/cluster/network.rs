//! Messages between peers: one HTTP client (one connection pool) for every group, the group
//! in the path, and the cluster secret on every request.

use std::marker::PhantomData;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Entry, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::{GroupId, NodeId, Peer};
use super::wire;

/// The header that carries the cluster secret.
pub const SECRET_HEADER: &str = "x-vecdb-cluster-secret";

/// Why a message to a peer got no answer to act on.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// No connection could be made; the peer is down or cut off.
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    /// Sent, but no (complete) answer came back in time.
    #[error("peer {0}: {1}")]
    Failed(String, String),
    /// The peer answered with an error status.
    #[error("peer {addr} answered {status}: {message}")]
    Status {
        addr: String,
        status: u16,
        message: String,
    },
}

/// The client for every message this node sends to its peers.
#[derive(Clone)]
pub struct P2pClient {
    http: reqwest::Client,
    secret: String,
    /// Advertised address → the address to connect to (`cluster.dial`).
    dial: std::sync::Arc<std::collections::HashMap<String, String>>,
}

impl P2pClient {
    pub fn new(
        secret: String,
        dial: std::collections::HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(P2pClient {
            http,
            secret,
            dial: std::sync::Arc::new(dial),
        })
    }

    /// Posts `body` as JSON to `http://{addr}{path}` and decodes the JSON answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, P2pError> {
        let answer = self.open(addr, path, body, timeout).await?;
        let answer = answer.bytes().await.map_err(|e| failed(addr, e))?;
        serde_json::from_slice(&answer).map_err(|e| failed(addr, e))
    }

    /// Posts `body` in the binary form of [`wire`] and decodes the answer, also binary: for
    /// Raft messages, which carry vectors.
    pub async fn post_wire<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, P2pError> {
        let body = wire::to_bytes(body).map_err(|e| failed(addr, e))?;
        let answer = self.send(addr, path, body, wire::CONTENT_TYPE, timeout);
        let answer = answer.await?.bytes().await.map_err(|e| failed(addr, e))?;
        wire::from_bytes(&answer).map_err(|e| failed(addr, e))
    }

    /// Posts `body` as JSON and returns a successful answer before reading its body: for
    /// answers streamed in chunks, which `timeout` bounds as a whole.
    pub async fn open<Req: Serialize>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<reqwest::Response, P2pError> {
        let body = serde_json::to_vec(body).map_err(|e| failed(addr, e))?;
        self.send(addr, path, body, JSON, timeout).await
    }

    /// Posts `body` to `http://{addr}{path}` and returns a successful answer.
    async fn send(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, P2pError> {
        let sent = |e: reqwest::Error| {
            if e.is_connect() {
                P2pError::Unreachable(addr.to_string(), e.to_string())
            } else {
                failed(addr, e)
            }
        };
        let dialed = self.dial.get(addr).map_or(addr, String::as_str);
        let response = self
            .http
            .post(format!("http://{dialed}{path}"))
            .header(SECRET_HEADER, &self.secret)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(sent)?;
        let status = response.status();
        if !status.is_success() {
            let message = response.text().await.unwrap_or_default();
            return Err(P2pError::Status {
                addr: addr.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        Ok(response)
    }
}

const JSON: &str = "application/json";

/// A request that was sent and then failed (no answer, or one that did not decode).
fn failed(addr: &str, e: impl std::fmt::Display) -> P2pError {
    P2pError::Failed(addr.to_string(), e.to_string())
}

/// Opens connections of one group to its peers, for openraft.
pub struct GroupNetwork<C> {
    client: P2pClient,
    group: GroupId,
    _config: PhantomData<fn() -> C>,
}

impl<C> GroupNetwork<C> {
    pub fn new(client: P2pClient, group: GroupId) -> Self {
        GroupNetwork {
            client,
            group,
            _config: PhantomData,
        }
    }
}

impl<C> RaftNetworkFactory<C> for GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Peer, Entry = Entry<C>>,
{
    type Network = Connection<C>;

    async fn new_client(&mut self, target: NodeId, node: &Peer) -> Connection<C> {
        Connection {
            client: self.client.clone(),
            path: format!("/raft/{}", self.group),
            target,
            addr: node.p2p.clone(),
            _config: PhantomData,
        }
    }
}

/// One group's link to one peer.
pub struct Connection<C> {
    client: P2pClient,
    path: String,
    target: NodeId,
    addr: String,
    _config: PhantomData<fn() -> C>,
}

impl<C> Connection<C> {
    async fn send<Req, Resp, E>(
        &self,
        rpc: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Peer, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let path = format!("{}/{rpc}", self.path);
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .client
            .post_wire(&self.addr, &path, request, option.hard_ttl())
            .await
            // Every failure to get an answer is reported as `Unreachable`, so that openraft
            // backs off (see `backoff`) instead of resending at once: a `NetworkError` makes
            // its replication loop retry immediately, which spins on a peer that accepts
            // connections and drops them (a proxy, a peer still starting) and floods the log.
            // Resending Raft messages is always safe, so nothing is lost by waiting.
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for Connection<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Peer, Entry = Entry<C>>,
{
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Peer, RaftError<NodeId>>> {
        self.send("append", &request, &option).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Peer, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send("snapshot", &request, &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Peer, RaftError<NodeId>>> {
        self.send("vote", &request, &option).await
    }

    /// Waits 50 ms after a first failure, doubling up to a second: a peer back from a pause
    /// or a partition is caught up within a second, and a dead one costs a message a second.
    fn backoff(&self) -> Backoff {
        let doubling = (0..5).map(|i| Duration::from_millis(50 << i));
        Backoff::new(doubling.chain(std::iter::repeat(Duration::from_secs(1))))
    }
}
