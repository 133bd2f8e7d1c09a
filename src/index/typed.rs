//! Vector element types ([`Datatype`]) and rows stored in them ([`Elements`]): `float16`
//! halves and `uint8` quarters the memory of a vector space, and its distances are computed on
//! the stored values, widened to float32 a register at a time ([`crate::index::distance`]).

use half::f16;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::distance::{max_sim, Kernel, RowKernel};
use super::Metric;
use crate::bytes::Reader;
use crate::error::Corrupt;

/// The element type a vector space stores; vectors are converted to it on write, so they read
/// back and score as stored. Queries are compared as sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    #[default]
    Float32,
    Float16,
    Uint8,
}

impl Datatype {
    /// The name clients send.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Float32 => "float32",
            Datatype::Float16 => "float16",
            Datatype::Uint8 => "uint8",
        }
    }

    /// Bytes per stored element.
    pub fn bytes(self) -> usize {
        match self {
            Datatype::Float32 => 4,
            Datatype::Float16 => 2,
            Datatype::Uint8 => 1,
        }
    }

    /// Converts `values` in place to what this type stores (float16: the nearest half-precision
    /// value; uint8: the whole part, as Qdrant casts), or says which value it cannot hold.
    pub fn convert(self, values: &mut [f32]) -> Result<(), String> {
        match self {
            Datatype::Float32 => {}
            Datatype::Float16 => {
                if let Some(x) = values.iter().find(|x| x.abs() > f16::MAX.to_f32()) {
                    return Err(format!("{x} is outside float16's range (±65504)"));
                }
                values
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(*x).to_f32());
            }
            Datatype::Uint8 => {
                if let Some(x) = values.iter().find(|x| !(0.0..256.0).contains(*x)) {
                    return Err(format!("{x} is outside uint8's range (0 to 255)"));
                }
                // + 0.0 turns -0.0 into the 0 a byte reads back as.
                values.iter_mut().for_each(|x| *x = x.trunc() + 0.0);
            }
        }
        Ok(())
    }

    /// The narrowest type that holds every value of `values` exactly, bit for bit (float32
    /// for no values).
    pub fn narrowest(values: &[f32]) -> Datatype {
        let byte = |x: &f32| (*x as u8 as f32).to_bits() == x.to_bits();
        let half = |x: &f32| f16::from_f32(*x).to_f32().to_bits() == x.to_bits();
        if values.is_empty() {
            Datatype::Float32
        } else if values.iter().all(byte) {
            Datatype::Uint8
        } else if values.iter().all(half) {
            Datatype::Float16
        } else {
            Datatype::Float32
        }
    }

    /// Whether this type holds every value of `values` exactly.
    pub fn holds(self, values: &[f32]) -> bool {
        match (self, Datatype::narrowest(values)) {
            (Datatype::Float32, _) | (_, Datatype::Uint8) => true,
            (Datatype::Float16, narrowest) => narrowest == Datatype::Float16,
            (Datatype::Uint8, _) => false,
        }
    }

    /// Tag of this type in binary formats.
    pub fn tag(self) -> u8 {
        match self {
            Datatype::Float32 => 0,
            Datatype::Float16 => 1,
            Datatype::Uint8 => 2,
        }
    }

    /// The type of a binary tag.
    pub fn from_tag(tag: u8) -> Result<Datatype, Corrupt> {
        match tag {
            0 => Ok(Datatype::Float32),
            1 => Ok(Datatype::Float16),
            2 => Ok(Datatype::Uint8),
            other => Err(Corrupt(format!("unknown vector element type {other}"))),
        }
    }

    /// Appends `values` (which this type holds exactly) to `out`, little-endian.
    pub fn write(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            Datatype::Float32 => values
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Datatype::Float16 => values
                .iter()
                .for_each(|x| out.extend_from_slice(&f16::from_f32(*x).to_le_bytes())),
            Datatype::Uint8 => out.extend(values.iter().map(|&x| x as u8)),
        }
    }

    /// Reads `n` elements written by [`Datatype::write`], widened to float32.
    pub fn read(self, r: &mut Reader, n: usize) -> Result<Vec<f32>, Corrupt> {
        Ok(Elements::read(r, self, n)?.into_f32())
    }
}

/// One metric's kernels for rows of each element type, resolved once per search.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub float: Kernel,
    pub half: RowKernel<f16>,
    pub byte: RowKernel<u8>,
}

impl Kernels {
    pub fn of(metric: Metric) -> Kernels {
        Kernels {
            float: metric.kernel(),
            half: metric.row_kernel(),
            byte: metric.row_kernel(),
        }
    }
}

/// Row-major vectors of one space in its element type: what a sealed segment keeps.
#[derive(Clone, Debug, PartialEq)]
pub enum Elements {
    F32(Vec<f32>),
    F16(Vec<f16>),
    U8(Vec<u8>),
}

impl Default for Elements {
    fn default() -> Self {
        Elements::F32(Vec::new())
    }
}

impl Elements {
    /// `values` (already converted to `datatype`) stored as `datatype`.
    pub fn new(datatype: Datatype, values: Vec<f32>) -> Elements {
        match datatype {
            Datatype::Float32 => Elements::F32(values),
            Datatype::Float16 => Elements::F16(values.iter().map(|&x| f16::from_f32(x)).collect()),
            Datatype::Uint8 => Elements::U8(values.iter().map(|&x| x as u8).collect()),
        }
    }

    pub fn datatype(&self) -> Datatype {
        match self {
            Elements::F32(_) => Datatype::Float32,
            Elements::F16(_) => Datatype::Float16,
            Elements::U8(_) => Datatype::Uint8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Elements::F32(v) => v.len(),
            Elements::F16(v) => v.len(),
            Elements::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives back spare capacity.
    pub fn shrink_to_fit(&mut self) {
        match self {
            Elements::F32(v) => v.shrink_to_fit(),
            Elements::F16(v) => v.shrink_to_fit(),
            Elements::U8(v) => v.shrink_to_fit(),
        }
    }

    /// Bytes of heap memory held.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Elements::F32(v) => v.capacity() * 4,
            Elements::F16(v) => v.capacity() * 2,
            Elements::U8(v) => v.capacity(),
        }
    }

    /// The float32 elements, borrowed when that is how they are stored.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Elements::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Elements `range`, widened to float32.
    pub fn widen(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let mut out = Vec::with_capacity(range.len());
        self.extend_floats(range, &mut out);
        out
    }

    /// Appends elements `range` to `out`, widened to float32.
    fn extend_floats(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Elements::F32(v) => out.extend_from_slice(&v[range]),
            Elements::F16(v) => out.extend(v[range].iter().map(|x| x.to_f32())),
            Elements::U8(v) => out.extend(v[range].iter().map(|&x| x as f32)),
        }
    }

    /// `f` of elements `range` as float32: borrowed when stored so, else widened into a buffer
    /// of the thread's (so that scoring many rows allocates nothing).
    pub fn with_floats<R>(&self, range: std::ops::Range<usize>, f: impl FnOnce(&[f32]) -> R) -> R {
        thread_local! {
            static WIDE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        match self {
            Elements::F32(v) => f(&v[range]),
            // A reentrant call (from within `f`) widens into a buffer of its own.
            _ => WIDE.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    buf.clear();
                    self.extend_floats(range, &mut buf);
                    f(&buf)
                }
                Err(_) => f(&self.widen(range)),
            }),
        }
    }

    /// The elements as float32, moved out when stored so.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            Elements::F32(v) => v,
            other => other.to_f32(),
        }
    }

    /// Every element, widened to float32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.widen(0..self.len())
    }

    /// `n` elements of `datatype` read from `r`, as written by [`Elements::write`].
    pub fn read(r: &mut Reader, datatype: Datatype, n: usize) -> Result<Elements, Corrupt> {
        let len = n
            .checked_mul(datatype.bytes())
            .ok_or("vector data overflows")?;
        let bytes = r.take(len)?;
        Ok(match datatype {
            Datatype::Float32 => Elements::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Datatype::Float16 => Elements::F16(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            Datatype::Uint8 => Elements::U8(bytes.to_vec()),
        })
    }

    /// Appends every element, little-endian, in the stored type.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Elements::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Elements::F16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Elements::U8(v) => out.extend_from_slice(v),
        }
    }

    /// Address of element `i`, for prefetching (never dereferenced).
    pub fn addr(&self, i: usize) -> *const u8 {
        match self {
            Elements::F32(v) => v.as_ptr().wrapping_add(i) as *const u8,
            Elements::F16(v) => v.as_ptr().wrapping_add(i) as *const u8,
            Elements::U8(v) => v.as_ptr().wrapping_add(i),
        }
    }

    /// Distance under `kernels` from the float32 `query` to elements `range`, which hold one
    /// vector of `query.len()` elements, or (with `multi_dim`) a multivector compared by
    /// [`max_sim`] (widened first: multivectors are stored as float32).
    #[inline]
    pub fn distance(
        &self,
        kernels: &Kernels,
        query: &[f32],
        range: std::ops::Range<usize>,
        multi_dim: Option<usize>,
    ) -> f32 {
        match (self, multi_dim) {
            (Elements::F32(v), None) => (kernels.float)(query, &v[range]),
            (Elements::F16(v), None) => (kernels.half)(query, &v[range]),
            (Elements::U8(v), None) => (kernels.byte)(query, &v[range]),
            (Elements::F32(v), Some(dim)) => max_sim(kernels.float, dim, query, &v[range]),
            (_, Some(dim)) => max_sim(kernels.float, dim, query, &self.widen(range)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_keeps_what_the_type_holds_and_refuses_the_rest() {
        let mut v = vec![0.15, 1.0, -2.5];
        Datatype::Float16.convert(&mut v).unwrap();
        assert_eq!(v, [f16::from_f32(0.15).to_f32(), 1.0, -2.5]);
        assert_ne!(v[0], 0.15);
        assert!(Datatype::Float16.convert(&mut [70000.0]).is_err());
        let mut b = vec![0.0, 3.7, 255.9];
        Datatype::Uint8.convert(&mut b).unwrap();
        assert_eq!(b, [0.0, 3.0, 255.0]);
        assert!(Datatype::Uint8.convert(&mut [256.0]).is_err());
        assert!(Datatype::Uint8.convert(&mut [-0.5]).is_err());
        let mut zero = vec![-0.0];
        Datatype::Uint8.convert(&mut zero).unwrap();
        assert!(zero[0].is_sign_positive());
    }

    #[test]
    fn the_narrowest_type_holds_every_value_exactly() {
        assert_eq!(Datatype::narrowest(&[0.0, 7.0, 255.0]), Datatype::Uint8);
        assert_eq!(Datatype::narrowest(&[0.5, 7.0]), Datatype::Float16);
        assert_eq!(Datatype::narrowest(&[256.0, -1.0]), Datatype::Float16);
        assert_eq!(Datatype::narrowest(&[0.1]), Datatype::Float32);
        assert_eq!(Datatype::narrowest(&[-0.0]), Datatype::Float16);
        assert_eq!(Datatype::narrowest(&[]), Datatype::Float32);
        for (values, t) in [
            (vec![3.0, 9.0], Datatype::Uint8),
            (vec![-0.5, 1e4], Datatype::Float16),
        ] {
            let mut out = Vec::new();
            t.write(&values, &mut out);
            assert_eq!(out.len(), values.len() * t.bytes());
            let back = t.read(&mut Reader::new(&out), values.len()).unwrap();
            assert_eq!(back, values);
        }
    }

    #[test]
    fn typed_rows_score_as_their_widened_values() {
        let mut values: Vec<f32> = (0..5000).map(|i| (i % 251) as f32).collect();
        let query: Vec<f32> = (0..2500).map(|i| (i % 7) as f32 * 0.25).collect();
        for t in [Datatype::Float32, Datatype::Float16, Datatype::Uint8] {
            t.convert(&mut values).unwrap();
            let rows = Elements::new(t, values.clone());
            assert_eq!(rows.to_f32(), values);
            let nested = rows.with_floats(10..20, |a| {
                rows.with_floats(0..5, |b| [a.to_vec(), b.to_vec()])
            });
            assert_eq!(nested, [values[10..20].to_vec(), values[0..5].to_vec()]);
            for metric in [Metric::Dot, Metric::L2, Metric::L1, Metric::Cosine] {
                let (k, ks) = (metric.kernel(), Kernels::of(metric));
                let want = k(&query, &values[2500..]);
                let got = rows.distance(&ks, &query, 2500..5000, None);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
                let multi = rows.distance(&ks, &query[..500], 0..5000, Some(500));
                assert_eq!(multi, max_sim(k, 500, &query[..500], &values));
            }
        }
    }
}
