//! Benchmarks users can run on a dataset (numpy `.npy` or TEXMEX `.fvecs`/`.ivecs`):
//! - `vecdb bench` ([`inproc`]): the HNSW index in-process, like the libraries it competes with;
//! - `vecdb bench-http` ([`http`]): a running server over HTTP, recall@10, QPS and latency of
//!   `/points/query` against exact search;
//! - `vecdb bench-filter` ([`filtered`]): filtered search through the planner at several
//!   selectivities, with and without payload indexes, against exact filtered search;
//! - `vecdb bench-overload` ([`overload`]): hundreds of connections mixing searches and
//!   upserts, then how the service recovers;
//! - `vecdb bench-sparse` ([`sparse`]): exact sparse search over BM25 weights of the dataset's
//!   texts, the pruned inverted index against a brute-force scan;
//! - `vecdb bench-hybrid` ([`hybrid`]): a running server over HTTP, dense, sparse (BM25) and
//!   hybrid (RRF of both) queries on the dataset with its texts.

pub mod dataset;
mod filter_data;
pub mod filtered;
mod grpc_wire;
pub mod http;
pub mod hybrid;
pub mod inproc;
pub mod overload;
pub mod plot;
pub mod sparse;
mod wire;
