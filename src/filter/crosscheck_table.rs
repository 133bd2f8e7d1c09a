//! Expected ids computed with qdrant-client local mode by tests/crosscheck/table.py, which
//! recomputes them from the points and filters here. Regenerate instead of editing by hand.

/// Points as `{id, payload, extra}`; `extra` says whether the point has vector "extra".
pub(super) const POINTS: &str = r#"[
  {"id": 1, "payload": {"city": "Berlin", "count": 10, "price": 10.5, "flag": true, "tags": ["a", "b"]}, "extra": true},
  {"id": 2, "payload": {"city": "London", "count": 0, "price": 0.0, "flag": false, "tags": ["b", "c"]}, "extra": true},
  {"id": 3, "payload": {"city": ["Berlin", "Moscow"], "count": [1, 2, 3]}, "extra": false},
  {"id": 4, "payload": {"city": null, "count": null}, "extra": true},
  {"id": 5, "payload": {}, "extra": true},
  {"id": 6, "payload": {"city": [], "tags": []}, "extra": false},
  {"id": 7, "payload": {"city": [null], "tags": [null, "a"]}, "extra": true},
  {"id": 8, "payload": {"count": 1.0, "price": 1}, "extra": true},
  {"id": 9, "payload": {"count": 1, "price": 1.5}, "extra": false},
  {"id": 10, "payload": {"count": true, "flag": 1}, "extra": true},
  {"id": 11, "payload": {"count": "1", "city": "1"}, "extra": true},
  {"id": 12, "payload": {"count": -5, "price": -2.5}, "extra": false},
  {"id": 13, "payload": {"count": 9007199254740993, "price": 1e+300}, "extra": true},
  {"id": 14, "payload": {"count": [1.0, 2.0], "price": [1, 2]}, "extra": true},
  {"id": 15, "payload": {"nested": {"a": {"b": 1}}}, "extra": false},
  {"id": 16, "payload": {"nested": {"a": {"b": [1, 2]}}}, "extra": true},
  {"id": 17, "payload": {"nested": {"a": [{"b": 1}, {"b": 3}]}}, "extra": true},
  {"id": 18, "payload": {"country": {"cities": [{"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]}, {"name": "Munich", "population": 1.5}]}}, "extra": false},
  {"id": 19, "payload": {"country": {"cities": [{"name": "London", "population": 8.9, "sightseeing": ["Big Ben"]}]}}, "extra": true},
  {"id": 20, "payload": {"country": {"cities": []}}, "extra": true},
  {"id": 21, "payload": {"country": {"cities": {"name": "Berlin", "population": 3.7}}}, "extra": false},
  {"id": 22, "payload": {"country": [{"cities": [{"name": "Paris", "population": 2.1}]}]}, "extra": true},
  {"id": 23, "payload": {"diet": [{"food": "meat", "likes": true}, {"food": "leaves", "likes": false}]}, "extra": true},
  {"id": 24, "payload": {"diet": [{"food": "meat", "likes": false}, {"food": "leaves", "likes": true}]}, "extra": false},
  {"id": 25, "payload": {"diet": [{"food": "meat", "likes": true}]}, "extra": true},
  {"id": 26, "payload": {"diet": {"food": "meat", "likes": true}}, "extra": true},
  {"id": 27, "payload": {"diet": [1, "meat", {"food": "meat", "likes": true}]}, "extra": false},
  {"id": 28, "payload": {"diet": []}, "extra": true},
  {"id": 29, "payload": {"matrix": [[1, 2], [3, 4]]}, "extra": true},
  {"id": 30, "payload": {"matrix": [[], []]}, "extra": false},
  {"id": 31, "payload": {"matrix": [1, [2]]}, "extra": true},
  {"id": 32, "payload": {"mixed": [1, "1", 1.0, true, null]}, "extra": true},
  {"id": 33, "payload": {"mixed": {"1": 1}}, "extra": false},
  {"id": 34, "payload": {"city": "berlin", "tags": "a"}, "extra": true},
  {"id": 35, "payload": {"city": "Berlin ", "count": 2}, "extra": true},
  {"id": 36, "payload": {"count": [], "price": []}, "extra": false},
  {"id": 37, "payload": {"count": [null, null]}, "extra": true},
  {"id": 38, "payload": {"count": [[1, 2], 3]}, "extra": true},
  {"id": 39, "payload": {"flag": [true, false]}, "extra": false},
  {"id": 40, "payload": {"flag": null}, "extra": true},
  {"id": 41, "payload": {"a.b": 5, "a": {"b": 6}}, "extra": true},
  {"id": 42, "payload": {"arr": [{"x": 1}, {"x": 2}]}, "extra": false},
  {"id": 43, "payload": {"arr": [[{"x": 1}]]}, "extra": true},
  {"id": 44, "payload": {"arr": {"x": [5, 6]}}, "extra": true},
  {"id": 45, "payload": {"city": "Moscow", "count": 100, "price": 99.99}, "extra": false},
  {"id": 46, "payload": {"city": "Тбилиси", "count": 7}, "extra": true},
  {"id": 47, "payload": {"count": 18446744073709551615}, "extra": true},
  {"id": 48, "payload": {"deep": {"l1": {"l2": {"l3": {"l4": "bottom"}}}}}, "extra": false},
  {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "payload": {"city": "Berlin", "count": 3}, "extra": true},
  {"id": "a2f1e0d3-0000-4000-8000-000000000002", "payload": {"nested": {"a": null}}, "extra": false}
]"#;

/// (filter JSON, ids local mode matched, in scroll order).
pub(super) const CASES: &[(&str, &str)] = &[
    (
        r#"{"must": [{"key": "city", "match": {"value": "Berlin"}}]}"#,
        r#"[1, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"value": "1"}}]}"#,
        r#"[11]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"value": 1}}]}"#,
        r#"[3, 9]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"value": true}}]}"#,
        r#"[10]"#,
    ),
    (
        r#"{"must": [{"key": "flag", "match": {"value": true}}]}"#,
        r#"[1, 39]"#,
    ),
    (
        r#"{"must": [{"key": "flag", "match": {"value": false}}]}"#,
        r#"[2, 39]"#,
    ),
    (
        r#"{"must": [{"key": "price", "match": {"value": 1}}]}"#,
        r#"[8, 14]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"value": 0}}]}"#,
        r#"[2]"#,
    ),
    (
        r#"{"must": [{"key": "mixed", "match": {"value": 1}}]}"#,
        r#"[32]"#,
    ),
    (
        r#"{"must": [{"key": "mixed", "match": {"value": true}}]}"#,
        r#"[32]"#,
    ),
    (
        r#"{"must": [{"key": "mixed", "match": {"value": "1"}}]}"#,
        r#"[32]"#,
    ),
    (
        r#"{"must": [{"key": "tags", "match": {"value": "a"}}]}"#,
        r#"[1, 7, 34]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"any": ["Berlin", "London"]}}]}"#,
        r#"[1, 2, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"any": [1, 2]}}]}"#,
        r#"[3, 9, 35]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"any": []}}]}"#,
        r#"[]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"any": ["City0", "City1", "City2", "City3", "City4", "City5", "City6", "City7", "City8", "City9", "City10", "City11", "City12", "City13", "City14", "City15", "City16", "City17", "City18", "City19", "Moscow"]}}]}"#,
        r#"[3, 45]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"except": ["Berlin"]}}]}"#,
        r#"[2, 3, 11, 34, 35, 45, 46]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"except": [1]}}]}"#,
        r#"[1, 2, 3, 8, 10, 11, 12, 13, 14, 35, 38, 45, 46, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "match": {"except": []}}]}"#,
        r#"[1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 35, 38, 45, 46, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "flag", "match": {"except": [1]}}]}"#,
        r#"[1, 2, 39]"#,
    ),
    (
        r#"{"must_not": [{"key": "city", "match": {"except": ["Berlin"]}}]}"#,
        r#"[1, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"key": "tags", "match": {"except": ["a"]}}]}"#,
        r#"[1, 2]"#,
    ),
    (
        r#"{"must": [{"key": "count", "range": {"gte": 1, "lte": 3}}]}"#,
        r#"[3, 8, 9, 14, 35, 38, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "price", "range": {"gt": 1}}]}"#,
        r#"[1, 9, 13, 14, 45]"#,
    ),
    (
        r#"{"must": [{"key": "count", "range": {"lt": 0}}]}"#,
        r#"[12]"#,
    ),
    (
        r#"{"must": [{"key": "count", "range": {}}]}"#,
        r#"[1, 2, 3, 8, 9, 12, 13, 14, 35, 38, 45, 46, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "range": {"gte": 1e+19}}]}"#,
        r#"[47]"#,
    ),
    (
        r#"{"must": [{"key": "price", "range": {"gte": 1e+299}}]}"#,
        r#"[13]"#,
    ),
    (
        r#"{"must": [{"key": "flag", "range": {"gte": 0}}]}"#,
        r#"[10]"#,
    ),
    (
        r#"{"must": [{"key": "count", "values_count": {"gte": 2}}]}"#,
        r#"[3, 14, 37, 38]"#,
    ),
    (
        r#"{"must": [{"key": "count", "values_count": {"lt": 1}}]}"#,
        r#"[4, 5, 6, 7, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 36, 39, 40, 41, 42, 43, 44, 48, "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "values_count": {"gte": 1, "lte": 1}}]}"#,
        r#"[1, 2, 8, 9, 10, 11, 12, 13, 35, 45, 46, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "city", "values_count": {"lte": 0}}]}"#,
        r#"[4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 48, "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "values_count": {"gt": 2}}]}"#,
        r#"[3]"#,
    ),
    (
        r#"{"must": [{"is_empty": {"key": "city"}}]}"#,
        r#"[4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 48, "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (r#"{"must": [{"is_null": {"key": "city"}}]}"#, r#"[4, 7]"#),
    (
        r#"{"must": [{"key": "city", "is_empty": false}]}"#,
        r#"[1, 2, 3, 7, 11, 34, 35, 45, 46, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"key": "count", "is_null": true}]}"#,
        r#"[4, 37]"#,
    ),
    (
        r#"{"must": [{"is_empty": {"key": "tags"}}]}"#,
        r#"[3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"is_null": {"key": "nested.a"}}]}"#,
        r#"["a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"is_empty": {"key": "country.cities"}}]}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"is_empty": {"key": "country.cities[].name"}}]}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"has_id": [1, 2, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}]}"#,
        r#"[1, 2, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must_not": [{"has_id": [1, 2, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}]}"#,
        r#"[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (r#"{"must": [{"has_id": []}]}"#, r#"[]"#),
    (
        r#"{"must": [{"nested": {"key": "diet", "filter": {"must": [{"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]}}}]}"#,
        r#"[23, 25, 27]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "diet[]", "filter": {"must": [{"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]}}}]}"#,
        r#"[23, 25, 27]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "country.cities", "filter": {"must": [{"key": "population", "range": {"gt": 2}}]}}}]}"#,
        r#"[18, 19]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "diet", "filter": {"must_not": [{"key": "likes", "match": {"value": true}}]}}}]}"#,
        r#"[23, 24]"#,
    ),
    (
        r#"{"must_not": [{"nested": {"key": "diet", "filter": {"must": [{"has_id": [23, 24, 25]}]}}}]}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "x", "match": {"value": 1}}]}}}]}"#,
        r#"[42]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "country[].cities", "filter": {"must": [{"key": "name", "match": {"value": "Paris"}}]}}}]}"#,
        r#"[22]"#,
    ),
    (
        r#"{"must": [{"key": "country.cities[].population", "range": {"gt": 2}}]}"#,
        r#"[18, 19]"#,
    ),
    (
        r#"{"must": [{"key": "country.cities[].sightseeing", "match": {"value": "Big Ben"}}]}"#,
        r#"[19]"#,
    ),
    (
        r#"{"must": [{"key": "country.cities.name", "match": {"value": "Berlin"}}]}"#,
        r#"[21]"#,
    ),
    (
        r#"{"must": [{"key": "nested.a.b", "match": {"value": 1}}]}"#,
        r#"[15, 16]"#,
    ),
    (
        r#"{"must": [{"key": "arr.x", "match": {"value": 1}}]}"#,
        r#"[]"#,
    ),
    (
        r#"{"must": [{"key": "arr[].x", "match": {"value": 1}}]}"#,
        r#"[42]"#,
    ),
    (
        r#"{"must": [{"key": "arr[0].x", "match": {"value": 1}}]}"#,
        r#"[42]"#,
    ),
    (
        r#"{"must": [{"key": "arr[1].x", "match": {"value": 1}}]}"#,
        r#"[]"#,
    ),
    (
        r#"{"must": [{"key": "matrix[][]", "match": {"value": 3}}]}"#,
        r#"[29]"#,
    ),
    (
        r#"{"must": [{"key": "matrix[]", "match": {"value": 1}}]}"#,
        r#"[29, 31]"#,
    ),
    (
        r#"{"must": [{"key": "matrix[]", "match": {"value": 2}}]}"#,
        r#"[29, 31]"#,
    ),
    (
        r#"{"must": [{"key": "matrix", "match": {"value": 1}}]}"#,
        r#"[31]"#,
    ),
    (
        r#"{"must": [{"key": "\"a.b\"", "match": {"value": 5}}]}"#,
        r#"[41]"#,
    ),
    (
        r#"{"must": [{"key": "a.b", "match": {"value": 6}}]}"#,
        r#"[41]"#,
    ),
    (
        r#"{"must": [{"key": "deep.l1.l2.l3.l4", "match": {"value": "bottom"}}]}"#,
        r#"[48]"#,
    ),
    (
        r#"{"should": [{"key": "city", "match": {"value": "Berlin"}}, {"key": "count", "range": {"gt": 50}}]}"#,
        r#"[1, 3, 13, 45, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"should": []}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": []}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must_not": []}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"min_should": {"conditions": [{"key": "city", "match": {"value": "Berlin"}}, {"key": "flag", "match": {"value": true}}, {"key": "count", "range": {"gte": 1}}], "min_count": 2}}"#,
        r#"[1, 3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"min_should": {"conditions": [], "min_count": 1}}"#,
        r#"[]"#,
    ),
    (
        r#"{"must": {"key": "city", "match": {"value": "London"}}}"#,
        r#"[2]"#,
    ),
    (
        r#"{"must": [{"should": [{"key": "city", "match": {"value": "Berlin"}}, {"key": "city", "match": {"value": "Moscow"}}]}, {"must_not": [{"key": "count", "range": {"gt": 5}}]}]}"#,
        r#"[3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must": [{"has_vector": "extra"}]}"#,
        r#"[1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26, 28, 29, 31, 32, 34, 35, 37, 38, 40, 41, 43, 44, 46, 47, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#,
    ),
    (
        r#"{"must_not": [{"has_vector": "extra"}]}"#,
        r#"[3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"should": [{}]}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"is_empty": {"key": "diet[].food"}}]}"#,
        r#"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 26, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "a2f1e0d3-0000-4000-8000-000000000002"]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"value": "Тбилиси"}}]}"#,
        r#"[46]"#,
    ),
    (
        r#"{"must": [{"key": "city", "match": {"value": "berlin"}}]}"#,
        r#"[34]"#,
    ),
    (
        r#"{"must": [{"nested": {"key": "diet", "filter": {"must": [{"has_vector": "extra"}]}}}]}"#,
        r#"[]"#,
    ),
    (
        r#"{"must": [{"key": "flag", "match": {"value": 1}}]}"#,
        r#"[10]"#,
    ),
    (
        r#"{"must_not": [{"is_empty": {"key": "count"}}], "should": [{"key": "count", "range": {"lte": 2}}]}"#,
        r#"[2, 3, 8, 9, 12, 14, 35]"#,
    ),
];
