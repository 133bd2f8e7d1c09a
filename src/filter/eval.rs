//! Evaluating a parsed filter against one point, mirroring qdrant-client's local mode
//! (`qdrant_client/local/payload_filters.py`), which mirrors the server.

use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::geo::payload_point;
use super::model::*;
use super::path::{JsonPath, PathItem};
use super::PointView;

/// What conditions are checked against: a payload object, and the point it belongs to.
/// Inside `nested` the payload is one array element and there is no point, so `has_id`
/// and `has_vector` never match there (as in local mode).
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) payload: &'a Map<String, Value>,
    pub(super) point: Option<&'a dyn PointView>,
}

impl Filter {
    /// Whether the filter holds in `ctx`; empty clauses constrain nothing.
    pub(super) fn eval(&self, ctx: Ctx) -> bool {
        self.must.iter().all(|c| c.eval(ctx))
            && !self.must_not.iter().any(|c| c.eval(ctx))
            && (self.should.is_empty() || self.should.iter().any(|c| c.eval(ctx)))
            && self.min_should.as_ref().is_none_or(|m| m.eval(ctx))
    }
}

impl MinShould {
    fn eval(&self, ctx: Ctx) -> bool {
        if self.min_count == 0 {
            return true;
        }
        // Stop as soon as enough conditions matched.
        let mut matched = 0;
        self.conditions.iter().any(|c| {
            matched += u64::from(c.eval(ctx));
            matched >= self.min_count
        })
    }
}

impl Condition {
    fn eval(&self, ctx: Ctx) -> bool {
        match self {
            Condition::Field(field) => field.eval(ctx.payload),
            Condition::IsEmpty(c) => is_empty(&c.is_empty.key, ctx.payload),
            Condition::IsNull(c) => is_null(&c.is_null.key, ctx.payload),
            Condition::HasId(c) => ctx.point.is_some_and(|p| c.has_id.contains(&p.id())),
            Condition::HasVector(c) => ctx.point.is_some_and(|p| p.has_vector(&c.has_vector)),
            Condition::Nested(c) => c.nested.eval(ctx.payload),
            Condition::Filter(filter) => filter.eval(ctx),
        }
    }
}

impl FieldCondition {
    /// Checks in local mode's order; the parser allows only one to be set.
    fn eval(&self, payload: &Map<String, Value>) -> bool {
        if let Some(bounds) = &self.values_count {
            return values_count(bounds, &self.key, payload);
        }
        if let Some(expected) = self.is_empty {
            return is_empty(&self.key, payload) == expected;
        }
        if let Some(expected) = self.is_null {
            return is_null(&self.key, payload) == expected;
        }
        if let Some(m) = &self.r#match {
            return any_value(&self.key, payload, |v| m.matches(v));
        }
        if let Some(range) = &self.range {
            return any_value(&self.key, payload, |v| range.contains(v));
        }
        let geo = |inside: &dyn Fn(GeoPoint) -> bool| {
            any_value(&self.key, payload, |v| payload_point(v).is_some_and(inside))
        };
        if let Some(area) = &self.geo_bounding_box {
            return geo(&|p| area.contains(p));
        }
        if let Some(area) = &self.geo_radius {
            return geo(&|p| area.contains(p));
        }
        if let Some(area) = &self.geo_polygon {
            return geo(&|p| area.contains(p));
        }
        false
    }
}

/// Whether some value the path reaches (arrays at the end flattened) satisfies `pred`.
fn any_value(key: &JsonPath, payload: &Map<String, Value>, pred: impl Fn(&Value) -> bool) -> bool {
    let mut check = |v: &Value| {
        if pred(v) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    key.visit(payload, true, &mut check).is_break()
}

/// Empty: the path reaches nothing, or only nulls and empty arrays.
fn is_empty(key: &JsonPath, payload: &Map<String, Value>) -> bool {
    let mut check = |v: &Value| match v {
        Value::Null => ControlFlow::Continue(()),
        Value::Array(a) if a.is_empty() => ControlFlow::Continue(()),
        _ => ControlFlow::Break(()),
    };
    key.visit(payload, false, &mut check).is_continue()
}

/// Null: some value reached is null, or an array with a null element (one level deep).
fn is_null(key: &JsonPath, payload: &Map<String, Value>) -> bool {
    let mut check = |v: &Value| match v {
        Value::Null => ControlFlow::Break(()),
        Value::Array(a) if a.iter().any(Value::is_null) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    };
    key.visit(payload, false, &mut check).is_break()
}

/// Local mode counts each reached value (null 0, array its length, else 1) and matches if
/// any count fits every bound; reaching nothing counts as 0.
fn values_count(bounds: &ValuesCount, key: &JsonPath, payload: &Map<String, Value>) -> bool {
    let fits = |n: u64| {
        bounds.lt.is_none_or(|b| n < b)
            && bounds.lte.is_none_or(|b| n <= b)
            && bounds.gt.is_none_or(|b| n > b)
            && bounds.gte.is_none_or(|b| n >= b)
    };
    let mut reached = false;
    let mut check = |v: &Value| {
        reached = true;
        let count = match v {
            Value::Null => 0,
            Value::Array(a) => a.len() as u64,
            _ => 1,
        };
        if fits(count) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    key.visit(payload, false, &mut check).is_break() || (!reached && fits(0))
}

impl Nested {
    /// Some object element of the array(s) at `key` matches the filter on its own.
    fn eval(&self, payload: &Map<String, Value>) -> bool {
        // `a[]` means the same as `a`: the elements are taken below anyway.
        let items = self.key.items();
        let len = match items.last() {
            Some(PathItem::Wildcard) => items.len().saturating_sub(1),
            _ => items.len(),
        };
        let mut check = |v: &Value| {
            let elements = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object);
            let mut matching = elements.map(|payload| Ctx {
                payload,
                point: None,
            });
            if matching.any(|ctx| self.filter.eval(ctx)) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        self.key
            .visit_prefix(len, payload, false, &mut check)
            .is_break()
    }
}

impl Match {
    /// Whether one payload value matches; null never satisfies `except`, since a null
    /// is an absent value rather than one that differs from the list.
    fn matches(&self, value: &Value) -> bool {
        match self {
            Match::Value(m) => m.value.matches(value),
            Match::Any(m) => m.any.contains(value),
            Match::Except(m) => !value.is_null() && !m.except.contains(value),
            Match::Text(m) => value
                .as_str()
                .is_some_and(|v| m.tokenizer.matches_all(v, &m.text)),
            Match::TextAny(m) => value
                .as_str()
                .is_some_and(|v| m.tokenizer.matches_any(v, &m.text_any)),
            Match::Phrase(m) => value
                .as_str()
                .is_some_and(|v| m.tokenizer.matches_phrase(v, &m.phrase)),
        }
    }
}

impl ValueVariants {
    /// Exact match: strings to strings, booleans to booleans, integers to integer (not float)
    /// payload numbers.
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (ValueVariants::String(s), Value::String(v)) => s == v,
            (ValueVariants::Bool(b), Value::Bool(v)) => b == v,
            (ValueVariants::Integer(i), v) => as_integer(v) == Some(*i),
            _ => false,
        }
    }
}

impl AnyVariants {
    fn contains(&self, value: &Value) -> bool {
        match self {
            AnyVariants::Strings(set) => value.as_str().is_some_and(|s| set.contains(s)),
            AnyVariants::Integers(set) => as_integer(value).is_some_and(|i| set.contains(&i)),
        }
    }
}

/// A payload integer: written without fraction or exponent and within i64, as Qdrant's
/// integer values are; `1.0` is a float and never equals `1`.
pub(super) fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) if !n.is_f64() => n.as_i64(),
        _ => None,
    }
}

impl RangeInterface {
    fn contains(&self, value: &Value) -> bool {
        match self {
            RangeInterface::Number(r) => r.contains(value),
            RangeInterface::Datetime(r) => r.contains(value),
        }
    }
}

impl DatetimeRange {
    /// Whether a payload value is a string that reads as a datetime within the bounds.
    fn contains(&self, value: &Value) -> bool {
        let Some(x) = value.as_str().and_then(Datetime::parse) else {
            return false;
        };
        self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
            && self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
    }
}

impl Range {
    /// Whether a payload value is a number (integer or float, not bool) within the bounds.
    fn contains(&self, value: &Value) -> bool {
        let Some(x) = value.as_number().and_then(|n| n.as_f64()) else {
            return false;
        };
        self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
            && self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
    }
}
