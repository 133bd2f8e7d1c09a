//! Index answers against evaluation: on every crosscheck table, each filter narrowed through
//! indexes on its fields selects a superset of what evaluation matches, and exactly that set
//! when the resolution says it is exact.

use serde_json::{json, Map, Value};

use super::super::{crosscheck_datetime, crosscheck_geo, crosscheck_table, crosscheck_text};
use super::*;
use crate::filter::{Filter, PointView};
use crate::point_id::PointId;

struct P<'a>(PointId, &'a Map<String, Value>);

impl PointView for P<'_> {
    fn id(&self) -> PointId {
        self.0
    }
    fn payload(&self) -> Option<&Map<String, Value>> {
        Some(self.1)
    }
    fn has_vector(&self, _: &str) -> bool {
        true
    }
}

fn schema(fields: &[(&str, FieldType)]) -> PayloadSchema {
    fields
        .iter()
        .map(|(name, t)| {
            let spec = IndexSpec {
                data_type: *t,
                params: None,
            };
            (name.to_string(), spec)
        })
        .collect()
}

/// Checks every case of a table; returns how many narrowed exactly.
fn check(points: &str, cases: &[(&str, &str)], schema: &PayloadSchema) -> usize {
    let points: Vec<Value> = serde_json::from_str(points).unwrap();
    let empty = Map::new();
    let payloads: Vec<&Map<String, Value>> = points
        .iter()
        .map(|p| p["payload"].as_object().unwrap_or(&empty))
        .collect();
    let ids: Vec<PointId> = points
        .iter()
        .map(|p| PointId::from_json(&p["id"]).unwrap())
        .collect();
    // Every case runs through the indexes as built and as restored from their bytes.
    let len = payloads.len();
    let built = SegmentIndexes::build(schema, len, |o| payloads[o as usize]);
    let restored = SegmentIndexes::restore(&built.encode(), schema, len, |o| payloads[o as usize])
        .expect("indexes restore from their own bytes");
    assert!(restored.rebuilt.is_empty() && !restored.stale);
    let exact = check_cases(&built, &payloads, &ids, cases);
    assert_eq!(
        check_cases(&restored.indexes, &payloads, &ids, cases),
        exact
    );
    exact
}

/// Checks every case through `indexes`; returns how many narrowed exactly.
fn check_cases(
    indexes: &SegmentIndexes,
    payloads: &[&Map<String, Value>],
    ids: &[PointId],
    cases: &[(&str, &str)],
) -> usize {
    let has_id = |c: &crate::filter::HasIdCondition| {
        let mut out = Bitset::default();
        for (o, id) in ids.iter().enumerate() {
            if c.has_id.contains(id) {
                out.set(o);
            }
        }
        out
    };
    let narrower = Narrower {
        indexes,
        len: payloads.len(),
        ids: &has_id,
    };
    let mut exact = 0;
    for (filter_json, _) in cases {
        let filter = Filter::from_json(&serde_json::from_str(filter_json).unwrap()).unwrap();
        let matching: Vec<u32> = (0..payloads.len() as u32)
            .filter(|&o| filter.matches(&P(ids[o as usize], payloads[o as usize])))
            .collect();
        let got = narrower.candidates(&filter);
        let candidates: Vec<u32> = match &got.set {
            Some(set) => set
                .iter()
                .filter(|&o| (o as usize) < payloads.len())
                .collect(),
            None => (0..payloads.len() as u32).collect(),
        };
        RUNS_CHECKED.set(RUNS_CHECKED.get() + runs_hold(indexes, &filter, &matching, filter_json));
        if got.exact {
            exact += 1;
            assert_eq!(
                candidates, matching,
                "exact resolution differs: {filter_json}"
            );
        } else {
            let missed: Vec<&u32> = matching
                .iter()
                .filter(|o| !candidates.contains(o))
                .collect();
            assert!(
                missed.is_empty(),
                "{filter_json}: candidates miss {missed:?}"
            );
        }
    }
    exact
}

thread_local! {
    /// `must` conditions whose runs [`check`] compared with the matches.
    static RUNS_CHECKED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Checks that the runs of each `must` condition's index order hold every point the filter
/// matches (sign codes read there would otherwise miss candidates); returns how many
/// conditions had runs.
fn runs_hold(indexes: &SegmentIndexes, filter: &Filter, matching: &[u32], case: &str) -> usize {
    let mut checked = 0;
    for condition in &filter.must {
        let Condition::Field(c) = condition else {
            continue;
        };
        let Some(runs) = indexes.field(&c.key).and_then(|i| Some((i, i.runs(c)?))) else {
            continue;
        };
        let (index, runs) = runs;
        let order = index.order();
        let covered: std::collections::HashSet<u32> = runs
            .iter()
            .flat_map(|r| order[r.clone()].iter().copied())
            .collect();
        let missed: Vec<&u32> = matching.iter().filter(|o| !covered.contains(o)).collect();
        assert!(
            missed.is_empty(),
            "{case}: runs of {:?} miss {missed:?}",
            c.key
        );
        checked += 1;
    }
    checked
}

#[test]
fn main_table_narrows_like_evaluation() {
    let both = [
        ("city", FieldType::Keyword),
        ("count", FieldType::Integer),
        ("price", FieldType::Float),
        ("flag", FieldType::Bool),
        ("tags", FieldType::Keyword),
    ];
    let exact = check(
        crosscheck_table::POINTS,
        crosscheck_table::CASES,
        &schema(&both),
    );
    // Most of the table is conditions on these fields: resolution must be exact for many.
    assert!(exact >= 30, "only {exact} cases narrowed exactly");
    let runs = RUNS_CHECKED.get();
    assert!(runs >= 15, "only {runs} conditions had runs to check");
    // The same fields as other kinds: an index that cannot answer must not pretend to.
    let swapped = [
        ("city", FieldType::Integer),
        ("count", FieldType::Keyword),
        ("price", FieldType::Integer),
        ("flag", FieldType::Float),
    ];
    check(
        crosscheck_table::POINTS,
        crosscheck_table::CASES,
        &schema(&swapped),
    );
}

#[test]
fn geo_and_datetime_tables_narrow_like_evaluation() {
    let geo = schema(&[("loc", FieldType::Geo), ("trip.stops[].at", FieldType::Geo)]);
    let exact = check(crosscheck_geo::POINTS, crosscheck_geo::CASES, &geo);
    assert_eq!(exact, crosscheck_geo::CASES.len());
    let at = schema(&[
        ("at", FieldType::Datetime),
        ("trip.legs[].at", FieldType::Datetime),
    ]);
    let exact = check(crosscheck_datetime::POINTS, crosscheck_datetime::CASES, &at);
    assert_eq!(exact, crosscheck_datetime::CASES.len());
    let runs = RUNS_CHECKED.get();
    assert!(runs >= 5, "only {runs} datetime ranges had runs to check");
}

#[test]
fn text_table_narrows_like_evaluation() {
    let text = schema(&[("t", FieldType::Text), ("doc.title", FieldType::Text)]);
    let exact = check(crosscheck_text::POINTS, crosscheck_text::CASES, &text);
    // Phrases are candidates checked against payloads (but an empty one matches nothing);
    // text and text_any are exact.
    let phrases = crosscheck_text::CASES
        .iter()
        .filter(|(f, _)| f.contains("phrase") && !f.contains(r#""phrase": """#))
        .count();
    assert_eq!(exact, crosscheck_text::CASES.len() - phrases);
}

#[test]
fn clauses_combine_sets() {
    let payloads: Vec<Map<String, Value>> = (0..100)
        .map(|i| {
            json!({"n": i, "even": i % 2 == 0, "c": format!("c{}", i % 10)})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect();
    let s = schema(&[
        ("n", FieldType::Integer),
        ("even", FieldType::Bool),
        ("c", FieldType::Keyword),
    ]);
    let indexes = SegmentIndexes::build(&s, 100, |o| &payloads[o as usize]);
    let narrower = Narrower {
        indexes: &indexes,
        len: 100,
        ids: &|_| Bitset::default(),
    };
    let filter = Filter::from_json(&json!({
        "must": [{"key": "n", "range": {"gte": 10, "lt": 60}}],
        "should": [{"key": "c", "match": {"value": "c3"}}, {"key": "c", "match": {"value": "c4"}}],
        "must_not": [{"key": "even", "match": {"value": true}}]
    }))
    .unwrap();
    let got = narrower.candidates(&filter);
    assert!(got.exact);
    let set: Vec<u32> = got.set.unwrap().iter().collect();
    assert_eq!(set, vec![13, 23, 33, 43, 53]);
}

#[test]
fn sign_codes_are_arranged_for_principal_fields_then_the_first_by_name() {
    let n = 50;
    let names: Vec<String> = (0..MAX_ARRANGED_FIELDS + 2)
        .map(|i| format!("f{i:02}"))
        .collect();
    let payloads: Vec<Map<String, Value>> = (0..n)
        .map(|o| {
            names
                .iter()
                .map(|f| (f.clone(), json!(format!("v{}", o % 3))))
                .collect()
        })
        .collect();
    let fields: Vec<(&str, FieldType)> = names
        .iter()
        .map(|f| (f.as_str(), FieldType::Keyword))
        .collect();
    // The last field by name is marked as the tenant: it goes first, and the eighth by name
    // is left out instead.
    let mut schema = schema(&fields);
    let last = names.last().unwrap();
    let params = json!({"type": "keyword", "is_tenant": true});
    schema.get_mut(last).unwrap().params = params.as_object().cloned();
    let mut indexes = SegmentIndexes::build(&schema, n, |o| &payloads[o as usize]);
    let vectors = crate::index::testing::random_vectors(n, 64, 1);
    indexes.arrange(&[Some(SignCodes::new(&vectors, 64)), None]);
    // One u64 per point (64 dimensions) per arranged field.
    assert_eq!(indexes.arranged_bytes(), MAX_ARRANGED_FIELDS * n * 8);
    let on = |field: &str| {
        let f = json!({"must": [{"key": field, "match": {"value": "v1"}}]});
        Filter::from_json(&f).unwrap()
    };
    let first = indexes
        .code_runs(0, &on(&names[0]))
        .expect("first field arranged");
    assert_eq!(first.len, (0..n).filter(|o| o % 3 == 1).count());
    assert!(first
        .runs
        .iter()
        .all(|r| first.order[r.clone()].iter().all(|o| o % 3 == 1)));
    assert!(indexes.code_runs(0, &on(last)).is_some());
    let eighth = &names[MAX_ARRANGED_FIELDS - 1];
    assert!(indexes.code_runs(0, &on(eighth)).is_none());
    assert!(indexes
        .code_runs(0, &on(&names[MAX_ARRANGED_FIELDS - 2]))
        .is_some());
    // A space without codes has nothing arranged.
    assert!(indexes.code_runs(1, &on(&names[0])).is_none());
}

/// The offsets `indexes` give for one condition (JSON), if they can answer it.
fn answer(indexes: &SegmentIndexes, condition: Value) -> Option<Vec<u32>> {
    let filter = Filter::from_json(&json!({ "must": [condition] })).unwrap();
    let Some(Condition::Field(c)) = filter.must.first() else {
        panic!("not a field condition");
    };
    indexes.answer(c).map(|(set, _)| set.iter().collect())
}

#[test]
fn restoring_rebuilds_fields_built_otherwise_and_rejects_damaged_bytes() {
    let payloads: Vec<Map<String, Value>> = (0..200)
        .map(|i| {
            let p = json!({"t": format!("w{}-a x{}", i % 7, i % 3), "n": i, "c": format!("c{}", i % 5)});
            p.as_object().cloned().unwrap()
        })
        .collect();
    let payload = |o: u32| &payloads[o as usize];
    let text = |tokenizer: &str| IndexSpec {
        data_type: FieldType::Text,
        params: json!({ "tokenizer": tokenizer }).as_object().cloned(),
    };
    let mut first = schema(&[("n", FieldType::Integer), ("c", FieldType::Keyword)]);
    first.insert("t".into(), text("word"));
    let bytes = SegmentIndexes::build(&first, 200, payload).encode();
    let same = SegmentIndexes::restore(&bytes, &first, 200, payload).unwrap();
    assert!(same.rebuilt.is_empty() && !same.stale);
    let word_a = json!({"key": "t", "match": {"text": "a"}});
    assert_eq!(
        answer(&same.indexes, word_a.clone()).map(|s| s.len()),
        Some(200)
    );
    // `t` now split on whitespace, `c` dropped, `flag` new: `t` and `flag` are built from
    // payloads, `n` is read from the bytes.
    let mut second = first.clone();
    second.insert("t".into(), text("whitespace"));
    second.remove("c");
    second.insert(
        "flag".into(),
        schema(&[("flag", FieldType::Bool)])["flag"].clone(),
    );
    let r = SegmentIndexes::restore(&bytes, &second, 200, payload).unwrap();
    let mut rebuilt = r.rebuilt.clone();
    rebuilt.sort();
    assert_eq!(rebuilt, ["flag", "t"]);
    assert!(r.stale);
    // "a" is no whitespace-separated word of any text; ranges on `n` still answer.
    assert_eq!(answer(&r.indexes, word_a), Some(vec![]));
    let low = json!({"key": "n", "range": {"lt": 10}});
    assert_eq!(answer(&r.indexes, low), Some((0..10).collect()));
    assert!(r.indexes.field(&parse_path("c").unwrap()).is_none());
    // A field dropped and nothing else: nothing to build, yet the file no longer fits.
    let mut third = first.clone();
    third.remove("c");
    let r = SegmentIndexes::restore(&bytes, &third, 200, payload).unwrap();
    assert!(r.rebuilt.is_empty() && r.stale);
    // Damage fails the whole restore: a byte short, a byte over, offsets past the segment.
    let short = &bytes[..bytes.len() - 1];
    assert!(SegmentIndexes::restore(short, &first, 200, payload).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(SegmentIndexes::restore(&long, &first, 200, payload).is_err());
    let past = SegmentIndexes::restore(&bytes, &first, 150, payload);
    assert!(past.is_err_and(|e| e.contains("past the segment")));
}
