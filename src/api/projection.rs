//! `with_payload` by keys: the parts of a payload under the listed paths (`include`), or all
//! but those (`exclude`). Paths may be nested (`country.name`) and reach into arrays of
//! objects (`country.cities[].name`); as in Qdrant, only `[]` applies to array elements
//! (`a[0]` selects nothing), and a shorter path selects everything below it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::filter::{parse_path, PathItem};

/// The selected paths as a prefix tree.
#[derive(Debug, PartialEq)]
enum Tree {
    /// Everything below.
    All,
    Below(BTreeMap<Step, Tree>),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
    Elements,
}

/// The prefix tree of `keys` (already checked to parse).
fn tree(keys: &[String]) -> Tree {
    let mut root = Tree::Below(BTreeMap::new());
    for key in keys {
        let Ok(path) = parse_path(key) else { continue };
        let mut node = &mut root;
        for (i, item) in path.items().iter().enumerate() {
            let step = match item {
                PathItem::Key(k) => Step::Key(k.clone()),
                PathItem::Index(n) => Step::Index(*n),
                PathItem::Wildcard => Step::Elements,
            };
            let last = i + 1 == path.items().len();
            let Tree::Below(children) = node else {
                break; // a shorter path selects everything below already
            };
            let child = children
                .entry(step)
                .or_insert_with(|| Tree::Below(BTreeMap::new()));
            if last {
                *child = Tree::All;
            }
            node = child;
        }
    }
    root
}

/// The parts of `payload` under `keys`.
pub fn include(payload: &Map<String, Value>, keys: &[String]) -> Map<String, Value> {
    match keep(&Value::Object(payload.clone()), &tree(keys)) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `payload` without the parts under `keys`.
pub fn exclude(payload: &Map<String, Value>, keys: &[String]) -> Map<String, Value> {
    match drop(&Value::Object(payload.clone()), &tree(keys)) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn keep(value: &Value, tree: &Tree) -> Value {
    let Tree::Below(children) = tree else {
        return value.clone();
    };
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let sub = children.get(&Step::Key(k.clone()))?;
                    Some((k.clone(), keep(v, sub)))
                })
                .collect(),
        ),
        Value::Array(items) => match children.get(&Step::Elements) {
            Some(sub) => Value::Array(items.iter().map(|v| keep(v, sub)).collect()),
            None => Value::Array(Vec::new()),
        },
        other => other.clone(),
    }
}

fn drop(value: &Value, tree: &Tree) -> Value {
    let Tree::Below(children) = tree else {
        return value.clone();
    };
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| match children.get(&Step::Key(k.clone())) {
                    None => Some((k.clone(), v.clone())),
                    Some(Tree::All) => None,
                    Some(sub) => Some((k.clone(), drop(v, sub))),
                })
                .collect(),
        ),
        Value::Array(items) => match children.get(&Step::Elements) {
            None => value.clone(),
            Some(Tree::All) => Value::Array(Vec::new()),
            Some(sub) => Value::Array(items.iter().map(|v| drop(v, sub)).collect()),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> Map<String, Value> {
        json!({"a": {"b": 1, "c": 2}, "aa": {"b": 3}, "a.b": 4, "l": [{"b": 5, "c": 6}]})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn includes_nested_and_quoted_keys() {
        assert_eq!(
            Value::Object(include(&payload(), &keys(&["a.b"]))),
            json!({"a": {"b": 1}})
        );
        let quoted = include(&payload(), &keys(&["\"a.b\"", "l[].c"]));
        assert_eq!(Value::Object(quoted), json!({"a.b": 4, "l": [{"c": 6}]}));
        // An index selects no element; a shorter path selects everything below.
        let mixed = include(&payload(), &keys(&["l[0]", "a", "a.b"]));
        assert_eq!(
            Value::Object(mixed),
            json!({"a": {"b": 1, "c": 2}, "l": []})
        );
    }

    #[test]
    fn excludes_nested_keys() {
        let out = exclude(&payload(), &keys(&["a", "l[].b"]));
        assert_eq!(
            Value::Object(out),
            json!({"aa": {"b": 3}, "a.b": 4, "l": [{"c": 6}]})
        );
    }
}
