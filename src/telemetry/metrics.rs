//! The process-wide Prometheus recorder and the names of every metric vecdb exports.
//!
//! Names follow Prometheus conventions: `vecdb_` prefix, base units in the name (`_seconds`,
//! `_bytes`), `_total` on counters. The README lists them all.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets from 1 µs to 10 s: lock waits are microseconds, index builds are seconds.
const BUCKETS: &[f64] = &[
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once and returns its handle (later calls return the same one).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("bucket list is non-empty");
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (only possible in embedding tests): render our own.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe_all();
            handle
        })
        .clone()
}

/// Runs the exporter's upkeep (histogram bucket draining) every few seconds for the process lifetime.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

fn describe_all() {
    describe_counter!(
        "vecdb_http_requests_total",
        "HTTP requests by route, method and status."
    );
    describe_histogram!(
        "vecdb_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route and method."
    );
    describe_counter!(
        "vecdb_grpc_requests_total",
        "gRPC calls by method (`qdrant.Points/Query`) and status code (`Ok`, `NotFound`, ...)."
    );
    describe_histogram!(
        "vecdb_grpc_request_duration_seconds",
        Unit::Seconds,
        "gRPC call latency by method."
    );
    describe_counter!(
        "vecdb_searches_total",
        "Vector searches served, per collection."
    );
    describe_histogram!(
        "vecdb_search_duration_seconds",
        Unit::Seconds,
        "Time to answer one search inside the engine, per collection."
    );
    describe_counter!(
        "vecdb_points_upserted_total",
        "Points written by upserts, per collection."
    );
    describe_counter!(
        "vecdb_operations_total",
        "Update operations applied, per collection."
    );
    describe_gauge!(
        "vecdb_writer_queue_depth",
        "Operations waiting in a collection's writer queue."
    );
    describe_histogram!(
        "vecdb_writer_batch_operations",
        "Operations the writer committed in one RocksDB write batch (group commit size)."
    );
    describe_histogram!(
        "vecdb_snapshot_publish_seconds",
        Unit::Seconds,
        "Time from the start of applying a write batch to publishing the new snapshot."
    );
    describe_gauge!(
        "vecdb_snapshot_generation",
        "Generation number of a collection's published snapshot."
    );
    describe_counter!(
        "vecdb_index_builds_total",
        "HNSW segment builds finished, per collection."
    );
    describe_histogram!(
        "vecdb_index_build_seconds",
        Unit::Seconds,
        "Wall time of one HNSW segment build."
    );
    describe_gauge!(
        "vecdb_index_builds_running",
        "HNSW segment builds in progress."
    );
    describe_histogram!(
        "vecdb_write_stall_seconds",
        Unit::Seconds,
        "Time writes waited for an index build because too many points were unindexed."
    );
    describe_histogram!(
        "vecdb_rocksdb_write_seconds",
        Unit::Seconds,
        "RocksDB write-batch latency, by whether the WAL was synced."
    );
    describe_histogram!(
        "vecdb_rocksdb_fsync_seconds",
        Unit::Seconds,
        "Latency of explicit fsyncs: synced WAL writes and segment files."
    );
    describe_histogram!(
        "vecdb_lock_wait_seconds",
        Unit::Seconds,
        "Time spent waiting to acquire a named lock, queue slot or semaphore."
    );
    describe_counter!(
        "vecdb_lock_acquisitions_total",
        "Acquisitions of a named lock, queue or semaphore."
    );
    describe_counter!(
        "vecdb_lock_contended_total",
        "Acquisitions that had to wait because the lock, queue or semaphore was busy."
    );
    describe_counter!(
        "vecdb_lock_timeouts_total",
        "Acquisitions that gave up after the lock's bounded wait."
    );
    describe_gauge!(
        "vecdb_collection_points",
        "Live points in a collection's published snapshot."
    );
    describe_gauge!(
        "vecdb_collection_segments",
        "Segments in a collection's published snapshot."
    );
}
