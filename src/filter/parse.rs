//! Parsing filters from JSON, with errors that name the exact place (`filter.must[2].range.gt`).

use crate::error::Invalid;
use std::fmt;

use serde_json::{Map, Value};

use super::geo;
use super::model::*;
use super::path::{parse_path, JsonPath};
use crate::point_id::PointId;

type Object = Map<String, Value>;

const FILTER_KEYS: [&str; 4] = ["must", "should", "must_not", "min_should"];
const FILTER_FIELDS: &str = "expected must, should, must_not or min_should";
const FIELD_CHECKS: &str =
    "match, range, values_count, is_empty, is_null, geo_bounding_box, geo_radius, geo_polygon";

/// Where a value sits in the request; rendered only when an error needs it.
#[derive(Clone, Copy)]
pub(super) enum Loc<'a> {
    /// The filter itself.
    Root,
    /// A field of an object.
    Key(&'a Loc<'a>, &'a str),
    /// An element of an array.
    Index(&'a Loc<'a>, usize),
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Walk up iteratively, then print root first.
        let mut chain = Vec::new();
        let mut current = self;
        loop {
            chain.push(current);
            match current {
                Loc::Root => break,
                Loc::Key(parent, _) | Loc::Index(parent, _) => current = parent,
            }
        }
        for loc in chain.iter().rev() {
            match loc {
                Loc::Root => f.write_str("filter")?,
                Loc::Key(_, key) => write!(f, ".{key}")?,
                Loc::Index(_, index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// An error at `loc`.
pub(super) fn fail<T>(loc: &Loc, message: impl fmt::Display) -> Result<T, Invalid> {
    invalid!("{loc}: {message}")
}

/// A short description of a value for messages: scalars as JSON (long strings cut),
/// containers by kind, so a huge or deep value never ends up in an error.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::String(s) if s.chars().count() > 40 => {
            let cut: String = s.chars().take(40).collect();
            format!("\"{cut}…\"")
        }
        scalar => scalar.to_string(),
    }
}

pub(super) fn expect_object<'v>(
    value: &'v Value,
    loc: &Loc,
    what: &str,
) -> Result<&'v Object, Invalid> {
    value
        .as_object()
        .ok_or_else(|| Invalid(format!("{loc}: expected {what}, got {}", describe(value))))
}

fn expect_str<'v>(value: &'v Value, loc: &Loc, what: &str) -> Result<&'v str, Invalid> {
    value
        .as_str()
        .ok_or_else(|| Invalid(format!("{loc}: expected {what}, got {}", describe(value))))
}

fn expect_bool(value: &Value, loc: &Loc) -> Result<bool, Invalid> {
    value.as_bool().ok_or_else(|| {
        Invalid(format!(
            "{loc}: expected true or false, got {}",
            describe(value)
        ))
    })
}

pub(super) fn required<'v>(map: &'v Object, key: &str, loc: &Loc) -> Result<&'v Value, Invalid> {
    map.get(key)
        .ok_or_else(|| Invalid(format!("{loc}: missing field {key}")))
}

/// Parses a filter object `depth` levels deep (the top-level filter is level 1).
pub(super) fn parse_filter(value: &Value, loc: &Loc, depth: usize) -> Result<Filter, Invalid> {
    // Each filter inside a condition or `nested` adds a level; bounded so hostile input cannot
    // exhaust the stack.
    let max = crate::limits::get().max_filter_depth;
    if depth > max {
        return fail(
            loc,
            format!(
                "filters nest deeper than the maximum of {max} levels (limits.max_filter_depth)"
            ),
        );
    }
    let map = expect_object(value, loc, "a filter object")?;
    let mut filter = Filter::default();
    for (key, item) in map {
        let here = Loc::Key(loc, key);
        match key.as_str() {
            "must" => filter.must = parse_clause(item, &here, depth)?,
            "should" => filter.should = parse_clause(item, &here, depth)?,
            "must_not" => filter.must_not = parse_clause(item, &here, depth)?,
            "min_should" => filter.min_should = parse_min_should(item, &here, depth)?,
            _ => return fail(&here, format!("unknown field; {FILTER_FIELDS}")),
        }
    }
    Ok(filter)
}

/// A clause: a list of conditions, a single condition, or null (no conditions).
fn parse_clause(value: &Value, loc: &Loc, depth: usize) -> Result<Vec<Condition>, Invalid> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => parse_conditions(items, loc, depth),
        Value::Object(_) => Ok(vec![parse_condition(value, loc, depth)?]),
        other => fail(
            loc,
            format!(
                "expected a condition or a list of conditions, got {}",
                describe(other)
            ),
        ),
    }
}

fn parse_conditions(items: &[Value], loc: &Loc, depth: usize) -> Result<Vec<Condition>, Invalid> {
    let parse = |(i, item)| parse_condition(item, &Loc::Index(loc, i), depth);
    items.iter().enumerate().map(parse).collect()
}

fn parse_min_should(value: &Value, loc: &Loc, depth: usize) -> Result<Option<MinShould>, Invalid> {
    if value.is_null() {
        return Ok(None);
    }
    let map = expect_object(value, loc, "an object with conditions and min_count")?;
    if let Some(key) = map.keys().find(|k| *k != "conditions" && *k != "min_count") {
        return fail(
            &Loc::Key(loc, key),
            "unknown field; expected conditions or min_count",
        );
    }
    let here = Loc::Key(loc, "conditions");
    let conditions = match required(map, "conditions", loc)? {
        Value::Array(items) => parse_conditions(items, &here, depth)?,
        other => {
            return fail(
                &here,
                format!("expected a list of conditions, got {}", describe(other)),
            )
        }
    };
    let here = Loc::Key(loc, "min_count");
    let min_count = required(map, "min_count", loc)?;
    match min_count.as_u64() {
        Some(min_count) if min_count >= 1 => Ok(Some(MinShould {
            conditions,
            min_count,
        })),
        _ => fail(
            &here,
            format!(
                "expected an integer of 1 or more, got {}",
                describe(min_count)
            ),
        ),
    }
}

/// One condition; its kind is told by its keys, as Qdrant's untagged `Condition` does.
fn parse_condition(value: &Value, loc: &Loc, depth: usize) -> Result<Condition, Invalid> {
    let map = expect_object(value, loc, "a condition object")?;
    if map.contains_key("key") {
        return parse_field_condition(map, loc).map(Condition::Field);
    }
    // `{}` is an empty filter in Qdrant (every Filter field is optional), so it matches all.
    if map.is_empty() || FILTER_KEYS.iter().any(|k| map.contains_key(*k)) {
        return parse_filter(value, loc, depth + 1).map(Condition::Filter);
    }
    let kinds = ["has_id", "is_empty", "is_null", "nested", "has_vector"];
    let Some((kind, inner)) = map.iter().find(|(k, _)| kinds.contains(&k.as_str())) else {
        return fail(
            loc,
            "unknown condition; expected one of key, has_id, is_empty, is_null, nested, \
             has_vector, or a filter (must/should/must_not/min_should)",
        );
    };
    if let Some(other) = map.keys().find(|k| *k != kind) {
        let message = format!("unexpected next to {kind}; a condition object holds one condition");
        return fail(&Loc::Key(loc, other), message);
    }
    let here = Loc::Key(loc, kind);
    match kind.as_str() {
        "has_id" => parse_has_id(inner, &here),
        "is_empty" => parse_payload_field(inner, &here)
            .map(|is_empty| Condition::IsEmpty(IsEmptyCondition { is_empty })),
        "is_null" => parse_payload_field(inner, &here)
            .map(|is_null| Condition::IsNull(IsNullCondition { is_null })),
        "nested" => parse_nested(inner, &here, depth),
        _ => Ok(Condition::HasVector(HasVectorCondition {
            has_vector: expect_str(inner, &here, "a vector name")?.to_owned(),
        })),
    }
}

fn parse_key(value: &Value, loc: &Loc) -> Result<JsonPath, Invalid> {
    let key = expect_str(value, loc, "a payload key")?;
    parse_path(key).or_else(|e| fail(loc, e))
}

fn parse_payload_field(value: &Value, loc: &Loc) -> Result<PayloadField, Invalid> {
    let map = expect_object(value, loc, "an object with a key")?;
    if let Some(other) = map.keys().find(|k| *k != "key") {
        return fail(&Loc::Key(loc, other), "unknown field; expected key");
    }
    let key = parse_key(required(map, "key", loc)?, &Loc::Key(loc, "key"))?;
    Ok(PayloadField { key })
}

fn parse_has_id(value: &Value, loc: &Loc) -> Result<Condition, Invalid> {
    let Value::Array(items) = value else {
        return fail(
            loc,
            format!("expected a list of point ids, got {}", describe(value)),
        );
    };
    let parse = |(i, item)| PointId::from_json(item).or_else(|e| fail(&Loc::Index(loc, i), e));
    let ids = items
        .iter()
        .enumerate()
        .map(parse)
        .collect::<Result<_, _>>()?;
    Ok(Condition::HasId(HasIdCondition {
        has_id: ValueSet::new(ids),
    }))
}

fn parse_nested(value: &Value, loc: &Loc, depth: usize) -> Result<Condition, Invalid> {
    let map = expect_object(value, loc, "an object with key and filter")?;
    if let Some(other) = map.keys().find(|k| *k != "key" && *k != "filter") {
        return fail(
            &Loc::Key(loc, other),
            "unknown field; expected key or filter",
        );
    }
    let key = parse_key(required(map, "key", loc)?, &Loc::Key(loc, "key"))?;
    let filter = parse_filter(
        required(map, "filter", loc)?,
        &Loc::Key(loc, "filter"),
        depth + 1,
    )?;
    Ok(Condition::Nested(NestedCondition {
        nested: Nested { key, filter },
    }))
}

fn parse_field_condition(map: &Object, loc: &Loc) -> Result<FieldCondition, Invalid> {
    let key = parse_key(required(map, "key", loc)?, &Loc::Key(loc, "key"))?;
    let mut condition = FieldCondition {
        key,
        r#match: None,
        range: None,
        values_count: None,
        is_empty: None,
        is_null: None,
        geo_bounding_box: None,
        geo_radius: None,
        geo_polygon: None,
    };
    let mut checks = Vec::new();
    for (name, value) in map
        .iter()
        .filter(|(name, v)| *name != "key" && !v.is_null())
    {
        let here = Loc::Key(loc, name);
        match name.as_str() {
            "match" => condition.r#match = Some(parse_match(value, &here)?),
            "range" => condition.range = Some(parse_range(value, &here)?),
            "values_count" => condition.values_count = Some(parse_values_count(value, &here)?),
            "is_empty" => condition.is_empty = Some(expect_bool(value, &here)?),
            "is_null" => condition.is_null = Some(expect_bool(value, &here)?),
            "geo_bounding_box" => {
                condition.geo_bounding_box = Some(Box::new(geo::parse_bounding_box(value, &here)?))
            }
            "geo_radius" => condition.geo_radius = Some(Box::new(geo::parse_radius(value, &here)?)),
            "geo_polygon" => {
                condition.geo_polygon = Some(Box::new(geo::parse_polygon(value, &here)?))
            }
            _ => {
                let expected = format!("expected key plus one of {FIELD_CHECKS}");
                return fail(
                    &here,
                    format!("unknown field in a field condition; {expected}"),
                );
            }
        }
        checks.push(name);
    }
    match checks.as_slice() {
        [_] => Ok(condition),
        [] => fail(
            loc,
            format!("a field condition needs one of {FIELD_CHECKS} next to key"),
        ),
        [first, second, ..] => fail(
            loc,
            format!(
                "a field condition takes exactly one of {FIELD_CHECKS}; got {first} and {second}"
            ),
        ),
    }
}

fn parse_match(value: &Value, loc: &Loc) -> Result<Match, Invalid> {
    let kinds = "value, any, except, text, text_any, phrase";
    let map = expect_object(value, loc, &format!("an object with one of {kinds}"))?;
    let mut entries = map.iter();
    let (Some((kind, inner)), None) = (entries.next(), entries.next()) else {
        return fail(loc, format!("expected exactly one of {kinds}"));
    };
    let here = Loc::Key(loc, kind);
    match kind.as_str() {
        "value" => Ok(Match::Value(MatchValue {
            value: parse_value_variant(inner, &here)?,
        })),
        "any" => Ok(Match::Any(MatchAny {
            any: parse_any_variants(inner, &here)?,
        })),
        "except" => Ok(Match::Except(MatchExcept {
            except: parse_any_variants(inner, &here)?,
        })),
        "text" | "text_any" | "phrase" => {
            let Value::String(text) = inner else {
                return fail(&here, format!("expected a string, got {}", describe(inner)));
            };
            let text = text.clone();
            let tokenizer = Default::default();
            Ok(match kind.as_str() {
                "text" => Match::Text(MatchText { text, tokenizer }),
                "text_any" => Match::TextAny(MatchTextAny {
                    text_any: text,
                    tokenizer,
                }),
                _ => Match::Phrase(MatchPhrase {
                    phrase: text,
                    tokenizer,
                }),
            })
        }
        _ => fail(
            &here,
            "unknown match kind; expected value, any, except, text, text_any or phrase",
        ),
    }
}

/// An integer in Qdrant's range (i64); `Ok(None)` if `value` is no integer at all.
fn parse_integer(value: &Value, loc: &Loc) -> Result<Option<i64>, Invalid> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => fail(
                loc,
                format!("integer {n} is out of the signed 64-bit range"),
            ),
        },
        _ => Ok(None),
    }
}

fn parse_value_variant(value: &Value, loc: &Loc) -> Result<ValueVariants, Invalid> {
    if let Some(i) = parse_integer(value, loc)? {
        return Ok(ValueVariants::Integer(i));
    }
    match value {
        Value::String(s) => Ok(ValueVariants::String(s.clone())),
        Value::Bool(b) => Ok(ValueVariants::Bool(*b)),
        other => fail(
            loc,
            format!(
                "expected a string, an integer or a boolean, got {}",
                describe(other)
            ),
        ),
    }
}

/// A list of strings or of integers; the first element decides which.
fn parse_any_variants(value: &Value, loc: &Loc) -> Result<AnyVariants, Invalid> {
    let Value::Array(items) = value else {
        return fail(
            loc,
            format!(
                "expected a list of strings or of integers, got {}",
                describe(value)
            ),
        );
    };
    if items.first().is_some_and(Value::is_number) {
        let parse = |(i, item)| {
            let here = Loc::Index(loc, i);
            let wrong = || fail(&here, element_error(i, item, "an integer"));
            parse_integer(item, &here)?.map_or_else(wrong, Ok)
        };
        let list = items
            .iter()
            .enumerate()
            .map(parse)
            .collect::<Result<_, _>>()?;
        return Ok(AnyVariants::Integers(ValueSet::new(list)));
    }
    let parse = |(i, item): (usize, &Value)| match item {
        Value::String(s) => Ok(s.clone()),
        _ => fail(&Loc::Index(loc, i), element_error(i, item, "a string")),
    };
    let list = items
        .iter()
        .enumerate()
        .map(parse)
        .collect::<Result<_, _>>()?;
    Ok(AnyVariants::Strings(ValueSet::new(list)))
}

/// Why element `i` of a match list is wrong: lists hold strings or integers, not a mix.
fn element_error(i: usize, item: &Value, what: &str) -> String {
    let got = describe(item);
    if i == 0 {
        format!("expected a string or an integer, got {got}")
    } else {
        format!("expected {what} like the first element, got {got}")
    }
}

/// Walks `{lt, gt, gte, lte}` (nulls skipped), parsing each bound with `parse`.
fn parse_bounds<T>(
    value: &Value,
    loc: &Loc,
    parse: impl Fn(&Value, &Loc) -> Result<T, Invalid>,
) -> Result<[Option<T>; 4], Invalid> {
    let map = expect_object(value, loc, "an object with lt, gt, gte and/or lte")?;
    let mut bounds = [None, None, None, None];
    for (key, bound) in map {
        let here = Loc::Key(loc, key);
        let slot = match key.as_str() {
            "lt" => &mut bounds[0],
            "gt" => &mut bounds[1],
            "gte" => &mut bounds[2],
            "lte" => &mut bounds[3],
            _ => return fail(&here, "unknown field; expected lt, gt, gte or lte"),
        };
        if !bound.is_null() {
            *slot = Some(parse(bound, &here)?);
        }
    }
    Ok(bounds)
}

/// Numeric bounds, or datetime bounds when any bound is a string: all bounds are then
/// datetimes, as the server reads them.
fn parse_range(value: &Value, loc: &Loc) -> Result<RangeInterface, Invalid> {
    let datetime = value
        .as_object()
        .is_some_and(|m| m.values().any(Value::is_string));
    if datetime {
        let [lt, gt, gte, lte] = parse_bounds(value, loc, |bound, here| match bound {
            Value::String(s) => Datetime::parse(s).map_or_else(
                || {
                    fail(
                        here,
                        format!(
                            "{s:?} is not an RFC 3339 datetime (e.g. \"2024-05-01T12:00:00Z\")"
                        ),
                    )
                },
                Ok,
            ),
            other => fail(
                here,
                format!(
                    "expected a datetime string like the other bounds, got {}",
                    describe(other)
                ),
            ),
        })?;
        return Ok(RangeInterface::Datetime(DatetimeRange { lt, gt, gte, lte }));
    }
    let [lt, gt, gte, lte] = parse_bounds(value, loc, |bound, here| match bound {
        // serde_json never yields NaN or infinities, and huge integers become finite f64s.
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| fail(here, "number out of range"), Ok),
        other => fail(
            here,
            format!(
                "expected a number or a datetime string, got {}",
                describe(other)
            ),
        ),
    })?;
    Ok(RangeInterface::Number(Range { lt, gt, gte, lte }))
}

fn parse_values_count(value: &Value, loc: &Loc) -> Result<ValuesCount, Invalid> {
    let [lt, gt, gte, lte] = parse_bounds(value, loc, |bound, here| {
        bound.as_u64().map_or_else(
            || {
                fail(
                    here,
                    format!("expected a non-negative integer, got {}", describe(bound)),
                )
            },
            Ok,
        )
    })?;
    Ok(ValuesCount { lt, gt, gte, lte })
}
