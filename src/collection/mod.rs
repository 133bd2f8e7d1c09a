//! Collections: the handle readers and writers share, the single writer that owns all mutation,
//! the optimizer that seals append segments into HNSW segments, and search over snapshots.
//!
//! Data path: handler → [`Collection::update`] → writer queue → writer thread (resolve → RocksDB
//! commit → apply → publish snapshot) → reply. Readers call [`Collection::snapshot`] (one
//! `ArcSwap::load_full`) and never wait for the writer.

pub mod aggregate;
pub mod aliases;
pub mod backup;
pub mod config;
mod index_files;
mod indexed;
pub mod ops;
mod optimizer;
pub mod plan;
pub mod quantization;
mod recover;
pub mod registry;
pub mod replicate;
mod resolve;
pub mod scored;
pub mod search;
pub mod segment;
mod segment_file;
pub mod snapshot;
pub mod snapshot_file;
pub mod sparse_config;
pub mod sparse_search;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod tenants;
#[cfg(test)]
mod tenants_tests;
pub mod vector_config;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;

use crate::storage::StorageError;
use crate::telemetry::sync::{Queue, WaitError};
use config::CollectionConfig;
use ops::Operation;
use snapshot::Snapshot;
pub(crate) use writer::WriterMsg;
pub use writer::{IndexChange, RaftMark};

/// Errors of the collection layer, classed by whose fault they are. Serializable, so a replica
/// can answer with the error another replica's request met.
#[derive(Clone, Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CollectionError {
    /// The named thing does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot apply (400).
    #[error("{0}")]
    BadRequest(String),
    /// The collection already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed; nothing of the operation was applied (503/507).
    #[error("storage error: {0}")]
    Storage(String),
    /// The disk is (nearly) full; nothing of the operation was applied (507).
    #[error("{0}")]
    DiskFull(String),
    /// A bounded wait ran out (503 with Retry-After).
    #[error("{0}")]
    Overloaded(String),
    /// The collection is shutting down or was deleted meanwhile (503).
    #[error("{0}")]
    Closed(String),
}

impl From<StorageError> for CollectionError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::DiskFull(m) => CollectionError::DiskFull(m),
            StorageError::Io(e) if crate::storage::disk::is_full(&e) => {
                CollectionError::DiskFull(format!("storage error: {e}"))
            }
            e => CollectionError::Storage(e.to_string()),
        }
    }
}

/// A collection's durable record: a numeric id (the key prefix of its points), its
/// configuration and its payload schema.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CollectionMeta {
    pub id: u64,
    pub name: String,
    pub config: CollectionConfig,
    /// Indexed payload fields.
    #[serde(default)]
    pub payload_schema: crate::filter::index::PayloadSchema,
}

/// Counters `/telemetry` reports, updated without locks.
#[derive(Default, Debug)]
pub struct CollectionStats {
    pub searches: AtomicU64,
    pub points_upserted: AtomicU64,
    pub operations: AtomicU64,
    pub index_builds: AtomicU64,
    /// Segment searches per plan, indexed by `Plan as usize`.
    pub plans: [AtomicU64; plan::Plan::ALL.len()],
    /// Searches whose filter read payloads in some segment (no index answered it).
    pub unindexed_filters: AtomicU64,
}

/// A collection as handlers see it. Cheap to share (`Arc<Collection>`).
pub struct Collection {
    pub name: String,
    pub id: u64,
    /// The published state. Written only by the writer thread; read lock-free by everyone.
    published: Arc<ArcSwap<Snapshot>>,
    /// The writer's inbox; bounded, with instrumented waits.
    queue: Queue<WriterMsg>,
    queue_timeout: Duration,
    pub stats: Arc<CollectionStats>,
    /// Joined when the collection is closed; guarded so close is idempotent.
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Collection {
    /// The current snapshot: one atomic load, no lock.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.load_full()
    }

    /// Operations waiting in the writer queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.depth()
    }

    /// Enqueues for the writer, waiting for room at most `storage.writer_queue_timeout_ms` and at
    /// most `time_left`.
    async fn send(&self, msg: WriterMsg, time_left: Duration) -> Result<(), CollectionError> {
        let wait = self.queue_timeout.min(time_left);
        self.queue
            .send(msg, wait)
            .await
            .map_err(|e| match e {
                WaitError::TimedOut => CollectionError::Overloaded(format!(
                    "collection `{}`: the writer queue stayed full for {} ms; nothing was applied, retry later",
                    self.name,
                    wait.as_millis()
                )),
                WaitError::Closed => self.closed(),
            })
    }

    fn closed(&self) -> CollectionError {
        CollectionError::Closed(format!("collection `{}` is closing", self.name))
    }

    /// Submits operations (applied atomically, in order) and returns their LSNs.
    /// With `wait`, returns once they are durable and visible to searches; without, once they
    /// are in the write-ahead log. Gives up after `time_left`: before the writer took the
    /// operations nothing is applied; after, they will still be applied, and the error says so.
    pub async fn update(
        &self,
        ops: Vec<Operation>,
        wait: bool,
        time_left: Duration,
    ) -> Result<Vec<u64>, CollectionError> {
        let started = std::time::Instant::now();
        let (reply, rx) = oneshot::channel();
        self.send(WriterMsg::Update { ops, wait, reply }, time_left)
            .await?;
        let left = time_left.saturating_sub(started.elapsed());
        let result = match tokio::time::timeout(left, rx).await {
            Ok(reply) => reply.map_err(|_| self.closed())?,
            Err(_) => {
                return Err(CollectionError::Overloaded(format!(
                    "collection `{}`: the write was queued but did not complete within the request's timeout; it will still be applied",
                    self.name
                )))
            }
        };
        let mode = if wait { "true" } else { "false" };
        metrics::histogram!("vecdb_write_ack_seconds", "collection" => self.name.clone(), "wait" => mode)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Replaces the configuration (PATCH), durably.
    pub async fn reconfigure(
        &self,
        config: CollectionConfig,
        time_left: Duration,
    ) -> Result<(), CollectionError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            WriterMsg::Configure {
                config: Box::new(config),
                reply,
            },
            time_left,
        )
        .await?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Creates or drops a payload index, durably; returns the LSN it follows. The indexes of
    /// every sealed segment are rebuilt before it returns.
    pub async fn change_index(
        &self,
        change: IndexChange,
        time_left: Duration,
    ) -> Result<u64, CollectionError> {
        let (reply, rx) = oneshot::channel();
        self.send(WriterMsg::Index { change, reply }, time_left)
            .await?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Stops the writer after it finishes what is queued. Blocking; idempotent.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = self.queue.send_blocking(WriterMsg::Stop);
            let _ = handle.join();
        }
    }

    /// Counts a served search and the plan of each segment it searched.
    pub fn count_search(&self, plans: &[plan::SegmentPlan]) {
        self.stats.searches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vecdb_searches_total", "collection" => self.name.clone()).increment(1);
        for p in plans {
            self.stats.plans[p.plan as usize].fetch_add(1, Ordering::Relaxed);
            metrics::counter!("vecdb_segment_searches_total", "collection" => self.name.clone(), "plan" => p.plan.name())
                .increment(1);
        }
        if plans.iter().any(plan::SegmentPlan::missed_index) {
            self.stats.unindexed_filters.fetch_add(1, Ordering::Relaxed);
            plan::warn_unindexed(&self.name);
        }
    }
}
