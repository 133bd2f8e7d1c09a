//! Persistence: one RocksDB for every collection, plus sealed HNSW segment files beside it.
//!
//! RocksDB's WAL is vecdb's write-ahead log. Column families:
//! - `meta`: format version, collection configs, per-collection LSN and segment lists;
//! - `points`: one record per live point, keyed by collection id + point id ([`codec`]);
//! - `raft_log`, `raft_state`: the logs, votes and applied state of cluster Raft groups
//!   ([`raft_log`]).
//!
//! A writer commits every operation's effects (point records and the new LSN) in one atomic
//! `WriteBatch`, so a crash leaves either all of an operation or none of it.

pub mod codec;
pub mod disk;
pub mod files;
pub mod raft_log;
mod store;

pub use store::{Batch, SegmentList, StorageError, Store, FORMAT_VERSION};
