//! Benchmarks users can run: `vecdb bench-http` loads a dataset (numpy `.npy` or TEXMEX
//! `.fvecs`/`.ivecs`) into a running server and measures recall@10 and queries/second of
//! `/points/query` against exact search.

pub mod dataset;
pub mod http;
