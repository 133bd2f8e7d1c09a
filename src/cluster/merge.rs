//! Merging the answers of a collection's shards into the answer one collection would give.
//! Pure functions over the API's JSON results, so each rule is tested on its own.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::point_id::PointId;

/// How merged points are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By score, highest first (cosine, dot).
    HigherFirst,
    /// By score, lowest first (distances).
    LowerFirst,
    /// By id (a query without a vector lists points).
    ById,
    /// By `order_value` (an `order_by` query), then by id.
    ByValue { descending: bool },
    /// In an order drawn for this merge (a random sample).
    Shuffled,
}

fn id_of(point: &Value) -> Option<PointId> {
    PointId::from_json(point.get("id")?).ok()
}

fn by_id(a: &Value, b: &Value) -> Ordering {
    id_of(a).cmp(&id_of(b))
}

fn number(point: &Value, field: &str) -> f64 {
    point.get(field).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Compares by `field` (ascending unless `descending`), then by id so ties fall the same way
/// whichever shard answered first.
fn by_number(a: &Value, b: &Value, field: &str, descending: bool) -> Ordering {
    let (x, y) = (number(a, field), number(b, field));
    let order = x.total_cmp(&y);
    let order = if descending { order.reverse() } else { order };
    order.then_with(|| by_id(a, b))
}

/// The page `offset..offset + limit` of the points of every shard. Each shard was asked for
/// its best `offset + limit`, so the page is exact.
pub fn top_k(lists: Vec<Vec<Value>>, order: Order, offset: usize, limit: usize) -> Vec<Value> {
    let mut all: Vec<Value> = lists.into_iter().flatten().collect();
    match order {
        Order::HigherFirst => all.sort_by(|a, b| by_number(a, b, "score", true)),
        Order::LowerFirst => all.sort_by(|a, b| by_number(a, b, "score", false)),
        Order::ById => all.sort_by(by_id),
        Order::ByValue { descending } => {
            all.sort_by(|a, b| by_number(a, b, "order_value", descending))
        }
        Order::Shuffled => {
            use std::hash::BuildHasher;
            let key = std::collections::hash_map::RandomState::new();
            all.sort_by_cached_key(|p| key.hash_one(id_of(p)));
        }
    }
    all.into_iter().skip(offset).take(limit).collect()
}

/// One scroll page from the shards' pages of the same request. In id order, the page is the
/// first `limit` points, and the next page starts at the first point left out, whether a
/// shard returned it or only pointed at it. With `order_by`, points are ordered by their
/// `order_value` and there is no next offset (pages continue with `start_from`).
pub fn scroll(pages: Vec<Value>, limit: usize, order_by: Option<bool>) -> Value {
    let mut points = Vec::new();
    let mut next: Vec<PointId> = Vec::new();
    for page in pages {
        if let Some(Value::Array(list)) = page.get("points") {
            points.extend(list.iter().cloned());
        }
        if let Some(id) = page.get("next_page_offset").filter(|v| !v.is_null()) {
            next.extend(PointId::from_json(id).ok());
        }
    }
    match order_by {
        Some(descending) => points.sort_by(|a, b| by_number(a, b, "order_value", descending)),
        None => points.sort_by(by_id),
    }
    if points.len() > limit {
        next.extend(id_of(&points[limit]));
        points.truncate(limit);
    }
    let next = match order_by {
        Some(_) => None,
        None => next.into_iter().min(),
    };
    json!({ "points": points, "next_page_offset": next })
}

/// Orders facet values as one collection does: numbers by value, strings and booleans in
/// their own order (a field's values have one type).
fn by_value(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The sum of the shards' `count`.
pub fn count(results: &[Value]) -> Value {
    let total: u64 = results
        .iter()
        .filter_map(|r| r.get("count").and_then(Value::as_u64))
        .sum();
    json!({ "count": total })
}

/// Facet hits summed by value, most frequent first (ties by value), cut to `limit`. Each shard
/// counted exactly, but a value outside one shard's top `limit` is missed there; shards are
/// asked for a generous limit to make that rare.
pub fn facet(results: &[Value], limit: usize) -> Value {
    let mut counts: BTreeMap<String, (Value, u64)> = BTreeMap::new();
    for result in results {
        let Some(Value::Array(hits)) = result.get("hits") else {
            continue;
        };
        for hit in hits {
            let value = hit.get("value").cloned().unwrap_or(Value::Null);
            let n = hit.get("count").and_then(Value::as_u64).unwrap_or(0);
            counts.entry(value.to_string()).or_insert((value, 0)).1 += n;
        }
    }
    let mut hits: Vec<(Value, u64)> = counts.into_values().collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| by_value(&a.0, &b.0)));
    let hits: Vec<Value> = hits
        .into_iter()
        .take(limit)
        .map(|(value, count)| json!({ "value": value, "count": count }))
        .collect();
    json!({ "hits": hits })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(id: u64, score: f64) -> Value {
        json!({ "id": id, "version": 1, "score": score })
    }

    fn ids(points: &[Value]) -> Vec<u64> {
        points.iter().map(|p| p["id"].as_u64().unwrap()).collect()
    }

    #[test]
    fn top_k_pages_across_shards_in_either_direction() {
        let lists = || {
            vec![
                vec![scored(1, 0.9), scored(4, 0.5), scored(6, 0.1)],
                vec![scored(2, 0.8), scored(3, 0.7)],
                vec![],
            ]
        };
        assert_eq!(ids(&top_k(lists(), Order::HigherFirst, 0, 3)), [1, 2, 3]);
        assert_eq!(ids(&top_k(lists(), Order::HigherFirst, 2, 2)), [3, 4]);
        assert_eq!(ids(&top_k(lists(), Order::LowerFirst, 0, 2)), [6, 4]);
        assert_eq!(ids(&top_k(lists(), Order::ById, 1, 10)), [2, 3, 4, 6]);
    }

    #[test]
    fn equal_scores_fall_by_id() {
        let lists = vec![vec![scored(9, 0.5)], vec![scored(3, 0.5)]];
        assert_eq!(ids(&top_k(lists, Order::HigherFirst, 0, 2)), [3, 9]);
    }

    fn page(points: &[u64], next: Option<u64>) -> Value {
        let points: Vec<Value> = points.iter().map(|id| json!({ "id": id })).collect();
        json!({ "points": points, "next_page_offset": next })
    }

    #[test]
    fn scroll_continues_at_the_first_point_left_out() {
        // Shard pages of limit 3 from offset 0.
        let pages = vec![page(&[1, 4, 7], Some(9)), page(&[2, 3, 5], Some(8))];
        let merged = scroll(pages, 3, None);
        assert_eq!(ids(merged["points"].as_array().unwrap()), [1, 2, 3]);
        assert_eq!(merged["next_page_offset"], json!(4));
        // The last page: no shard has more.
        let merged = scroll(vec![page(&[7], None), page(&[8], None)], 3, None);
        assert_eq!(ids(merged["points"].as_array().unwrap()), [7, 8]);
        assert_eq!(merged["next_page_offset"], Value::Null);
        // Exactly full, but a shard has more.
        let merged = scroll(vec![page(&[1, 2], Some(6)), page(&[3], None)], 3, None);
        assert_eq!(merged["next_page_offset"], json!(6));
    }

    #[test]
    fn scroll_by_order_value() {
        let point = |id: u64, v: i64| json!({ "id": id, "order_value": v });
        let pages = vec![
            json!({ "points": [point(1, 5), point(2, 9)], "next_page_offset": null }),
            json!({ "points": [point(3, 7)], "next_page_offset": null }),
        ];
        let merged = scroll(pages.clone(), 2, Some(true));
        assert_eq!(ids(merged["points"].as_array().unwrap()), [2, 3]);
        let merged = scroll(pages, 2, Some(false));
        assert_eq!(ids(merged["points"].as_array().unwrap()), [1, 3]);
    }

    #[test]
    fn counts_and_facets_add_up() {
        assert_eq!(
            count(&[json!({"count": 3}), json!({"count": 4})]),
            json!({"count": 7})
        );
        let a = json!({"hits": [{"value": "x", "count": 5}, {"value": "y", "count": 1}]});
        let b = json!({"hits": [{"value": "y", "count": 5}, {"value": 3, "count": 2}]});
        let merged = facet(&[a, b], 2);
        assert_eq!(
            merged,
            json!({"hits": [{"value": "y", "count": 6}, {"value": "x", "count": 5}]})
        );
        // Equal counts fall by value, numbers by their size.
        let a = json!({"hits": [{"value": 10, "count": 2}, {"value": 2, "count": 1}]});
        let b = json!({"hits": [{"value": 2, "count": 1}]});
        assert_eq!(
            facet(&[a, b], 5),
            json!({"hits": [{"value": 2, "count": 2}, {"value": 10, "count": 2}]})
        );
    }
}
