//! The arithmetic of the universal query, as Qdrant defines it: the scores of recommendation,
//! discovery and context queries from a point's similarities to the examples; reciprocal-rank
//! and distribution-based fusion of ranked lists; and maximal-marginal-relevance re-ranking.
//!
//! Similarities here are the engine's "core" ones: dot product (of normalised vectors for
//! cosine), negative squared Euclidean distance, negative Manhattan distance. Higher is closer.

use std::collections::HashMap;

use crate::point_id::PointId;

/// f32's machine epsilon: Qdrant's margin in context scores.
const EPSILON: f32 = f32::EPSILON;

/// `x / (1 + |x|)`: a sigmoid into (-1, 1) that needs no exponential.
fn fast_sigmoid(x: f32) -> f32 {
    if x.is_finite() {
        x / (1.0 + x.abs())
    } else {
        x
    }
}

/// [`fast_sigmoid`] moved into (0, 1).
fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (fast_sigmoid(x) + 1.0)
}

/// Positive and negative example vectors, pair by pair.
pub type Pairs<V = Vec<f32>> = Vec<(V, V)>;

/// A query that scores each point from its similarities to several vectors. Vectors are
/// prepared for the space (normalised for cosine).
#[derive(Clone, Debug, PartialEq)]
pub enum Custom<V = Vec<f32>> {
    /// `sum`: the sum-of-scores strategy; otherwise best score.
    Recommend {
        positive: Vec<V>,
        negative: Vec<V>,
        sum: bool,
    },
    Discover {
        target: V,
        pairs: Pairs<V>,
    },
    Context(Pairs<V>),
    /// Naive relevance feedback: `a·sim(target)` plus, for each ordered pair of examples whose
    /// scores differ by more than 0, `(Δscore^b · c)·(sim(better) − sim(worse))`.
    Feedback(Feedback<V>),
}

/// A naive relevance-feedback query: the target, the rated examples and the coefficients
/// (kept as sent, to forward it), and the weighted pairs derived from them.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback<V = Vec<f32>> {
    pub target: V,
    pub examples: Vec<(V, f32)>,
    pub coefficients: [f32; 3],
    pairs: Vec<(usize, usize, f32)>,
}

impl<V> Feedback<V> {
    pub fn new(target: V, examples: Vec<(V, f32)>, coefficients: [f32; 3]) -> Feedback<V> {
        let [_, b, c] = coefficients;
        let mut pairs = Vec::new();
        for (i, (_, better)) in examples.iter().enumerate() {
            for (j, (_, worse)) in examples.iter().enumerate() {
                let confidence = better - worse;
                if i != j && confidence > 0.0 {
                    pairs.push((i, j, confidence.powf(b) * c));
                }
            }
        }
        Feedback {
            target,
            examples,
            coefficients,
            pairs,
        }
    }

    fn score(&self, sim: impl Fn(&V) -> f32) -> f32 {
        let sims: Vec<f32> = self.examples.iter().map(|(v, _)| sim(v)).collect();
        let pulled: f32 = self
            .pairs
            .iter()
            .map(|&(better, worse, weight)| weight * (sims[better] - sims[worse]))
            .sum();
        self.coefficients[0] * sim(&self.target) + pulled
    }
}

impl<V> Custom<V> {
    /// The same query with every example vector `v` replaced by `f(v)`.
    pub fn map<W>(&self, f: impl Fn(&V) -> W) -> Custom<W> {
        let pairs = |ps: &Pairs<V>| ps.iter().map(|(p, n)| (f(p), f(n))).collect();
        match self {
            Custom::Recommend {
                positive,
                negative,
                sum,
            } => Custom::Recommend {
                positive: positive.iter().map(&f).collect(),
                negative: negative.iter().map(&f).collect(),
                sum: *sum,
            },
            Custom::Discover { target, pairs: ps } => Custom::Discover {
                target: f(target),
                pairs: pairs(ps),
            },
            Custom::Context(ps) => Custom::Context(pairs(ps)),
            Custom::Feedback(fb) => Custom::Feedback(Feedback {
                target: f(&fb.target),
                examples: fb.examples.iter().map(|(v, s)| (f(v), *s)).collect(),
                coefficients: fb.coefficients,
                pairs: fb.pairs.clone(),
            }),
        }
    }

    /// Every example vector, for gathering what they need (IDF counts).
    pub fn examples(&self) -> Vec<&V> {
        match self {
            Custom::Recommend {
                positive, negative, ..
            } => positive.iter().chain(negative).collect(),
            Custom::Discover { target, pairs } => std::iter::once(target)
                .chain(pairs.iter().flat_map(|(p, n)| [p, n]))
                .collect(),
            Custom::Context(pairs) => pairs.iter().flat_map(|(p, n)| [p, n]).collect(),
            Custom::Feedback(fb) => std::iter::once(&fb.target)
                .chain(fb.examples.iter().map(|(v, _)| v))
                .collect(),
        }
    }

    /// The score of a point whose similarity to a vector `v` is `sim(v)`. Sparse examples
    /// (`V` = [`crate::index::sparse::SparseVector`]) carry no relevance feedback.
    pub fn score(&self, sim: impl Fn(&V) -> f32) -> f32 {
        match self {
            Custom::Recommend {
                positive,
                negative,
                sum: true,
            } => {
                let total = |vs: &[V]| vs.iter().map(&sim).sum::<f32>();
                total(positive) - total(negative)
            }
            Custom::Recommend {
                positive, negative, ..
            } => {
                let best = |vs: &[V]| vs.iter().map(&sim).fold(f32::NEG_INFINITY, f32::max);
                let (pos, neg) = (best(positive), best(negative));
                if pos > neg {
                    scaled_fast_sigmoid(pos)
                } else {
                    -scaled_fast_sigmoid(neg)
                }
            }
            Custom::Discover { target, pairs } => {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| match sim(p).partial_cmp(&sim(n)) {
                        Some(std::cmp::Ordering::Greater) => 1,
                        Some(std::cmp::Ordering::Equal) => 0,
                        _ => -1,
                    })
                    .sum();
                rank as f32 + scaled_fast_sigmoid(sim(target))
            }
            Custom::Context(pairs) => pairs
                .iter()
                .map(|(p, n)| fast_sigmoid((sim(p) - sim(n) - EPSILON).min(0.0)))
                .sum(),
            Custom::Feedback(feedback) => feedback.score(sim),
        }
    }
}

/// A ranked result: a point and its score.
pub trait Ranked {
    fn id(&self) -> PointId;
    fn score(&self) -> f32;
    fn set_score(&mut self, score: f32);
}

/// Reciprocal rank fusion of `lists`, best first, at most `limit`: a point scores
/// Σ 1 / ((rank + 1) / weight + k − 1) over the lists it is in (rank from 0). Ties keep the
/// order in which points were first met.
pub fn rrf<T: Ranked>(
    lists: Vec<Vec<T>>,
    k: usize,
    weights: Option<&[f32]>,
    limit: usize,
) -> Vec<T> {
    let mut fused: Vec<(T, f64)> = Vec::new();
    let mut at: HashMap<PointId, usize> = HashMap::new();
    for (l, list) in lists.into_iter().enumerate() {
        let weight = weights.and_then(|w| w.get(l)).map_or(1.0, |&w| w as f64);
        for (rank, point) in list.into_iter().enumerate() {
            let score = if weight <= 0.0 {
                0.0
            } else {
                1.0 / ((rank as f64 + 1.0) / weight + k as f64 - 1.0)
            };
            add(&mut fused, &mut at, point, score);
        }
    }
    ranked(fused, limit)
}

/// Distribution-based score fusion: each list's scores mapped to (s − (μ − 3σ)) / 6σ (0.5 for
/// a list of one or with no spread), then summed per point; best first, at most `limit`.
pub fn dbsf<T: Ranked>(lists: Vec<Vec<T>>, limit: usize) -> Vec<T> {
    let mut fused: Vec<(T, f64)> = Vec::new();
    let mut at: HashMap<PointId, usize> = HashMap::new();
    for list in lists {
        let scores: Vec<f64> = list.iter().map(|p| p.score() as f64).collect();
        let normalised = normalise(&scores);
        for (point, score) in list.into_iter().zip(normalised) {
            add(&mut fused, &mut at, point, score);
        }
    }
    ranked(fused, limit)
}

fn normalise(scores: &[f64]) -> Vec<f64> {
    let n = scores.len();
    if n <= 1 {
        return vec![0.5; n];
    }
    let mean = scores.iter().sum::<f64>() / n as f64;
    let variance = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    if variance == 0.0 {
        return vec![0.5; n];
    }
    let sd = variance.sqrt();
    let (low, high) = (mean - 3.0 * sd, mean + 3.0 * sd);
    scores.iter().map(|s| (s - low) / (high - low)).collect()
}

fn add<T: Ranked>(
    fused: &mut Vec<(T, f64)>,
    at: &mut HashMap<PointId, usize>,
    point: T,
    score: f64,
) {
    match at.get(&point.id()) {
        Some(&i) => fused[i].1 += score,
        None => {
            at.insert(point.id(), fused.len());
            fused.push((point, score));
        }
    }
}

fn ranked<T: Ranked>(mut fused: Vec<(T, f64)>, limit: usize) -> Vec<T> {
    // Stable: equal scores keep first-met order.
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
        .into_iter()
        .take(limit)
        .map(|(mut p, s)| {
            p.set_score(s as f32);
            p
        })
        .collect()
}

/// Maximal marginal relevance over `candidates` (with their vectors): the most relevant first,
/// then repeatedly the one maximising λ·relevance − (1 − λ)·(max similarity to those picked),
/// λ = 1 − diversity; at most `limit`. Ties go to the last candidate, and picked candidates
/// leave the pending list by swap-remove, as Qdrant's implementation does, so that exact ties
/// come out in the same order.
pub fn mmr<T>(
    candidates: Vec<(T, Vec<f32>)>,
    query: &[f32],
    sim: impl Fn(&[f32], &[f32]) -> f32,
    diversity: f32,
    limit: usize,
) -> Vec<T> {
    if candidates.is_empty() || limit == 0 {
        return Vec::new();
    }
    let lambda = 1.0 - diversity;
    let relevance: Vec<f32> = candidates.iter().map(|(_, v)| sim(query, v)).collect();
    let n = candidates.len();
    let mut between = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            between[i * n + j] = sim(&candidates[i].1, &candidates[j].1);
        }
    }
    let mut pending: Vec<usize> = (0..n).collect();
    let first = last_argmax(pending.iter().map(|&i| relevance[i]));
    let mut picked = vec![pending.swap_remove(first)];
    while picked.len() < limit && !pending.is_empty() {
        let scores = pending.iter().map(|&c| {
            let closest = picked
                .iter()
                .map(|&p| between[c * n + p])
                .fold(f32::NEG_INFINITY, f32::max);
            lambda * relevance[c] - (1.0 - lambda) * closest
        });
        let best = last_argmax(scores);
        picked.push(pending.swap_remove(best));
    }
    let mut slots: Vec<Option<T>> = candidates.into_iter().map(|(c, _)| Some(c)).collect();
    picked.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Position of the largest value, the last one on ties.
fn last_argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if i == 0 || v >= best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct P(u64, f32);
    impl Ranked for P {
        fn id(&self) -> PointId {
            PointId::Num(self.0)
        }
        fn score(&self) -> f32 {
            self.1
        }
        fn set_score(&mut self, s: f32) {
            self.1 = s;
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn best_score_takes_the_closer_side() {
        let q = Custom::Recommend {
            positive: vec![vec![1.0, 0.0]],
            negative: vec![vec![0.0, 1.0]],
            sum: false,
        };
        let near_positive = q.score(|v| dot(v, &[0.9, 0.1]));
        let near_negative = q.score(|v| dot(v, &[0.1, 0.9]));
        assert!(near_positive > 0.0 && near_negative < 0.0);
        assert_eq!(near_positive, 0.5 * (0.9 / 1.9 + 1.0));
    }

    #[test]
    fn sum_scores_subtracts_negatives() {
        let q = Custom::Recommend {
            positive: vec![vec![1.0, 0.0], vec![1.0, 1.0]],
            negative: vec![vec![0.0, 2.0]],
            sum: true,
        };
        assert_eq!(q.score(|v| dot(v, &[1.0, 1.0])), 1.0 + 2.0 - 2.0);
    }

    #[test]
    fn discovery_counts_pairs_then_target() {
        let q = Custom::Discover {
            target: vec![1.0, 0.0],
            pairs: vec![
                (vec![1.0, 0.0], vec![0.0, 1.0]),
                (vec![0.0, 1.0], vec![1.0, 0.0]),
            ],
        };
        // One pair won, one lost: rank 0, plus the target's scaled sigmoid.
        let s = q.score(|v| dot(v, &[1.0, 0.0]));
        assert_eq!(s, 0.0 + 0.5 * (0.5 + 1.0));
    }

    #[test]
    fn context_penalises_only_the_wrong_side() {
        let q = Custom::Context(vec![(vec![1.0, 0.0], vec![0.0, 1.0])]);
        assert_eq!(q.score(|v| dot(v, &[1.0, 0.0])), 0.0);
        assert!(q.score(|v| dot(v, &[0.0, 1.0])) < 0.0);
    }

    #[test]
    fn feedback_pulls_towards_the_better_rated_example() {
        let examples = vec![(vec![1.0, 0.0], 0.9), (vec![0.0, 1.0], 0.1)];
        let q = Custom::Feedback(Feedback::new(vec![0.5, 0.5], examples, [1.0, 1.0, 2.0]));
        // a·0.5 + (0.8^1·2)·(1 − 0) for a point on the better example.
        let s = q.score(|v| dot(v, &[1.0, 0.0]));
        assert!((s - (0.5 + 1.6)).abs() < 1e-6, "{s}");
        assert!(q.score(|v| dot(v, &[0.0, 1.0])) < 0.0);
    }

    #[test]
    fn rrf_sums_reciprocal_ranks() {
        let a = vec![P(1, 0.9), P(2, 0.8)];
        let b = vec![P(2, 5.0), P(3, 4.0)];
        let fused = rrf(vec![a, b], 2, None, 10);
        let ids: Vec<u64> = fused.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![2, 1, 3]);
        // Point 2: rank 1 in a (1/3) and rank 0 in b (1/2).
        assert!((fused[0].1 - (1.0 / 3.0 + 0.5)).abs() < 1e-6);
        // Point 1 and 3 tie at 1/2 and 1/3: 1 first.
        let weighted = rrf(
            vec![vec![P(1, 0.0)], vec![P(3, 0.0)]],
            2,
            Some(&[0.0, 1.0]),
            10,
        );
        assert_eq!(weighted[0].0, 3);
    }

    #[test]
    fn dbsf_normalises_each_list() {
        let a = vec![P(1, 10.0), P(2, 0.0)];
        let b = vec![P(2, 3.0)];
        let fused = dbsf(vec![a, b], 10);
        // a: mean 5, σ = √50; b has one point: 0.5.
        let sd = 50f64.sqrt();
        let low = 5.0 - 3.0 * sd;
        let one = ((10.0 - low) / (6.0 * sd)) as f32;
        let two = ((0.0 - low) / (6.0 * sd) + 0.5) as f32;
        // 2: 0.382 + 0.5 beats 1: 0.618.
        assert_eq!(fused, vec![P(2, two), P(1, one)]);
    }

    #[test]
    fn mmr_prefers_a_different_second_point() {
        let candidates = vec![
            ("a", vec![1.0, 0.0]),
            ("a-twin", vec![0.99, 0.14]),
            ("b", vec![0.6, 0.8]),
        ];
        let relevance_only = mmr(candidates.clone(), &[1.0, 0.0], dot, 0.0, 3);
        assert_eq!(relevance_only, vec!["a", "a-twin", "b"]);
        let diverse = mmr(candidates, &[1.0, 0.0], dot, 0.8, 2);
        assert_eq!(diverse, vec!["a", "b"]);
    }
}
