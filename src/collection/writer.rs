//! The writer thread: the only code that mutates a collection.
//!
//! For every group of queued updates, in this order:
//! 1. resolve each operation against current state plus earlier operations of the group;
//! 2. commit all their changes and the new LSN in one RocksDB `WriteBatch` (fsync per policy);
//! 3. acknowledge `wait=false` callers (their operations are in the WAL);
//! 4. apply the changes to the in-memory state and publish a new snapshot (`ArcSwap::store`);
//! 5. acknowledge `wait=true` callers (durable and visible to every later search).
//!
//! A failed commit leaves memory untouched, so a storage error never leaves a half-applied state.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use super::config::CollectionConfig;
use super::index_files;
use super::ops::Operation;
use super::optimizer::{self, BuildJob, BuildKind, Built};
use super::segment::SegmentData;
use super::snapshot::Snapshot;
use super::state::{index_segment, Change, Pending, Sealed, WriterState};
use super::tenants;
use super::{CollectionError, CollectionStats};
use crate::config::SyncPolicy;
use crate::filter::index::{IndexSpec, PayloadSchema};
use crate::filter::JsonPath;
use crate::storage::files::SegmentFile;
use crate::storage::{SegmentList, Store};
use crate::telemetry::sync::Queue;

/// Most updates one group commit takes.
const MAX_GROUP: usize = 256;

/// What the writer's queue carries.
pub enum WriterMsg {
    Update {
        ops: Vec<Operation>,
        wait: bool,
        reply: oneshot::Sender<Result<Vec<u64>, CollectionError>>,
    },
    Configure {
        config: Box<CollectionConfig>,
        reply: oneshot::Sender<Result<(), CollectionError>>,
    },
    /// Creates or drops a payload index; replies with the LSN it was ordered at.
    Index {
        change: IndexChange,
        reply: oneshot::Sender<Result<u64, CollectionError>>,
    },
    /// Operations a replication log decided, applied at their log indexes (cluster mode); see
    /// [`replicate`](super::replicate).
    Replicate {
        entries: Vec<(u64, Vec<Operation>)>,
        mark: RaftMark,
        reply: oneshot::Sender<super::replicate::Applied>,
    },
    /// An index build finished; its result waits in the writer's build channel.
    BuildFinished,
    Stop,
}

/// A replication group's record of what a commit applied (its last log id and membership),
/// written in the same RocksDB batch as the commit's points, so the two never disagree.
pub struct RaftMark {
    pub group: u64,
    pub name: &'static str,
    pub value: Vec<u8>,
}

/// A change of the payload schema.
pub enum IndexChange {
    /// Index `key` (spelled `name`) as `spec`, replacing an index on the same path.
    Create {
        name: String,
        key: JsonPath,
        spec: IndexSpec,
    },
    /// Drop the index named `name` (nothing if there is none).
    Drop { name: String },
}

type UpdateMsg = (
    Vec<Operation>,
    bool,
    oneshot::Sender<Result<Vec<u64>, CollectionError>>,
);

/// The writer's world: its state and the shared things it publishes to.
pub struct Writer {
    pub name: String,
    pub collection_id: u64,
    pub state: WriterState,
    pub store: Arc<Store>,
    pub published: Arc<ArcSwap<Snapshot>>,
    /// Our own inbox, for handing to index builds that report back.
    pub queue: Queue<WriterMsg>,
    pub stats: Arc<CollectionStats>,
    pub runtime: tokio::runtime::Handle,
    /// Writes stall while more than this many times the indexing threshold of points wait
    /// unindexed (0: never).
    pub stall_factor: usize,
    /// Index builds in flight, at most one of each kind.
    pub builds: Vec<RunningBuild>,
}

/// An index build in flight: what it reads and where it delivers its result.
pub struct RunningBuild {
    kind: BuildKind,
    inputs: Vec<u64>,
    result: std::sync::mpsc::Receiver<Result<Built, String>>,
}

impl Writer {
    /// Runs until `Stop` or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        self.maybe_optimize();
        self.publish(Instant::now());
        let mut next = None;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match rx.blocking_recv() {
                    Some(m) => m,
                    None => break,
                },
            };
            match msg {
                WriterMsg::Stop => break,
                WriterMsg::BuildFinished => self.collect_finished(),
                WriterMsg::Configure { config, reply } => {
                    let _ = reply.send(self.configure(*config));
                }
                WriterMsg::Index { change, reply } => {
                    let _ = reply.send(self.change_index(change));
                }
                WriterMsg::Replicate {
                    entries,
                    mark,
                    reply,
                } => {
                    self.stall_while_behind();
                    let _ = reply.send(self.replicate(entries, &mark));
                }
                WriterMsg::Update { ops, wait, reply } => {
                    self.stall_while_behind();
                    let (group, deferred) = self.gather((ops, wait, reply), &mut rx);
                    next = deferred;
                    self.commit_group(group);
                }
            }
        }
        tracing::debug!(collection = %self.name, "writer stopped");
    }

    /// Installs every build that has delivered its result (a `BuildFinished` may arrive after
    /// a stall already collected it).
    fn collect_finished(&mut self) {
        let mut i = 0;
        while i < self.builds.len() {
            match self.builds[i].result.try_recv() {
                Ok(result) => self.finish(i, result),
                Err(std::sync::mpsc::TryRecvError::Empty) => i += 1,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.finish(i, Err("index build thread vanished".into()))
                }
            }
        }
    }

    /// Waits for the running job of `kind`, if any, and installs it; false if none runs.
    fn wait_for_build(&mut self, kind: BuildKind) -> bool {
        let Some(i) = self.builds.iter().position(|b| b.kind == kind) else {
            return false;
        };
        let result = self.builds[i]
            .result
            .recv()
            .unwrap_or_else(|_| Err("index build thread vanished".into()));
        self.finish(i, result);
        true
    }

    /// Frees job `i`'s inputs and installs its result.
    fn finish(&mut self, i: usize, result: Result<Built, String>) {
        let build = self.builds.swap_remove(i);
        for id in &build.inputs {
            self.state.busy.remove(id);
        }
        match build.kind {
            BuildKind::Persist => self.persisted(result),
            BuildKind::Fresh | BuildKind::Merge => self.install(result),
            BuildKind::Tenants => self.install_tenants(result),
        }
    }

    /// Write stall (as RocksDB stalls writes when compaction falls behind): background work
    /// must keep up with writes, or searches and memory pay for it without bound. While it is
    /// behind, the writer waits for the running job instead, queued writes wait in the bounded
    /// queue, and new ones get 503 with Retry-After once it is full. Behind means either
    /// - more than `write_stall_factor` × the indexing threshold of points wait unindexed (they
    ///   are scanned exactly); the writer waits for the fresh build; or
    /// - more than `write_stall_factor` sealed segments wait to be merged into the largest
    ///   (each is one more graph to search, and holds the old copies of overwritten points);
    ///   the writer waits for the merge.
    fn stall_while_behind(&mut self) {
        let threshold = self.state.config.indexing_threshold_points();
        if self.stall_factor == 0 || threshold == usize::MAX {
            return;
        }
        let started = Instant::now();
        loop {
            let kind =
                if self.state.unindexed_points() > threshold.saturating_mul(self.stall_factor) {
                    BuildKind::Fresh
                } else if self.state.merge_backlog() > self.stall_factor {
                    BuildKind::Merge
                } else {
                    break;
                };
            if !self.wait_for_build(kind) {
                break;
            }
        }
        let stalled = started.elapsed();
        if stalled > Duration::from_millis(1) {
            metrics::histogram!("vecdb_write_stall_seconds", "collection" => self.name.clone())
                .record(stalled.as_secs_f64());
            tracing::debug!(collection = %self.name, secs = stalled.as_secs_f64(), "writes stalled for indexing");
        }
    }

    /// Collects further queued updates into one group, per the sync policy. A non-update message
    /// met while gathering is handed back to run after the group.
    fn gather(
        &self,
        first: UpdateMsg,
        rx: &mut mpsc::Receiver<WriterMsg>,
    ) -> (Vec<UpdateMsg>, Option<WriterMsg>) {
        let mut group = vec![first];
        let wal = &self.state.config.wal_config;
        if wal.sync_policy == SyncPolicy::EveryWrite {
            return (group, None);
        }
        let deadline = Instant::now() + Duration::from_millis(wal.group_commit_interval_ms);
        while group.len() < MAX_GROUP {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(_) if wal.sync_policy == SyncPolicy::Group && group.len() == 1 => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self
                        .runtime
                        .block_on(async { tokio::time::timeout(left, rx.recv()).await })
                    {
                        Ok(Some(m)) => m,
                        _ => break,
                    }
                }
                Err(_) => break,
            };
            match msg {
                WriterMsg::Update { ops, wait, reply } => group.push((ops, wait, reply)),
                other => return (group, Some(other)),
            }
        }
        (group, None)
    }

    fn commit_group(&mut self, group: Vec<UpdateMsg>) {
        let started = Instant::now();
        let mut pending = Pending::default();
        let mut lsn = self.state.lsn;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut op_count = 0u64;
        let mut upserted = 0u64;
        for (ops, wait, reply) in group {
            let mut local = Pending::default();
            let mut lsns = Vec::with_capacity(ops.len());
            let mut result = Ok(());
            for op in &ops {
                match self.state.resolve(op, lsn + 1, &[&local, &pending]) {
                    Ok(changes) => {
                        lsn += 1;
                        lsns.push(lsn);
                        local.extend(changes);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            match result {
                Ok(()) => {
                    op_count += ops.len() as u64;
                    upserted += ops.iter().map(upsert_len).sum::<u64>();
                    pending.extend(local);
                    outcomes.push((wait, reply, Ok(lsns)));
                }
                Err(e) => {
                    lsn -= lsns.len() as u64;
                    outcomes.push((wait, reply, Err(e)));
                }
            }
        }
        if lsn == self.state.lsn {
            // Nothing succeeded: every caller already has its error.
            for (_, reply, result) in outcomes {
                let _ = reply.send(result);
            }
            return;
        }
        metrics::histogram!("vecdb_writer_batch_operations").record(op_count as f64);
        if let Err(e) = self.commit(&pending.changes, lsn, None) {
            tracing::error!(collection = %self.name, error = %e, "commit failed; nothing applied");
            let error = CollectionError::from(e);
            for (_, reply, result) in outcomes {
                let _ = reply.send(result.and(Err(error.clone())));
            }
            return;
        }
        let mut waiting = Vec::new();
        for (wait, reply, result) in outcomes {
            if wait && result.is_ok() {
                waiting.push((reply, result));
            } else {
                let _ = reply.send(result);
            }
        }
        self.apply_committed(pending.changes, lsn, op_count, upserted, started);
        for (reply, result) in waiting {
            let _ = reply.send(result);
        }
    }

    /// Applies committed changes up to `lsn` in memory, counts them, and publishes.
    pub(super) fn apply_committed(
        &mut self,
        changes: Vec<Change>,
        lsn: u64,
        op_count: u64,
        upserted: u64,
        started: Instant,
    ) {
        self.state.apply(changes);
        in_insert_pool(|| self.state.index_appended());
        self.state.lsn = lsn;
        self.stats.operations.fetch_add(op_count, Ordering::Relaxed);
        self.stats
            .points_upserted
            .fetch_add(upserted, Ordering::Relaxed);
        metrics::counter!("vecdb_operations_total", "collection" => self.name.clone())
            .increment(op_count);
        metrics::counter!("vecdb_points_upserted_total", "collection" => self.name.clone())
            .increment(upserted);
        // Optimize before publishing, so no snapshot shows a full append segment as "green".
        self.maybe_optimize();
        self.publish(started);
    }

    pub(super) fn commit(
        &self,
        changes: &[Change],
        lsn: u64,
        mark: Option<&RaftMark>,
    ) -> Result<(), crate::storage::StorageError> {
        let mut batch = self.store.batch(self.collection_id);
        if let Some(mark) = mark {
            self.store
                .put_raft_state_in(&mut batch, mark.group, mark.name, &mark.value);
        }
        let types: Vec<_> = self.state.spaces.iter().map(|s| s.datatype).collect();
        for change in changes {
            match change {
                Change::Put(id, point) => self.store.put_point(&mut batch, *id, point, &types),
                Change::Delete(id) => self.store.delete_point(&mut batch, *id),
            }
        }
        let sync = self.state.config.wal_config.sync_policy != SyncPolicy::Os;
        self.store.commit(batch, lsn, sync)
    }

    fn publish(&mut self, started: Instant) {
        let snapshot = self.state.snapshot();
        let labels = [("collection", self.name.clone())];
        metrics::gauge!("vecdb_snapshot_generation", &labels).set(snapshot.generation as f64);
        metrics::gauge!("vecdb_collection_points", &labels).set(snapshot.points_count() as f64);
        metrics::gauge!("vecdb_collection_segments", &labels).set(snapshot.segments.len() as f64);
        metrics::gauge!("vecdb_writer_queue_depth", &labels).set(self.queue.depth() as f64);
        self.published.store(Arc::new(snapshot));
        metrics::histogram!("vecdb_snapshot_publish_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
    }

    fn configure(&mut self, config: CollectionConfig) -> Result<(), CollectionError> {
        self.store_meta(&config, &self.state.schema)?;
        self.state.spaces = config.spaces().into();
        self.state.config = Arc::new(config);
        self.maybe_optimize();
        self.publish(Instant::now());
        Ok(())
    }

    fn store_meta(
        &self,
        config: &CollectionConfig,
        schema: &PayloadSchema,
    ) -> Result<(), CollectionError> {
        let meta = super::CollectionMeta {
            id: self.collection_id,
            name: self.name.clone(),
            config: config.clone(),
            payload_schema: schema.clone(),
        };
        Ok(self.store.put_collection(&self.name, &meta)?)
    }

    /// Changes the payload schema durably, then rebuilds every sealed segment's indexes (in
    /// parallel, between two group commits: searches go on with the old indexes meanwhile).
    fn change_index(&mut self, change: IndexChange) -> Result<u64, CollectionError> {
        let mut schema = (*self.state.schema).clone();
        match change {
            IndexChange::Create { name, key, spec } => {
                // One index per path, whatever its spelling.
                schema.retain(|n, _| !crate::filter::index::names_path(n, &key));
                schema.insert(name, spec);
            }
            IndexChange::Drop { name } => {
                schema.remove(&name);
            }
        }
        if schema != *self.state.schema {
            self.store_meta(&self.state.config, &schema)?;
            let started = Instant::now();
            // Segments with a file get an index file too (an unpersisted one gets it with its
            // segment file).
            let dir = self.store.segment_dir(self.collection_id);
            let unpersisted = &self.state.unpersisted;
            let sealed: Vec<(&u64, &mut Sealed)> = self.state.sealed.iter_mut().collect();
            let name = &self.name;
            in_insert_pool(|| {
                use rayon::prelude::*;
                sealed.into_par_iter().for_each(|(id, s)| {
                    s.indexes = Arc::new(index_segment(&s.data, &schema));
                    // Graphs of a field no longer a tenant field, or changed, go; a job builds
                    // what the new schema lacks.
                    if let Some(kept) = s.tenants.retain(&schema) {
                        s.tenants = Arc::new(kept);
                    }
                    let filed = matches!(*s.data, SegmentData::Indexed(_));
                    if filed && !unpersisted.contains(id) {
                        index_files::write(&dir, *id, &s.indexes, name);
                    }
                })
            });
            self.state.schema = Arc::new(schema);
            tracing::info!(collection = %self.name, fields = self.state.schema.len(), took_ms = started.elapsed().as_millis() as u64, "payload indexes rebuilt");
            // A new tenant field's graphs are built in the background.
            self.maybe_optimize();
            self.publish(Instant::now());
        }
        Ok(self.state.lsn)
    }

    /// Seals or freezes a full append segment and starts the jobs that are due: at most one
    /// segment file write, one fresh build, one merge and one tenant graph build at a time, on
    /// disjoint segments.
    /// Callers publish afterwards, so the snapshot shows the builds (status yellow).
    fn maybe_optimize(&mut self) {
        if let Some(id) = in_insert_pool(|| self.state.tend_append()) {
            // Sealing a live-indexed segment completes its index as a build would.
            self.stats.index_builds.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("vecdb_index_builds_total", "collection" => self.name.clone())
                .increment(1);
            tracing::debug!(collection = %self.name, segment = id, "append segment sealed");
        }
        let kinds = [
            BuildKind::Persist,
            BuildKind::Fresh,
            BuildKind::Merge,
            BuildKind::Tenants,
        ];
        for kind in kinds {
            if !self.builds.iter().any(|b| b.kind == kind) {
                self.start_build(kind);
            }
        }
    }

    fn start_build(&mut self, kind: BuildKind) {
        let dir = self.store.segment_dir(self.collection_id);
        let Some(job) = BuildJob::plan(&mut self.state, kind, dir) else {
            return;
        };
        let inputs = job.inputs();
        let queue = self.queue.clone();
        let name = self.name.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name(format!("vecdb-index-{}", self.collection_id))
            .spawn(move || {
                // A panicking build must still report back, or the collection stays yellow forever.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    optimizer::run(job, &name)
                }))
                .unwrap_or_else(|_| Err("index build panicked".to_string()));
                let _ = tx.send(result);
                let _ = queue.send_blocking(WriterMsg::BuildFinished);
            });
        match spawned {
            Ok(_) => self.builds.push(RunningBuild {
                kind,
                inputs,
                result: rx,
            }),
            Err(e) => {
                tracing::error!(collection = %self.name, error = %e, "could not start an index build");
                for id in &inputs {
                    self.state.busy.remove(id);
                }
            }
        }
    }

    /// Records a segment whose file was written in the stored segment list.
    fn persisted(&mut self, result: Result<Built, String>) {
        match result {
            Ok(built) => {
                self.state.unpersisted.remove(&built.id);
                // A failure is logged; the file is then an orphan removed at the next start.
                let _ = self.record_segment_list();
            }
            // The segment stays out of the stored list (its points are indexed again after a
            // restart); the write is retried on the next optimizer pass.
            Err(e) => {
                tracing::error!(collection = %self.name, error = %e, "could not write a segment file")
            }
        }
        self.maybe_optimize();
        self.publish(Instant::now());
    }

    /// Stores which segment files make up the collection.
    fn record_segment_list(&self) -> Result<(), crate::storage::StorageError> {
        let list = SegmentList {
            next_id: self.state.next_segment_id,
            sealed: self.state.indexed_ids(),
        };
        let recorded = self.store.put_segment_list(self.collection_id, &list);
        if let Err(e) = &recorded {
            tracing::error!(collection = %self.name, error = %e, "could not record the segment list");
        }
        recorded
    }

    fn install(&mut self, result: Result<Built, String>) {
        let built = match result {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(collection = %self.name, error = %e, "index build failed; will retry on the next write");
                self.publish(Instant::now());
                return;
            }
        };
        let rebuilt = self.state.install(
            built.id,
            built.data,
            &built.sources,
            &built.replaces,
            built.indexes,
        );
        if let Some(carried) = built.tenants {
            self.give_tenants(built.id, carried);
        }
        let dir = self.store.segment_dir(self.collection_id);
        if let Some(sealed) = self.state.sealed.get(&built.id).filter(|_| rebuilt) {
            // The build's index file is for the schema it started with.
            index_files::write(&dir, built.id, &sealed.indexes, &self.name);
        }
        let recorded = self.record_segment_list();
        self.stats.index_builds.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(collection = %self.name, segment = built.id, build_secs = built.took.as_secs_f64(), "segment installed");
        self.maybe_optimize();
        self.publish(Instant::now());
        // Old files go only once the durable list no longer names them. If it could not be
        // stored, it still names them, so they stay, and the new file is an orphan removed at
        // the next start. Memory is consistent either way.
        if recorded.is_ok() {
            for old in &built.replaces {
                for file in SegmentFile::ALL {
                    let _ = std::fs::remove_file(file.path(&dir, *old));
                }
            }
        }
    }

    /// Gives segment `id` tenant graphs (built by a job, or carried over by a build), less
    /// those of fields the schema has dropped or changed meanwhile (a later job builds what it
    /// now lacks).
    fn give_tenants(&mut self, id: u64, graphs: tenants::TenantGraphs) {
        if let Some(sealed) = self.state.sealed.get_mut(&id) {
            let graphs = graphs.retain(&self.state.schema).unwrap_or(graphs);
            sealed.tenants = Arc::new(graphs);
        }
    }

    /// Installs the tenant graphs a job built.
    fn install_tenants(&mut self, result: Result<Built, String>) {
        match result {
            Ok(built) => {
                if let Some(graphs) = built.tenants {
                    self.give_tenants(built.id, graphs);
                }
                self.maybe_optimize();
            }
            Err(e) => {
                tracing::error!(collection = %self.name, error = %e, "tenant graph build failed; will retry on the next write")
            }
        }
        self.publish(Instant::now());
    }
}

/// Threads that insert new points into append segments' live graphs, shared by all
/// collections: every core at normal priority, since this is on the write acknowledgement path
/// (index builds are background work with pools of their own). `None` if they cannot start.
fn insert_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("vecdb-insert-{i}"))
            .build()
            .map_err(|e| tracing::error!(error = %e, "no insert threads; inserting on the writer"))
            .ok()
    })
    .as_ref()
}

/// Runs `f` on the insert pool, or right here without one.
fn in_insert_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match insert_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

pub(super) fn upsert_len(op: &Operation) -> u64 {
    match op {
        Operation::Upsert(points) => points.len() as u64,
        _ => 0,
    }
}
