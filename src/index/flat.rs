//! Exact (brute-force) search and the bounded top-k collector shared by all scans.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::index::distance::Metric;

/// Orders distances ascending with NaN after everything, so corrupt data sinks to the end.
#[inline]
pub fn cmp_distance(a: f32, b: f32) -> Ordering {
    match a.partial_cmp(&b) {
        Some(o) => o,
        None => a.is_nan().cmp(&b.is_nan()),
    }
}

/// One scored candidate; ordered by (distance, offset) so ties break deterministically.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    /// Distance to the query (lower is closer).
    pub distance: f32,
    /// Row offset of the vector.
    pub offset: u32,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_distance(self.distance, other.distance).then(self.offset.cmp(&other.offset))
    }
}

/// Keeps the k best (offset, distance) pairs seen so far in a bounded max-heap.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    /// A collector for the `k` closest entries.
    pub fn new(k: usize) -> TopK {
        // Cap the up-front reservation: k may come straight from a request.
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    /// Offers one candidate; it is kept only if it ranks among the k best so far.
    #[inline]
    pub fn push(&mut self, offset: u32, distance: f32) {
        let item = Scored { distance, offset };
        if self.heap.len() < self.k {
            self.heap.push(item);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if item < *worst {
                *worst = item;
            }
        }
    }

    /// Distance a new candidate must beat once the collector is full; `None` while it is not.
    #[inline]
    pub fn threshold(&self) -> Option<f32> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|s| s.distance)
        }
    }

    /// Number of entries held (at most k).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing has been kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The kept entries sorted by distance ascending, then offset ascending.
    pub fn into_sorted_vec(self) -> Vec<(u32, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|s| (s.offset, s.distance))
            .collect()
    }
}

/// Exact k nearest accepted rows of `vectors` (row-major, `dim` wide) to `query`,
/// as (offset, distance) sorted by distance then offset.
pub fn top_k(
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    query: &[f32],
    k: usize,
    accept: impl Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    if dim == 0 || k == 0 {
        return Vec::new();
    }
    let kernel = metric.kernel();
    let mut top = TopK::new(k);
    for (offset, row) in vectors.chunks_exact(dim).enumerate() {
        let offset = offset as u32;
        if accept(offset) {
            top.push(offset, kernel(query, row));
        }
    }
    top.into_sorted_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Few distinct values so that ties actually occur.
                ((s >> 60) as f32) - 8.0
            })
            .collect()
    }

    #[test]
    fn top_k_matches_full_sort() {
        let dim = 5;
        let vectors = data(500, dim, 7);
        let query = data(1, dim, 99);
        for metric in [Metric::Dot, Metric::L2, Metric::L1] {
            for k in [1, 10, 499, 500, 800] {
                let accept = |o: u32| !o.is_multiple_of(3);
                let got = top_k(&vectors, dim, metric, &query, k, accept);
                let mut all: Vec<(u32, f32)> = vectors
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|(o, _)| accept(*o as u32))
                    .map(|(o, v)| (o as u32, metric.distance(&query, v)))
                    .collect();
                all.sort_by(|a, b| cmp_distance(a.1, b.1).then(a.0.cmp(&b.0)));
                all.truncate(k);
                assert_eq!(got, all, "metric {metric:?} k {k}");
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert!(top_k(&[], 3, Metric::L2, &[0.0; 3], 5, |_| true).is_empty());
        assert!(top_k(&[1.0; 6], 0, Metric::L2, &[], 5, |_| true).is_empty());
        assert!(top_k(&[1.0; 6], 3, Metric::L2, &[0.0; 3], 0, |_| true).is_empty());
    }

    #[test]
    fn nan_sorts_last() {
        let mut t = TopK::new(2);
        t.push(0, f32::NAN);
        t.push(1, 3.0);
        t.push(2, 1.0);
        assert_eq!(t.into_sorted_vec(), vec![(2, 1.0), (1, 3.0)]);
    }
}
