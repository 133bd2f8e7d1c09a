//! One field's index over one sealed segment: the values the field's path reaches, extracted
//! once and arranged to answer conditions without reading payloads.
//!
//! Each index holds exactly the values evaluation compares (`eval.rs`): strings for string
//! matches, `as_integer` values for integer matches, every JSON number for ranges, and so on.
//! A condition an index answers therefore selects the same points as evaluating it would, and
//! a query's plan never changes its result.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

use serde_json::{Map, Value};

mod order;
mod stored;

use super::super::eval::as_integer;
use super::super::geo::payload_point;
use super::super::model::*;
use super::super::text::Tokenizer;
use super::schema::{FieldType, IndexSpec};
use crate::bitset::Bitset;
use crate::filter::JsonPath;

/// A field's index: its values in the arrangement its kind needs.
pub struct FieldIndex {
    /// What the index was built as.
    spec: IndexSpec,
    values: Values,
    /// Offsets where the path reaches at least one value of the indexed kind.
    with_value: Bitset,
    order: Option<order::Order>,
}

enum Values {
    /// Keyword and uuid indexes.
    Strings(Postings<Box<str>>),
    /// Integer indexes: exact integers for matches, every number for ranges.
    Integers {
        exact: Postings<i64>,
        numbers: Sorted<f64>,
    },
    /// Float indexes.
    Numbers(Sorted<f64>),
    Bools(Postings<bool>),
    Datetimes(Sorted<Datetime>),
    Geo(GeoPoints),
    /// Text indexes: offsets by stored token, and the tokenizer that made them.
    Words(Postings<String>, Tokenizer),
}

/// Calls its argument on each (offset, reached value) of the segment; the argument says
/// whether the value counts as one of the indexed kind.
type EachValue<'e> = dyn FnMut(&mut dyn FnMut(u32, &Value) -> bool) + 'e;

/// Offsets by value.
struct Postings<K> {
    map: HashMap<K, Posting>,
    /// Offsets with a reached value that is neither null nor of the indexed kind: `except`
    /// matches those whatever the list.
    other: Vec<u32>,
}

/// The offsets holding one value: a list, or a bitset once that is smaller (more than one
/// offset in 32 holds the value), which also makes the common values' sets a copy rather
/// than one bit at a time per query.
enum Posting {
    List(Vec<u32>),
    Bits(Bitset),
}

impl Posting {
    fn new(list: Vec<u32>, len: usize) -> Posting {
        if list.len() * 32 > len {
            let mut bits = Bitset::default();
            bits.set_all(list);
            Posting::Bits(bits)
        } else {
            Posting::List(list)
        }
    }

    /// How many of this posting's offsets are in `among`.
    fn count_in(&self, among: &Bitset) -> usize {
        match self {
            Posting::List(list) => list.iter().filter(|&&o| among.get(o as usize)).count(),
            Posting::Bits(bits) => bits.and_count(among),
        }
    }

    /// Appends this posting's offsets to `out`, ascending.
    fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            Posting::List(list) => out.extend_from_slice(list),
            Posting::Bits(bits) => out.extend(bits.iter()),
        }
    }

    /// Sets this posting's offsets in `out`.
    fn add_to(&self, out: &mut Bitset) {
        match self {
            Posting::List(list) => out.set_all(list.iter().copied()),
            Posting::Bits(bits) => out.or(bits),
        }
    }
}

/// (value, offset) pairs sorted by value, for ranges.
struct Sorted<T> {
    pairs: Vec<(T, u32)>,
}

/// (lat, lon, offset) sorted by latitude: an area's latitude band is a slice.
struct GeoPoints {
    by_lat: Vec<(f64, f64, u32)>,
}

impl FieldIndex {
    /// Indexes `key` of `len` payloads (`payload(offset)`) as `kind`.
    pub fn build<'a>(
        spec: &IndexSpec,
        key: &JsonPath,
        len: usize,
        payload: impl Fn(u32) -> &'a Map<String, Value>,
    ) -> FieldIndex {
        let mut with_value = Bitset::default();
        let mut each = |f: &mut dyn FnMut(u32, &Value) -> bool| {
            for offset in 0..len as u32 {
                for v in key.values(payload(offset)) {
                    if f(offset, v) {
                        with_value.set(offset as usize);
                    }
                }
            }
        };
        let values = match spec.data_type {
            FieldType::Keyword | FieldType::Uuid => {
                Values::Strings(Postings::collect(&mut each, len, |v| {
                    v.as_str().map(Box::from)
                }))
            }
            FieldType::Integer => {
                let exact = Postings::collect(&mut each, len, as_integer);
                let mut numbers = Vec::new();
                each(&mut |o, v| v.as_f64().inspect(|x| numbers.push((*x, o))).is_some());
                Values::Integers {
                    exact,
                    numbers: Sorted::new(numbers),
                }
            }
            FieldType::Float => {
                let mut pairs = Vec::new();
                each(&mut |o, v| v.as_f64().inspect(|x| pairs.push((*x, o))).is_some());
                Values::Numbers(Sorted::new(pairs))
            }
            FieldType::Bool => Values::Bools(Postings::collect(&mut each, len, Value::as_bool)),
            FieldType::Datetime => {
                let mut pairs = Vec::new();
                each(&mut |o, v| {
                    let at = v.as_str().and_then(Datetime::parse);
                    at.inspect(|t| pairs.push((*t, o))).is_some()
                });
                Values::Datetimes(Sorted::new(pairs))
            }
            FieldType::Geo => {
                let mut by_lat = Vec::new();
                each(&mut |o, v| {
                    let p = payload_point(v);
                    p.inspect(|p| by_lat.push((p.lat, p.lon, o))).is_some()
                });
                by_lat.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
                Values::Geo(GeoPoints { by_lat })
            }
            FieldType::Text => {
                let params = spec.params.clone().unwrap_or_default();
                // Stored parameters were checked when the index was created.
                let tokenizer = Tokenizer::from_params(&params).unwrap_or_default();
                let mut map: HashMap<String, Vec<u32>> = HashMap::new();
                each(&mut |o, v| {
                    let Some(text) = v.as_str() else {
                        return false;
                    };
                    for word in tokenizer.stored_tokens(text) {
                        let list = map.entry(word).or_default();
                        if list.last() != Some(&o) {
                            list.push(o);
                        }
                    }
                    true
                });
                Values::Words(Postings::new(map, Vec::new(), len), tokenizer)
            }
        };
        let order = order::Order::of(&values);
        FieldIndex {
            spec: spec.clone(),
            values,
            with_value,
            order,
        }
    }

    /// What the index was built as.
    pub fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    /// Offsets with at least one value of the indexed kind.
    pub fn with_value(&self) -> &Bitset {
        &self.with_value
    }

    /// The offsets matching `condition`, if this index can tell without reading payloads,
    /// and whether all of them match (else they are candidates whose payloads must be read).
    pub fn answer(&self, condition: &FieldCondition) -> Option<(Bitset, bool)> {
        if let (Some(m), Values::Words(p, tokenizer)) = (&condition.r#match, &self.values) {
            return p.answer_words(m, tokenizer);
        }
        self.answer_exact(condition).map(|set| (set, true))
    }

    /// Each string value of a keyword or uuid index with the offsets holding it, ascending
    /// (`None` for the other kinds).
    pub fn string_postings(&self) -> Option<Vec<(&str, Vec<u32>)>> {
        let Values::Strings(p) = &self.values else {
            return None;
        };
        let each = p.map.iter().map(|(value, posting)| {
            let mut offsets = Vec::new();
            posting.extend_into(&mut offsets);
            (&**value, offsets)
        });
        Some(each.collect())
    }

    /// Each value this index holds with the number of `among`'s offsets holding it, for
    /// keyword, integer and bool indexes (`None` for the others).
    pub fn value_counts(&self, among: &Bitset) -> Option<Vec<(Value, usize)>> {
        fn counts<K>(
            p: &Postings<K>,
            among: &Bitset,
            key: impl Fn(&K) -> Value,
        ) -> Vec<(Value, usize)> {
            p.map
                .iter()
                .map(|(k, posting)| (key(k), posting.count_in(among)))
                .collect()
        }
        match &self.values {
            Values::Strings(p) => Some(counts(p, among, |k| Value::String(k.to_string()))),
            Values::Integers { exact, .. } => Some(counts(exact, among, |k| Value::from(*k))),
            Values::Bools(p) => Some(counts(p, among, |k| Value::Bool(*k))),
            _ => None,
        }
    }

    fn answer_exact(&self, condition: &FieldCondition) -> Option<Bitset> {
        if let Some(m) = &condition.r#match {
            return self.answer_match(m);
        }
        if let Some(range) = &condition.range {
            return match (range, &self.values) {
                (RangeInterface::Number(r), Values::Numbers(s))
                | (RangeInterface::Number(r), Values::Integers { numbers: s, .. }) => {
                    Some(s.within(r.gt, r.gte, r.lt, r.lte))
                }
                (RangeInterface::Datetime(r), Values::Datetimes(s)) => {
                    Some(s.within(r.gt, r.gte, r.lt, r.lte))
                }
                _ => None,
            };
        }
        let Values::Geo(points) = &self.values else {
            return None;
        };
        if let Some(area) = &condition.geo_bounding_box {
            let band = (area.bottom_right.lat, area.top_left.lat);
            return Some(points.within(band, |p| area.contains(p)));
        }
        if let Some(area) = &condition.geo_radius {
            // A degree of latitude is at least 110.5 km; the margin only widens the band.
            let reach = area.radius.max(0.0) / 110_000.0 + 1e-9;
            let band = (area.center.lat - reach, area.center.lat + reach);
            return Some(points.within(band, |p| area.contains(p)));
        }
        if let Some(area) = &condition.geo_polygon {
            let lats = area.exterior.points.iter().map(|p| p.lat);
            let band = lats.fold((f64::MAX, f64::MIN), |(lo, hi), l| (lo.min(l), hi.max(l)));
            return Some(points.within(band, |p| area.contains(p)));
        }
        None
    }

    fn answer_match(&self, m: &Match) -> Option<Bitset> {
        use AnyVariants::{Integers, Strings};
        use ValueVariants as V;
        let value = |m: &Match| match m {
            Match::Value(MatchValue { value }) => Some(value.clone()),
            _ => None,
        };
        match (&self.values, m) {
            (Values::Strings(p), Match::Any(MatchAny { any: Strings(set) })) => {
                Some(p.union(set.as_slice().iter().map(String::as_str)))
            }
            (
                Values::Strings(p),
                Match::Except(MatchExcept {
                    except: Strings(set),
                }),
            ) => Some(p.except(|k| set.contains(&**k))),
            (Values::Integers { exact, .. }, Match::Any(MatchAny { any: Integers(set) })) => {
                Some(exact.union(set.as_slice()))
            }
            (
                Values::Integers { exact, .. },
                Match::Except(MatchExcept {
                    except: Integers(set),
                }),
            ) => Some(exact.except(|k| set.contains(k))),
            (values, m) => match (values, value(m)?) {
                (Values::Strings(p), V::String(s)) => Some(p.union([s.as_str()])),
                (Values::Integers { exact, .. }, V::Integer(i)) => Some(exact.union([&i])),
                (Values::Bools(p), V::Bool(b)) => Some(p.union([&b])),
                _ => None,
            },
        }
    }
}

impl<K: Eq + Hash> Postings<K> {
    /// Groups the offsets by `key` of each reached value; values without a key that are not
    /// null go to `other`. Returns whether a value had a key (for `with_value`).
    fn collect(
        each: &mut EachValue,
        len: usize,
        mut key: impl FnMut(&Value) -> Option<K>,
    ) -> Postings<K> {
        let mut map: HashMap<K, Vec<u32>> = HashMap::new();
        let mut other = Vec::new();
        each(&mut |offset, v| match key(v) {
            Some(k) => {
                let list = map.entry(k).or_default();
                // A value repeated within one point is listed once.
                if list.last() != Some(&offset) {
                    list.push(offset);
                }
                true
            }
            None => {
                if !v.is_null() && other.last() != Some(&offset) {
                    other.push(offset);
                }
                false
            }
        });
        Postings::new(map, other, len)
    }

    fn new(map: HashMap<K, Vec<u32>>, other: Vec<u32>, len: usize) -> Postings<K> {
        let map = map
            .into_iter()
            .map(|(k, list)| (k, Posting::new(list, len)))
            .collect();
        Postings { map, other }
    }

    /// Offsets holding any of `keys`.
    fn union<'k, Q>(&self, keys: impl IntoIterator<Item = &'k Q>) -> Bitset
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized + 'k,
    {
        let mut out = Bitset::default();
        for posting in keys.into_iter().filter_map(|k| self.map.get(k)) {
            posting.add_to(&mut out);
        }
        out
    }

    /// Offsets holding a value `excluded` rejects, or a value of another kind.
    fn except(&self, excluded: impl Fn(&K) -> bool) -> Bitset {
        let mut out = Bitset::default();
        for (_, posting) in self.map.iter().filter(|(k, _)| !excluded(k)) {
            posting.add_to(&mut out);
        }
        out.set_all(self.other.iter().copied());
        out
    }
}

impl Postings<String> {
    /// Text matches: every word's offsets (a phrase: those, checked for order later), or any.
    fn answer_words(&self, m: &Match, tokenizer: &Tokenizer) -> Option<(Bitset, bool)> {
        let (text, all, exact) = match m {
            Match::Text(t) => (&t.text, true, true),
            Match::Phrase(p) => (&p.phrase, true, false),
            Match::TextAny(t) => (&t.text_any, false, true),
            _ => return None,
        };
        let query = tokenizer.words(text);
        if !all {
            return Some((self.union(query.iter().map(String::as_str)), true));
        }
        let mut sets = query.iter().map(|w| self.union([w.as_str()]));
        let Some(mut out) = sets.next() else {
            return Some((Bitset::default(), true)); // an empty query matches nothing
        };
        sets.for_each(|s| out.and(&s));
        Some((out, exact))
    }
}

impl<T: PartialOrd + Copy> Sorted<T> {
    fn new(mut pairs: Vec<(T, u32)>) -> Sorted<T> {
        pairs.sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        Sorted { pairs }
    }

    /// Offsets with a value above `gt` / at least `gte` and below `lt` / at most `lte`: one
    /// run of the sorted pairs, found by binary search at both ends.
    fn within(&self, gt: Option<T>, gte: Option<T>, lt: Option<T>, lte: Option<T>) -> Bitset {
        let run = self.bounds(gt, gte, lt, lte);
        let mut out = Bitset::default();
        out.set_all(self.pairs[run].iter().map(|p| p.1));
        out
    }

    /// The run of pairs with a value above `gt` / at least `gte` and below `lt` / at most
    /// `lte`, found by binary search at both ends.
    fn bounds(&self, gt: Option<T>, gte: Option<T>, lt: Option<T>, lte: Option<T>) -> Range<usize> {
        let above_low = |x: T| gt.is_none_or(|b| x > b) && gte.is_none_or(|b| x >= b);
        let below_high = |x: T| lt.is_none_or(|b| x < b) && lte.is_none_or(|b| x <= b);
        let start = self.pairs.partition_point(|p| !above_low(p.0));
        let end = self.pairs.partition_point(|p| below_high(p.0)).max(start);
        start..end
    }
}

impl GeoPoints {
    /// Offsets with a point in the latitude band `(lo, hi)` for which `inside` holds.
    fn within(&self, (lo, hi): (f64, f64), inside: impl Fn(GeoPoint) -> bool) -> Bitset {
        let start = self.by_lat.partition_point(|p| p.0 < lo);
        let mut out = Bitset::default();
        for &(lat, lon, o) in self.by_lat[start..].iter().take_while(|p| p.0 <= hi) {
            if inside(GeoPoint { lon, lat }) {
                out.set(o as usize);
            }
        }
        out
    }
}
