//! One-bit sign codes: each row kept as the signs of its components relative to the rows'
//! mean, so two rows compare by counting differing bits (the Hamming distance, about the angle
//! between them). A 384-dimension row is 48 bytes against 1,536 as floats.
//!
//! The planner uses them to rank a filter's candidates when there are too many to score one
//! by one: every candidate's code is compared with the query's (a streaming pass over a
//! 32nd of the float memory), and only the closest few are scored on their floats, which gives
//! the exact order among them. How many are rescored sets the recall; measured on the
//! benchmark dataset (MiniLM, cosine), rescoring the best 100 by code finds 97% of the exact
//! top 10 whatever share of the points the filter keeps, 200 finds 99%.
//!
//! Codes are made for dot product (and so cosine) spaces of at least [`MIN_DIM`] dimensions
//! only: without normalised rows, signs say too little about Euclidean or Manhattan distance,
//! and a few bits cannot rank many rows.

use std::ops::Range;

use rayon::prelude::*;

use super::distance::{dot, l2_squared};

/// Fewest dimensions worth a code: at 64, ranking by code found 89% of the exact top 10 among
/// about 100 candidates by rescoring 32 (the server tests' case).
pub const MIN_DIM: usize = 64;

/// Sign codes of every row of one vector space, in the same offsets as the floats.
#[derive(Clone)]
pub struct SignCodes {
    /// Per-dimension mean the signs are taken against.
    mean: Vec<f32>,
    /// mean · mean, a term of every estimate.
    mean_sq: f32,
    /// Dimensions (bits of a code that count).
    dim: usize,
    /// u64 words of a code.
    words: usize,
    /// Cache lines a row takes in `rows`.
    lines: usize,
    /// Row-major, each row starting on a cache line: its code's `words`, then one word holding
    /// |row − mean| and row · mean as two f32 (the terms [`SignCodes::estimate`] needs), then
    /// padding. One line per row up to 448 dimensions, so a walk estimating a row reads one line.
    rows: Vec<Line>,
}

/// One cache line of [`SignCodes::rows`]: its alignment puts every row on a line boundary.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u64; 8]);

impl std::fmt::Debug for SignCodes {
    /// A summary: the codes are far too long to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignCodes")
            .field("len", &self.len())
            .field("words", &self.words)
            .finish()
    }
}

/// A query prepared for one [`SignCodes`] set.
pub struct SignQuery {
    code: Vec<u64>,
    /// |query − mean| × cos(π·h / dim) for each Hamming distance h: a code's estimate of the
    /// centred rows' dot product.
    centred: Vec<f32>,
    /// query · mean − mean · mean: the rest of every estimate but the row's own term.
    offset: f32,
}

impl SignCodes {
    /// Encodes `vectors` (`len × dim`, row-major) in parallel on the current rayon pool.
    pub fn new(vectors: &[f32], dim: usize) -> SignCodes {
        let dim = dim.max(1);
        let len = vectors.len() / dim;
        let sums = vectors
            .par_chunks_exact(dim)
            .fold(
                || vec![0f64; dim],
                |mut acc, row| {
                    acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x as f64);
                    acc
                },
            )
            .reduce(
                || vec![0f64; dim],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let mean: Vec<f32> = sums
            .iter()
            .map(|s| (s / len.max(1) as f64) as f32)
            .collect();
        let words = dim.div_ceil(64);
        let lines = (words + 1).div_ceil(8);
        let rows = vectors
            .par_chunks_exact(dim)
            .flat_map_iter(|row| encode_row(row, &mean, words, lines))
            .collect();
        let mean_sq = dot(&mean, &mean);
        SignCodes {
            mean,
            mean_sq,
            dim,
            words,
            lines,
            rows,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len() / self.lines
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes of heap memory held (for telemetry).
    pub fn memory_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Line>() + self.mean.capacity() * 4
    }

    /// Prepares `query`, which must have the rows' dimension.
    pub fn query(&self, query: &[f32]) -> SignQuery {
        let norm = l2_squared(query, &self.mean).sqrt();
        let centred = (0..=self.words * 64)
            .map(|h| norm * (std::f32::consts::PI * h as f32 / self.dim as f32).cos())
            .collect();
        SignQuery {
            code: encode(query, &self.mean, self.words).collect(),
            centred,
            offset: dot(query, &self.mean) - self.mean_sq,
        }
    }

    /// An estimate of the dot product's distance (its negation) between `query` and row `o`,
    /// from one cache line: query · row = (query − mean) · (row − mean) + query · mean +
    /// row · mean − mean · mean, where the centred rows' dot product is their norms times the
    /// cosine of the angle the differing signs suggest (π × differing bits / dimensions). On
    /// the benchmark dataset its error has a standard deviation of about 0.05 (cosine), with
    /// no bias: too coarse to rank results, enough to choose which nodes a walk goes through.
    #[inline]
    pub fn estimate(&self, query: &SignQuery, o: u32) -> f32 {
        let Some(row) = self.row(o as usize) else {
            return f32::INFINITY;
        };
        let differing = hamming(&row[..self.words], &query.code) as usize;
        let [norm, mean_dot] = unpack(row[self.words]);
        let centred = query.centred.get(differing).copied().unwrap_or(0.0);
        -(norm * centred + mean_dot + query.offset)
    }

    /// Starts loading row `o` (for [`SignCodes::estimate`]).
    #[inline(always)]
    pub fn prefetch(&self, o: u32) {
        let row = self.rows.as_ptr().wrapping_add(o as usize * self.lines);
        crate::index::hnsw::prefetch_row(row as *const u8, self.lines * 64, self.lines);
    }

    /// Row `o`'s words (code, packed terms, padding), if there is such a row.
    #[inline(always)]
    fn row(&self, o: usize) -> Option<&[u64]> {
        let lines = self.rows.get(o * self.lines..(o + 1) * self.lines)?;
        // SAFETY: `Line` is `repr(C)` around `[u64; 8]` and exactly 64 bytes (its alignment,
        // so no padding), hence `n` lines are `8n` contiguous initialised u64s.
        Some(unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<u64>(), lines.len() * 8) })
    }

    /// Row `o`'s code, if there is such a row.
    #[inline(always)]
    fn code(&self, o: usize) -> Option<&[u64]> {
        self.row(o).map(|row| &row[..self.words])
    }

    /// The (at most) `keep` rows among `candidates` (a bitmap: bit `o % 64` of word `o / 64`
    /// stands for offset `o`) whose codes differ least from `query`'s, ascending; at a tie
    /// across the cut the lowest offsets are kept. Offsets past the rows are skipped.
    pub fn closest(&self, query: &SignQuery, candidates: &[u64], keep: usize) -> Vec<u32> {
        self.rank(query, &Source::Offsets(candidates), keep)
    }

    /// The rows at `order`, in that order, for [`SignCodes::closest_in_runs`]. Offsets past
    /// the rows get an all-zero code (they are never candidates).
    pub fn arrange(&self, order: &[u32]) -> Vec<u64> {
        let mut out = Vec::with_capacity(order.len() * self.words);
        for &o in order {
            match self.code(o as usize) {
                Some(row) => out.extend_from_slice(row),
                None => out.extend(std::iter::repeat_n(0, self.words)),
            }
        }
        out
    }

    /// Like [`SignCodes::closest`], reading the codes in runs of an arrangement (`arranged`:
    /// the rows of `order`, from [`SignCodes::arrange`]) that hold every candidate: the rows
    /// a filter can match lie together there, so they are read as a stream rather than one
    /// cache miss each. The result has no repeats, though `order` may hold an offset twice.
    /// `candidates` is `None` when the runs hold the candidates and nothing else (each entry
    /// is then ranked without testing it).
    pub fn closest_in_runs(
        &self,
        query: &SignQuery,
        arranged: &[u64],
        order: &[u32],
        runs: &[Range<usize>],
        candidates: Option<&[u64]>,
        keep: usize,
    ) -> Vec<u32> {
        let source = Source::Runs {
            arranged,
            order,
            runs,
            candidates,
        };
        let mut out = self.rank(query, &source, keep);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The offsets of the `keep` candidates of `source` closest by code, in the order read.
    fn rank(&self, query: &SignQuery, source: &Source, keep: usize) -> Vec<u32> {
        SCORED.with_borrow_mut(|scored| {
            scored.clear();
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU was just checked to support popcnt.
                unsafe { distances_popcnt(self, query, source, scored) };
            } else {
                distances(self, query, source, scored);
            }
            #[cfg(not(target_arch = "x86_64"))]
            distances(self, query, source, scored);
            cut(scored, keep, self.words * 64)
        })
    }
}

/// An [`Estimate`](crate::index::hnsw::Estimate) for a walk: a query and the codes of the rows
/// it walks through.
pub struct Estimator<'a> {
    pub codes: &'a SignCodes,
    pub query: SignQuery,
}

impl crate::index::hnsw::Estimate for Estimator<'_> {
    #[inline]
    fn estimate(&self, id: u32) -> f32 {
        self.codes.estimate(&self.query, id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        self.codes.prefetch(id);
    }
}

/// Where a ranking reads its candidates' codes.
enum Source<'a> {
    /// In offset order: the set bits of a bitmap (bit `o % 64` of word `o / 64` is offset `o`).
    Offsets(&'a [u64]),
    /// In runs of an arrangement (the rows of `order`), testing each entry against the bitmap
    /// if there is one.
    Runs {
        arranged: &'a [u64],
        order: &'a [u32],
        runs: &'a [Range<usize>],
        candidates: Option<&'a [u64]>,
    },
}

/// Pushes (differing bits, offset) of each candidate of `source` onto `out`, in the order read.
#[inline(always)]
fn distances(codes: &SignCodes, query: &SignQuery, source: &Source, out: &mut Vec<(u16, u32)>) {
    let words = codes.words;
    let q = &query.code[..words];
    match *source {
        Source::Offsets(candidates) => {
            for (i, &bits) in candidates.iter().enumerate() {
                let mut rest = bits;
                while rest != 0 {
                    let o = i * 64 + rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    let Some(row) = codes.code(o) else {
                        return; // past the rows: so is every later candidate
                    };
                    out.push((hamming(row, q) as u16, o as u32));
                }
            }
        }
        Source::Runs {
            arranged,
            order,
            runs,
            candidates,
        } => {
            let is_candidate = |o: u32| {
                candidates.is_none_or(|c| {
                    let w = c.get(o as usize / 64).copied().unwrap_or(0);
                    w & (1 << (o % 64)) != 0
                })
            };
            for run in runs {
                let end = run.end.min(order.len());
                let start = run.start.min(end);
                for (i, &o) in (start..).zip(&order[start..end]) {
                    if is_candidate(o) {
                        let Some(row) = arranged.get(i * words..(i + 1) * words) else {
                            return; // an arrangement shorter than its order: nothing more to read
                        };
                        out.push((hamming(row, q) as u16, o));
                    }
                }
            }
        }
    }
}

/// [`distances`] compiled to use the popcnt instruction (not in the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn distances_popcnt(
    codes: &SignCodes,
    query: &SignQuery,
    source: &Source,
    out: &mut Vec<(u16, u32)>,
) {
    distances(codes, query, source, out)
}

thread_local! {
    /// (distance, offset) of one ranking's candidates: reused, as a fresh buffer this size
    /// costs page faults on every query.
    static SCORED: std::cell::RefCell<Vec<(u16, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The offsets of the `keep` smallest distances in `scored` (at most `max` each), ascending
/// by offset when `scored` is; at a tie across the cut the earliest are kept.
fn cut(scored: &[(u16, u32)], keep: usize, max: usize) -> Vec<u32> {
    if scored.len() <= keep {
        return scored.iter().map(|&(_, o)| o).collect();
    }
    // Distances are small integers: count them to find the cut, rather than sorting.
    let mut histogram = vec![0usize; max + 1];
    for &(d, _) in scored {
        histogram[d as usize] += 1;
    }
    let (mut cut, mut below) = (0usize, 0usize);
    while below + histogram[cut] < keep {
        below += histogram[cut];
        cut += 1;
    }
    let mut at_cut = keep - below;
    let mut out = Vec::with_capacity(keep);
    for &(d, o) in scored {
        if (d as usize) < cut {
            out.push(o);
        } else if d as usize == cut && at_cut > 0 {
            out.push(o);
            at_cut -= 1;
        }
    }
    out
}

/// Row `row`'s lines: its code, |row − mean| and row · mean packed in one word, padding.
fn encode_row(row: &[f32], mean: &[f32], words: usize, lines: usize) -> Vec<Line> {
    let terms = pack([l2_squared(row, mean).sqrt(), dot(row, mean)]);
    let mut out = vec![Line([0; 8]); lines];
    let words_out = encode(row, mean, words).chain(std::iter::once(terms));
    for (i, w) in words_out.enumerate() {
        out[i / 8].0[i % 8] = w;
    }
    out
}

fn pack([a, b]: [f32; 2]) -> u64 {
    u64::from(a.to_bits()) | (u64::from(b.to_bits()) << 32)
}

fn unpack(w: u64) -> [f32; 2] {
    [f32::from_bits(w as u32), f32::from_bits((w >> 32) as u32)]
}

/// The sign bits of `row - mean`, packed into `words` words.
fn encode<'a>(row: &'a [f32], mean: &'a [f32], words: usize) -> impl Iterator<Item = u64> + 'a {
    (0..words).map(move |w| {
        let chunk = row.iter().zip(mean).skip(w * 64).take(64);
        chunk
            .enumerate()
            .fold(0u64, |acc, (bit, (&x, &m))| acc | (u64::from(x > m) << bit))
    })
}

#[inline(always)]
fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::random_vectors;

    fn bitmap(offsets: impl IntoIterator<Item = u32>) -> Vec<u64> {
        let mut words = Vec::new();
        for o in offsets {
            let w = o as usize / 64;
            if words.len() <= w {
                words.resize(w + 1, 0);
            }
            words[w] |= 1u64 << (o % 64);
        }
        words
    }

    #[test]
    fn codes_are_signs_against_the_mean() {
        // Two rows: the mean is their midpoint, so each bit says which row is larger there.
        let v = [1.0, -1.0, 0.5, 2.0, 0.0, 0.0];
        let codes = SignCodes::new(&v, 3);
        assert_eq!(codes.len(), 2);
        // Mean (1.5, -0.5, 0.25).
        assert_eq!(codes.code(0).unwrap(), &[0b100]);
        assert_eq!(codes.code(1).unwrap(), &[0b011]);
        let q = codes.query(&[9.0, 9.0, -9.0]);
        assert_eq!(q.code, vec![0b011]);
    }

    #[test]
    fn closest_keeps_the_smallest_distances_and_cuts_ties_by_offset() {
        let dim = 130; // three words, the last one partial
        let v = random_vectors(500, dim, 7);
        let codes = SignCodes::new(&v, dim);
        let q = codes.query(&v[..dim]);
        let all: Vec<(u32, u32)> = (0..500u32)
            .map(|o| (hamming(codes.code(o as usize).unwrap(), &q.code), o))
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        let all_rows = bitmap(0..500);
        for keep in [0, 1, 10, 77, 499, 500, 600] {
            let mut got = codes.closest(&q, &all_rows, keep);
            got.sort_unstable();
            let mut want: Vec<u32> = sorted.iter().take(keep).map(|p| p.1).collect();
            want.sort_unstable();
            assert_eq!(got, want, "keep {keep}");
        }
        // Row 0 is the query itself: distance 0, always first to be kept.
        assert_eq!(codes.closest(&q, &all_rows, 1), vec![0]);
        // Only candidates count; offsets past the rows are skipped, not read.
        assert_eq!(codes.closest(&q, &bitmap([3, 70, 9999]), 5), vec![3, 70]);
        assert_eq!(codes.closest(&q, &bitmap([]), 5), Vec::<u32>::new());
    }

    #[test]
    fn closest_in_runs_agrees_with_closest_over_the_same_candidates() {
        let dim = 96;
        let v = random_vectors(400, dim, 11);
        let codes = SignCodes::new(&v, dim);
        let q = codes.query(&v[5 * dim..6 * dim]);
        let candidates = bitmap((0..400).filter(|o: &u32| !o.is_multiple_of(3)));
        let is_candidate = |o: u32| !o.is_multiple_of(3);
        let d = |o: u32| hamming(codes.code(o as usize).unwrap(), &q.code);
        let sorted_distances = |list: &[u32]| {
            let mut ds: Vec<u32> = list.iter().map(|&o| d(o)).collect();
            ds.sort_unstable();
            ds
        };
        // Odd offsets, then even ones: each once, the runs skipping the first ten.
        let mut order: Vec<u32> = (1..400).step_by(2).collect();
        order.extend((0..400).step_by(2));
        let arranged = codes.arrange(&order);
        let skipped: Vec<u32> = order[..10].to_vec();
        let runs = [10..150, 150..order.len()];
        for keep in [1, 7, 50, 300] {
            let got = codes.closest_in_runs(&q, &arranged, &order, &runs, Some(&candidates), keep);
            let reachable: Vec<u32> = (0..400)
                .filter(|&o| is_candidate(o) && !skipped.contains(&o))
                .collect();
            let mut want: Vec<u32> = reachable.clone();
            want.sort_by_key(|&o| d(o));
            want.truncate(keep);
            assert_eq!(
                sorted_distances(&got),
                sorted_distances(&want),
                "keep {keep}"
            );
            assert!(got.windows(2).all(|w| w[0] < w[1]));
            assert!(got
                .iter()
                .all(|&o| is_candidate(o) && !skipped.contains(&o)));
        }
        // Runs holding exactly the candidates need no bitmap: the same ranking without one.
        let only: Vec<u32> = (0..400).filter(|&o| is_candidate(o)).collect();
        let arranged_only = codes.arrange(&only);
        let whole: Vec<Range<usize>> = std::iter::once(0..only.len()).collect();
        for keep in [1, 50, 300] {
            let tested =
                codes.closest_in_runs(&q, &arranged_only, &only, &whole, Some(&candidates), keep);
            let untested = codes.closest_in_runs(&q, &arranged_only, &only, &whole, None, keep);
            assert_eq!(tested, untested, "keep {keep}");
        }
        // Offsets listed twice (a point with two values) come back once.
        let twice: Vec<u32> = (0..400).chain(0..400).collect();
        let arranged = codes.arrange(&twice);
        let all: Vec<Range<usize>> = std::iter::once(0..800).collect();
        let got = codes.closest_in_runs(&q, &arranged, &twice, &all, Some(&candidates), 40);
        assert!(got.windows(2).all(|w| w[0] < w[1]) && got.len() >= 20);
        let worst = got.iter().map(|&o| d(o)).max().unwrap();
        let closer = (0..400).filter(|&o| is_candidate(o) && d(o) < worst);
        assert!(closer.into_iter().all(|o| got.contains(&o)));
    }

    #[test]
    fn estimates_follow_the_dot_product_without_bias() {
        // Unit rows in 40 clusters, as cosine spaces keep embeddings: the estimate must track
        // the exact distance closely enough to steer a walk (its error spread well under the
        // distances' own spread) and must not lean either way.
        let dim = 256;
        let centres = random_vectors(40, dim, 9);
        let mut v = random_vectors(2000, dim, 5);
        for (i, row) in v.chunks_exact_mut(dim).enumerate() {
            let centre = &centres[(i % 40) * dim..(i % 40 + 1) * dim];
            row.iter_mut()
                .zip(centre)
                .for_each(|(x, c)| *x = c + 0.6 * *x);
            let norm = dot(row, row).sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        let codes = SignCodes::new(&v, dim);
        assert_eq!(
            codes.lines, 1,
            "256 dimensions fit one line with their terms"
        );
        let (mut err, mut err_sq, mut exact_sq, mut exact_sum) = (0f64, 0f64, 0f64, 0f64);
        let mut n = 0f64;
        for q in v.chunks_exact(dim).take(20) {
            let query = codes.query(q);
            for (o, row) in v.chunks_exact(dim).enumerate() {
                let exact = -dot(q, row) as f64;
                let e = codes.estimate(&query, o as u32) as f64 - exact;
                err += e;
                err_sq += e * e;
                exact_sum += exact;
                exact_sq += exact * exact;
                n += 1.0;
            }
        }
        let bias = err / n;
        let spread = (err_sq / n - bias * bias).sqrt();
        let exact_spread = (exact_sq / n - (exact_sum / n).powi(2)).sqrt();
        assert!(bias.abs() < 0.02, "bias {bias}");
        assert!(
            spread < 0.6 * exact_spread,
            "error {spread} vs {exact_spread}"
        );
        // A row compared with itself: every sign agrees, so the estimate is the exact −1.
        let query = codes.query(&v[..dim]);
        assert!((codes.estimate(&query, 0) + 1.0).abs() < 1e-4);
        assert_eq!(codes.estimate(&query, 2000), f32::INFINITY);
    }
}
