//! Evaluation tests: one group per condition kind and edge case, plus the table
//! cross-checked against qdrant-client's local mode.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::crosscheck_table::{CASES, POINTS};
use super::{Filter, PointView};
use crate::point_id::PointId;

/// A point for tests.
pub(super) struct TestPoint {
    pub(super) id: PointId,
    pub(super) payload: Option<Map<String, Value>>,
    pub(super) vectors: Vec<String>,
}

impl PointView for TestPoint {
    fn id(&self) -> PointId {
        self.id
    }
    fn payload(&self) -> Option<&Map<String, Value>> {
        self.payload.as_ref()
    }
    fn has_vector(&self, name: &str) -> bool {
        self.vectors.iter().any(|v| v == name)
    }
}

fn point(payload: Value) -> TestPoint {
    TestPoint {
        id: PointId::Num(1),
        payload: payload.as_object().cloned(),
        vectors: vec!["dense".to_owned()],
    }
}

fn matches(filter: Value, payload: Value) -> bool {
    Filter::from_json(&filter).unwrap().matches(&point(payload))
}

/// Which of `payloads` a single `must` field condition on `key` matches.
fn field_hits(key: &str, check: Value, payloads: &[Value]) -> Vec<bool> {
    let mut condition = check.as_object().unwrap().clone();
    condition.insert("key".into(), json!(key));
    let filter = json!({ "must": [condition] });
    payloads
        .iter()
        .map(|p| matches(filter.clone(), p.clone()))
        .collect()
}

#[test]
fn match_value_keeps_int_float_bool_and_string_apart() {
    let payloads = [
        json!({"a": 1}),
        json!({"a": 1.0}),
        json!({"a": true}),
        json!({"a": "1"}),
        json!({"a": [2.5, 1]}),
        json!({"a": -3}),
        json!({"a": 18446744073709551615u64}),
    ];
    let hits = |v: Value| field_hits("a", json!({"match": {"value": v}}), &payloads);
    assert_eq!(
        hits(json!(1)),
        [true, false, false, false, true, false, false]
    );
    assert_eq!(
        hits(json!(true)),
        [false, false, true, false, false, false, false]
    );
    assert_eq!(
        hits(json!("1")),
        [false, false, false, true, false, false, false]
    );
    assert_eq!(
        hits(json!(-3)),
        [false, false, false, false, false, true, false]
    );
    assert_eq!(hits(json!(i64::MAX)), [false; 7]);
}

#[test]
fn match_never_hits_missing_null_or_empty() {
    let payloads = [
        json!({}),
        json!({"a": null}),
        json!({"a": []}),
        json!({"a": [null]}),
        json!({"a": {}}),
    ];
    for check in [
        json!({"value": "x"}),
        json!({"any": ["x"]}),
        json!({"any": [1, 2]}),
    ] {
        assert_eq!(
            field_hits("a", json!({ "match": check }), &payloads),
            [false; 5]
        );
    }
}

#[test]
fn match_except_needs_a_present_non_null_value_outside_the_list() {
    let payloads = [
        json!({}),
        json!({"a": null}),
        json!({"a": []}),
        json!({"a": [null]}),
        json!({"a": ["x"]}),
        json!({"a": ["x", "y"]}),
        json!({"a": 5}),
        json!({"a": [null, "z"]}),
    ];
    let hits = field_hits("a", json!({"match": {"except": ["x"]}}), &payloads);
    assert_eq!(hits, [false, false, false, false, false, true, true, true]);
    // Against integers, a float or a string differs from every listed value.
    let payloads = [
        json!({"a": 1}),
        json!({"a": 1.0}),
        json!({"a": "1"}),
        json!({"a": [1, 2]}),
    ];
    let hits = field_hits("a", json!({"match": {"except": [1]}}), &payloads);
    assert_eq!(hits, [false, true, true, true]);
}

#[test]
fn match_any_short_and_long_lists() {
    let long: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let payloads = [
        json!({"a": "v3"}),
        json!({"a": ["q", "v49"]}),
        json!({"a": "v50"}),
        json!({"a": 3}),
    ];
    assert_eq!(
        field_hits("a", json!({"match": {"any": long}}), &payloads),
        [true, true, false, false]
    );
    assert_eq!(
        field_hits("a", json!({"match": {"any": ["v3"]}}), &payloads),
        [true, false, false, false]
    );
    let ints: Vec<i64> = (0..20).collect();
    let payloads = [
        json!({"a": 3}),
        json!({"a": 3.0}),
        json!({"a": [30, 19]}),
        json!({"a": "3"}),
    ];
    assert_eq!(
        field_hits("a", json!({"match": {"any": ints}}), &payloads),
        [true, false, true, false]
    );
    assert_eq!(
        field_hits("a", json!({"match": {"any": []}}), &payloads),
        [false; 4]
    );
}

#[test]
fn range_compares_ints_and_floats_but_not_bools_or_strings() {
    let payloads = [
        json!({"a": 1}),
        json!({"a": 1.5}),
        json!({"a": 2}),
        json!({"a": true}),
        json!({"a": "1.5"}),
        json!({"a": [0, 7]}),
        json!({"a": null}),
        json!({"a": 1e300}),
    ];
    let hits = |r: Value| field_hits("a", json!({ "range": r }), &payloads);
    assert_eq!(
        hits(json!({"gte": 1, "lt": 2})),
        [true, true, false, false, false, false, false, false]
    );
    assert_eq!(
        hits(json!({"gt": 1, "lte": 2})),
        [false, true, true, false, false, false, false, false]
    );
    assert_eq!(
        hits(json!({"gt": 5})),
        [false, false, false, false, false, true, false, true]
    );
    assert_eq!(
        hits(json!({})),
        [true, true, true, false, false, true, false, true]
    );
}

#[test]
fn values_count_counts_per_reached_value() {
    let payloads = [
        json!({}),
        json!({"a": null}),
        json!({"a": 5}),
        json!({"a": [1, 2, 3]}),
        json!({"a": [[1, 2], 3]}),
        json!({"a": []}),
        json!({"a": {"b": 1}}),
    ];
    let hits = |b: Value| field_hits("a", json!({ "values_count": b }), &payloads);
    assert_eq!(
        hits(json!({"lt": 1})),
        [true, true, false, false, false, true, false]
    );
    assert_eq!(
        hits(json!({"gte": 1, "lte": 1})),
        [false, false, true, false, false, false, true]
    );
    assert_eq!(
        hits(json!({"gt": 2})),
        [false, false, false, true, false, false, false]
    );
    assert_eq!(
        hits(json!({"gte": 2, "lte": 2})),
        [false, false, false, false, true, false, false]
    );
}

#[test]
fn is_empty_and_is_null_on_missing_null_and_arrays() {
    let payloads = [
        json!({}),
        json!({"a": null}),
        json!({"a": []}),
        json!({"a": [null]}),
        json!({"a": [1]}),
        json!({"a": 0}),
        json!({"a": ""}),
        json!({"a": {}}),
    ];
    let run = |c: Value| {
        payloads
            .iter()
            .map(|p| matches(json!({ "must": [c.clone()] }), p.clone()))
            .collect::<Vec<_>>()
    };
    let empty = [true, true, true, false, false, false, false, false];
    let null = [false, true, false, true, false, false, false, false];
    assert_eq!(run(json!({"is_empty": {"key": "a"}})), empty);
    assert_eq!(run(json!({"key": "a", "is_empty": true})), empty);
    assert_eq!(
        run(json!({"key": "a", "is_empty": false})),
        empty.map(|b| !b)
    );
    assert_eq!(run(json!({"is_null": {"key": "a"}})), null);
    assert_eq!(run(json!({"key": "a", "is_null": false})), null.map(|b| !b));
}

#[test]
fn has_id_and_has_vector_use_the_point() {
    let u = Uuid::from_u128(7);
    let ids: Vec<Value> = (100..120)
        .map(|i| json!(i))
        .chain([json!(u.to_string())])
        .collect();
    let filter = Filter::from_json(&json!({"must": {"has_id": ids}})).unwrap();
    let mut p = point(json!({}));
    for (id, expected) in [
        (PointId::Num(105), true),
        (PointId::Num(1), false),
        (PointId::Uuid(u), true),
    ] {
        p.id = id;
        assert_eq!(filter.matches(&p), expected, "{id}");
    }
    let short = Filter::from_json(&json!({"must": {"has_id": [1, 2]}})).unwrap();
    assert!(short.matches(&point(json!({}))));
    assert!(matches(json!({"must": {"has_vector": "dense"}}), json!({})));
    assert!(!matches(
        json!({"must": {"has_vector": "sparse"}}),
        json!({})
    ));
}

#[test]
fn nested_checks_each_object_element_alone() {
    let diet = |likes_meat: bool| json!({"diet": [{"food": "meat", "likes": likes_meat}, {"food": "veg", "likes": true}]});
    let both = json!({"must": [{"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]});
    for key in ["diet", "diet[]"] {
        let filter = json!({"must": {"nested": {"key": key, "filter": both}}});
        assert!(matches(filter.clone(), diet(true)));
        assert!(!matches(filter.clone(), diet(false)));
        // A plain object is not an array of objects; scalars in the array are skipped.
        assert!(!matches(
            filter.clone(),
            json!({"diet": {"food": "meat", "likes": true}})
        ));
        assert!(matches(
            filter.clone(),
            json!({"diet": [3, "x", {"food": "meat", "likes": true}]})
        ));
        assert!(!matches(filter, json!({"diet": []})));
    }
    // Flattened matching would wrongly combine fields of different elements.
    let flat = json!({"must": [{"key": "diet[].food", "match": {"value": "meat"}}, {"key": "diet[].likes", "match": {"value": true}}]});
    assert!(matches(flat, diet(false)));
    // has_id and has_vector never match inside nested, as in local mode.
    let inner =
        json!({"must": {"nested": {"key": "diet", "filter": {"must": {"has_vector": "dense"}}}}});
    assert!(!matches(inner, diet(true)));
    let deep = json!({"a": [{"b": [{"c": 1}, {"c": 2}]}]});
    let filter = json!({"must": {"nested": {"key": "a", "filter": {"must": {"nested": {"key": "b", "filter": {"must": {"key": "c", "match": {"value": 2}}}}}}}}});
    assert!(matches(filter, deep));
}

#[test]
fn clauses_and_min_should() {
    let p = json!({"a": 1, "b": "x"});
    let a1 = json!({"key": "a", "match": {"value": 1}});
    let b_y = json!({"key": "b", "match": {"value": "y"}});
    for empty in [
        json!({}),
        json!({"must": []}),
        json!({"should": []}),
        json!({"must_not": []}),
        json!({"should": [{}]}),
    ] {
        assert!(matches(empty, p.clone()));
    }
    assert!(matches(json!({"should": [a1, b_y]}), p.clone()));
    assert!(!matches(json!({"should": b_y}), p.clone()));
    assert!(!matches(json!({"must_not": [b_y, a1]}), p.clone()));
    assert!(matches(json!({"must": a1, "must_not": b_y}), p.clone()));
    let min = |n: u64| json!({"min_should": {"conditions": [a1, b_y, {"key": "b", "match": {"value": "x"}}], "min_count": n}});
    assert!(matches(min(2), p.clone()));
    assert!(!matches(min(3), p.clone()));
    assert!(!matches(
        json!({"min_should": {"conditions": [], "min_count": 1}}),
        p
    ));
}

#[test]
fn a_point_without_payload_is_an_empty_one() {
    let mut p = point(json!({}));
    p.payload = None;
    let run = |f: Value| Filter::from_json(&f).unwrap().matches(&p);
    assert!(run(json!({"must": {"is_empty": {"key": "a"}}})));
    assert!(!run(
        json!({"must": {"key": "a", "match": {"except": ["x"]}}})
    ));
    assert!(run(
        json!({"must": {"key": "a", "values_count": {"lt": 1}}})
    ));
}

#[test]
fn paths_fan_out_only_at_brackets_and_the_end() {
    let p = json!({
        "country": {"cities": [{"population": 3.7, "sights": ["Gate", "Dom"]}, {"population": 1.5}]},
        "arr": [{"x": 1}, {"x": 2}],
        "a.b": 5
    });
    assert!(matches(
        json!({"must": {"key": "country.cities[].population", "range": {"gt": 3}}}),
        p.clone()
    ));
    assert!(matches(
        json!({"must": {"key": "country.cities[].sights", "match": {"value": "Dom"}}}),
        p.clone()
    ));
    assert!(matches(
        json!({"must": {"key": "arr[1].x", "match": {"value": 2}}}),
        p.clone()
    ));
    assert!(!matches(
        json!({"must": {"key": "arr[0].x", "match": {"value": 2}}}),
        p.clone()
    ));
    assert!(!matches(
        json!({"must": {"key": "arr.x", "match": {"value": 1}}}),
        p.clone()
    ));
    assert!(matches(
        json!({"must": {"key": "\"a.b\"", "match": {"value": 5}}}),
        p
    ));
}

/// Expected ids computed with qdrant-client local mode by tests/crosscheck/table.py.
#[test]
fn agrees_with_qdrant_client_local_mode() {
    check_table(POINTS, CASES);
}

/// Full-text matches, generated by tests/crosscheck/text.py.
#[test]
fn text_matches_agree_with_local_mode() {
    check_table(
        super::crosscheck_text::POINTS,
        super::crosscheck_text::CASES,
    );
}

/// Checks a generated crosscheck table: `points` as `[{id, payload, extra?}]` (`extra`: the
/// point has vector "extra"), `cases` as (filter JSON, ids local mode matched).
pub(super) fn check_table(points: &str, cases: &[(&str, &str)]) {
    let points: Vec<Value> = serde_json::from_str(points).unwrap();
    let points: Vec<TestPoint> = points
        .iter()
        .map(|p| TestPoint {
            id: PointId::from_json(&p["id"]).unwrap(),
            payload: p["payload"].as_object().cloned(),
            vectors: if p["extra"] == json!(true) {
                vec!["dense".into(), "extra".into()]
            } else {
                vec!["dense".into()]
            },
        })
        .collect();
    let mut agreed = 0;
    for (filter_json, expected_json) in cases {
        let filter = Filter::from_json(&serde_json::from_str(filter_json).unwrap())
            .unwrap_or_else(|e| panic!("{filter_json}: {e}"));
        let expected: Vec<Value> = serde_json::from_str(expected_json).unwrap();
        let mut expected: Vec<PointId> = expected
            .iter()
            .map(|id| PointId::from_json(id).unwrap())
            .collect();
        expected.sort();
        let mut got: Vec<PointId> = points
            .iter()
            .filter(|p| filter.matches(*p))
            .map(|p| p.id)
            .collect();
        got.sort();
        if got == expected {
            agreed += 1;
        } else {
            eprintln!(
                "disagree on {filter_json}:\n  local mode {expected:?}\n  vecdb      {got:?}"
            );
        }
    }
    eprintln!("{agreed} of {} local-mode cases agree", cases.len());
    assert_eq!(agreed, cases.len());
}
