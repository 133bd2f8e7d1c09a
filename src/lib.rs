//! vecdb: a single-binary vector database served over HTTP, speaking Qdrant's REST dialect.
//!
//! The layout follows the data path:
//! - [`api`]: axum handlers, one file per resource; errors and the JSON envelope;
//! - [`collection`]: the collection handle, its single writer thread, snapshots published through
//!   `ArcSwap`, the optimizer that seals segments into HNSW graphs, and search over a snapshot;
//! - [`index`]: distance kernels, exact scan and the HNSW graph;
//! - [`filter`]: the payload filter language;
//! - [`cluster`]: cluster mode: Raft groups on openraft, peers, the internal port;
//! - [`storage`]: RocksDB (the write-ahead log, point records, Raft logs) and segment files;
//! - [`bytes`], [`bitset`]: the byte reader of every binary format, and offset sets, shared by
//!   the layers above;
//! - [`telemetry`]: Prometheus metrics, instrumented locks and queues, logging;
//! - [`config`]: embedded defaults < config file < `VECDB__*` environment;
//! - [`bench`]: the benchmark users run against a server (`vecdb bench-http`).
//!
//! Three words are kept apart everywhere: a *vector index* is [`index`] (the HNSW graph of a
//! segment's vectors), a *payload index* is [`filter::index`] (per-field postings that narrow a
//! filter down to candidates), and a position in a write-ahead or Raft log is an *LSN* (the
//! Raft log index, named `lsn` or `log_index`). An operation is *resolved* by the writer into
//! point-level changes; a filter is *narrowed* by payload indexes; a request is *parsed*.
//!
//! [`run`] serves a bound listener until a shutdown signal, so tests run the real server on port 0.

#[macro_use]
pub mod error;
pub mod api;
pub mod bench;
pub mod bitset;
pub mod bytes;
pub mod cluster;
pub mod collection;
pub mod config;
pub mod filter;
pub mod grpc;
pub mod index;
pub mod limits;
pub mod memory;
pub mod point_id;
pub mod storage;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::AppState;
use collection::registry::Registry;
use config::Config;
use storage::Store;
use telemetry::sync::Gate;

/// Opens storage, recovers every collection, and serves HTTP on `listener` until `shutdown`
/// resolves; then stops accepting, lets in-flight requests finish (bounded by the grace period),
/// stops the writers and flushes RocksDB.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = Instant::now();
    limits::install(config.limits.clone());
    let metrics = telemetry::metrics::install();
    telemetry::metrics::spawn_upkeep(metrics.clone());
    let dir = &config.storage.data_dir;
    let store = anyhow::Context::with_context(Store::open(dir), || {
        format!("opening the data directory {}", dir.display())
    })?;
    let store = Arc::new(store);
    store.set_reserve(config.storage.min_free_disk_mb << 20);
    api::snapshots::clear_uploads(&config);
    let registry = Arc::new(Registry::open(store.clone(), &config)?);
    let cluster = match config.cluster.p2p_port {
        Some(_) => {
            let port = listener.local_addr()?.port();
            Some(cluster::start(registry.clone(), &config, port).await?)
        }
        None => None,
    };
    let state = AppState {
        registry: registry.clone(),
        search_gate: Arc::new(Gate::new("search_slots", config.search_concurrency())),
        config: Arc::new(config),
        metrics,
        started,
        cluster: cluster.clone(),
    };
    let grace = Duration::from_secs(state.config.service.shutdown_grace_sec);
    let tls = match (
        &state.config.service.tls_cert_path,
        &state.config.service.tls_key_path,
    ) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    let acceptor = |protocol| {
        tls.as_ref()
            .map(|(cert, key)| tls::acceptor(cert, key, protocol))
            .transpose()
    };
    let (rest_tls, grpc_tls) = (
        acceptor(tls::Protocol::Http1)?,
        acceptor(tls::Protocol::Http2)?,
    );
    let grpc_addr = format!(
        "{}:{}",
        state.config.service.host, state.config.service.grpc_port
    );
    let grpc_listener = tokio::net::TcpListener::bind(&grpc_addr)
        .await
        .with_context(|| format!("binding the gRPC port {grpc_addr}"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        collections = registry.names().len(),
        startup_secs = started.elapsed().as_secs_f64(),
        "vecdb serving"
    );
    // Printed once collections are recovered and requests are served at once; scripts and tests
    // started with --port 0 read the real address from this line.
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The gRPC line comes first: readers stop at the REST line.
    println!(
        "vecdb grpc listening on {scheme}://{}",
        grpc_listener.local_addr()?
    );
    println!("vecdb listening on {scheme}://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    if let Some(node) = &cluster {
        node.serve_shards_with(api::shard_api(state.clone()));
    }
    let grpc = grpc::router(state.clone());
    let app = api::app(state);
    let mut grpc_stop = stop_rx.clone();
    let grpc_shutdown = async move {
        let _ = grpc_stop.wait_for(|s| *s).await;
    };
    let grpc_server = tls::serve(
        grpc_listener,
        grpc,
        tls::Protocol::Http2,
        grpc_tls,
        grpc_shutdown,
    );
    let rest_server = async move {
        match rest_tls {
            Some(acceptor) => {
                tls::serve(
                    listener,
                    app,
                    tls::Protocol::Http1,
                    Some(acceptor),
                    shutdown,
                )
                .await
            }
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    };
    let server = async move {
        let (rest, grpc) = tokio::join!(rest_server, grpc_server);
        rest.and(grpc)
    };
    let mut stop_seen = stop_rx.clone();
    tokio::select! {
        result = server => result?,
        _ = async {
            let _ = stop_seen.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("in-flight requests did not finish within the shutdown grace period"),
    }
    if let Some(node) = cluster {
        node.shutdown().await;
    }
    tracing::info!("stopping writers and flushing storage");
    tokio::task::spawn_blocking(move || registry.shutdown()).await?;
    tracing::info!("vecdb stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
