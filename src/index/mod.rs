//! Vector indexing: what lives where.
//!
//! - [`distance`]: SIMD distance kernels (AVX2+FMA picked at run time) and [`Metric`].
//! - [`flat`]: exact brute-force search and the [`TopK`] collector shared by all scans.
//! - [`hnsw`]: the HNSW approximate index, built in parallel and frozen into a lock-free [`Graph`].
//! - [`quant`]: int8 scalar quantization: codes a quarter the size of the floats, for traversal.

pub mod distance;
pub mod flat;
pub mod hnsw;
pub mod quant;

pub use distance::Metric;
pub use flat::{top_k, TopK};
pub use hnsw::{Graph, HnswParams};
