//! Parsing tests: exact error messages, the depth limit, serialisation round trips,
//! the OpenAPI schema, and a deterministic fuzz loop that must never panic.

use serde_json::{json, Map, Value};
use utoipa::{PartialSchema, ToSchema};

use super::crosscheck_table::CASES;
use super::tests_eval::TestPoint;
use super::Filter;
use crate::point_id::PointId;

fn error(filter: Value) -> String {
    Filter::from_json(&filter).unwrap_err().0
}

fn must(condition: Value) -> Value {
    json!({ "must": [condition] })
}

#[test]
fn errors_name_the_place() {
    let one_of = "match, range, values_count, is_empty, is_null, geo_bounding_box, geo_radius, \
        geo_polygon";
    let cases = [
        (
            json!({"must": [{"key": "a", "match": {"value": 1}}, {"has_id": [1]}, {"key": "c", "range": {"gt": "abc"}}]}),
            "filter.must[2].range.gt: \"abc\" is not an RFC 3339 datetime (e.g. \"2024-05-01T12:00:00Z\")".to_owned(),
        ),
        (
            json!({"must": {"key": "t", "range": {"gte": "2024-01-01", "lt": 5}}}),
            "filter.must.range.lt: expected a datetime string like the other bounds, got 5".to_owned(),
        ),
        (
            json!({"should": [{"foo": 1}]}),
            "filter.should[0]: unknown condition; expected one of key, has_id, is_empty, is_null, nested, \
             has_vector, or a filter (must/should/must_not/min_should)"
                .to_owned(),
        ),
        (json!(5), "filter: expected a filter object, got 5".to_owned()),
        (json!({"must": "x"}), "filter.must: expected a condition or a list of conditions, got \"x\"".to_owned()),
        (json!({"musts": []}), "filter.musts: unknown field; expected must, should, must_not or min_should".to_owned()),
        (
            must(json!({"key": "a", "match": {"value": 1}, "range": {"gt": 1}})),
            format!("filter.must[0]: a field condition takes exactly one of {one_of}; got match and range"),
        ),
        (must(json!({"key": "a"})), format!("filter.must[0]: a field condition needs one of {one_of} next to key")),
        (
            must(json!({"key": "a", "match": {"value": 1}, "foo": 1})),
            format!("filter.must[0].foo: unknown field in a field condition; expected key plus one of {one_of}"),
        ),
        (
            must(json!({"key": "a", "match": {"value": 1.5}})),
            "filter.must[0].match.value: expected a string, an integer or a boolean, got 1.5".to_owned(),
        ),
        (
            must(json!({"key": "a", "match": {"value": 18446744073709551615u64}})),
            "filter.must[0].match.value: integer 18446744073709551615 is out of the signed 64-bit range".to_owned(),
        ),
        (
            must(json!({"key": "a", "match": {"any": ["x", 1]}})),
            "filter.must[0].match.any[1]: expected a string like the first element, got 1".to_owned(),
        ),
        (
            must(json!({"key": "a", "match": {"except": [null]}})),
            "filter.must[0].match.except[0]: expected a string or an integer, got null".to_owned(),
        ),
        (
            must(json!({"key": "a", "match": {"value": 1, "any": [1]}})),
            "filter.must[0].match: expected exactly one of value, any, except, text, text_any, phrase".to_owned(),
        ),
        (
            must(json!({"key": "a..b", "match": {"value": 1}})),
            "filter.must[0].key: invalid path \"a..b\": expected a key at byte 2".to_owned(),
        ),
        (
            must(json!({"has_id": [1, -1]})),
            "filter.must[0].has_id[1]: point id -1 is not an unsigned integer (ids are unsigned integers or UUIDs)"
                .to_owned(),
        ),
        (
            must(json!({"has_id": [1], "has_vector": "v"})),
            "filter.must[0].has_vector: unexpected next to has_id; a condition object holds one condition".to_owned(),
        ),
        (
            must(json!({"key": "a", "values_count": {"gt": -1}})),
            "filter.must[0].values_count.gt: expected a non-negative integer, got -1".to_owned(),
        ),
        (must(json!({"nested": {"key": "a"}})), "filter.must[0].nested: missing field filter".to_owned()),
        (must(json!({"is_null": {"key": 3}})), "filter.must[0].is_null.key: expected a payload key, got 3".to_owned()),
        (
            json!({"min_should": {"conditions": [], "min_count": 0}}),
            "filter.min_should.min_count: expected an integer of 1 or more, got 0".to_owned(),
        ),
        (
            json!({"must_not": {"key": "a", "range": {"lt": 1e300, "gte": [1]}}}),
            "filter.must_not.range.gte: expected a number or a datetime string, got an array".to_owned(),
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(error(filter), expected);
    }
}

#[test]
fn text_matches_need_a_string() {
    assert_eq!(
        error(must(json!({"key": "t", "match": {"text": 5}}))),
        "filter.must[0].match.text: expected a string, got 5"
    );
    assert_eq!(
        error(must(json!({"key": "t", "match": {"prefix": "a"}}))),
        "filter.must[0].match.prefix: unknown match kind; expected value, any, except, text, text_any or phrase"
    );
}

/// `{"must": [{"must": [...]}]}`, `levels` filters deep.
fn nested_filters(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "must": [inner] }))
}

#[test]
fn depth_is_limited() {
    assert!(Filter::from_json(&nested_filters(crate::limits::get().max_filter_depth)).is_ok());
    let err = error(nested_filters(crate::limits::get().max_filter_depth + 1));
    let place = format!(
        "filter{}",
        ".must[0]".repeat(crate::limits::get().max_filter_depth)
    );
    assert_eq!(
        err,
        format!(
            "{place}: filters nest deeper than the maximum of 32 levels (limits.max_filter_depth)"
        )
    );
    // Far deeper input fails the same way, without recursing into it.
    assert!(error(nested_filters(300))
        .ends_with("deeper than the maximum of 32 levels (limits.max_filter_depth)"));
    // `nested` filters count too.
    let nested = (1..=crate::limits::get().max_filter_depth).fold(
        json!({}),
        |inner, _| json!({"must": {"nested": {"key": "a", "filter": inner}}}),
    );
    assert!(
        error(nested).ends_with("deeper than the maximum of 32 levels (limits.max_filter_depth)")
    );
}

#[test]
fn serialising_gives_equivalent_json() {
    let extra = [
        json!({"must": {"key": "a", "match": {"any": (0..20).collect::<Vec<_>>()}}}),
        json!({"must": {"key": "a", "range": {"gt": 1, "lte": null}}, "should": null}),
        json!({"must_not": [{"key": "a", "is_null": false}, {"is_null": {"key": "b[0]"}}]}),
        json!({"must": {"has_id": [5, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}}),
    ];
    let tables = CASES
        .iter()
        .map(|(f, _)| serde_json::from_str::<Value>(f).unwrap());
    for input in tables.chain(extra) {
        let parsed = Filter::from_json(&input).unwrap();
        let json = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            Filter::from_json(&json).unwrap(),
            parsed,
            "{input} -> {json}"
        );
    }
    let parsed =
        Filter::from_json(&json!({"must": {"key": "a", "range": {"gt": 1}}, "should": []}))
            .unwrap();
    assert_eq!(
        serde_json::to_value(parsed).unwrap(),
        json!({"must": [{"key": "a", "range": {"gt": 1.0}}]})
    );
}

#[test]
fn deserialize_goes_through_from_json() {
    let ok: Filter =
        serde_json::from_str(r#"{"must": {"key": "a", "match": {"value": "x"}}}"#).unwrap();
    assert_eq!(ok.must.len(), 1);
    let err = serde_json::from_str::<Filter>(r#"{"must": [{"key": "a", "range": {"gt": "x"}}]}"#)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("filter.must[0].range.gt: \"x\" is not an RFC 3339 datetime"),
        "{err}"
    );
}

#[test]
fn schema_has_qdrant_names_and_no_endless_recursion() {
    let mut schemas = Vec::new();
    Filter::schemas(&mut schemas);
    let names: Vec<&str> = schemas.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "Condition",
        "FieldCondition",
        "MatchValue",
        "MatchExcept",
        "Range",
        "ValuesCount",
        "Nested",
        "MinShould",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let filter = serde_json::to_value(Filter::schema()).unwrap();
    let must = &filter["properties"]["must"]["anyOf"];
    assert_eq!(
        must[1]["$ref"],
        json!("#/components/schemas/Condition"),
        "{filter}"
    );
    assert_eq!(filter["additionalProperties"], json!(false), "{filter}");
    let except = serde_json::to_value(super::MatchExcept::schema()).unwrap();
    assert!(except["properties"].get("except").is_some(), "{except}");
}

/// A small deterministic xorshift generator, to avoid pulling in a fuzzing crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: [&str; 32] = [
    "must",
    "should",
    "must_not",
    "min_should",
    "conditions",
    "min_count",
    "key",
    "match",
    "range",
    "values_count",
    "is_empty",
    "is_null",
    "has_id",
    "nested",
    "filter",
    "has_vector",
    "value",
    "any",
    "except",
    "gt",
    "lte",
    "geo_radius",
    "geo_bounding_box",
    "geo_polygon",
    "center",
    "radius",
    "top_left",
    "bottom_right",
    "exterior",
    "interiors",
    "text",
    "a",
];

/// A random JSON value biased towards filter-shaped objects.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth == 0 || rng.below(4) == 0;
    match if leaf { rng.below(6) } else { 6 + rng.below(2) } {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(5) as i64 - 1),
        3 => [json!(1.5), json!(-1e300), json!(u64::MAX), json!(i64::MIN)][rng.below(4) as usize]
            .clone(),
        4 => json!(
            [
                "a",
                "a.b",
                "a[]",
                "a[0].b",
                "",
                "a..",
                "\"q\"",
                "2024-01-01"
            ][rng.below(8) as usize]
        ),
        5 => json!(PointId::Num(rng.below(3))),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..1 + rng.below(3) {
                let key = KEYS[rng.below(KEYS.len() as u64) as usize];
                map.insert(key.to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

const PATHS: [&str; 7] = ["a", "b", "a.b", "a[]", "arr[].x", "arr[0]", "arr"];

fn pick<T: Clone>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize].clone()
}

/// Replaces `value` by arbitrary JSON now and then, so generated filters are mostly valid
/// but every part also sees malformed input.
fn corrupt(rng: &mut Rng, value: Value) -> Value {
    if rng.below(40) == 0 {
        random_value(rng, 2)
    } else {
        value
    }
}

/// A random, mostly valid condition.
fn random_condition(rng: &mut Rng, depth: u32) -> Value {
    let key = json!(pick(rng, &PATHS));
    let small = json!(rng.below(4));
    let condition = match rng.below(if depth == 0 { 7 } else { 9 }) {
        0 => json!({"key": key, "match": {"value": pick(rng, &[json!("x"), small, json!(true)])}}),
        1 => {
            json!({"key": key, "match": {pick(rng, &["any", "except"]): pick(rng, &[json!(["x", "y"]), json!([1, 2]), json!([])])}})
        }
        2 => {
            json!({"key": key, "range": {pick(rng, &["gt", "gte", "lt", "lte"]): pick(rng, &[json!(1), json!(2.5)])}})
        }
        3 => json!({"key": key, "values_count": {pick(rng, &["gt", "lte"]): small}}),
        4 => pick(
            rng,
            &[
                json!({"is_empty": {"key": key}}),
                json!({"is_null": {"key": key}}),
                json!({"key": key, "is_null": true}),
            ],
        ),
        5 => json!({"has_id": [small, 7]}),
        6 => json!({"has_vector": pick(rng, &["dense", "extra"])}),
        7 => {
            json!({"nested": {"key": pick(rng, &["arr", "arr[]", "a"]), "filter": random_filter(rng, depth - 1)}})
        }
        _ => random_filter(rng, depth - 1),
    };
    corrupt(rng, condition)
}

/// A random, mostly valid filter with up to `depth` levels below it.
fn random_filter(rng: &mut Rng, depth: u32) -> Value {
    let mut filter = Map::new();
    for clause in ["must", "should", "must_not", "min_should"] {
        let conditions: Vec<Value> = (0..rng.below(3))
            .map(|_| random_condition(rng, depth))
            .collect();
        let value = match (clause, rng.below(4)) {
            (_, 0) => continue,
            ("min_should", _) => json!({"conditions": conditions, "min_count": 1 + rng.below(2)}),
            (_, 1) => random_condition(rng, depth),
            _ => Value::Array(conditions),
        };
        filter.insert(clause.to_owned(), corrupt(rng, value));
    }
    Value::Object(filter)
}

/// A random payload over the keys the generated filters use.
fn random_payload(rng: &mut Rng) -> Option<Map<String, Value>> {
    let values = [
        json!(null),
        json!([]),
        json!("x"),
        json!(1),
        json!(2.5),
        json!(true),
        json!([1, "y", null]),
    ];
    let mut payload = Map::new();
    for key in ["a", "b"] {
        if rng.below(3) > 0 {
            let value = if rng.below(4) == 0 {
                json!({"b": pick(rng, &values)})
            } else {
                pick(rng, &values)
            };
            payload.insert(key.to_owned(), value);
        }
    }
    let elements: Vec<Value> = (0..rng.below(3))
        .map(|_| json!({"x": pick(rng, &values), "a": pick(rng, &values)}))
        .collect();
    payload.insert("arr".to_owned(), Value::Array(elements));
    (rng.below(10) > 0).then_some(payload)
}

#[test]
fn parsing_arbitrary_json_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let points: Vec<TestPoint> = (0..20)
        .map(|i| TestPoint {
            id: PointId::Num(rng.below(8)),
            payload: random_payload(&mut rng),
            vectors: if i % 2 == 0 {
                vec!["dense".into()]
            } else {
                vec![]
            },
        })
        .collect();
    let (mut parsed, mut matched) = (0, 0);
    for round in 0..20_000 {
        let depth = rng.below(8) as u32;
        let value = if round % 2 == 0 {
            random_value(&mut rng, 1 + depth)
        } else {
            random_filter(&mut rng, depth / 2)
        };
        let Ok(filter) = Filter::from_json(&value) else {
            continue;
        };
        parsed += 1;
        matched += points.iter().filter(|p| filter.matches(*p)).count();
        let again = Filter::from_json(&serde_json::to_value(&filter).unwrap()).unwrap();
        assert_eq!(again, filter, "{value}");
    }
    eprintln!("{parsed} of 20000 random inputs parsed; {matched} point matches");
    // The generators must reach the success paths too, not only the errors.
    assert!(parsed > 2_000, "only {parsed} random filters parsed");
    assert!(
        matched > 0 && matched < parsed * points.len(),
        "{matched} matches"
    );
}
