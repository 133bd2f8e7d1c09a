//! The collection registry: name → collection, creation, deletion and start-up recovery.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::aliases::{self, AliasAction, Aliases};
use super::config::CollectionConfig;
use super::recover::recover;
use super::state::WriterState;
use super::writer::Writer;
use super::CollectionMeta;
use super::{Collection, CollectionError, CollectionStats};
use crate::config::Config;
use crate::storage::Store;
use crate::telemetry::sync::{Lock, Queue};

/// All collections of the node.
pub struct Registry {
    pub store: Arc<Store>,
    /// Lock-free lookups by name on the request path.
    collections: DashMap<String, Arc<Collection>>,
    /// Other names of collections; replaced whole (under the admin lock) when they change.
    aliases: ArcSwap<Aliases>,
    /// Serialises create and delete so a name is never half-created (held only by admin calls).
    admin: Lock<()>,
    queue_capacity: usize,
    queue_timeout: Duration,
    stall_factor: usize,
    runtime: tokio::runtime::Handle,
}

impl Registry {
    /// Opens every stored collection. Must be called inside a tokio runtime.
    pub fn open(store: Arc<Store>, config: &Config) -> Result<Registry, CollectionError> {
        let registry = Registry {
            store: store.clone(),
            collections: DashMap::new(),
            aliases: ArcSwap::from_pointee(store.aliases()?.unwrap_or_default()),
            admin: Lock::new("collections_admin", ()),
            queue_capacity: config.storage.writer_queue_capacity,
            queue_timeout: Duration::from_millis(config.storage.writer_queue_timeout_ms),
            stall_factor: config.storage.write_stall_factor,
            runtime: tokio::runtime::Handle::current(),
        };
        let metas: Vec<CollectionMeta> = store.collections()?;
        store.remove_segment_dirs_except(&metas.iter().map(|m| m.id).collect::<Vec<_>>());
        for meta in metas {
            let started = std::time::Instant::now();
            let state = recover(&store, &meta)?;
            tracing::info!(
                collection = %meta.name,
                points = state.locations.len(),
                lsn = state.lsn,
                secs = started.elapsed().as_secs_f64(),
                "collection recovered"
            );
            registry.start(meta, state)?;
        }
        Ok(registry)
    }

    fn start(&self, meta: CollectionMeta, mut state: WriterState) -> Result<(), CollectionError> {
        let (queue, rx) = Queue::bounded("writer_queue", Some(&meta.name), self.queue_capacity);
        let published = Arc::new(ArcSwap::from_pointee(state.snapshot()));
        let stats = Arc::new(CollectionStats::default());
        let writer = Writer {
            name: meta.name.clone(),
            collection_id: meta.id,
            state,
            store: self.store.clone(),
            published: published.clone(),
            queue: queue.clone(),
            stats: stats.clone(),
            runtime: self.runtime.clone(),
            stall_factor: self.stall_factor,
            builds: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("vecdb-writer-{}", meta.id))
            .spawn(move || writer.run(rx))
            .map_err(|e| CollectionError::Storage(format!("cannot start writer thread: {e}")))?;
        let collection = Collection {
            name: meta.name.clone(),
            id: meta.id,
            published,
            queue,
            queue_timeout: self.queue_timeout,
            stats,
            writer: std::sync::Mutex::new(Some(handle)),
        };
        self.collections.insert(meta.name, Arc::new(collection));
        Ok(())
    }

    /// The collection named `name`, or that the alias `name` points at; or Qdrant's
    /// not-found message.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>, CollectionError> {
        if let Some(c) = self.collections.get(name) {
            return Ok(c.value().clone());
        }
        let aliases = self.aliases.load();
        aliases
            .get(name)
            .and_then(|target| self.collections.get(target))
            .map(|c| c.value().clone())
            .ok_or_else(|| CollectionError::NotFound(format!("Collection `{name}` doesn't exist!")))
    }

    /// Every alias.
    pub fn aliases(&self) -> Arc<Aliases> {
        self.aliases.load_full()
    }

    /// Applies alias actions all or nothing, durably. Blocking.
    pub fn update_aliases(
        &self,
        actions: &[AliasAction],
        max_wait: Duration,
    ) -> Result<(), CollectionError> {
        let _guard = self.admin(max_wait)?;
        let is_collection = |name: &str| self.collections.contains_key(name);
        let next = aliases::apply(&self.aliases.load(), is_collection, actions)?;
        self.store.put_aliases(&next)?;
        self.aliases.store(Arc::new(next));
        Ok(())
    }

    /// Names of all collections, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.collections.iter().map(|c| c.key().clone()).collect();
        names.sort();
        names
    }

    /// All collections.
    pub fn all(&self) -> Vec<Arc<Collection>> {
        self.collections.iter().map(|c| c.value().clone()).collect()
    }

    /// Takes the admin lock, waiting at most `max_wait`: a create or delete stuck behind another
    /// gets 503 instead of hanging its request.
    fn admin(&self, max_wait: Duration) -> Result<std::sync::MutexGuard<'_, ()>, CollectionError> {
        self.admin.lock_within(max_wait).map_err(|_| {
            CollectionError::Overloaded(format!(
                "another collection is being created or deleted and did not finish within {} ms; retry later",
                max_wait.as_millis()
            ))
        })
    }

    /// Creates a collection durably, waiting at most `max_wait` for another create or delete.
    /// Blocking.
    pub fn create(
        &self,
        name: &str,
        config: CollectionConfig,
        max_wait: Duration,
    ) -> Result<(), CollectionError> {
        let _guard = self.admin(max_wait)?;
        if self.collections.contains_key(name) {
            return Err(CollectionError::Conflict(format!(
                "Collection `{name}` already exists!"
            )));
        }
        if self.aliases.load().contains_key(name) {
            return Err(CollectionError::Conflict(format!(
                "Alias `{name}` already exists! A collection cannot take an alias's name"
            )));
        }
        let meta = CollectionMeta {
            id: self.store.allocate_collection_id()?,
            name: name.to_string(),
            config,
            payload_schema: Default::default(),
        };
        self.store.put_collection(&meta.name, &meta)?;
        let state = WriterState::new(meta.config.clone(), 1);
        self.start(meta, state)
    }

    /// Deletes a collection and its data; false if it did not exist. Waits at most `max_wait`
    /// for another create or delete. Blocking.
    pub fn delete(&self, name: &str, max_wait: Duration) -> Result<bool, CollectionError> {
        let _guard = self.admin(max_wait)?;
        let Some((_, collection)) = self.collections.remove(name) else {
            return Ok(false);
        };
        collection.close();
        self.store.delete_collection(collection.id, name)?;
        // Its aliases go with it.
        let mut aliases = Aliases::clone(&self.aliases.load());
        let before = aliases.len();
        aliases.retain(|_, target| target != name);
        if aliases.len() != before {
            self.store.put_aliases(&aliases)?;
            self.aliases.store(Arc::new(aliases));
        }
        Ok(true)
    }

    /// Replaces collection `name`'s points with those of a replicated snapshot, at LSN `lsn`
    /// with the replication group's `mark`, and restarts it through the recovery path.
    /// Requests meanwhile meet a closed collection (503). Blocking.
    pub fn install(
        &self,
        name: &str,
        points: Vec<(crate::point_id::PointId, crate::storage::codec::StoredPoint)>,
        lsn: u64,
        mark: (u64, &str, &[u8]),
        max_wait: Duration,
    ) -> Result<(), CollectionError> {
        let _guard = self.admin(max_wait)?;
        let collection = self.get(name)?;
        collection.close();
        let types: Vec<_> = collection
            .snapshot()
            .spaces
            .iter()
            .map(|s| s.datatype)
            .collect();
        self.store
            .raft_install(collection.id, &types, points, lsn, mark)?;
        let metas: Vec<CollectionMeta> = self.store.collections()?;
        let meta = metas.into_iter().find(|m| m.name == name).ok_or_else(|| {
            CollectionError::NotFound(format!("Collection `{name}` doesn't exist!"))
        })?;
        let state = recover(&self.store, &meta)?;
        self.start(meta, state)
    }

    /// Stops every writer (each finishes its queue) and flushes storage. Blocking.
    pub fn shutdown(&self) {
        for collection in self.all() {
            collection.close();
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flush at shutdown failed");
        }
        self.store.leave_open_if_failing();
    }
}
