//! Counting and faceting over one snapshot, through payload indexes where they answer the
//! filter (see [`super::plan::narrow`]) and by reading payloads where they do not.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::plan::{narrow, sampled_selectivity};
use super::snapshot::{SegmentView, Snapshot};
use crate::filter::index::FieldType;
use crate::filter::{Filter, JsonPath};

/// Calls `f` on each live offset of `seg` that `filter` matches (every live offset without a
/// filter): the index candidates, checked against payloads only where the indexes say so.
pub fn for_each_match(
    snapshot: &Snapshot,
    seg: &SegmentView,
    filter: Option<&Filter>,
    f: impl FnMut(u32),
) {
    let Some(filter) = filter else {
        (0..seg.data.len() as u32)
            .filter(|&o| seg.is_live(o))
            .for_each(f);
        return;
    };
    match narrow(snapshot, seg, filter) {
        Some(r) if r.exact => r.set.iter().for_each(f),
        Some(r) => r
            .set
            .iter()
            .filter(|&o| filter.matches(&seg.point(o)))
            .for_each(f),
        None => (0..seg.data.len() as u32)
            .filter(|&o| seg.is_live(o) && filter.matches(&seg.point(o)))
            .for_each(f),
    }
}

/// Points matching `filter`. Exact counts every match; approximate takes the index
/// candidates' count where indexes answer (exactly, or as an upper bound) and scales a
/// sample of payloads elsewhere.
pub fn count(snapshot: &Snapshot, filter: Option<&Filter>, exact: bool) -> usize {
    let Some(f) = filter else {
        return snapshot.points_count();
    };
    snapshot
        .segments
        .iter()
        .map(|seg| {
            if exact {
                let mut n = 0;
                for_each_match(snapshot, seg, filter, |_| n += 1);
                return n;
            }
            match narrow(snapshot, seg, f) {
                Some(r) => r.set.count(),
                None => (sampled_selectivity(seg, f) * seg.live() as f64).round() as usize,
            }
        })
        .sum()
}

/// A value counted by a facet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FacetValue {
    Bool(bool),
    Integer(i64),
    String(String),
}

/// One value of a facet and the number of matching points holding it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FacetHit {
    pub value: FacetValue,
    pub count: usize,
}

/// Counts, over the points `filter` matches, how many hold each value of `key` that an index
/// of `kind` keeps (a point counts once per distinct value); the `limit` most frequent, ties
/// by value.
pub fn facet(
    snapshot: &Snapshot,
    key: &JsonPath,
    kind: FieldType,
    filter: Option<&Filter>,
    limit: usize,
) -> Vec<FacetHit> {
    let mut counts: HashMap<FacetValue, usize> = HashMap::new();
    let mut seen: Vec<FacetValue> = Vec::new();
    for seg in &snapshot.segments {
        if let Some(found) = counts_from_postings(snapshot, seg, key, kind, filter) {
            for (value, n) in found.into_iter().filter(|(_, n)| *n > 0) {
                if let Some(value) = facet_value(&value, kind) {
                    *counts.entry(value).or_default() += n;
                }
            }
            continue;
        }
        for_each_match(snapshot, seg, filter, |o| {
            seen.clear();
            let payload = seg.data.payload(o);
            let _ = key.visit(payload, true, &mut |v| {
                if let Some(value) = facet_value(v, kind) {
                    if !seen.contains(&value) {
                        seen.push(value);
                    }
                }
                ControlFlow::<()>::Continue(())
            });
            for value in seen.drain(..) {
                *counts.entry(value).or_default() += 1;
            }
        });
    }
    let mut hits: Vec<FacetHit> = counts
        .into_iter()
        .map(|(value, count)| FacetHit { value, count })
        .collect();
    hits.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    hits.truncate(limit);
    hits
}

/// A segment's value counts read from its index on `key` (each posting intersected with the
/// matching offsets), when it has one and the filter narrows exactly. Uuid indexes keep values
/// as written and are counted from payloads, where spellings of one UUID are merged.
fn counts_from_postings(
    snapshot: &Snapshot,
    seg: &SegmentView,
    key: &JsonPath,
    kind: FieldType,
    filter: Option<&Filter>,
) -> Option<Vec<(Value, usize)>> {
    if kind == FieldType::Uuid {
        return None;
    }
    let index = seg.indexes.as_ref()?.field(key)?;
    let matching = match filter {
        None => {
            let mut all = crate::bitset::Bitset::full(seg.data.len());
            all.and_not(&seg.deleted);
            all
        }
        Some(f) => narrow(snapshot, seg, f).filter(|r| r.exact)?.set,
    };
    index.value_counts(&matching)
}

/// The value an index of `kind` keeps for a payload value, if any.
fn facet_value(v: &Value, kind: FieldType) -> Option<FacetValue> {
    match (kind, v) {
        (FieldType::Keyword, Value::String(s)) => Some(FacetValue::String(s.clone())),
        // UUIDs are counted in their canonical form, however they were written.
        (FieldType::Uuid, Value::String(s)) => {
            let id = uuid::Uuid::parse_str(s).ok()?;
            Some(FacetValue::String(id.hyphenated().to_string()))
        }
        (FieldType::Integer, Value::Number(n)) if !n.is_f64() => {
            n.as_i64().map(FacetValue::Integer)
        }
        (FieldType::Bool, Value::Bool(b)) => Some(FacetValue::Bool(*b)),
        _ => None,
    }
}

/// A value points are ordered by: an integer (datetimes as microseconds) or a float.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OrderValue {
    Integer(i64),
    Float(f64),
}

impl OrderValue {
    /// Reads `start_from`: a number, or a datetime string.
    pub fn parse(value: &Value) -> Option<OrderValue> {
        match value {
            Value::Number(n) if !n.is_f64() => n.as_i64().map(OrderValue::Integer),
            Value::Number(n) => n.as_f64().map(OrderValue::Float),
            Value::String(s) => crate::filter::Datetime::parse(s).map(|d| OrderValue::Integer(d.0)),
            _ => None,
        }
    }

    /// The value an index of `kind` orders a payload value by, if any.
    fn of(v: &Value, kind: FieldType) -> Option<OrderValue> {
        match (kind, v) {
            (FieldType::Integer, Value::Number(n)) if !n.is_f64() => {
                n.as_i64().map(OrderValue::Integer)
            }
            (FieldType::Float, Value::Number(n)) => n.as_f64().map(OrderValue::Float),
            (FieldType::Datetime, Value::String(s)) => {
                crate::filter::Datetime::parse(s).map(|d| OrderValue::Integer(d.0))
            }
            _ => None,
        }
    }
}

impl PartialEq for OrderValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for OrderValue {}
impl PartialOrd for OrderValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (OrderValue::Integer(a), OrderValue::Integer(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

impl OrderValue {
    fn as_f64(self) -> f64 {
        match self {
            OrderValue::Integer(i) => i as f64,
            OrderValue::Float(f) => f,
        }
    }
}

/// How `scroll` orders by a payload field.
pub struct OrderBy {
    pub key: JsonPath,
    pub kind: FieldType,
    pub descending: bool,
    /// The first value to list (ascending: the lowest; descending: the highest).
    pub start_from: Option<OrderValue>,
}

/// Matching points ordered by their values of `order.key` (a point once per distinct value,
/// ties by id), up to `limit`: (segment index, offset, value).
pub fn ordered(
    snapshot: &Snapshot,
    order: &OrderBy,
    filter: Option<&Filter>,
    limit: usize,
) -> Vec<(usize, u32, OrderValue)> {
    let mut rows = Vec::new();
    let mut seen: Vec<OrderValue> = Vec::new();
    for (s, seg) in snapshot.segments.iter().enumerate() {
        for_each_match(snapshot, seg, filter, |o| {
            seen.clear();
            let _ = order.key.visit(seg.data.payload(o), true, &mut |v| {
                if let Some(value) = OrderValue::of(v, order.kind) {
                    let wanted = order.start_from.is_none_or(|start| {
                        if order.descending {
                            value <= start
                        } else {
                            value >= start
                        }
                    });
                    if wanted && !seen.contains(&value) {
                        seen.push(value);
                    }
                }
                ControlFlow::<()>::Continue(())
            });
            rows.extend(seen.drain(..).map(|value| (s, o, value)));
        });
    }
    let id = |&(s, o, _): &(usize, u32, OrderValue)| snapshot.segments[s].data.id(o);
    rows.sort_unstable_by(|a, b| {
        let by_value = if order.descending {
            b.2.cmp(&a.2)
        } else {
            a.2.cmp(&b.2)
        };
        by_value.then_with(|| id(a).cmp(&id(b)))
    });
    rows.truncate(limit);
    rows
}
