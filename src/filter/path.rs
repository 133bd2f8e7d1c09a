//! Payload paths (`a.b`, `a[]`, `a[0]`, `"dotted.key"`), parsed and walked the way Qdrant does.

use crate::error::Invalid;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// One step of a payload path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathItem {
    /// An object key.
    Key(String),
    /// One array element, by position (`[3]`).
    Index(usize),
    /// Every element of an array (`[]`).
    Wildcard,
}

/// A parsed payload path; keeps its source text for messages and serialisation.
#[derive(Clone, Debug)]
pub struct JsonPath {
    raw: String,
    items: Vec<PathItem>,
    // Paths without `[]` reach at most one value, which lets `visit` skip its work stack.
    has_wildcard: bool,
}

/// Parses a payload path: keys (letters, digits, `_`, `-`, or `"quoted"`) joined by `.`,
/// each followed by any number of `[]` or `[N]`.
pub fn parse_path(key: &str) -> Result<JsonPath, Invalid> {
    let fail = |at: usize, what: &str| format!("invalid path \"{key}\": {what} at byte {at}");
    let mut items = Vec::new();
    let mut rest = key;
    loop {
        let at = key.len() - rest.len();
        let (item, after) = split_key(rest).ok_or_else(|| fail(at, "expected a key"))?;
        items.push(PathItem::Key(item.to_owned()));
        rest = split_brackets(after, &mut items)
            .map_err(|what| fail(key.len() - after.len(), what))?;
        if rest.is_empty() {
            break;
        }
        let at = key.len() - rest.len();
        rest = rest
            .strip_prefix('.')
            .ok_or_else(|| fail(at, "expected `.` or `[`"))?;
    }
    let has_wildcard = items.contains(&PathItem::Wildcard);
    Ok(JsonPath {
        raw: key.to_owned(),
        items,
        has_wildcard,
    })
}

/// Splits a leading key, bare or quoted, from `s`.
fn split_key(s: &str) -> Option<(&str, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        // Like Qdrant, a quoted key runs to the next quote; there are no escapes.
        let end = quoted.find('"')?;
        return Some((quoted.get(..end)?, quoted.get(end + 1..)?));
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// Consumes `[]` and `[N]` suffixes into `items`, returning what follows them.
fn split_brackets<'a>(mut s: &'a str, items: &mut Vec<PathItem>) -> Result<&'a str, &'static str> {
    while let Some(open) = s.strip_prefix('[') {
        let end = open.find(']').ok_or("unclosed `[`")?;
        let (inside, after) = open.split_at(end);
        let item = if inside.is_empty() {
            PathItem::Wildcard
        } else if inside.bytes().all(|b| b.is_ascii_digit()) {
            PathItem::Index(inside.parse().map_err(|_| "array index too large")?)
        } else {
            return Err("expected `[]` or `[digits]`");
        };
        items.push(item);
        s = after.get(1..).unwrap_or_default();
    }
    Ok(s)
}

impl JsonPath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed steps; the first is always a key.
    pub fn items(&self) -> &[PathItem] {
        &self.items
    }

    /// All values the path reaches, in document order: `[]` fans out over arrays, and an
    /// array reached at the end is replaced by its elements (one level), as Qdrant does.
    pub fn values<'a>(&self, payload: &'a Map<String, Value>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        let _ = self.visit(payload, true, &mut |v| {
            out.push(v);
            ControlFlow::Continue(())
        });
        out
    }

    /// Calls `f` on each value the path reaches until it breaks; `flatten` unwraps an array
    /// reached at the end into its elements.
    pub(crate) fn visit<'a>(
        &self,
        payload: &'a Map<String, Value>,
        flatten: bool,
        f: &mut dyn FnMut(&'a Value) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.visit_prefix(self.items.len(), payload, flatten, f)
    }

    /// Like [`JsonPath::visit`], over the first `len` steps only.
    pub(crate) fn visit_prefix<'a>(
        &self,
        len: usize,
        payload: &'a Map<String, Value>,
        flatten: bool,
        f: &mut dyn FnMut(&'a Value) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let items = self.items.get(..len).unwrap_or(&self.items);
        let Some((PathItem::Key(first), rest)) = items.split_first() else {
            return ControlFlow::Continue(());
        };
        let Some(start) = payload.get(first) else {
            return ControlFlow::Continue(());
        };
        if !self.has_wildcard {
            return match walk(start, rest) {
                Some(value) => emit(value, flatten, f),
                None => ControlFlow::Continue(()),
            };
        }
        // An explicit stack rather than recursion: path length is client-controlled.
        let mut stack = vec![(start, 0usize)];
        while let Some((value, step)) = stack.pop() {
            match rest.get(step) {
                None => emit(value, flatten, f)?,
                Some(PathItem::Wildcard) => {
                    if let Some(array) = value.as_array() {
                        stack.extend(array.iter().rev().map(|v| (v, step + 1)));
                    }
                }
                Some(item) => stack.extend(step_into(value, item).map(|v| (v, step + 1))),
            }
        }
        ControlFlow::Continue(())
    }
}

/// Follows key and index steps (no wildcards) from `value`.
fn walk<'a>(mut value: &'a Value, items: &[PathItem]) -> Option<&'a Value> {
    for item in items {
        value = step_into(value, item)?;
    }
    Some(value)
}

/// One key or index step; wildcards are handled by the caller.
fn step_into<'a>(value: &'a Value, item: &PathItem) -> Option<&'a Value> {
    match item {
        PathItem::Key(key) => value.as_object()?.get(key),
        PathItem::Index(index) => value.as_array()?.get(*index),
        PathItem::Wildcard => None,
    }
}

/// Hands a reached value to `f`, unwrapping one array level when flattening.
fn emit<'a>(
    value: &'a Value,
    flatten: bool,
    f: &mut dyn FnMut(&'a Value) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match value {
        Value::Array(elements) if flatten => elements.iter().try_for_each(f),
        _ => f(value),
    }
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        // `"a"` and `a` are the same path.
        self.items == other.items
    }
}

impl Eq for JsonPath {}

impl Hash for JsonPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.items.hash(state);
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(key: &str) -> Vec<PathItem> {
        parse_path(key).unwrap().items().to_vec()
    }

    fn key(k: &str) -> PathItem {
        PathItem::Key(k.to_owned())
    }

    #[test]
    fn parses_keys_brackets_and_quotes() {
        assert_eq!(items("a"), [key("a")]);
        assert_eq!(items("a.b-c_d.e1"), [key("a"), key("b-c_d"), key("e1")]);
        assert_eq!(
            items("country.cities[].population"),
            [
                key("country"),
                key("cities"),
                PathItem::Wildcard,
                key("population")
            ]
        );
        assert_eq!(
            items("a[0][]"),
            [key("a"), PathItem::Index(0), PathItem::Wildcard]
        );
        assert_eq!(items("\"a.b\".c"), [key("a.b"), key("c")]);
        assert_eq!(items("Тбилиси"), [key("Тбилиси")]);
    }

    #[test]
    fn rejects_malformed_paths() {
        let cases = [
            ("", "expected a key at byte 0"),
            ("a..b", "expected a key at byte 2"),
            ("a.", "expected a key at byte 2"),
            (".a", "expected a key at byte 0"),
            ("a b", "expected `.` or `[` at byte 1"),
            ("a[", "unclosed `[` at byte 1"),
            ("a[x]", "expected `[]` or `[digits]` at byte 1"),
            ("a[-1]", "expected `[]` or `[digits]` at byte 1"),
            (
                "a[99999999999999999999999]",
                "array index too large at byte 1",
            ),
            ("\"a", "expected a key at byte 0"),
            ("[]", "expected a key at byte 0"),
            ("a.[0]", "expected a key at byte 2"),
        ];
        for (path, message) in cases {
            assert_eq!(
                parse_path(path).unwrap_err(),
                format!("invalid path \"{path}\": {message}").into()
            );
        }
    }

    #[test]
    fn values_flatten_at_wildcards_and_the_end_only() {
        let payload = json!({
            "a": [[1, 2], [3]],
            "objs": [{"x": 1}, {"x": [2, 3]}, {"y": 0}],
            "o": {"x": 5}
        });
        let payload = payload.as_object().unwrap();
        let got = |k: &str| parse_path(k).unwrap().values(payload);
        assert_eq!(got("a"), [&json!([1, 2]), &json!([3])]);
        assert_eq!(got("a[]"), [&json!(1), &json!(2), &json!(3)]);
        assert_eq!(got("a[1]"), [&json!(3)]);
        assert_eq!(got("a[5]"), Vec::<&Value>::new());
        assert_eq!(got("objs[].x"), [&json!(1), &json!(2), &json!(3)]);
        // A key step on an array does not fan out (qdrant-client local mode agrees).
        assert!(got("objs.x").is_empty());
        assert_eq!(got("o.x"), [&json!(5)]);
        assert!(got("o[]").is_empty());
        assert!(got("missing.x").is_empty());
    }

    #[test]
    fn long_paths_do_not_recurse() {
        let long = vec!["a"; 100_000].join(".");
        let path = parse_path(&long).unwrap();
        assert!(path.values(&Map::new()).is_empty());
        let wild = format!("a{}", "[]".repeat(100_000));
        let payload = json!({"a": [[[1]]]});
        assert!(parse_path(&wild)
            .unwrap()
            .values(payload.as_object().unwrap())
            .is_empty());
    }

    #[test]
    fn equality_ignores_quoting_and_serialises_as_written() {
        assert_eq!(parse_path("\"a\".b").unwrap(), parse_path("a.b").unwrap());
        let path = parse_path("a[0].b").unwrap();
        assert_eq!(serde_json::to_value(&path).unwrap(), json!("a[0].b"));
        assert_eq!(path.to_string(), "a[0].b");
    }
}
