//! A field index's order: the segment's offsets arranged so the points a condition on the
//! field can match lie in a few runs, each value's points together (keyword, uuid and bool
//! indexes) or ascending by value (integer, float and datetime indexes). Data kept per point
//! in this order (the sign codes of [`crate::index::signs`]) is then read in runs rather than
//! scattered over the segment.

use std::collections::HashMap;
use std::ops::Range;

use super::super::super::model::{AnyVariants, FieldCondition, Match, MatchAny, RangeInterface};
use super::super::super::ValueVariants;
use super::{FieldIndex, Postings, Sorted, Values};

/// Offsets in a field index's order, and where each value's points are in it.
pub(super) struct Order {
    offsets: Vec<u32>,
    /// Where the points of each value are, for indexes of distinct values (none for sorted
    /// ones, whose runs come from their sorted values).
    spans: Option<Spans>,
}

enum Spans {
    Strings(HashMap<Box<str>, Range<usize>>),
    Bools(HashMap<bool, Range<usize>>),
}

impl Order {
    /// The order of `values`, if the index kind has one (geo and text indexes have none).
    pub(super) fn of(values: &Values) -> Option<Order> {
        match values {
            Values::Strings(p) => {
                let (offsets, spans) = grouped(p);
                Some(Order {
                    offsets,
                    spans: Some(Spans::Strings(spans)),
                })
            }
            Values::Bools(p) => {
                let (offsets, spans) = grouped(p);
                Some(Order {
                    offsets,
                    spans: Some(Spans::Bools(spans)),
                })
            }
            Values::Integers { numbers: s, .. } | Values::Numbers(s) => Some(sorted(s)),
            Values::Datetimes(s) => Some(sorted(s)),
            Values::Geo(_) | Values::Words(..) => None,
        }
    }
}

/// Each key's offsets in turn, with where they went.
fn grouped<K: Clone + Eq + std::hash::Hash>(
    p: &Postings<K>,
) -> (Vec<u32>, HashMap<K, Range<usize>>) {
    let mut offsets = Vec::new();
    let mut spans = HashMap::with_capacity(p.map.len());
    for (key, posting) in &p.map {
        let start = offsets.len();
        posting.extend_into(&mut offsets);
        spans.insert(key.clone(), start..offsets.len());
    }
    (offsets, spans)
}

fn sorted<T>(s: &Sorted<T>) -> Order {
    Order {
        offsets: s.pairs.iter().map(|p| p.1).collect(),
        spans: None,
    }
}

/// Where the points of `key` are (nowhere if no point holds it).
fn span<K, Q>(spans: &HashMap<K, Range<usize>>, key: &Q) -> Range<usize>
where
    K: std::borrow::Borrow<Q> + Eq + std::hash::Hash,
    Q: Eq + std::hash::Hash + ?Sized,
{
    spans.get(key).cloned().unwrap_or_default()
}

impl Sorted<f64> {
    /// The run of pairs whose number equals `i`.
    fn exactly(&self, i: i64) -> Range<usize> {
        let x = Some(i as f64);
        self.bounds(None, x, None, x)
    }
}

impl FieldIndex {
    /// Every offset with a value, in this index's order; a point with several values appears
    /// once per value. Empty for geo and text indexes.
    pub fn order(&self) -> &[u32] {
        self.order.as_ref().map_or(&[], |o| &o.offsets)
    }

    /// Runs of [`FieldIndex::order`] holding every point `condition` can match (and maybe
    /// others), if this index can tell: a match on values, or a range.
    pub fn runs(&self, condition: &FieldCondition) -> Option<Vec<Range<usize>>> {
        let order = self.order.as_ref()?;
        if let Some(RangeInterface::Number(r)) = &condition.range {
            return match &self.values {
                Values::Integers { numbers: s, .. } | Values::Numbers(s) => {
                    Some(vec![s.bounds(r.gt, r.gte, r.lt, r.lte)])
                }
                _ => None,
            };
        }
        if let (Some(RangeInterface::Datetime(r)), Values::Datetimes(s)) =
            (&condition.range, &self.values)
        {
            return Some(vec![s.bounds(r.gt, r.gte, r.lt, r.lte)]);
        }
        let m = condition.r#match.as_ref()?;
        use ValueVariants as V;
        let value = match m {
            Match::Value(v) => Some(&v.value),
            _ => None,
        };
        match (m, value, &order.spans, &self.values) {
            (_, Some(V::String(s)), Some(Spans::Strings(spans)), _) => {
                Some(vec![span(spans, s.as_str())])
            }
            (
                Match::Any(MatchAny {
                    any: AnyVariants::Strings(set),
                }),
                _,
                Some(Spans::Strings(spans)),
                _,
            ) => Some(
                set.as_slice()
                    .iter()
                    .map(|s| span(spans, s.as_str()))
                    .collect(),
            ),
            (_, Some(V::Bool(b)), Some(Spans::Bools(spans)), _) => Some(vec![span(spans, b)]),
            // Integers are in numeric order: a matched integer is the run of that number
            // (floats equal to it included; candidates decide).
            (_, Some(V::Integer(i)), None, Values::Integers { numbers, .. }) => {
                Some(vec![numbers.exactly(*i)])
            }
            (
                Match::Any(MatchAny {
                    any: AnyVariants::Integers(set),
                }),
                _,
                None,
                Values::Integers { numbers, .. },
            ) => Some(set.as_slice().iter().map(|i| numbers.exactly(*i)).collect()),
            _ => None,
        }
    }
}
