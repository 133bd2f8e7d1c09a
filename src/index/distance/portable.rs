//! Portable kernels: 16 independent lanes so the compiler can vectorise without reassociating.

use super::Element;

const LANES: usize = 16;

#[inline(always)]
fn fold<B: Element>(a: &[f32], b: &[B], term: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += term(x[i], y[i].widen());
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += term(*x, y.widen());
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

pub fn dot<B: Element>(a: &[f32], b: &[B]) -> f32 {
    fold(a, b, |x, y| x * y)
}

pub fn neg_dot<B: Element>(a: &[f32], b: &[B]) -> f32 {
    -dot(a, b)
}

pub fn l2_squared<B: Element>(a: &[f32], b: &[B]) -> f32 {
    fold(a, b, |x, y| (x - y) * (x - y))
}

pub fn l1<B: Element>(a: &[f32], b: &[B]) -> f32 {
    fold(a, b, |x, y| (x - y).abs())
}
