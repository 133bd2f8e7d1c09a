//! Cluster mode: Raft groups on openraft, kept in the same RocksDB as the points.
//!
//! - [`types`]: peer ids and addresses, group ids;
//! - [`log_store`]: a group's Raft log and vote (`raft_log`, `raft_state` families);
//! - [`meta`]: the metadata group's state machine (collections, payload indexes, placement).

// openraft's storage traits fix the error type (`StorageError`, over 200 bytes); boxing it
// here would only move the conversion.
#[allow(clippy::result_large_err)]
pub mod log_store;
#[allow(clippy::result_large_err)]
pub mod meta;
pub mod types;
