//! Integer kernels over u8 codes: dot product, squared L2 and L1. AVX2 versions are picked once
//! at run time, like the float kernels; the portable loops autovectorise elsewhere.

use std::sync::OnceLock;

/// A kernel over two code rows of equal length.
pub type CodeKernel = fn(&[u8], &[u8]) -> u32;

/// The kernels chosen for this CPU.
pub struct CodeKernels {
    pub dot: CodeKernel,
    pub l2: CodeKernel,
    pub l1: CodeKernel,
}

static KERNELS: OnceLock<CodeKernels> = OnceLock::new();

/// The kernels for this CPU, detected on first use.
pub fn kernels() -> &'static CodeKernels {
    KERNELS.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CodeKernels {
    if std::is_x86_feature_detected!("avx2") {
        return CodeKernels {
            dot: avx2::dot,
            l2: avx2::l2,
            l1: avx2::l1,
        };
    }
    portable_kernels()
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CodeKernels {
    portable_kernels()
}

fn portable_kernels() -> CodeKernels {
    CodeKernels {
        dot: portable::dot,
        l2: portable::l2,
        l1: portable::l1,
    }
}

/// Plain loops; u32 accumulators cannot overflow below 66,000 dimensions (255² per term).
pub mod portable {
    pub fn dot(a: &[u8], b: &[u8]) -> u32 {
        a.iter().zip(b).map(|(&x, &y)| x as u32 * y as u32).sum()
    }

    pub fn l2(a: &[u8], b: &[u8]) -> u32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as i32 - y as i32).pow(2) as u32)
            .sum()
    }

    pub fn l1(a: &[u8], b: &[u8]) -> u32 {
        a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u32).sum()
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    /// Sum of the eight i32 lanes.
    #[target_feature(enable = "avx2")]
    unsafe fn hsum_epi32(v: __m256i) -> u32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s) as u32
    }

    /// Widens 16 codes at `p` to i16 lanes.
    #[inline(always)]
    unsafe fn load16(p: *const u8) -> __m256i {
        _mm256_cvtepu8_epi16(_mm_loadu_si128(p as *const __m128i))
    }

    /// Applies `step` to 16-code blocks (summing its i32 lanes) and `tail` to the rest.
    #[inline(always)]
    unsafe fn fold16(
        a: &[u8],
        b: &[u8],
        step: impl Fn(__m256i, __m256i) -> __m256i,
        tail: fn(&[u8], &[u8]) -> u32,
    ) -> u32 {
        let n = a.len().min(b.len());
        let blocks = n / 16;
        let (mut acc0, mut acc1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // Two accumulators so consecutive blocks do not wait on each other's add.
        while i + 2 <= blocks {
            let o = i * 16;
            acc0 = _mm256_add_epi32(acc0, step(load16(pa.add(o)), load16(pb.add(o))));
            acc1 = _mm256_add_epi32(acc1, step(load16(pa.add(o + 16)), load16(pb.add(o + 16))));
            i += 2;
        }
        if i < blocks {
            let o = i * 16;
            acc0 = _mm256_add_epi32(acc0, step(load16(pa.add(o)), load16(pb.add(o))));
        }
        let done = blocks * 16;
        hsum_epi32(_mm256_add_epi32(acc0, acc1)) + tail(&a[done..n], &b[done..n])
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_impl(a: &[u8], b: &[u8]) -> u32 {
        fold16(a, b, |x, y| _mm256_madd_epi16(x, y), super::portable::dot)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn l2_impl(a: &[u8], b: &[u8]) -> u32 {
        let step = |x, y| {
            let d = _mm256_sub_epi16(x, y);
            _mm256_madd_epi16(d, d)
        };
        fold16(a, b, step, super::portable::l2)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn l1_impl(a: &[u8], b: &[u8]) -> u32 {
        let n = a.len().min(b.len());
        let blocks = n / 32;
        let mut acc = _mm256_setzero_si256();
        for i in 0..blocks {
            let x = _mm256_loadu_si256(a.as_ptr().add(i * 32) as *const __m256i);
            let y = _mm256_loadu_si256(b.as_ptr().add(i * 32) as *const __m256i);
            // Four u64 lanes of absolute-difference sums; each fits in 32 bits here.
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(x, y));
        }
        let lanes: [u64; 4] = std::mem::transmute(acc);
        let done = blocks * 32;
        lanes.iter().sum::<u64>() as u32 + super::portable::l1(&a[done..n], &b[done..n])
    }

    // SAFETY (all three): only installed by `detect` after AVX2 was detected; every load stays
    // within `min(a.len(), b.len())`.
    pub fn dot(a: &[u8], b: &[u8]) -> u32 {
        unsafe { dot_impl(a, b) }
    }

    pub fn l2(a: &[u8], b: &[u8]) -> u32 {
        unsafe { l2_impl(a, b) }
    }

    pub fn l1(a: &[u8], b: &[u8]) -> u32 {
        unsafe { l1_impl(a, b) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random codes covering the whole u8 range.
    fn codes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn dispatched_kernels_agree_with_the_portable_ones_at_every_length() {
        let k = kernels();
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 47, 64, 100, 384, 1000] {
            let (a, b) = (codes(n, 1), codes(n, 2));
            assert_eq!((k.dot)(&a, &b), portable::dot(&a, &b), "dot n={n}");
            assert_eq!((k.l2)(&a, &b), portable::l2(&a, &b), "l2 n={n}");
            assert_eq!((k.l1)(&a, &b), portable::l1(&a, &b), "l1 n={n}");
        }
    }

    #[test]
    fn extreme_codes_do_not_overflow() {
        let k = kernels();
        let (a, b) = (vec![255u8; 4096], vec![0u8; 4096]);
        assert_eq!((k.dot)(&a, &a), 255 * 255 * 4096);
        assert_eq!((k.l2)(&a, &b), 255 * 255 * 4096);
        assert_eq!((k.l1)(&a, &b), 255 * 4096);
    }
}
