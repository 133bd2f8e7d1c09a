//! Cluster mode: Raft groups on openraft, kept in the same RocksDB as the points.
//!
//! - [`types`]: peer ids and addresses, group ids;
//! - [`engine`]: the only code that drives openraft, behind the [`engine::Consensus`] trait;
//! - [`log_store`]: a group's Raft log and vote (`raft_log`, `raft_state` families);
//! - [`meta`]: the metadata group's state machine (collections, payload indexes, placement);
//! - [`shard`]: a shard replica's state machine, over a local collection's writer;
//! - [`network`], [`p2p`]: messages between peers over HTTP on the internal port;
//! - [`ring`]: points to shards and shard replicas to peers (consistent hashing);
//! - [`rebalance`]: which replicas move when a peer joins or leaves;
//! - [`replicas`]: the shard replicas on this node, started and stopped as placed;
//! - [`route`], [`requests`]: writes split by shard and proposed on leaders, reads sent to the
//!   replica a consistency level allows, the consistency token;
//! - [`wire`]: the binary form of stored Raft state and of Raft messages;
//! - [`node`]: this node's identity and how it starts, joins or rejoins a cluster.

pub mod engine;
// openraft's storage traits fix the error type (`StorageError`, over 200 bytes); boxing it
// here would only move the conversion.
#[allow(clippy::result_large_err)]
pub mod log_store;
pub mod merge;
#[allow(clippy::result_large_err)]
pub mod meta;
pub mod network;
pub mod node;
pub mod p2p;
pub mod rebalance;
pub mod replicas;
pub mod requests;
pub mod ring;
pub mod route;
#[allow(clippy::result_large_err)]
pub mod shard;
pub mod shard_snapshot;
pub mod types;
pub mod wire;

use std::sync::Arc;

use anyhow::Context;

use crate::collection::registry::Registry;
use crate::config::Config;
use node::ClusterNode;

/// Binds the internal port, starts the metadata group, serves peers and enters the cluster
/// (new, joined or rejoined). Returns once this node takes part in it.
pub async fn start(
    registry: Arc<Registry>,
    config: &Config,
    api_port: u16,
) -> anyhow::Result<Arc<ClusterNode>> {
    let cluster = &config.cluster;
    let p2p_port = cluster
        .p2p_port
        .context("cluster mode needs cluster.p2p_port")?;
    let addr = format!("{}:{p2p_port}", config.service.host);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding the internal port {addr}"))?;
    let bound = listener.local_addr()?.port();
    let peer = node::advertised_peer(config, api_port, bound)?;
    let node = Arc::new(ClusterNode::start(registry, config, peer).await?);
    let secret = cluster.required_secret().map_err(anyhow::Error::msg)?;
    let app = p2p::router(node.clone(), secret);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the internal port stopped: {e}");
        }
    });
    println!("vecdb p2p listening on http://{}", node.peer.p2p);
    node.enter(cluster.bootstrap.as_deref()).await?;
    node.follow_placement();
    tracing::info!(peer_id = node.id, peer = %node.peer, "cluster member");
    Ok(node)
}
