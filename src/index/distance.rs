//! Distance kernels. On x86_64 the AVX2+FMA versions are picked once at run time;
//! everywhere else (or on older CPUs) a portable loop that the compiler autovectorises is used.

use std::sync::OnceLock;

/// Internal metric; every distance is "lower is closer".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Negated dot product (cosine when vectors are unit length).
    Dot,
    /// Squared Euclidean distance.
    L2,
    /// Manhattan distance.
    L1,
    /// Negated cosine of vectors that are not normalised (`uint8` spaces keep their bytes as
    /// sent); 0 against a zero vector.
    Cosine,
}

/// A distance kernel: both slices are read up to the shorter length.
pub type Kernel = fn(&[f32], &[f32]) -> f32;

/// The kernels chosen for this CPU.
struct Kernels {
    dot: Kernel,
    neg_dot: Kernel,
    l2: Kernel,
    l1: Kernel,
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Kernels {
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return Kernels {
            dot: avx2::dot,
            neg_dot: avx2::neg_dot,
            l2: avx2::l2_squared,
            l1: avx2::l1,
        };
    }
    portable_kernels()
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Kernels {
    portable_kernels()
}

fn portable_kernels() -> Kernels {
    Kernels {
        dot: portable::dot,
        neg_dot: portable::neg_dot,
        l2: portable::l2_squared,
        l1: portable::l1,
    }
}

/// Dot product of `a` and `b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance between `a` and `b`.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2)(a, b)
}

/// Manhattan distance between `a` and `b`.
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l1)(a, b)
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn to_unit(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Negated cosine of `a` and `b`, 0 when either is zero.
fn neg_cosine(a: &[f32], b: &[f32]) -> f32 {
    let norms = dot(a, a) * dot(b, b);
    match norms > 0.0 {
        true => -dot(a, b) / norms.sqrt(),
        false => 0.0,
    }
}

/// Late-interaction distance between two multivectors (rows of `dim` floats): the sum over
/// `query`'s rows of the distance to their closest row of `doc`. With the negated dot product
/// this is ColBERT's MaxSim, negated; Qdrant's `max_sim` comparator for every metric. Infinite
/// when `doc` has no row.
pub fn max_sim(kernel: Kernel, dim: usize, query: &[f32], doc: &[f32]) -> f32 {
    if dim == 0 || doc.len() < dim {
        return f32::INFINITY;
    }
    query
        .chunks_exact(dim)
        .map(|q| {
            doc.chunks_exact(dim)
                .map(|d| kernel(q, d))
                .fold(f32::INFINITY, f32::min)
        })
        .sum()
}

impl Metric {
    /// Distance between `a` and `b` under this metric (lower is closer).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        (self.kernel())(a, b)
    }

    /// The raw kernel for this metric, resolved once so hot loops skip the dispatch.
    #[inline]
    pub fn kernel(self) -> Kernel {
        match self {
            Metric::Dot => kernels().neg_dot,
            Metric::L2 => kernels().l2,
            Metric::L1 => kernels().l1,
            Metric::Cosine => neg_cosine,
        }
    }
}

/// Portable kernels: 16 independent lanes so the compiler can vectorise without reassociating.
mod portable {
    const LANES: usize = 16;

    #[inline(always)]
    fn fold(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                acc[i] += term(x[i], y[i]);
            }
        }
        let mut tail = 0.0f32;
        for (x, y) in ta.iter().zip(tb) {
            tail += term(*x, *y);
        }
        // Pairwise reduction keeps rounding error close to the SIMD versions.
        let mut width = LANES / 2;
        while width > 0 {
            for i in 0..width {
                acc[i] += acc[i + width];
            }
            width /= 2;
        }
        acc[0] + tail
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        fold(a, b, |x, y| x * y)
    }

    pub fn neg_dot(a: &[f32], b: &[f32]) -> f32 {
        -dot(a, b)
    }

    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        fold(a, b, |x, y| (x - y) * (x - y))
    }

    pub fn l1(a: &[f32], b: &[f32]) -> f32 {
        fold(a, b, |x, y| (x - y).abs())
    }
}

/// AVX2+FMA kernels. The safe wrappers are only reachable through `detect`, which checks the CPU.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    /// Sum of the 8 lanes of `v`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Shared loop: 4 accumulators of 8 lanes hide the FMA latency; `step` folds one pair of registers.
    #[inline(always)]
    unsafe fn fold(
        a: &[f32],
        b: &[f32],
        step: impl Fn(__m256, __m256, __m256) -> __m256,
        scalar: impl Fn(f32, f32) -> f32,
    ) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 8 <= n on every load, and both slices hold at least n floats.
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let o = i + 8 * j;
                *acc = step(*acc, _mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)));
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = step(
                acc[0],
                _mm256_loadu_ps(pa.add(i)),
                _mm256_loadu_ps(pb.add(i)),
            );
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum(sum);
        for k in i..n {
            total += scalar(a[k], b[k]);
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
        fold(a, b, |acc, x, y| _mm256_fmadd_ps(x, y, acc), |x, y| x * y)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_impl(a: &[f32], b: &[f32]) -> f32 {
        fold(
            a,
            b,
            |acc, x, y| {
                let d = _mm256_sub_ps(x, y);
                _mm256_fmadd_ps(d, d, acc)
            },
            |x, y| (x - y) * (x - y),
        )
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l1_impl(a: &[f32], b: &[f32]) -> f32 {
        fold(
            a,
            b,
            |acc, x, y| {
                // Clearing the sign bit is |x - y|.
                let d = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y));
                _mm256_add_ps(acc, d)
            },
            |x, y| (x - y).abs(),
        )
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { dot_impl(a, b) }
    }

    /// Negated so that the Dot metric is "lower is closer" without a second indirect call.
    pub fn neg_dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        -unsafe { dot_impl(a, b) }
    }

    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { l2_impl(a, b) }
    }

    pub fn l1(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { l1_impl(a, b) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` deterministic values in [-1, 1).
    fn random_vec(seed: u64, len: usize) -> Vec<f32> {
        crate::index::testing::random_vectors(1, len, seed)
    }

    fn check(name: &str, got: f32, want: f64, scale: f64) {
        let tol = 1e-5 * scale.max(1.0);
        assert!(
            (got as f64 - want).abs() <= tol,
            "{name}: got {got}, want {want}"
        );
    }

    fn check_all(kernels: &[(&str, Kernel, Kernel, Kernel)]) {
        for &len in &[0usize, 1, 7, 8, 17, 31, 33, 384, 1000] {
            let a = random_vec(len as u64 + 1, len);
            let b = random_vec(len as u64 + 1000, len);
            let pairs = || a.iter().zip(&b).map(|(x, y)| (*x as f64, *y as f64));
            let dot_w: f64 = pairs().map(|(x, y)| x * y).sum();
            let l2_w: f64 = pairs().map(|(x, y)| (x - y) * (x - y)).sum();
            let l1_w: f64 = pairs().map(|(x, y)| (x - y).abs()).sum();
            let scale = len as f64;
            for (name, d, l2, l1) in kernels {
                check(&format!("{name} dot {len}"), d(&a, &b), dot_w, scale);
                check(&format!("{name} l2 {len}"), l2(&a, &b), l2_w, scale);
                check(&format!("{name} l1 {len}"), l1(&a, &b), l1_w, scale);
            }
        }
    }

    #[test]
    fn kernels_match_naive_loops() {
        let mut all: Vec<(&str, Kernel, Kernel, Kernel)> = vec![
            ("dispatched", dot, l2_squared, l1),
            (
                "portable",
                portable::dot,
                portable::l2_squared,
                portable::l1,
            ),
        ];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            all.push(("avx2", avx2::dot, avx2::l2_squared, avx2::l1));
        }
        check_all(&all);
    }

    #[test]
    fn metric_distance_signs() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, -5.0, 6.0];
        assert_eq!(Metric::Dot.distance(&a, &b), -12.0);
        assert_eq!(Metric::L2.distance(&a, &b), 9.0 + 49.0 + 9.0);
        assert_eq!(Metric::L1.distance(&a, &b), 3.0 + 7.0 + 3.0);
    }

    #[test]
    fn mismatched_lengths_use_shorter() {
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[1.0, 1.0]), 3.0);
    }
}
