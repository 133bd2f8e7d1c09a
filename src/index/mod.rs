//! Vector indexing: what lives where.
//!
//! - [`distance`]: SIMD distance kernels (AVX2+FMA picked at run time) and [`Metric`].
//! - [`flat`]: exact brute-force search and the [`TopK`] collector shared by all scans.
//! - [`hnsw`]: the HNSW approximate index, built in parallel and frozen into a lock-free [`Graph`].
//! - [`quant`]: int8 scalar quantization: codes a quarter the size of the floats, for traversal.
//! - [`signs`]: one-bit sign codes, a 32nd of the floats, to rank a filter's many candidates.
//! - [`sparse`]: sparse vectors and their inverted index.
//! - [`typed`]: `float16` and `uint8` element types and rows stored in them.

pub mod distance;
pub mod flat;
pub mod hnsw;
pub mod quant;
pub mod signs;
pub mod sparse;
pub mod typed;

pub use distance::Metric;
pub use flat::{top_k, TopK};
pub use hnsw::{Graph, HnswParams};

/// Data for the index tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Deterministic uniform vectors in [-1, 1).
    pub(crate) fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}
