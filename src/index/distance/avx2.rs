//! AVX2+FMA kernels from a float32 query to rows of float32, half-precision (with F16C) or
//! byte elements, widened eight at a time as they are loaded. The safe wrappers are only
//! reachable through `detect`, which checks the CPU.

use core::arch::x86_64::*;

use half::f16;

use super::{Element, RowKernels};

/// Sum of the 8 lanes of `v`.
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Shared loop: 4 accumulators of 8 lanes hide the FMA latency; `load` widens 8 elements of a
/// row, `step` folds one pair of registers.
#[inline(always)]
unsafe fn fold<B: Element>(
    a: &[f32],
    b: &[B],
    load: impl Fn(*const B) -> __m256,
    step: impl Fn(__m256, __m256, __m256) -> __m256,
    scalar: impl Fn(f32, f32) -> f32,
) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 8 <= n on every load, and both slices hold at least n elements.
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let o = i + 8 * j;
            *acc = step(*acc, _mm256_loadu_ps(pa.add(o)), load(pb.add(o)));
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = step(acc[0], _mm256_loadu_ps(pa.add(i)), load(pb.add(i)));
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut total = hsum(sum);
    for k in i..n {
        total += scalar(a[k], b[k].widen());
    }
    total
}

/// The dot product, squared L2 and L1 kernels (and the negated dot product, so that the Dot
/// metric is "lower is closer" without a second indirect call) for rows of `$elem`, loaded
/// by `$load` under the target features `$features`.
macro_rules! kernels {
    ($name:ident, $elem:ty, $features:literal, $load:expr) => {
        pub mod $name {
            use super::*;

            #[target_feature(enable = $features)]
            unsafe fn dot_impl(a: &[f32], b: &[$elem]) -> f32 {
                fold(
                    a,
                    b,
                    $load,
                    |acc, x, y| _mm256_fmadd_ps(x, y, acc),
                    |x, y| x * y,
                )
            }

            #[target_feature(enable = $features)]
            unsafe fn l2_impl(a: &[f32], b: &[$elem]) -> f32 {
                let step = |acc, x, y| {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, acc)
                };
                fold(a, b, $load, step, |x, y| (x - y) * (x - y))
            }

            #[target_feature(enable = $features)]
            unsafe fn l1_impl(a: &[f32], b: &[$elem]) -> f32 {
                let step = |acc, x, y| {
                    // Clearing the sign bit is |x - y|.
                    let d = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y));
                    _mm256_add_ps(acc, d)
                };
                fold(a, b, $load, step, |x, y| (x - y).abs())
            }

            pub fn dot(a: &[f32], b: &[$elem]) -> f32 {
                // SAFETY: installed only after the target features were detected.
                unsafe { dot_impl(a, b) }
            }

            pub fn neg_dot(a: &[f32], b: &[$elem]) -> f32 {
                // SAFETY: installed only after the target features were detected.
                -unsafe { dot_impl(a, b) }
            }

            pub fn l2_squared(a: &[f32], b: &[$elem]) -> f32 {
                // SAFETY: installed only after the target features were detected.
                unsafe { l2_impl(a, b) }
            }

            pub fn l1(a: &[f32], b: &[$elem]) -> f32 {
                // SAFETY: installed only after the target features were detected.
                unsafe { l1_impl(a, b) }
            }

            /// These kernels, to install once the target features were detected.
            pub fn kernels() -> RowKernels<$elem> {
                RowKernels {
                    dot,
                    neg_dot,
                    l2: l2_squared,
                    l1,
                }
            }
        }
    };
}

kernels!(float, f32, "avx2,fma", |p: *const f32| _mm256_loadu_ps(p));
kernels!(half16, f16, "avx2,fma,f16c", |p: *const f16| {
    _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
});
kernels!(byte, u8, "avx2,fma", |p: *const u8| _mm256_cvtepi32_ps(
    _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i))
));
