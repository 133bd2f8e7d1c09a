//! Snapshots of cluster collections. A snapshot holds the whole collection, every shard, in
//! the same file format as a single node's, so either restores into the other. It is written
//! on the node asked, from its own replicas where it has them and from its peers' otherwise.
//!
//! Recovering goes through consensus like any other change: the collection is recreated by
//! the metadata group and the points are written through each shard's group, so every
//! replica ends up with the same data. Its sharding is kept when it exists; a new one takes
//! the snapshot's, within what the cluster has room for.

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::distributed::{self, check_sharding, voters, wait_until_writable};
use super::error::ApiError;
use super::snapshots::storage_error;
use super::{run_blocking, within};
use crate::cluster::meta::{ClusterCollection, MetaCommand, MetaReply};
use crate::cluster::node::ClusterNode;
use crate::cluster::ring;
use crate::cluster::shard_snapshot::{blocking_reader, ShardPoints};
use crate::collection::backup::{self, SnapshotDescription};
use crate::collection::config::CollectionParams;
use crate::collection::ops::Operation;
use crate::collection::snapshot_file::{Header, SnapshotReader};

/// How long each step of a recovery (a metadata change, a batch of points) may take.
const STEP: Duration = Duration::from_secs(60);

/// Writes a snapshot of every shard of `collection` into `root`.
pub async fn create(
    node: &ClusterNode,
    name: &str,
    collection: &ClusterCollection,
    root: PathBuf,
) -> Result<SnapshotDescription, ApiError> {
    let deadline = Instant::now() + super::time_left();
    let asks = collection
        .shards
        .iter()
        .enumerate()
        .map(|(shard, placement)| node.shard_points(shard, placement, deadline));
    let parts = futures::future::join_all(asks).await;
    let parts: Vec<ShardPoints> = parts
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Unavailable(format!("cannot take the snapshot: {e}")))?;
    let runtime = tokio::runtime::Handle::current();
    let mut header = Header {
        collection: name.to_string(),
        config: collection.config.clone(),
        payload_schema: collection.payload_schema.clone(),
        lsn: 0,
        points: 0,
        written_by: backup::written_by(),
    };
    run_blocking(move || {
        let failed = |e: io::Error| storage_error(format!("cannot write the snapshot: {e}"), &e);
        let mut opened = Vec::with_capacity(parts.len());
        for part in parts {
            let part = Part::open(part, &runtime).map_err(failed)?;
            // The collection's LSN: the sum of its shards', which grows with any of them.
            header.lsn += part.lsn();
            header.points += part.points();
            opened.push(part);
        }
        backup::create_with(&root, header, |writer| {
            for part in opened {
                part.write(writer)?;
            }
            Ok(())
        })
        .map_err(failed)
    })
    .await
}

/// One shard's points, ready to be copied into the snapshot.
enum Part {
    Local(std::sync::Arc<crate::collection::snapshot::Snapshot>),
    Streamed {
        reader: Box<SnapshotReader<Box<dyn io::Read + Send>>>,
        lsn: u64,
        points: u64,
    },
}

impl Part {
    /// Reads a streamed part's header (on a blocking thread).
    fn open(points: ShardPoints, runtime: &tokio::runtime::Handle) -> io::Result<Part> {
        Ok(match points {
            ShardPoints::Local(snapshot) => Part::Local(snapshot),
            ShardPoints::Streamed(response) => {
                let reader: Box<dyn io::Read + Send> =
                    Box::new(BufReader::new(blocking_reader(response, runtime.clone())));
                let (reader, header) = SnapshotReader::open(reader).map_err(io::Error::other)?;
                Part::Streamed {
                    reader: Box::new(reader),
                    lsn: header.lsn,
                    points: header.points,
                }
            }
        })
    }

    fn lsn(&self) -> u64 {
        match self {
            Part::Local(snapshot) => snapshot.lsn,
            Part::Streamed { lsn, .. } => *lsn,
        }
    }

    fn points(&self) -> u64 {
        match self {
            Part::Local(snapshot) => snapshot.points_count() as u64,
            Part::Streamed { points, .. } => *points,
        }
    }

    fn write<W: io::Write>(
        self,
        writer: &mut crate::collection::snapshot_file::SnapshotWriter<W>,
    ) -> io::Result<()> {
        match self {
            Part::Local(snapshot) => backup::write_points(writer, &snapshot),
            Part::Streamed { mut reader, .. } => {
                while let Some((id, point)) = reader.next_point().map_err(io::Error::other)? {
                    writer.point(id, &point)?;
                }
                Ok(())
            }
        }
    }
}

/// Replaces (or creates) cluster collection `name` with the checked snapshot at `path`.
pub async fn restore(
    node: &ClusterNode,
    name: &str,
    path: &Path,
    header: Header,
) -> Result<(), ApiError> {
    let mut config = header.config;
    // A collection created through another peer a moment ago is known here first.
    node.sync_meta(STEP).await;
    let existing = node.meta().state.collections.get(name).cloned();
    let voters = voters(node);
    fit_sharding(&mut config.params, existing.as_ref(), voters.len())?;
    // Loaded with indexing off, indexed once at the end with the snapshot's settings.
    let mut loading = config.clone();
    loading.optimizer_config.indexing_threshold = Some(0);
    if existing.is_some() {
        let delete = MetaCommand::DeleteCollection {
            name: name.to_string(),
        };
        within(STEP, distributed::propose(node, delete)).await?;
    }
    let create = MetaCommand::CreateCollection {
        name: name.to_string(),
        replicas: ring::place(
            name,
            config.params.shard_number,
            config.params.replication_factor,
            &voters,
        ),
        config: loading,
    };
    if let (_, MetaReply::Rejected(why)) = within(STEP, distributed::propose(node, create)).await? {
        return Err(ApiError::Conflict(format!(
            "collection `{name}` was created meanwhile by another request ({why})"
        )));
    }
    within(STEP, wait_until_writable(node, name)).await?;
    let collection = node
        .meta()
        .state
        .collections
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::Unavailable(format!("collection `{name}` vanished")))?;
    load_points(node, &collection, path).await?;
    let settings = MetaCommand::UpdateCollection {
        name: name.to_string(),
        config,
    };
    within(STEP, distributed::propose(node, settings)).await?;
    let schema = MetaCommand::SetPayloadSchema {
        name: name.to_string(),
        schema: header.payload_schema,
    };
    within(STEP, distributed::propose(node, schema)).await?;
    Ok(())
}

/// Sets the sharding a recovered collection gets: the existing collection's, else the
/// snapshot's within the number of peers.
fn fit_sharding(
    params: &mut CollectionParams,
    existing: Option<&ClusterCollection>,
    peers: usize,
) -> Result<(), ApiError> {
    match existing {
        Some(current) => {
            let kept = &current.config.params;
            params.shard_number = kept.shard_number;
            params.replication_factor = kept.replication_factor;
            params.write_consistency_factor = kept.write_consistency_factor;
        }
        None => {
            params.shard_number = params.shard_number.max(1);
            let factor = params.replication_factor.clamp(1, peers.max(1) as u32);
            params.replication_factor = factor;
            params.write_consistency_factor = params.write_consistency_factor.clamp(1, factor);
        }
    }
    check_sharding(
        params.shard_number,
        params.replication_factor,
        params.write_consistency_factor,
        peers,
    )
}

/// Writes the snapshot's points through the shards' groups, a batch at a time.
async fn load_points(
    node: &ClusterNode,
    collection: &ClusterCollection,
    path: &Path,
) -> Result<(), ApiError> {
    let mut batches = super::snapshots::read_batches(path);
    while let Some(batch) = batches.recv().await {
        let batch = batch.map_err(|e| ApiError::BadRequest(format!("snapshot: {e}")))?;
        let write = distributed::write(node, collection, vec![Operation::Upsert(batch)], STEP);
        within(STEP, write).await?;
    }
    Ok(())
}
