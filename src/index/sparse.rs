//! Sparse vectors and their inverted index: the exact top-k by dot product over shared
//! dimensions, with MaxScore pruning so that a query does not score every posting.
//!
//! A point is a result only if it shares a dimension with the query (Qdrant's rule: no overlap
//! means no score). Postings are sorted by offset; each keeps its largest and smallest weight,
//! which bound what a query term can add to any point's score. Terms are ordered by that
//! bound; once k results are held, the terms whose bounds together cannot lift a point past
//! the k-th score are *non-essential*: points are taken only from the other lists, and the
//! non-essential terms are looked up for those points alone, most promising first, stopping
//! as soon as the point cannot make it.

use std::collections::HashMap;

use crate::error::Invalid;
use crate::index::TopK;

/// A sparse vector: dimensions in increasing order, each with its value.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "Parts")]
pub struct SparseVector {
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseVector {
    /// The vector with no dimensions (what a point lacking a sparse vector has).
    pub const EMPTY: SparseVector = SparseVector {
        indices: Vec::new(),
        values: Vec::new(),
    };

    /// Checks and sorts a vector as a request gives it: as many values as indices, finite
    /// values, no index twice.
    pub fn new(indices: Vec<u32>, values: Vec<f32>) -> Result<SparseVector, Invalid> {
        if indices.len() != values.len() {
            return invalid!(
                "indices and values must have the same length, got {} and {}",
                indices.len(),
                values.len()
            );
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return invalid!("values must be finite numbers, got {v}");
        }
        let mut pairs: Vec<(u32, f32)> = indices.into_iter().zip(values).collect();
        pairs.sort_unstable_by_key(|&(i, _)| i);
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return invalid!("indices must be unique, {} appears twice", w[0].0);
        }
        Ok(SparseVector {
            indices: pairs.iter().map(|&(i, _)| i).collect(),
            values: pairs.iter().map(|&(_, v)| v).collect(),
        })
    }

    /// A vector from stored parts, which must already be in order.
    pub fn from_sorted(indices: Vec<u32>, values: Vec<f32>) -> Result<SparseVector, Invalid> {
        if indices.len() != values.len() || indices.windows(2).any(|w| w[0] >= w[1]) {
            return invalid!("sparse vector parts out of order or of different lengths");
        }
        Ok(SparseVector { indices, values })
    }

    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The dot product over shared dimensions; `None` when there are none.
    pub fn dot(&self, other: &SparseVector) -> Option<f32> {
        let (mut i, mut j, mut sum, mut shared) = (0, 0, 0.0f32, false);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    shared = true;
                    i += 1;
                    j += 1;
                }
            }
        }
        shared.then_some(sum)
    }

    /// Dimension by dimension `op(self, other)`, a missing dimension counting as 0.
    pub fn combine(&self, other: &SparseVector, op: impl Fn(f32, f32) -> f32) -> SparseVector {
        let (a, b) = (self, other);
        let (mut i, mut j) = (0, 0);
        let mut out = SparseVector::default();
        while i < a.len() || j < b.len() {
            let (dim, x, y) = match (a.indices.get(i), b.indices.get(j)) {
                (Some(&p), Some(&q)) if p == q => (p, a.values[i], b.values[j]),
                (Some(&p), Some(&q)) if p < q => (p, a.values[i], 0.0),
                (Some(&p), None) => (p, a.values[i], 0.0),
                (_, Some(&q)) => (q, 0.0, b.values[j]),
                (None, None) => break,
            };
            if a.indices.get(i) == Some(&dim) {
                i += 1;
            }
            if b.indices.get(j) == Some(&dim) {
                j += 1;
            }
            out.indices.push(dim);
            out.values.push(op(x, y));
        }
        out
    }

    /// The mean of `vectors` (empty for none), dimension by dimension.
    pub fn mean(vectors: &[SparseVector]) -> SparseVector {
        let sum = vectors.iter().fold(SparseVector::default(), |acc, v| {
            acc.combine(v, |x, y| x + y)
        });
        let n = vectors.len().max(1) as f32;
        sum.weighted(|_| 1.0 / n)
    }

    /// The vector with each value multiplied by `weight(dimension)` (IDF, for one).
    pub fn weighted(&self, weight: impl Fn(u32) -> f32) -> SparseVector {
        let values = self.indices.iter().zip(&self.values);
        SparseVector {
            indices: self.indices.clone(),
            values: values.map(|(&i, &v)| v * weight(i)).collect(),
        }
    }
}

/// A sparse vector as serialized: checked again when read back.
#[derive(serde::Deserialize)]
struct Parts {
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl TryFrom<Parts> for SparseVector {
    type Error = Invalid;
    fn try_from(p: Parts) -> Result<SparseVector, Invalid> {
        SparseVector::from_sorted(p.indices, p.values)
    }
}

/// Inverse document frequency of a dimension that `df` of `n` points have, as Qdrant
/// computes it: ln((n − df + 0.5) / (df + 0.5) + 1).
pub fn idf(df: usize, n: usize) -> f32 {
    let (df, n) = (df as f64, n as f64);
    (((n - df + 0.5) / (df + 0.5)) + 1.0).ln() as f32
}

/// The points that have one dimension, by offset, with their weights.
#[derive(Clone, Debug, Default)]
struct Posting {
    offsets: Vec<u32>,
    weights: Vec<f32>,
    max: f32,
    min: f32,
}

/// An inverted index over the sparse vectors of one segment.
#[derive(Clone, Debug, Default)]
pub struct InvertedIndex {
    postings: HashMap<u32, Posting>,
    /// How many of the indexed vectors have a dimension at all.
    points: usize,
}

/// One query term during a search: its posting, weight, bound and cursor.
struct Term<'a> {
    posting: &'a Posting,
    weight: f32,
    /// The most this term can add to a point's score.
    bound: f32,
    at: usize,
}

impl Term<'_> {
    fn current(&self) -> Option<u32> {
        self.posting.offsets.get(self.at).copied()
    }

    /// This term's contribution to `offset`, moving the cursor forward to it (galloping).
    fn seek(&mut self, offset: u32) -> Option<f32> {
        let offsets = &self.posting.offsets;
        let mut step = 1;
        while self.at + step < offsets.len() && offsets[self.at + step] < offset {
            self.at += step;
            step *= 2;
        }
        let rest = &offsets[self.at..];
        self.at += rest.partition_point(|&o| o < offset);
        (self.current() == Some(offset)).then(|| self.weight * self.posting.weights[self.at])
    }
}

impl InvertedIndex {
    /// Indexes `(offset, vector)` pairs given in increasing offset order.
    pub fn build<'a>(vectors: impl IntoIterator<Item = (u32, &'a SparseVector)>) -> InvertedIndex {
        let mut postings: HashMap<u32, Posting> = HashMap::new();
        let mut points = 0;
        for (offset, vector) in vectors {
            points += usize::from(!vector.is_empty());
            for (&dim, &w) in vector.indices.iter().zip(&vector.values) {
                let p = postings.entry(dim).or_insert_with(|| Posting {
                    max: f32::NEG_INFINITY,
                    min: f32::INFINITY,
                    ..Posting::default()
                });
                p.offsets.push(offset);
                p.weights.push(w);
                p.max = p.max.max(w);
                p.min = p.min.min(w);
            }
        }
        InvertedIndex { postings, points }
    }

    /// How many indexed vectors have a dimension at all, live or not.
    pub fn points(&self) -> usize {
        self.points
    }

    /// How many points have dimension `dim`, live or not.
    pub fn posting_len(&self, dim: u32) -> usize {
        self.postings.get(&dim).map_or(0, |p| p.offsets.len())
    }

    /// How many points that `accept` takes have dimension `dim`.
    pub fn df(&self, dim: u32, accept: &dyn Fn(u32) -> bool) -> usize {
        self.postings
            .get(&dim)
            .map_or(0, |p| p.offsets.iter().filter(|&&o| accept(o)).count())
    }

    /// Bytes held by the postings.
    pub fn memory_bytes(&self) -> usize {
        let per_map_entry = std::mem::size_of::<(u32, Posting)>() + 8;
        self.postings
            .values()
            .map(|p| per_map_entry + p.offsets.capacity() * 4 + p.weights.capacity() * 4)
            .sum()
    }

    /// The `k` points `accept` takes with the highest dot product with `query`, among those
    /// sharing a dimension with it: best first, ties by offset.
    pub fn search(
        &self,
        query: &SparseVector,
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut terms = self.terms(query);
        if k == 0 || terms.is_empty() {
            return Vec::new();
        }
        // `upper[i]`: the most terms 0..=i can add together.
        let upper: Vec<f32> = terms
            .iter()
            .scan(0.0f32, |sum, t| {
                *sum += t.bound.max(0.0);
                Some(*sum)
            })
            .collect();
        // TopK keeps the lowest distances: scores are negated.
        let mut top = TopK::new(k);
        let threshold = |top: &TopK| top.threshold().map(|d| -d);
        // Terms below `first` are non-essential: no point only they hold can make the top k.
        let mut first = 0;
        while let Some(offset) = terms[first..].iter().filter_map(Term::current).min() {
            let mut score = 0.0f32;
            for t in &mut terms[first..] {
                if t.current() == Some(offset) {
                    score += t.weight * t.posting.weights[t.at];
                    t.at += 1;
                }
            }
            if accept(offset) {
                let complete =
                    complete(&mut terms[..first], &upper, score, offset, threshold(&top));
                if let Some(score) = complete {
                    top.push(offset, -score);
                }
            }
            if let Some(th) = threshold(&top) {
                while first < terms.len() && upper[first] < th {
                    first += 1;
                }
            }
            if first == terms.len() {
                break;
            }
        }
        top.into_sorted_vec()
            .into_iter()
            .map(|(o, d)| (o, -d))
            .collect()
    }

    /// The query's terms the index has, least promising first.
    fn terms(&self, query: &SparseVector) -> Vec<Term<'_>> {
        let mut terms: Vec<Term> = query
            .indices
            .iter()
            .zip(&query.values)
            .filter_map(|(dim, &weight)| {
                let posting = self.postings.get(dim)?;
                let bound = (weight * posting.max).max(weight * posting.min);
                Some(Term {
                    posting,
                    weight,
                    bound,
                    at: 0,
                })
            })
            .collect();
        terms.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        terms
    }
}

/// Adds the non-essential terms' contributions to a point's `score`, most promising first;
/// `None` as soon as the rest cannot lift it to `threshold`.
fn complete(
    non_essential: &mut [Term],
    upper: &[f32],
    mut score: f32,
    offset: u32,
    threshold: Option<f32>,
) -> Option<f32> {
    for i in (0..non_essential.len()).rev() {
        if threshold.is_some_and(|th| score + upper[i] < th) {
            return None;
        }
        score += non_essential[i].seek(offset).unwrap_or(0.0);
    }
    Some(score)
}

#[cfg(test)]
mod tests {
    #[test]
    fn combines_and_averages_dimension_by_dimension() {
        let v = |i: Vec<u32>, x: Vec<f32>| super::SparseVector::new(i, x).unwrap();
        let (a, b) = (
            v(vec![1, 3], vec![1.0, 2.0]),
            v(vec![2, 3, 7], vec![4.0, 4.0, 1.0]),
        );
        assert_eq!(
            a.combine(&b, |x, y| x - y),
            v(vec![1, 2, 3, 7], vec![1.0, -4.0, -2.0, -1.0])
        );
        let mean = super::SparseVector::mean(&[a.clone(), b]);
        assert_eq!(mean, v(vec![1, 2, 3, 7], vec![0.5, 2.0, 3.0, 0.5]));
        assert_eq!(
            super::SparseVector::mean(&[]),
            super::SparseVector::default()
        );
        assert_eq!(a.combine(&super::SparseVector::default(), |x, _| x), a);
    }

    use super::*;

    /// A small deterministic generator (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn weight(&mut self, negative: bool) -> f32 {
            let w = (self.below(1000) as f32 + 1.0) / 100.0;
            if negative && self.below(4) == 0 {
                -w
            } else {
                w
            }
        }
    }

    fn random_vector(rng: &mut Rng, dims: u64, nnz: u64, negative: bool) -> SparseVector {
        let n = rng.below(nnz) + 1;
        let mut indices: Vec<u32> = (0..n).map(|_| rng.below(dims) as u32).collect();
        indices.sort_unstable();
        indices.dedup();
        let values = indices.iter().map(|_| rng.weight(negative)).collect();
        SparseVector::new(indices, values).unwrap()
    }

    /// Every accepted point sharing a dimension, scored one by one.
    fn brute_force(
        points: &[SparseVector],
        query: &SparseVector,
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut top = TopK::new(k);
        for (o, p) in points.iter().enumerate() {
            if let Some(s) = query.dot(p).filter(|_| accept(o as u32)) {
                top.push(o as u32, -s);
            }
        }
        top.into_sorted_vec()
            .into_iter()
            .map(|(o, d)| (o, -d))
            .collect()
    }

    #[test]
    fn vectors_are_checked_and_sorted() {
        let v = SparseVector::new(vec![7, 2, 5], vec![0.5, 1.0, -2.0]).unwrap();
        assert_eq!(v.indices(), &[2, 5, 7]);
        assert_eq!(v.values(), &[1.0, -2.0, 0.5]);
        assert!(SparseVector::new(vec![1, 1], vec![1.0, 2.0]).is_err());
        assert!(SparseVector::new(vec![1], vec![]).is_err());
        assert!(SparseVector::new(vec![1], vec![f32::NAN]).is_err());
        let other = SparseVector::new(vec![5, 9], vec![3.0, 1.0]).unwrap();
        assert_eq!(v.dot(&other), Some(-6.0));
        let apart = SparseVector::new(vec![1], vec![1.0]).unwrap();
        assert_eq!(v.dot(&apart), None);
    }

    #[test]
    fn idf_matches_qdrant() {
        // ln((10 - 2 + 0.5) / (2 + 0.5) + 1) = ln(4.4)
        assert!((idf(2, 10) - 4.4f32.ln()).abs() < 1e-6);
        assert!(idf(10, 10) > 0.0 && idf(1, 10) > idf(5, 10));
    }

    #[test]
    fn pruned_search_equals_brute_force() {
        let mut rng = Rng(42);
        for round in 0..40 {
            let negative = round % 2 == 1;
            let (dims, nnz) = (50 + rng.below(400), 4 + rng.below(40));
            let points: Vec<SparseVector> = (0..2000)
                .map(|_| random_vector(&mut rng, dims, nnz, negative))
                .collect();
            let index = InvertedIndex::build(points.iter().enumerate().map(|(o, p)| (o as u32, p)));
            let modulus = 1 + rng.below(4) as u32;
            let accept = move |o: u32| o.is_multiple_of(modulus);
            for _ in 0..10 {
                let query = random_vector(&mut rng, dims, nnz, negative);
                let k = 1 + rng.below(30) as usize;
                let found = index.search(&query, k, &accept);
                let expected = brute_force(&points, &query, k, &accept);
                assert_eq!(found.len(), expected.len(), "round {round}");
                for (f, e) in found.iter().zip(&expected) {
                    // Summation order differs: equal up to rounding.
                    assert!(
                        (f.1 - e.1).abs() <= 1e-3 * e.1.abs().max(1.0),
                        "{f:?} {e:?}"
                    );
                }
                let ids = |v: &[(u32, f32)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
                if found.windows(2).all(|w| (w[0].1 - w[1].1).abs() > 1e-3) {
                    assert_eq!(ids(&found), ids(&expected), "round {round}");
                }
            }
        }
    }

    #[test]
    fn document_frequency_counts_accepted_points() {
        let a = SparseVector::new(vec![1, 2], vec![1.0, 1.0]).unwrap();
        let b = SparseVector::new(vec![2], vec![1.0]).unwrap();
        let index = InvertedIndex::build([(0, &a), (1, &b), (2, &b)]);
        assert_eq!(index.df(2, &|_| true), 3);
        assert_eq!(index.df(2, &|o| o != 1), 2);
        assert_eq!(index.df(9, &|_| true), 0);
    }
}
