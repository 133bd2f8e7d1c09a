//! A shard's points for a snapshot of a whole cluster collection: from this node's replica
//! when it holds one, else streamed from a peer's replica in the snapshot file format. Either
//! way the replica first catches up to what the shard's leader had applied when asked, so the
//! snapshot holds every write acknowledged before it was requested.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use serde::{Deserialize, Serialize};

use super::engine::ConsensusError;
use super::meta::ShardPlacement;
use super::node::{ClusterNode, Forwarded};
use super::requests::{ShardError, ShardRead};
use super::route::Consistency;
use super::types::GroupId;
use crate::collection::snapshot::Snapshot;

/// A peer's request for its replica's points, once it has applied `min_lsn`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointsRequest {
    pub min_lsn: u64,
    /// How long the replica may wait to catch up before it refuses.
    pub wait_ms: u64,
}

/// Where a shard's points come from.
pub enum ShardPoints {
    Local(Arc<Snapshot>),
    /// A snapshot file on its way from a peer.
    Streamed(reqwest::Response),
}

impl ClusterNode {
    /// The points of shard `shard`, as of at least what its leader has applied now.
    pub async fn shard_points(
        &self,
        shard: usize,
        placement: &ShardPlacement,
        deadline: Instant,
    ) -> Result<ShardPoints, ShardError> {
        let group = placement.group;
        let unavailable = |why: String| ShardError::Unavailable { shard, group, why };
        // A strong read of the shard's info tells what its leader has applied.
        let info = ShardRead::info(0, Duration::ZERO);
        let leader = self.read_shard(shard, placement, info, Consistency::Strong, deadline);
        let min_lsn = leader.await?.lsn;
        let wait = deadline.saturating_duration_since(Instant::now());
        if placement.replicas.contains(&self.id) {
            let local = self.replica_snapshot(group, min_lsn, wait).await;
            return local
                .map(ShardPoints::Local)
                .map_err(|e| unavailable(e.to_string()));
        }
        let request = PointsRequest {
            min_lsn,
            wait_ms: wait.as_millis() as u64,
        };
        let mut last = String::from("no replica tried");
        for replica in &placement.replicas {
            let Some(peer) = self.peer_of(*replica) else {
                continue;
            };
            let path = format!("/shard/{group}/points");
            match self.client.open(&peer.p2p, &path, &request, wait).await {
                Ok(response) => return Ok(ShardPoints::Streamed(response)),
                Err(e) => last = format!("peer {replica}: {e}"),
            }
        }
        Err(unavailable(last))
    }

    /// This node's replica of `group` once it has applied `min_lsn`.
    pub async fn replica_snapshot(
        &self,
        group: GroupId,
        min_lsn: u64,
        wait: Duration,
    ) -> Forwarded<Arc<Snapshot>> {
        let replica = self.replicas.get(group).ok_or_else(|| {
            ConsensusError::Unavailable(format!("no replica of group {group} here"))
        })?;
        let collection = self.caught_up(&replica, min_lsn, wait).await?;
        Ok(collection.snapshot())
    }
}

/// The body of an answer that streams `snapshot` as a snapshot file, written on a blocking
/// thread a chunk at a time.
pub fn stream(snapshot: Arc<Snapshot>, collection: String) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let out = Chunks {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = crate::collection::backup::stream_to(out, &collection, &snapshot);
        if let Err(e) = written {
            // The reader sees the stream fail instead of a file that merely ends early.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_stream(chunks)
}

const CHUNK: usize = 256 << 10;

/// A writer that sends what it is given as chunks of a streamed body.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the peer stopped reading"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

/// A streamed answer as a blocking reader, for a blocking thread of `runtime`.
pub fn blocking_reader(response: reqwest::Response, runtime: tokio::runtime::Handle) -> impl Read {
    let chunks = futures::stream::unfold(response, |mut response| async move {
        let chunk = response
            .chunk()
            .await
            .map_err(io::Error::other)
            .transpose()?;
        Some((chunk, response))
    });
    let reader = tokio_util::io::StreamReader::new(Box::pin(chunks));
    tokio_util::io::SyncIoBridge::new_with_handle(reader, runtime)
}
