//! Int8 scalar quantization (Qdrant's `quantization_config.scalar`): every component is mapped
//! linearly from one range `[lo, hi]`, shared by all dimensions, onto a u8 code. A quantized row
//! is a quarter of the float row, so graph traversal reads a quarter of the memory; the float
//! originals are only read to rescore the few candidates a search keeps.
//!
//! With `x ≈ lo + α·c` for codes `c`, the metrics become integer kernels plus corrections:
//! - dot:  `x·y ≈ dim·lo² + lo·α·(Σc + Σd) + α²·Σ c·d`, the `lo·α·Σc` term stored per row;
//! - squared L2: `α²·Σ (c − d)²`;  L1: `α·Σ |c − d|` (the offset cancels).

pub(crate) mod kernels;

use rayon::prelude::*;

use super::Metric;
use kernels::{kernels, CodeKernel};

/// Components sampled to find the quantization range.
const RANGE_SAMPLE: usize = 1 << 20;

/// Quantized rows of one vector space, in the same offsets as the float rows they came from.
#[derive(Clone)]
pub struct Quantized {
    metric: Metric,
    dim: usize,
    lo: f32,
    /// Width of one code step.
    alpha: f32,
    /// `len × dim` codes, row-major.
    codes: Vec<u8>,
    /// Per row, its own share of the dot product (`lo·α·Σc`); empty for other metrics.
    row_terms: Vec<f32>,
    kernel: CodeKernel,
}

/// A query encoded for one [`Quantized`] set.
pub struct QuantQuery {
    codes: Vec<u8>,
    /// The query's own share of the distance (dot only).
    constant: f32,
}

impl Quantized {
    /// Encodes `vectors` (`len × dim`, row-major) in parallel on the current rayon pool. The range
    /// covers the central `quantile` of sampled components (Qdrant's meaning; all of them when
    /// None), so rare outliers do not stretch the code steps.
    pub fn new(vectors: &[f32], dim: usize, metric: Metric, quantile: Option<f32>) -> Quantized {
        let dim = dim.max(1);
        let (lo, hi) = range(vectors, dim, quantile);
        let alpha = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let codes: Vec<u8> = vectors.par_iter().map(|&x| encode(x, lo, alpha)).collect();
        // Cosine (raw, of uint8 spaces) is never quantized: such spaces hold bytes already.
        debug_assert!(metric != Metric::Cosine, "uint8 spaces are not quantized");
        let row_terms = match metric {
            Metric::Dot | Metric::Cosine => codes
                .par_chunks_exact(dim)
                .map(|row| lo * alpha * code_sum(row))
                .collect(),
            Metric::L2 | Metric::L1 => Vec::new(),
        };
        let k = kernels();
        let kernel = match metric {
            Metric::Dot | Metric::Cosine => k.dot,
            Metric::L2 => k.l2,
            Metric::L1 => k.l1,
        };
        Quantized {
            metric,
            dim,
            lo,
            alpha,
            codes,
            row_terms,
            kernel,
        }
    }

    /// Components per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Bytes of heap memory held (codes and per-row terms).
    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() + self.row_terms.capacity() * std::mem::size_of::<f32>()
    }

    /// Encodes a query vector of `dim` components.
    pub fn query(&self, vector: &[f32]) -> QuantQuery {
        let codes: Vec<u8> = vector
            .iter()
            .map(|&x| encode(x, self.lo, self.alpha))
            .collect();
        let constant = match self.metric {
            Metric::Dot | Metric::Cosine => {
                self.dim as f32 * self.lo * self.lo + self.lo * self.alpha * code_sum(&codes)
            }
            Metric::L2 | Metric::L1 => 0.0,
        };
        QuantQuery { codes, constant }
    }

    /// Approximate distance (lower is closer, on the scale of [`Metric::distance`]) from an
    /// encoded query to row `id`.
    #[inline]
    pub fn distance(&self, q: &QuantQuery, id: u32) -> f32 {
        let raw = (self.kernel)(&q.codes, self.row(id)) as f32;
        match self.metric {
            Metric::Dot | Metric::Cosine => {
                let own = self.row_terms.get(id as usize).copied().unwrap_or(0.0);
                -(q.constant + own + self.alpha * self.alpha * raw)
            }
            Metric::L2 => self.alpha * self.alpha * raw,
            Metric::L1 => self.alpha * raw,
        }
    }

    /// Starts pulling up to `max_lines` cache lines of row `id` into cache.
    #[inline(always)]
    pub fn prefetch(&self, id: u32, max_lines: usize) {
        let row = self.codes.as_ptr().wrapping_add(id as usize * self.dim);
        super::hnsw::prefetch_row(row, self.dim, max_lines);
    }

    /// Codes of row `id` (empty past the end, which a validated graph never asks for).
    #[inline]
    fn row(&self, id: u32) -> &[u8] {
        let start = id as usize * self.dim;
        self.codes.get(start..start + self.dim).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Quantized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quantized")
            .field("len", &self.len())
            .field("dim", &self.dim)
            .field("lo", &self.lo)
            .field("alpha", &self.alpha)
            .finish()
    }
}

#[inline]
fn encode(x: f32, lo: f32, alpha: f32) -> u8 {
    // `as u8` saturates (and maps NaN to 0), which is the clamping the range needs.
    ((x - lo) / alpha).round() as u8
}

fn code_sum(codes: &[u8]) -> f32 {
    codes.iter().map(|&c| c as u32).sum::<u32>() as f32
}

/// The range `[lo, hi]` holding the central `quantile` of an even sample of whole rows.
fn range(vectors: &[f32], dim: usize, quantile: Option<f32>) -> (f32, f32) {
    let rows = vectors.len() / dim;
    if rows == 0 {
        return (0.0, 0.0);
    }
    let step = (rows * dim / RANGE_SAMPLE).max(1);
    let mut sample: Vec<f32> = (0..rows)
        .step_by(step)
        .flat_map(|r| &vectors[r * dim..(r + 1) * dim])
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if sample.is_empty() {
        return (0.0, 0.0);
    }
    let q = quantile.unwrap_or(1.0).clamp(0.5, 1.0) as f64;
    let last = sample.len() - 1;
    let lo_at = ((1.0 - q) / 2.0 * last as f64).round() as usize;
    let hi_at = ((1.0 + q) / 2.0 * last as f64).round() as usize;
    let lo = *sample.select_nth_unstable_by(lo_at, f32::total_cmp).1;
    let hi = *sample.select_nth_unstable_by(hi_at, f32::total_cmp).1;
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let row: Vec<f32> = (0..dim).map(|_| next()).collect();
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            out.extend(row.iter().map(|v| v / norm));
        }
        out
    }

    #[test]
    fn quantized_distances_track_the_float_distances() {
        let dim = 96;
        let vectors = random_unit_vectors(300, dim, 7);
        for metric in [Metric::Dot, Metric::L2, Metric::L1] {
            let qz = Quantized::new(&vectors, dim, metric, None);
            assert_eq!(qz.len(), 300);
            let query = &vectors[5 * dim..6 * dim];
            let qq = qz.query(query);
            for id in 0..300u32 {
                let row = &vectors[id as usize * dim..(id as usize + 1) * dim];
                let exact = metric.distance(query, row);
                let approx = qz.distance(&qq, id);
                // One code step is about 1/255 of a component's range; summed over 96
                // components the error stays a small fraction of the distances' spread.
                assert!(
                    (exact - approx).abs() < 0.05 * exact.abs().max(1.0),
                    "{metric:?} id {id}: exact {exact} approx {approx}"
                );
            }
        }
    }

    #[test]
    fn ranking_by_quantized_distance_keeps_the_true_nearest_near_the_top() {
        let dim = 64;
        let vectors = random_unit_vectors(2000, dim, 11);
        let qz = Quantized::new(&vectors, dim, Metric::Dot, Some(0.99));
        let query = random_unit_vectors(1, dim, 99);
        let qq = qz.query(&query);
        let mut exact: Vec<(f32, u32)> = (0..2000u32)
            .map(|i| {
                let row = &vectors[i as usize * dim..(i as usize + 1) * dim];
                (Metric::Dot.distance(&query, row), i)
            })
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut approx: Vec<(f32, u32)> = (0..2000u32).map(|i| (qz.distance(&qq, i), i)).collect();
        approx.sort_by(|a, b| a.0.total_cmp(&b.0));
        let top50: Vec<u32> = approx[..50].iter().map(|p| p.1).collect();
        let found = exact[..10].iter().filter(|p| top50.contains(&p.1)).count();
        assert_eq!(
            found, 10,
            "the 10 true nearest must be among the 50 best quantized"
        );
    }

    #[test]
    fn out_of_range_and_non_finite_components_are_clamped() {
        let vectors = vec![0.0, 1.0, 0.5, 0.25];
        let qz = Quantized::new(&vectors, 2, Metric::L2, None);
        let qq = qz.query(&[f32::NAN, 7.0]);
        assert_eq!(qq.codes, vec![0, 255]);
        assert!(qz.distance(&qq, 0).is_finite());
    }

    #[test]
    fn quantile_excludes_outliers_from_the_range() {
        let mut vectors = vec![0.0f32; 1000];
        for (i, v) in vectors.iter_mut().enumerate() {
            *v = (i % 100) as f32 / 100.0;
        }
        vectors[3] = 1000.0;
        let (lo, hi) = range(&vectors, 10, Some(0.98));
        assert!(lo >= 0.0 && hi < 1.0, "range {lo}..{hi}");
        let (_, full_hi) = range(&vectors, 10, None);
        assert_eq!(full_hi, 1000.0);
    }
}
