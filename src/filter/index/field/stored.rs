//! A field index as bytes, for the segment's index file (see [`super::super::stored`]).
//!
//! Layout (little-endian): `with_value` as a bitset, then the values of the index's kind:
//! postings are `u32 count | per key: key, posting | other offsets`, a posting is `u8 0 |
//! offsets` or `u8 1 | bitset`, sorted values are `u32 count | (value, u32 offset)...`. Offsets
//! and bitsets are `u32 count` (words for a bitset) then the items. The field's order is not
//! stored: it is made again from the values, which is a copy of what they hold.
//!
//! Decoding checks every count against the bytes left and every offset against the segment's
//! length, so a damaged file fails to decode instead of yielding offsets past the segment.

use crate::error::Corrupt;
use std::collections::HashMap;
use std::hash::Hash;

use super::super::schema::{FieldType, IndexSpec};
use super::{order, Datetime, FieldIndex, GeoPoints, Posting, Postings, Sorted, Tokenizer, Values};
use crate::bitset::Bitset;
use crate::bytes::{put_prefixed, put_u32, Reader};

impl FieldIndex {
    /// Appends this index's bytes to `out`.
    pub(in super::super) fn encode(&self, out: &mut Vec<u8>) {
        put_bits(out, &self.with_value);
        match &self.values {
            Values::Strings(p) => put_postings(out, p, |out, k| put_prefixed(out, k.as_bytes())),
            Values::Words(p, _) => put_postings(out, p, |out, k| put_prefixed(out, k.as_bytes())),
            Values::Integers { exact, numbers } => {
                put_postings(out, exact, |out, k| put_u64(out, *k as u64));
                put_sorted(out, numbers, |out, x| put_u64(out, x.to_bits()));
            }
            Values::Numbers(s) => put_sorted(out, s, |out, x| put_u64(out, x.to_bits())),
            Values::Bools(p) => put_postings(out, p, |out, k| out.push(u8::from(*k))),
            Values::Datetimes(s) => put_sorted(out, s, |out, t| put_u64(out, t.0 as u64)),
            Values::Geo(points) => {
                put_u32(out, points.by_lat.len());
                for &(lat, lon, o) in &points.by_lat {
                    put_u64(out, lat.to_bits());
                    put_u64(out, lon.to_bits());
                    out.extend_from_slice(&o.to_le_bytes());
                }
            }
        }
    }

    /// The index `spec` encoded in `r`, over a segment of `len` offsets.
    pub(in super::super) fn decode(
        r: &mut Reader,
        spec: &IndexSpec,
        len: usize,
    ) -> Result<FieldIndex, Corrupt> {
        let mut d = Decoder { r, len };
        let with_value = d.bits()?;
        let values = match spec.data_type {
            FieldType::Keyword | FieldType::Uuid => Values::Strings(d.postings(|d| {
                let key = std::str::from_utf8(d.r.prefixed()?).map_err(|e| e.to_string())?;
                Ok(Box::from(key))
            })?),
            FieldType::Integer => Values::Integers {
                exact: d.postings(|d| Ok(d.r.u64()? as i64))?,
                numbers: d.sorted(|d| Ok(f64::from_bits(d.r.u64()?)))?,
            },
            FieldType::Float => Values::Numbers(d.sorted(|d| Ok(f64::from_bits(d.r.u64()?)))?),
            FieldType::Bool => Values::Bools(d.postings(|d| Ok(d.r.u8()? != 0))?),
            FieldType::Datetime => {
                Values::Datetimes(d.sorted(|d| Ok(Datetime(d.r.u64()? as i64)))?)
            }
            FieldType::Geo => {
                let n = d.r.count(20)?;
                let mut by_lat = Vec::with_capacity(n);
                for _ in 0..n {
                    let (lat, lon) = (f64::from_bits(d.r.u64()?), f64::from_bits(d.r.u64()?));
                    by_lat.push((lat, lon, d.offset()?));
                }
                Values::Geo(GeoPoints { by_lat })
            }
            FieldType::Text => {
                let params = spec.params.clone().unwrap_or_default();
                let tokenizer = Tokenizer::from_params(&params).unwrap_or_default();
                let words = d.postings(|d| d.r.string())?;
                Values::Words(words, tokenizer)
            }
        };
        let order = order::Order::of(&values);
        Ok(FieldIndex {
            spec: spec.clone(),
            values,
            with_value,
            order,
        })
    }
}

fn put_u64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_offsets(out: &mut Vec<u8>, offsets: &[u32]) {
    put_u32(out, offsets.len());
    offsets
        .iter()
        .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
}

fn put_bits(out: &mut Vec<u8>, bits: &Bitset) {
    put_u32(out, bits.words().len());
    bits.words().iter().for_each(|&w| put_u64(out, w));
}

fn put_postings<K>(out: &mut Vec<u8>, p: &Postings<K>, key: impl Fn(&mut Vec<u8>, &K)) {
    put_u32(out, p.map.len());
    for (k, posting) in &p.map {
        key(out, k);
        match posting {
            Posting::List(list) => {
                out.push(0);
                put_offsets(out, list);
            }
            Posting::Bits(bits) => {
                out.push(1);
                put_bits(out, bits);
            }
        }
    }
    put_offsets(out, &p.other);
}

fn put_sorted<T>(out: &mut Vec<u8>, s: &Sorted<T>, value: impl Fn(&mut Vec<u8>, &T)) {
    put_u32(out, s.pairs.len());
    for (v, o) in &s.pairs {
        value(out, v);
        out.extend_from_slice(&o.to_le_bytes());
    }
}

/// A reader of one segment's field index: offsets must lie within `len`.
struct Decoder<'r, 'b> {
    r: &'r mut Reader<'b>,
    len: usize,
}

impl Decoder<'_, '_> {
    fn offset(&mut self) -> Result<u32, Corrupt> {
        let o = self.r.u32()?;
        if o as usize >= self.len {
            return corrupt!("offset {o} past the segment's {} points", self.len);
        }
        Ok(o)
    }

    fn offsets(&mut self) -> Result<Vec<u32>, Corrupt> {
        let n = self.r.count(4)?;
        (0..n).map(|_| self.offset()).collect()
    }

    fn bits(&mut self) -> Result<Bitset, Corrupt> {
        let n = self.r.count(8)?;
        let words = (0..n)
            .map(|_| self.r.u64())
            .collect::<Result<Vec<_>, _>>()?;
        // No bit may stand for an offset past the segment.
        let past = |(i, w): (usize, &u64)| match self.len.checked_sub(i * 64) {
            None | Some(0) => *w != 0,
            Some(kept) if kept < 64 => w >> kept != 0,
            Some(_) => false,
        };
        if words.iter().enumerate().any(past) {
            return corrupt!("bitset past the segment's {} points", self.len);
        }
        Ok(Bitset::from_words(words))
    }

    fn postings<K: Eq + Hash>(
        &mut self,
        mut key: impl FnMut(&mut Self) -> Result<K, Corrupt>,
    ) -> Result<Postings<K>, Corrupt> {
        let n = self.r.count(6)?;
        let mut map = HashMap::with_capacity(n);
        for _ in 0..n {
            let k = key(self)?;
            let posting = match self.r.u8()? {
                0 => Posting::List(self.offsets()?),
                1 => Posting::Bits(self.bits()?),
                tag => return corrupt!("unknown posting kind {tag}"),
            };
            map.insert(k, posting);
        }
        let other = self.offsets()?;
        Ok(Postings { map, other })
    }

    fn sorted<T>(
        &mut self,
        mut value: impl FnMut(&mut Self) -> Result<T, Corrupt>,
    ) -> Result<Sorted<T>, Corrupt> {
        let n = self.r.count(8)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let v = value(self)?;
            pairs.push((v, self.offset()?));
        }
        Ok(Sorted { pairs })
    }
}
