//! The universal query as a tree: Qdrant's `QueryRequest` and `Prefetch` JSON parsed into
//! [`Node`]s, each with the [`Query`] that ranks its candidates. Points given by id are kept as
//! ids here; the evaluator looks their vectors up (in `lookup_from`'s collection, if set).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::SearchParamsBody;
use crate::api::models::{is_multi, kind, parse_dense, parse_multi, parse_sparse};
use crate::error::Invalid;
use crate::filter::Filter;
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;

/// One level of a query: its own prefetches (whose results it ranks), or the whole collection.
#[derive(Clone, Debug)]
pub struct Node {
    pub prefetch: Vec<Node>,
    pub query: Option<Query>,
    /// The vector space the query scores by ("" = the unnamed one).
    pub using: String,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub score_threshold: Option<f32>,
    pub limit: usize,
    pub lookup_from: Option<LookupFrom>,
}

/// Where vectors given by point id are read: another collection, and its vector name.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupFrom {
    pub collection: String,
    pub vector: Option<String>,
}

/// A vector as the request gives it: the numbers, a sparse vector, or the id of a point
/// that has it.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Vector(Vec<f32>),
    /// A multivector's vectors.
    Multi(Vec<Vec<f32>>),
    Sparse(SparseVector),
    Id(PointId),
}

/// A positive and a negative example (discovery and context search).
#[derive(Clone, Debug, PartialEq)]
pub struct Pair<T> {
    pub positive: T,
    pub negative: T,
}

/// How recommendations combine their examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Search by `2 × mean(positive) − mean(negative)` (the mean of positives alone when
    /// there are no negatives).
    AverageVector,
    /// Each point scored by its best positive or, when closer to a negative, by that.
    BestScore,
    /// Each point scored by its summed similarity to positives minus that to negatives.
    SumScores,
}

/// Maximal marginal relevance: re-rank the nearest `candidates_limit` for diversity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mmr {
    /// 0 = relevance only, 1 = diversity only.
    pub diversity: f32,
    pub candidates_limit: Option<usize>,
}

/// How prefetched results are fused.
#[derive(Clone, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: Σ weight / (rank + k), ranks from 1 (`k` is 2 unless given).
    Rrf { k: usize, weights: Option<Vec<f32>> },
    /// Distribution-based score fusion: scores normalised by mean ± 3σ, then summed.
    Dbsf,
}

/// What ranks a node's candidates.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Nearest {
        target: Input,
        mmr: Option<Mmr>,
    },
    Recommend {
        positive: Vec<Input>,
        negative: Vec<Input>,
        strategy: Strategy,
    },
    Discover {
        target: Input,
        context: Vec<Pair<Input>>,
    },
    Context(Vec<Pair<Input>>),
    /// Naive relevance feedback: a target, rated examples, and the coefficients a, b, c.
    Feedback {
        target: Input,
        examples: Vec<(Input, f32)>,
        coefficients: [f32; 3],
    },
    /// A payload key to order by (`order_by` of scroll), kept as sent.
    OrderBy(Value),
    Fusion(Fusion),
    /// Score boosting over the prefetches' results.
    Formula(super::formula::Formula),
    /// A random sample of the candidates.
    Sample,
}

impl Query {
    /// Every point id the query gives as an example, in order.
    pub fn ids(&self) -> Vec<PointId> {
        let mut inputs: Vec<&Input> = Vec::new();
        match self {
            Query::Nearest { target, .. } => inputs.push(target),
            Query::Recommend {
                positive, negative, ..
            } => inputs.extend(positive.iter().chain(negative)),
            Query::Discover { target, context } => {
                inputs.push(target);
                inputs.extend(context.iter().flat_map(|p| [&p.positive, &p.negative]));
            }
            Query::Context(pairs) => {
                inputs.extend(pairs.iter().flat_map(|p| [&p.positive, &p.negative]))
            }
            Query::Feedback {
                target, examples, ..
            } => {
                inputs.push(target);
                inputs.extend(examples.iter().map(|(e, _)| e));
            }
            Query::OrderBy(_) | Query::Fusion(_) | Query::Formula(_) | Query::Sample => {}
        }
        inputs
            .into_iter()
            .filter_map(|i| match i {
                Input::Id(id) => Some(*id),
                Input::Vector(_) | Input::Multi(_) | Input::Sparse(_) => None,
            })
            .collect()
    }
}

/// A prefetch as the JSON gives it.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefetchBody {
    /// Sub-requests whose results this one ranks (an object or a list), nested to any depth.
    #[schema(value_type = Option<Object>, no_recursion)]
    pub prefetch: Option<Value>,
    /// What ranks the candidates; see `QueryRequest.query`.
    #[schema(value_type = Option<Object>)]
    pub query: Option<Value>,
    pub using: Option<String>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsBody>,
    pub score_threshold: Option<f32>,
    /// How many candidates this level passes up (default 10).
    pub limit: Option<usize>,
    pub lookup_from: Option<LookupFrom>,
}

/// Parses `prefetch` (an object, a list of objects, or null) at path `what`.
pub fn prefetches(value: Option<Value>, what: &str) -> Result<Vec<Node>, Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => {
            return invalid!(
                "{what}: expected a prefetch object or a list of them, got {}",
                kind(&other)
            )
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{what}[{i}]");
            let body: PrefetchBody = serde_path_to_error::deserialize(item).map_err(|e| {
                let path = e.path().to_string();
                Invalid(format!("{at}.{path}: {}", e.into_inner()))
            })?;
            node(body, &at)
        })
        .collect()
}

/// A level's node, its own prefetches parsed recursively; `what` is its path in the request
/// ("" for the top level).
pub fn node(body: PrefetchBody, what: &str) -> Result<Node, Invalid> {
    let at = |field: &str| match what {
        "" => field.to_string(),
        _ => format!("{what}.{field}"),
    };
    Ok(Node {
        prefetch: prefetches(body.prefetch, &at("prefetch"))?,
        query: query(body.query, &at("query"))?,
        using: body.using.unwrap_or_default(),
        filter: body.filter,
        params: body.params,
        score_threshold: body.score_threshold,
        limit: body.limit.unwrap_or(10),
        lookup_from: body.lookup_from,
    })
}

/// Parses a `query` value: a vector, a point id, or one of the query objects.
pub fn query(value: Option<Value>, what: &str) -> Result<Option<Query>, Invalid> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(plain) => {
            let target = input(&plain, what)?;
            return Ok(Some(Query::Nearest { target, mmr: None }));
        }
    };
    if map.contains_key("formula") {
        return Ok(Some(Query::Formula(super::formula::parse(&map, what)?)));
    }
    if map.contains_key("indices") || map.contains_key("values") {
        let target = Input::Sparse(parse_sparse(&Value::Object(map), what)?);
        return Ok(Some(Query::Nearest { target, mmr: None }));
    }
    let key = single_key(&map, what, &["nearest", "mmr"])?;
    let at = |field: &str| format!("{what}.{field}");
    let body = &map[key.as_str()];
    let parsed = match key.as_str() {
        "nearest" => Query::Nearest {
            target: input(body, &at("nearest"))?,
            mmr: map.get("mmr").map(|m| mmr(m, &at("mmr"))).transpose()?,
        },
        "recommend" => recommend(body, &at("recommend"))?,
        "discover" => {
            let fields = object(body, &at("discover"), &["target", "context"])?;
            let target = fields
                .get("target")
                .ok_or_else(|| Invalid(format!("{what}.discover.target is required")))?;
            Query::Discover {
                target: input(target, &at("discover.target"))?,
                context: pairs(fields.get("context"), &at("discover.context"))?,
            }
        }
        "context" => Query::Context(pairs(Some(body), &at("context"))?),
        "order_by" => Query::OrderBy(body.clone()),
        "fusion" => match body.as_str() {
            Some("rrf") => Query::Fusion(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Some("dbsf") => Query::Fusion(Fusion::Dbsf),
            _ => return invalid!("{what}.fusion: expected \"rrf\" or \"dbsf\", got {body}"),
        },
        "rrf" => rrf(body, &at("rrf"))?,
        "sample" => match body.as_str() {
            Some("random") => Query::Sample,
            _ => return invalid!("{what}.sample: expected \"random\", got {body}"),
        },
        "relevance_feedback" => feedback(body, &at("relevance_feedback"))?,
        _ => {
            return invalid!(
                "{what}: unknown query `{key}`; expected a vector, a point id, or one of nearest, recommend, discover, context, relevance_feedback, order_by, fusion, rrf, formula, sample"
            )
        }
    };
    Ok(Some(parsed))
}

/// Qdrant's default `k` of reciprocal rank fusion.
pub const DEFAULT_RRF_K: usize = 2;

/// The one key of a query object (`mmr` may go beside `nearest`).
fn single_key(map: &Map<String, Value>, what: &str, pair: &[&str]) -> Result<String, Invalid> {
    let mut keys: Vec<&String> = map.keys().collect();
    if keys.len() == 2 && keys.iter().all(|k| pair.contains(&k.as_str())) {
        keys.retain(|k| k.as_str() == pair[0]);
    }
    match keys.as_slice() {
        [one] if one.as_str() != "mmr" => Ok((*one).clone()),
        [_] => invalid!("{what}: `mmr` goes beside `nearest`"),
        [] => invalid!("{what}: expected a query object with one key, got {{}}"),
        many => invalid!("{what}: expected one query kind, got {many:?}"),
    }
}

/// An object whose keys are all among `allowed`.
pub(super) fn object<'a>(
    value: &'a Value,
    what: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, Invalid> {
    let Value::Object(map) = value else {
        return invalid!("{what}: expected an object, got {}", kind(value));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return invalid!("{what}: unknown field `{unknown}`, expected one of {allowed:?}");
    }
    Ok(map)
}

/// A vector or a point id.
pub fn input(value: &Value, what: &str) -> Result<Input, Invalid> {
    match value {
        Value::Array(_) if is_multi(value) => Ok(Input::Multi(parse_multi(value, what)?)),
        Value::Array(_) => Ok(Input::Vector(parse_dense(value, what)?)),
        Value::Number(_) | Value::String(_) => PointId::from_json(value)
            .map(Input::Id)
            .map_err(|e| Invalid(format!("{what}: {e}"))),
        Value::Object(map) if map.contains_key("indices") || map.contains_key("values") => {
            parse_sparse(value, what).map(Input::Sparse)
        }
        other => invalid!(
            "{what}: expected a vector or a point id, got {}",
            kind(other)
        ),
    }
}

fn inputs(value: Option<&Value>, what: &str) -> Result<Vec<Input>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| input(v, &format!("{what}[{i}]")))
            .collect(),
        Some(other) => invalid!("{what}: expected a list, got {}", kind(other)),
    }
}

fn recommend(value: &Value, what: &str) -> Result<Query, Invalid> {
    let fields = object(value, what, &["positive", "negative", "strategy"])?;
    let strategy = match fields.get("strategy") {
        None | Some(Value::Null) => Strategy::AverageVector,
        Some(s) => Strategy::deserialize(s).map_err(|_| {
            Invalid(format!(
                "{what}.strategy: expected average_vector, best_score or sum_scores, got {s}"
            ))
        })?,
    };
    let positive = inputs(fields.get("positive"), &format!("{what}.positive"))?;
    let negative = inputs(fields.get("negative"), &format!("{what}.negative"))?;
    if strategy == Strategy::AverageVector && positive.is_empty() {
        return invalid!("{what}: the average_vector strategy needs at least one positive example");
    }
    if positive.is_empty() && negative.is_empty() {
        return invalid!("{what}: give at least one positive or negative example");
    }
    Ok(Query::Recommend {
        positive,
        negative,
        strategy,
    })
}

/// Context pairs: a list of `{positive, negative}` objects, or one such object.
fn pairs(value: Option<&Value>, what: &str) -> Result<Vec<Pair<Input>>, Invalid> {
    let items: Vec<&Value> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => return invalid!("{what}: expected a list of pairs, got {}", kind(other)),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{what}[{i}]");
            let fields = object(item, &at, &["positive", "negative"])?;
            let side = |name: &str| {
                let v = fields
                    .get(name)
                    .ok_or_else(|| Invalid(format!("{at}.{name} is required")))?;
                input(v, &format!("{at}.{name}"))
            };
            Ok(Pair {
                positive: side("positive")?,
                negative: side("negative")?,
            })
        })
        .collect()
}

/// `{"target": v, "feedback": [{"example": v, "score": s}], "strategy": {"naive": {a, b, c}}}`.
fn feedback(value: &Value, what: &str) -> Result<Query, Invalid> {
    let fields = object(value, what, &["target", "feedback", "strategy"])?;
    let target = fields
        .get("target")
        .ok_or_else(|| Invalid(format!("{what}.target is required")))?;
    let items = match fields.get("feedback") {
        Some(Value::Array(items)) => items,
        _ => return invalid!("{what}.feedback: expected a list of {{example, score}}"),
    };
    let examples = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{what}.feedback[{i}]");
            let f = object(item, &at, &["example", "score"])?;
            let example = f
                .get("example")
                .ok_or_else(|| Invalid(format!("{at}.example is required")))?;
            let score = f.get("score").and_then(Value::as_f64);
            let score = score.ok_or_else(|| Invalid(format!("{at}.score: expected a number")))?;
            Ok((input(example, &format!("{at}.example"))?, score as f32))
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    let strategy = fields.get("strategy").unwrap_or(&Value::Null);
    let naive = object(strategy, &format!("{what}.strategy"), &["naive"])?
        .get("naive")
        .ok_or_else(|| {
            Invalid(format!(
                "{what}.strategy: expected {{\"naive\": {{a, b, c}}}}"
            ))
        })?;
    let params = object(naive, &format!("{what}.strategy.naive"), &["a", "b", "c"])?;
    let mut coefficients = [0.0f32; 3];
    for (slot, name) in coefficients.iter_mut().zip(["a", "b", "c"]) {
        *slot =
            params.get(name).and_then(Value::as_f64).ok_or_else(|| {
                Invalid(format!("{what}.strategy.naive.{name}: expected a number"))
            })? as f32;
    }
    if coefficients[1] < 0.0 {
        return invalid!(
            "{what}.strategy.naive.b must be 0 or larger, got {}",
            coefficients[1]
        );
    }
    Ok(Query::Feedback {
        target: input(target, &format!("{what}.target"))?,
        examples,
        coefficients,
    })
}

fn mmr(value: &Value, what: &str) -> Result<Mmr, Invalid> {
    let fields = object(value, what, &["diversity", "candidates_limit"])?;
    let diversity = match fields.get("diversity") {
        None | Some(Value::Null) => 0.5,
        Some(d) => match d.as_f64() {
            Some(d) if (0.0..=1.0).contains(&d) => d as f32,
            _ => return invalid!("{what}.diversity: expected a number from 0 to 1, got {d}"),
        },
    };
    let candidates_limit = match fields.get("candidates_limit") {
        None | Some(Value::Null) => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| {
            Invalid(format!(
                "{what}.candidates_limit: expected a non-negative integer, got {n}"
            ))
        })? as usize),
    };
    Ok(Mmr {
        diversity,
        candidates_limit,
    })
}

fn rrf(value: &Value, what: &str) -> Result<Query, Invalid> {
    let fields = object(value, what, &["k", "weights"])?;
    let k = match fields.get("k") {
        None | Some(Value::Null) => DEFAULT_RRF_K,
        Some(k) => match k.as_u64() {
            Some(k) if k >= 1 => k as usize,
            _ => return invalid!("{what}.k: expected a positive integer, got {k}"),
        },
    };
    let weights = match fields.get("weights") {
        None | Some(Value::Null) => None,
        Some(w) => Some(parse_dense(w, &format!("{what}.weights"))?),
    };
    if let Some(w) = weights.iter().flatten().find(|w| **w < 0.0) {
        return invalid!("{what}.weights: weights must not be negative, got {w}");
    }
    Ok(Query::Fusion(Fusion::Rrf { k, weights }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Option<Query>, Invalid> {
        query(Some(v), "query")
    }

    #[test]
    fn plain_forms_are_nearest() {
        let q = parse(json!([1.0, 2.0])).unwrap().unwrap();
        assert_eq!(
            q,
            Query::Nearest {
                target: Input::Vector(vec![1.0, 2.0]),
                mmr: None
            }
        );
        let q = parse(json!(7)).unwrap().unwrap();
        assert_eq!(q.ids(), vec![PointId::Num(7)]);
    }

    #[test]
    fn nearest_with_mmr_and_defaults() {
        let q = parse(json!({"nearest": [1.0], "mmr": {"candidates_limit": 30}}))
            .unwrap()
            .unwrap();
        let Query::Nearest { mmr: Some(m), .. } = q else {
            panic!("expected nearest with mmr, got {q:?}")
        };
        assert_eq!(m.diversity, 0.5);
        assert_eq!(m.candidates_limit, Some(30));
        let bad = parse(json!({"nearest": [1.0], "mmr": {"diversity": 2}})).unwrap_err();
        assert!(bad.0.contains("query.mmr.diversity"), "{bad}");
    }

    #[test]
    fn recommend_checks_its_examples() {
        let q = parse(json!({"recommend": {"positive": [1, [0.5]], "strategy": "best_score"}}))
            .unwrap()
            .unwrap();
        assert_eq!(q.ids(), vec![PointId::Num(1)]);
        let none = parse(json!({"recommend": {"negative": [2]}})).unwrap_err();
        assert!(none.0.contains("average_vector"), "{none}");
        let bad = parse(json!({"recommend": {"positive": [1], "strategy": "max"}})).unwrap_err();
        assert!(bad.0.contains("query.recommend.strategy"), "{bad}");
    }

    #[test]
    fn fusion_forms() {
        let rrf = parse(json!({"fusion": "rrf"})).unwrap().unwrap();
        assert_eq!(
            rrf,
            Query::Fusion(Fusion::Rrf {
                k: 2,
                weights: None
            })
        );
        let k = parse(json!({"rrf": {"k": 60}})).unwrap().unwrap();
        assert_eq!(
            k,
            Query::Fusion(Fusion::Rrf {
                k: 60,
                weights: None
            })
        );
        assert!(parse(json!({"fusion": "max"})).is_err());
        assert!(parse(json!({"rrf": {"k": 0}})).is_err());
    }

    #[test]
    fn discover_and_context_pairs() {
        let q = parse(
            json!({"discover": {"target": 1, "context": [{"positive": 2, "negative": [0.1]}]}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.ids(), vec![PointId::Num(1), PointId::Num(2)]);
        let one = parse(json!({"context": {"positive": 3, "negative": 4}}))
            .unwrap()
            .unwrap();
        assert_eq!(one.ids().len(), 2);
        let missing = parse(json!({"context": [{"positive": 3}]})).unwrap_err();
        assert!(missing.0.contains("query.context[0].negative"), "{missing}");
    }

    #[test]
    fn unknown_and_unsupported_kinds_say_so() {
        let e = parse(json!({"closest": [1.0]})).unwrap_err();
        assert!(e.0.contains("unknown query `closest`"), "{e}");
        let sparse = parse(json!({"nearest": {"indices": [4, 1], "values": [1.0, 0.5]}}));
        let expected = SparseVector::new(vec![1, 4], vec![0.5, 1.0]).unwrap();
        assert!(matches!(
            sparse.unwrap().unwrap(),
            Query::Nearest { target: Input::Sparse(v), .. } if v == expected
        ));
        let e = parse(json!({"indices": [1, 1], "values": [1.0, 2.0]})).unwrap_err();
        assert!(e.0.contains("indices must be unique"), "{e}");
        let e = parse(json!({"nearest": [1.0], "recommend": {}})).unwrap_err();
        assert!(e.0.contains("one query kind"), "{e}");
    }

    #[test]
    fn prefetch_nests_and_names_paths() {
        let nodes = prefetches(
            Some(json!([{"query": [1.0], "limit": 5, "prefetch": {"query": 3}}])),
            "prefetch",
        )
        .unwrap();
        assert_eq!(nodes[0].limit, 5);
        assert_eq!(nodes[0].prefetch[0].limit, 10);
        let e = prefetches(Some(json!({"prefetch": [{"limt": 3}]})), "prefetch").unwrap_err();
        assert!(e.0.starts_with("prefetch[0].prefetch[0]"), "{e}");
    }
}
