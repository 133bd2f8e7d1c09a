//! Distance kernels, from a float32 query to rows of float32, half-precision or byte elements
//! ([`Element`]). On x86_64 the AVX2+FMA versions (`avx2.rs`) are picked once at run time;
//! everywhere else (or on older CPUs) a loop that the compiler autovectorises (`portable.rs`).

use std::sync::OnceLock;

use half::f16;

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

/// A kernel from a float32 query to a row stored as `B` (see [`Element`]).
pub type RowKernel<B> = fn(&[f32], &[B]) -> f32;

/// An element type rows are stored in: float32, half precision or a byte. Kernels widen the
/// row's elements to float32 as they load them.
pub trait Element: Copy + Sync + 'static {
    fn widen(self) -> f32;

    /// The kernels for rows of this type chosen for this CPU.
    fn kernels() -> &'static RowKernels<Self>;

    /// Squared length of a row.
    fn norm_squared(row: &[Self]) -> f32 {
        row.iter().map(|x| x.widen() * x.widen()).sum()
    }
}

/// The kernels for rows of one element type.
pub struct RowKernels<B> {
    dot: RowKernel<B>,
    neg_dot: RowKernel<B>,
    l2: RowKernel<B>,
    l1: RowKernel<B>,
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }

    fn kernels() -> &'static RowKernels<f32> {
        static KERNELS: OnceLock<RowKernels<f32>> = OnceLock::new();
        KERNELS.get_or_init(|| chosen(true, avx2::float::kernels))
    }

    fn norm_squared(row: &[f32]) -> f32 {
        dot(row, row)
    }
}

impl Element for f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }

    fn kernels() -> &'static RowKernels<f16> {
        static KERNELS: OnceLock<RowKernels<f16>> = OnceLock::new();
        KERNELS.get_or_init(|| chosen(f16c(), avx2::half16::kernels))
    }
}

impl Element for u8 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self as f32
    }

    fn kernels() -> &'static RowKernels<u8> {
        static KERNELS: OnceLock<RowKernels<u8>> = OnceLock::new();
        KERNELS.get_or_init(|| chosen(true, avx2::byte::kernels))
    }

    fn norm_squared(row: &[u8]) -> f32 {
        // Exact in integers (up to 66,000 dimensions), and vectorised.
        (crate::index::quant::kernels::kernels().dot)(row, row) as f32
    }
}

/// Whether the CPU converts half precision in hardware.
fn f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("f16c");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The AVX2 kernels `fast` when the CPU has AVX2, FMA and `also` holds, else the portable ones.
#[cfg(target_arch = "x86_64")]
fn chosen<B: Element>(also: bool, fast: fn() -> RowKernels<B>) -> RowKernels<B> {
    let simd = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    match simd && also {
        true => fast(),
        false => portable_kernels(),
    }
}

/// Portable code has no AVX2 kernels to choose.
#[cfg(not(target_arch = "x86_64"))]
fn chosen<B: Element>(_also: bool, _fast: fn() -> RowKernels<B>) -> RowKernels<B> {
    portable_kernels()
}

/// Stands in for the AVX2 kernels where there are none.
#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    macro_rules! none {
        ($($name:ident: $elem:ty),*) => {$(
            pub mod $name {
                pub fn kernels() -> super::super::RowKernels<$elem> {
                    super::super::portable_kernels()
                }
            }
        )*};
    }
    none!(float: f32, half16: half::f16, byte: u8);
}

fn portable_kernels<B: Element>() -> RowKernels<B> {
    RowKernels {
        dot: portable::dot,
        neg_dot: portable::neg_dot,
        l2: portable::l2_squared,
        l1: portable::l1,
    }
}

fn kernels() -> &'static RowKernels<f32> {
    f32::kernels()
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

/// Negated cosine of `a` and `b`, 0 when either is zero. The lengths are taken apart, so
/// that their product cannot overflow.
fn neg_cosine<B: Element>(a: &[f32], b: &[B]) -> f32 {
    let (na, nb) = (dot(a, a).sqrt(), B::norm_squared(b).sqrt());
    match na > 0.0 && nb > 0.0 {
        true => -(B::kernels().dot)(a, b) / na / nb,
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
        self.row_kernel::<f32>()
    }

    /// The kernel for this metric from a float32 query to rows stored as `B`.
    #[inline]
    pub fn row_kernel<B: Element>(self) -> RowKernel<B> {
        let k = B::kernels();
        match self {
            Metric::Dot => k.neg_dot,
            Metric::L2 => k.l2,
            Metric::L1 => k.l1,
            Metric::Cosine => neg_cosine::<B>,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;
mod portable;

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
            use avx2::float as k;
            all.push(("avx2", k::dot, k::l2_squared, k::l1));
        }
        check_all(&all);
    }

    /// Kernels over rows of `B` give what the float32 kernels give on the widened rows, for
    /// every metric, dispatched and portable, at lengths around the vector widths.
    fn check_rows<B: Element>(narrow: impl Fn(f32) -> B) {
        for &len in &[0usize, 1, 7, 8, 17, 31, 33, 384, 1000] {
            let a = random_vec(len as u64 + 1, len);
            let b: Vec<B> = random_vec(len as u64 + 1000, len)
                .into_iter()
                .map(&narrow)
                .collect();
            let wide: Vec<f32> = b.iter().map(|x| x.widen()).collect();
            for metric in [Metric::Dot, Metric::L2, Metric::L1, Metric::Cosine] {
                let want = metric.distance(&a, &wide);
                let tol = 1e-5 * (len as f32).max(1.0) * want.abs().max(1.0);
                let got = metric.row_kernel::<B>()(&a, &b);
                assert!(
                    (got - want).abs() <= tol,
                    "{metric:?} {len}: {got} vs {want}"
                );
            }
            let portable = [
                portable::neg_dot::<B>,
                portable::l2_squared::<B>,
                portable::l1::<B>,
            ];
            let float = [Metric::Dot, Metric::L2, Metric::L1];
            for (k, metric) in portable.iter().zip(float) {
                let want = metric.distance(&a, &wide);
                let tol = 1e-5 * (len as f32).max(1.0) * want.abs().max(1.0);
                assert!((k(&a, &b) - want).abs() <= tol, "portable {metric:?} {len}");
            }
        }
    }

    #[test]
    fn half_and_byte_rows_score_as_their_widened_values() {
        check_rows(f16::from_f32);
        check_rows(|x| ((x + 1.0) * 127.5) as u8);
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
