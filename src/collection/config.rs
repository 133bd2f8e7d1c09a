//! A collection's configuration: the request shapes Qdrant's clients send, and the resolved form
//! that is stored and reported back in `GET /collections/{name}`.

use crate::error::Invalid;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::quantization::{self, QuantizationConfig};
use super::sparse_config::{self, SparseSpace, SparseVectorParams};
pub use super::vector_config::{
    Comparator, Datatype, Distance, MultiVectorConfig, VectorParams, VectorSpace, VectorsConfig,
};
use crate::config::{CollectionDefaults, SyncPolicy};

/// HNSW settings; every field optional in requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswConfigDiff {
    /// Links per node (layer 0 keeps twice as many).
    pub m: Option<usize>,
    /// Beam width while building.
    pub ef_construct: Option<usize>,
    /// Collections with fewer kilobytes of vectors than this are searched exactly.
    pub full_scan_threshold: Option<usize>,
    /// Threads a build may use; 0 = all cores.
    pub max_indexing_threads: Option<usize>,
    /// Accepted for compatibility; graphs are kept in memory.
    pub on_disk: Option<bool>,
    /// Accepted for compatibility (payload-aware links come with payload indexes).
    pub payload_m: Option<usize>,
}

/// Resolved HNSW settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct HnswConfig {
    pub m: usize,
    pub ef_construct: usize,
    pub full_scan_threshold: usize,
    pub max_indexing_threads: usize,
    pub on_disk: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

impl HnswConfig {
    /// Applies the fields a diff sets.
    pub fn apply(&mut self, diff: &HnswConfigDiff) {
        set(&mut self.m, diff.m);
        set(&mut self.ef_construct, diff.ef_construct);
        set(&mut self.full_scan_threshold, diff.full_scan_threshold);
        set(&mut self.max_indexing_threads, diff.max_indexing_threads);
        set(&mut self.on_disk, diff.on_disk);
        if diff.payload_m.is_some() {
            self.payload_m = diff.payload_m;
        }
    }

    fn validate(&self, what: &str) -> Result<(), Invalid> {
        if !(2..=128).contains(&self.m) {
            return invalid!("{what}.m must be between 2 and 128, got {}", self.m);
        }
        if self.ef_construct < 4 {
            let path = format!("{what}.ef_construct");
            return Err(Invalid::below(&path, self.ef_construct, 4));
        }
        if self.ef_construct > 4096 {
            return invalid!(
                "{what}.ef_construct must be between 4 and 4096, got {}",
                self.ef_construct
            );
        }
        Ok(())
    }
}

/// Optimizer settings; every field optional in requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizersConfigDiff {
    /// Fraction of deleted points past which a sealed segment is rebuilt.
    pub deleted_threshold: Option<f64>,
    /// Segments smaller than this are not vacuumed.
    pub vacuum_min_vector_number: Option<usize>,
    /// Accepted for compatibility.
    pub default_segment_number: Option<usize>,
    /// Accepted for compatibility.
    pub max_segment_size: Option<usize>,
    /// Accepted for compatibility.
    pub memmap_threshold: Option<usize>,
    /// Kilobytes of vectors in the append segment before it is sealed into an HNSW segment.
    pub indexing_threshold: Option<usize>,
    /// Accepted for compatibility (RocksDB flushes on its own schedule).
    pub flush_interval_sec: Option<u64>,
    /// Accepted for compatibility.
    pub max_optimization_threads: Option<usize>,
}

/// Resolved optimizer settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OptimizersConfig {
    pub deleted_threshold: f64,
    pub vacuum_min_vector_number: usize,
    pub default_segment_number: usize,
    pub max_segment_size: Option<usize>,
    pub memmap_threshold: Option<usize>,
    pub indexing_threshold: Option<usize>,
    pub flush_interval_sec: u64,
    pub max_optimization_threads: Option<usize>,
}

impl OptimizersConfig {
    /// Applies the fields a diff sets.
    pub fn apply(&mut self, diff: &OptimizersConfigDiff) -> Result<(), Invalid> {
        if let Some(t) = diff.deleted_threshold {
            if !(0.0..=1.0).contains(&t) {
                return invalid!(
                    "optimizers_config.deleted_threshold must be within 0..=1, got {t}"
                );
            }
            self.deleted_threshold = t;
        }
        set(
            &mut self.vacuum_min_vector_number,
            diff.vacuum_min_vector_number,
        );
        set(
            &mut self.default_segment_number,
            diff.default_segment_number,
        );
        set(&mut self.flush_interval_sec, diff.flush_interval_sec);
        for (field, value) in [
            (&mut self.max_segment_size, diff.max_segment_size),
            (&mut self.memmap_threshold, diff.memmap_threshold),
            (&mut self.indexing_threshold, diff.indexing_threshold),
            (
                &mut self.max_optimization_threads,
                diff.max_optimization_threads,
            ),
        ] {
            if value.is_some() {
                *field = value;
            }
        }
        Ok(())
    }
}

/// WAL settings; Qdrant's sizes are accepted, and the sync policy is vecdb's own.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalConfigDiff {
    /// Accepted for compatibility (RocksDB manages its WAL files).
    pub wal_capacity_mb: Option<usize>,
    /// Accepted for compatibility.
    pub wal_segments_ahead: Option<usize>,
    /// Accepted for compatibility.
    pub wal_retain_closed: Option<usize>,
    /// When acknowledged writes are fsynced: `every_write`, `group` or `os`.
    pub sync_policy: Option<SyncPolicy>,
    /// Longest time the writer waits to gather operations into one group commit.
    pub group_commit_interval_ms: Option<u64>,
}

/// Resolved WAL settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct WalConfig {
    pub wal_capacity_mb: usize,
    pub wal_segments_ahead: usize,
    /// Accepted for compatibility (RocksDB manages its WAL files).
    #[serde(default = "one")]
    pub wal_retain_closed: usize,
    pub sync_policy: SyncPolicy,
    pub group_commit_interval_ms: u64,
}

/// Collection-wide parameters as `GET /collections/{name}` reports them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionParams {
    pub vectors: VectorsConfig,
    pub shard_number: u32,
    pub replication_factor: u32,
    pub write_consistency_factor: u32,
    pub on_disk_payload: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sparse_vectors: BTreeMap<String, SparseVectorParams>,
}

/// The stored, fully resolved configuration of a collection.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionConfig {
    pub params: CollectionParams,
    pub hnsw_config: HnswConfig,
    pub optimizer_config: OptimizersConfig,
    pub wal_config: WalConfig,
    #[schema(value_type = Option<QuantizationConfig>)]
    pub quantization_config: Option<Value>,
    /// The user's own JSON about the collection, set at creation and merged by PATCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// `PUT /collections/{name}` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    /// The vector space(s) of the collection.
    pub vectors: VectorsConfig,
    pub hnsw_config: Option<HnswConfigDiff>,
    pub optimizers_config: Option<OptimizersConfigDiff>,
    pub wal_config: Option<WalConfigDiff>,
    /// Must be 1 (a single node has one shard).
    pub shard_number: Option<u32>,
    /// Must be 1 on a single node.
    pub replication_factor: Option<u32>,
    /// Must be 1 on a single node.
    pub write_consistency_factor: Option<u32>,
    /// Accepted for compatibility.
    pub on_disk_payload: Option<bool>,
    /// Accepted for compatibility when null or `auto`.
    #[schema(value_type = Option<String>)]
    pub sharding_method: Option<Value>,
    /// Sparse vector spaces, by name.
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    /// Int8 scalar quantization for every vector (`{"scalar": {"type": "int8"}}`).
    #[schema(value_type = Option<QuantizationConfig>)]
    pub quantization_config: Option<Value>,
    /// Accepted for compatibility.
    #[schema(value_type = Option<Object>)]
    pub strict_mode_config: Option<Value>,
    /// Not supported yet: must be null.
    #[schema(value_type = Option<Object>)]
    pub init_from: Option<Value>,
    /// Free-form JSON kept with the collection and returned in its configuration.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PATCH /collections/{name}` body.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    /// Per-vector HNSW overrides, by vector name ("" for the unnamed vector).
    #[schema(value_type = Option<Object>)]
    pub vectors: Option<BTreeMap<String, VectorParamsDiff>>,
    pub hnsw_config: Option<HnswConfigDiff>,
    pub optimizers_config: Option<OptimizersConfigDiff>,
    /// Accepted for compatibility.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// Must be absent: quantization is chosen when the collection is created.
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
    /// Index settings and modifiers of existing sparse vectors, by name.
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    /// Accepted for compatibility.
    #[schema(value_type = Option<Object>)]
    pub strict_mode_config: Option<Value>,
    /// Keys to set in the collection's metadata (a key set to null is removed).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Per-vector changes in `PATCH /collections/{name}`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorParamsDiff {
    pub hnsw_config: Option<HnswConfigDiff>,
    pub on_disk: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub quantization_config: Option<Value>,
}

/// What a sparse vector is taken to weigh when the indexing threshold (in kilobytes of vectors)
/// is turned into points: about 16 dimensions of index and value.
const SPARSE_BYTES_PER_POINT: usize = 128;

/// The largest vector size Qdrant's API accepts.
const QDRANT_MAX_DIMENSION: usize = 65_536;

/// A request's `metadata`: an object, or nothing.
fn metadata(value: Option<Value>) -> Result<Option<Map<String, Value>>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => invalid!("metadata must be a JSON object, got {other}"),
    }
}

fn one() -> usize {
    1
}

fn set<T: Copy>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn reject_if_set(value: &Option<Value>, what: &str) -> Result<(), Invalid> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(_) => invalid!("{what} is not supported yet"),
    }
}

/// Refuses a change that would leave existing segments encoded under another configuration.
fn fixed_at_creation(value: &Option<Value>, what: &str) -> Result<(), Invalid> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(_) => invalid!("{what} can only be set when the collection is created"),
    }
}

impl CollectionConfig {
    /// Resolves a create request against the server's defaults, rejecting what cannot work.
    pub fn from_request(
        req: CreateCollection,
        defaults: &CollectionDefaults,
        sync_policy: SyncPolicy,
        group_commit_interval_ms: u64,
    ) -> Result<CollectionConfig, Invalid> {
        for (n, what) in [
            (req.shard_number, "shard_number"),
            (req.replication_factor, "replication_factor"),
            (req.write_consistency_factor, "write_consistency_factor"),
        ] {
            if n.is_some_and(|n| n != 1) {
                return invalid!("{what} must be 1 on a single-node vecdb");
            }
        }
        let quantization = quantization::parse(&req.quantization_config, "quantization_config")?;
        reject_if_set(&req.init_from, "init_from")?;
        let mut hnsw_config = HnswConfig {
            m: defaults.hnsw_m,
            ef_construct: defaults.hnsw_ef_construct,
            full_scan_threshold: defaults.full_scan_threshold_kb,
            max_indexing_threads: defaults.max_indexing_threads,
            on_disk: false,
            payload_m: None,
        };
        hnsw_config.apply(&req.hnsw_config.unwrap_or_default());
        let mut optimizer_config = OptimizersConfig {
            deleted_threshold: defaults.deleted_threshold,
            vacuum_min_vector_number: 1000,
            default_segment_number: 0,
            max_segment_size: None,
            memmap_threshold: None,
            indexing_threshold: Some(defaults.indexing_threshold_kb),
            flush_interval_sec: 5,
            max_optimization_threads: None,
        };
        optimizer_config.apply(&req.optimizers_config.unwrap_or_default())?;
        let wal = req.wal_config.unwrap_or_default();
        let config = CollectionConfig {
            params: CollectionParams {
                vectors: req.vectors,
                shard_number: 1,
                replication_factor: 1,
                write_consistency_factor: 1,
                on_disk_payload: req.on_disk_payload.unwrap_or(false),
                sparse_vectors: req.sparse_vectors.unwrap_or_default(),
            },
            hnsw_config,
            optimizer_config,
            wal_config: WalConfig {
                wal_capacity_mb: wal.wal_capacity_mb.unwrap_or(32),
                wal_segments_ahead: wal.wal_segments_ahead.unwrap_or(0),
                wal_retain_closed: wal.wal_retain_closed.unwrap_or(1).max(1),
                sync_policy: wal.sync_policy.unwrap_or(sync_policy),
                group_commit_interval_ms: wal
                    .group_commit_interval_ms
                    .unwrap_or(group_commit_interval_ms)
                    .min(1000),
            },
            quantization_config: quantization
                .map(|q| serde_json::to_value(q).expect("plain data serialises")),
            metadata: metadata(req.metadata)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Applies a `PATCH` request; returns the new configuration without touching `self`.
    pub fn updated(&self, req: &UpdateCollection) -> Result<CollectionConfig, Invalid> {
        fixed_at_creation(&req.quantization_config, "quantization_config")?;
        let mut next = self.clone();
        if let Some(changes) = metadata(req.metadata.clone())? {
            let merged = next.metadata.get_or_insert_with(Map::new);
            for (key, value) in changes {
                match value {
                    Value::Null => merged.remove(&key),
                    value => merged.insert(key, value),
                };
            }
        }
        if let Some(diff) = &req.hnsw_config {
            next.hnsw_config.apply(diff);
        }
        if let Some(diff) = &req.optimizers_config {
            next.optimizer_config.apply(diff)?;
        }
        if let Some(patch) = &req.sparse_vectors {
            sparse_config::update(&mut next.params.sparse_vectors, patch.clone())?;
        }
        for (name, diff) in req.vectors.iter().flatten() {
            fixed_at_creation(&diff.quantization_config, "quantization_config")?;
            let params = next
                .vector_params_mut(name)
                .ok_or_else(|| format!("collection has no vector named \"{name}\""))?;
            if let Some(h) = &diff.hnsw_config {
                let merged = params.hnsw_config.get_or_insert_with(Default::default);
                merge_hnsw_diff(merged, h);
            }
        }
        next.validate()?;
        Ok(next)
    }

    fn vector_params_mut(&mut self, name: &str) -> Option<&mut VectorParams> {
        match &mut self.params.vectors {
            VectorsConfig::Single(p) if name.is_empty() => Some(p),
            VectorsConfig::Single(_) => None,
            VectorsConfig::Named(map) => map.get_mut(name),
        }
    }

    /// The vector spaces, sorted by name; the unnamed vector is called "".
    pub fn spaces(&self) -> Vec<VectorSpace> {
        let resolve = |name: &str, p: &VectorParams| {
            let mut hnsw = self.hnsw_config.clone();
            if let Some(diff) = &p.hnsw_config {
                hnsw.apply(diff);
            }
            // Both were validated when the configuration was made; the vector's own wins.
            let own = quantization::parse(&p.quantization_config, "")
                .ok()
                .flatten();
            let shared = quantization::parse(&self.quantization_config, "")
                .ok()
                .flatten();
            VectorSpace {
                name: name.to_string(),
                size: p.size,
                distance: p.distance,
                hnsw,
                quantization: own.or(shared).map(|q| q.scalar),
                multi: p.multivector_config.is_some(),
                datatype: p.datatype.unwrap_or_default(),
            }
        };
        match &self.params.vectors {
            VectorsConfig::Single(p) => vec![resolve("", p)],
            VectorsConfig::Named(map) => map.iter().map(|(n, p)| resolve(n, p)).collect(),
        }
    }

    /// The sparse vector spaces, sorted by name.
    pub fn sparse_spaces(&self) -> Vec<SparseSpace> {
        sparse_config::spaces(&self.params.sparse_vectors)
    }

    /// Whether `name` is a sparse vector (`Some`) and whether its queries are IDF-weighted.
    pub fn sparse_idf(&self, name: &str) -> Option<bool> {
        let params = self.params.sparse_vectors.get(name)?;
        Some(params.modifier == Some(sparse_config::Modifier::Idf))
    }

    /// Whether points carry one unnamed vector (plain list in JSON) rather than named ones.
    pub fn is_single(&self) -> bool {
        matches!(self.params.vectors, VectorsConfig::Single(_))
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let sparse = &self.params.sparse_vectors;
        if let VectorsConfig::Named(map) = &self.params.vectors {
            if map.is_empty() && sparse.is_empty() {
                return Err(
                    "vectors: at least one named vector (or a sparse vector) is required".into(),
                );
            }
        }
        let dense: Vec<String> = self.spaces().into_iter().map(|s| s.name).collect();
        sparse_config::check(sparse, &dense)?;
        self.hnsw_config.validate("hnsw_config")?;
        for space in self.spaces() {
            let what = if space.name.is_empty() {
                "vectors".to_string()
            } else {
                format!("vectors.{}", space.name)
            };
            let max_dimension = crate::limits::get().max_vector_dimension;
            // Qdrant's own range is a validation error; a lower configured limit is vecdb's.
            if space.size == 0 || space.size > QDRANT_MAX_DIMENSION {
                let path = format!("{what}.size");
                return Err(Invalid::outside(&path, space.size, 1, QDRANT_MAX_DIMENSION));
            }
            if space.size > max_dimension {
                return invalid!(
                    "{what}.size must be between 1 and {max_dimension} (limits.max_vector_dimension), got {}",
                    space.size
                );
            }
            space.hnsw.validate(&format!("{what}.hnsw_config"))?;
        }
        if let VectorsConfig::Single(p) = &self.params.vectors {
            check_vector_extras(p, "vectors")?;
        } else if let VectorsConfig::Named(map) = &self.params.vectors {
            for (name, p) in map {
                check_vector_extras(p, &format!("vectors.{name}"))?;
            }
        }
        Ok(())
    }

    /// Number of points the append segment holds before it is sealed into an HNSW segment
    /// (the threshold counts vectors' bytes in their stored types, as Qdrant's does).
    pub fn indexing_threshold_points(&self) -> usize {
        let dense: usize = self
            .spaces()
            .iter()
            .map(|s| s.size * s.datatype.bytes())
            .sum();
        let bytes_per_point = (dense + SPARSE_BYTES_PER_POINT * self.sparse_spaces().len()).max(1);
        match self.optimizer_config.indexing_threshold {
            // Qdrant's 0 means "never index".
            Some(0) => usize::MAX,
            Some(kb) => (kb * 1024 / bytes_per_point).max(1),
            None => usize::MAX,
        }
    }

    /// Segments with fewer points than this are searched exactly.
    pub fn full_scan_threshold_points(&self, space: &VectorSpace) -> usize {
        space.hnsw.full_scan_threshold * 1024 / (space.size * space.datatype.bytes()).max(1)
    }
}

fn merge_hnsw_diff(into: &mut HnswConfigDiff, diff: &HnswConfigDiff) {
    into.m = diff.m.or(into.m);
    into.ef_construct = diff.ef_construct.or(into.ef_construct);
    into.full_scan_threshold = diff.full_scan_threshold.or(into.full_scan_threshold);
    into.max_indexing_threads = diff.max_indexing_threads.or(into.max_indexing_threads);
    into.on_disk = diff.on_disk.or(into.on_disk);
    into.payload_m = diff.payload_m.or(into.payload_m);
}

fn check_vector_extras(p: &VectorParams, what: &str) -> Result<(), Invalid> {
    quantization::parse(
        &p.quantization_config,
        &format!("{what}.quantization_config"),
    )?;
    Ok(())
}

/// Checks a collection name: 1 to 255 bytes, no path separators or control characters, and no
/// `~`, which names shard replicas in cluster mode.
pub fn validate_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > 255 {
        return Err("collection name must be 1 to 255 bytes long".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || "/\\*?\"<>|:~".contains(*c))
    {
        return invalid!("collection name must not contain {c:?}");
    }
    Ok(())
}
