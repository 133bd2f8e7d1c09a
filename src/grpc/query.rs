//! Search requests in the REST dialect: the universal query (prefetches, every query kind,
//! formulas), the legacy search, recommend and discover, and their grouped forms.

use serde_json::{json, Map, Value};
use tonic::Status;

use super::call::{collection, Call};
use super::common::{
    bad_arg, consistency, filter, number, object, optional_filter, point_id, put, required,
    shard_key, vector, vector_input, with_payload, with_vectors,
};
use super::{json, proto};

/// `?consistency=` and `?timeout=` of a read.
pub struct ReadParams {
    pub consistency: Option<String>,
    pub timeout: Option<u64>,
}

impl ReadParams {
    pub fn new(c: Option<proto::ReadConsistency>, timeout: Option<u64>) -> ReadParams {
        ReadParams {
            consistency: consistency(c),
            timeout,
        }
    }

    /// A read's call: `?consistency=` and `?timeout=` beside its body.
    pub fn call(self, path: String, body: Value) -> Call {
        Call::read(path, body)
            .param("consistency", self.consistency)
            .param("timeout", self.timeout)
    }
}

fn params(p: proto::SearchParams) -> Result<Value, Status> {
    let mut out = Map::new();
    put(&mut out, "hnsw_ef", p.hnsw_ef);
    put(&mut out, "exact", p.exact);
    put(&mut out, "indexed_only", p.indexed_only);
    if let Some(q) = p.quantization {
        let mut quant = Map::new();
        put(&mut quant, "ignore", q.ignore);
        put(&mut quant, "rescore", q.rescore);
        put(&mut quant, "oversampling", q.oversampling);
        out.insert("quantization".into(), Value::Object(quant));
    }
    if let Some(a) = p.acorn {
        let mut acorn = Map::new();
        put(&mut acorn, "enable", a.enable);
        put(&mut acorn, "max_selectivity", a.max_selectivity);
        out.insert("acorn".into(), Value::Object(acorn));
    }
    if let Some(idf) = p.idf {
        let idf = match idf.corpus {
            Some(corpus) => object!({ "corpus": filter(corpus)? }),
            None => json!("global"),
        };
        out.insert("idf".into(), idf);
    }
    Ok(Value::Object(out))
}

fn lookup_from(l: proto::LookupLocation) -> Value {
    let mut out = Map::new();
    out.insert("collection".into(), json!(l.collection_name));
    put(&mut out, "vector", l.vector_name);
    Value::Object(out)
}

fn with_lookup(w: proto::WithLookup) -> Value {
    let mut out = Map::new();
    out.insert("collection".into(), json!(w.collection));
    put(&mut out, "with_payload", with_payload(w.with_payload));
    put(&mut out, "with_vectors", with_vectors(w.with_vectors));
    Value::Object(out)
}

fn strategy(s: i32) -> Result<&'static str, Status> {
    match proto::RecommendStrategy::try_from(s) {
        Ok(proto::RecommendStrategy::AverageVector) => Ok("average_vector"),
        Ok(proto::RecommendStrategy::BestScore) => Ok("best_score"),
        Ok(proto::RecommendStrategy::SumScores) => Ok("sum_scores"),
        Err(_) => Err(bad_arg!("strategy: unknown strategy {s}")),
    }
}

/// The fields every search request shares.
struct Common {
    filter: Option<proto::Filter>,
    with_payload: Option<proto::WithPayloadSelector>,
    with_vectors: Option<proto::WithVectorsSelector>,
    params: Option<proto::SearchParams>,
    score_threshold: Option<f32>,
}

impl Common {
    fn into_body(self, out: &mut Map<String, Value>) -> Result<(), Status> {
        put(out, "filter", optional_filter(self.filter)?);
        put(out, "with_payload", with_payload(self.with_payload));
        put(out, "with_vector", with_vectors(self.with_vectors));
        put(out, "params", self.params.map(params).transpose()?);
        if let Some(t) = self.score_threshold {
            out.insert(
                "score_threshold".into(),
                number(f64::from(t), "score_threshold")?,
            );
        }
        Ok(())
    }
}

/// The legacy search's `vector`: plain, named, or named sparse (`sparse_indices`).
fn named_vector(
    data: Vec<f32>,
    name: Option<String>,
    sparse: Option<proto::SparseIndices>,
) -> Result<Value, Status> {
    #[allow(deprecated)]
    let v = vector(
        proto::Vector {
            data,
            indices: sparse,
            ..Default::default()
        },
        "vector",
    )?;
    Ok(match name {
        Some(name) => object!({"name": name, "vector": v}),
        None => v,
    })
}

pub fn search(s: proto::SearchPoints) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert(
        "vector".into(),
        named_vector(s.vector, s.vector_name, s.sparse_indices)?,
    );
    out.insert("limit".into(), json!(s.limit));
    put(&mut out, "offset", s.offset);
    Common {
        filter: s.filter,
        with_payload: s.with_payload,
        with_vectors: s.with_vectors,
        params: s.params,
        score_threshold: s.score_threshold,
    }
    .into_body(&mut out)?;
    shard_key(&mut out, s.shard_key_selector);
    Ok(Value::Object(out))
}

pub fn search_groups(s: proto::SearchPointGroups) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert(
        "vector".into(),
        named_vector(s.vector, s.vector_name, s.sparse_indices)?,
    );
    out.insert("limit".into(), json!(s.limit));
    out.insert("group_by".into(), json!(s.group_by));
    out.insert("group_size".into(), json!(s.group_size));
    put(&mut out, "with_lookup", s.with_lookup.map(with_lookup));
    Common {
        filter: s.filter,
        with_payload: s.with_payload,
        with_vectors: s.with_vectors,
        params: s.params,
        score_threshold: s.score_threshold,
    }
    .into_body(&mut out)?;
    shard_key(&mut out, s.shard_key_selector);
    Ok(Value::Object(out))
}

/// Positive or negative examples: ids, then vectors.
fn examples(
    ids: Vec<proto::PointId>,
    vectors: Vec<proto::Vector>,
    what: &str,
) -> Result<Value, Status> {
    let mut out = ids
        .into_iter()
        .map(point_id)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, v) in vectors.into_iter().enumerate() {
        out.push(vector(v, &format!("{what}[{i}]"))?);
    }
    Ok(Value::Array(out))
}

/// The fields recommend and its grouped form share.
struct Recommend {
    positive: Vec<proto::PointId>,
    negative: Vec<proto::PointId>,
    positive_vectors: Vec<proto::Vector>,
    negative_vectors: Vec<proto::Vector>,
    strategy: Option<i32>,
    using: Option<String>,
    lookup_from: Option<proto::LookupLocation>,
}

impl Recommend {
    fn into_body(self, out: &mut Map<String, Value>) -> Result<(), Status> {
        let positive = examples(self.positive, self.positive_vectors, "positive")?;
        out.insert("positive".into(), positive);
        let negative = examples(self.negative, self.negative_vectors, "negative")?;
        out.insert("negative".into(), negative);
        put(out, "strategy", self.strategy.map(strategy).transpose()?);
        put(out, "using", self.using);
        put(out, "lookup_from", self.lookup_from.map(lookup_from));
        Ok(())
    }
}

pub fn recommend(r: proto::RecommendPoints) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("limit".into(), json!(r.limit));
    put(&mut out, "offset", r.offset);
    Recommend {
        positive: r.positive,
        negative: r.negative,
        positive_vectors: r.positive_vectors,
        negative_vectors: r.negative_vectors,
        strategy: r.strategy,
        using: r.using,
        lookup_from: r.lookup_from,
    }
    .into_body(&mut out)?;
    Common {
        filter: r.filter,
        with_payload: r.with_payload,
        with_vectors: r.with_vectors,
        params: r.params,
        score_threshold: r.score_threshold,
    }
    .into_body(&mut out)?;
    shard_key(&mut out, r.shard_key_selector);
    Ok(Value::Object(out))
}

pub fn recommend_groups(r: proto::RecommendPointGroups) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("limit".into(), json!(r.limit));
    out.insert("group_by".into(), json!(r.group_by));
    out.insert("group_size".into(), json!(r.group_size));
    put(&mut out, "with_lookup", r.with_lookup.map(with_lookup));
    Recommend {
        positive: r.positive,
        negative: r.negative,
        positive_vectors: r.positive_vectors,
        negative_vectors: r.negative_vectors,
        strategy: r.strategy,
        using: r.using,
        lookup_from: r.lookup_from,
    }
    .into_body(&mut out)?;
    Common {
        filter: r.filter,
        with_payload: r.with_payload,
        with_vectors: r.with_vectors,
        params: r.params,
        score_threshold: r.score_threshold,
    }
    .into_body(&mut out)?;
    shard_key(&mut out, r.shard_key_selector);
    Ok(Value::Object(out))
}

fn example(e: proto::VectorExample, what: &str) -> Result<Value, Status> {
    use proto::vector_example::Example;
    match required(e.example, what)? {
        Example::Id(id) => point_id(id),
        Example::Vector(v) => vector(v, what),
    }
}

pub fn discover(d: proto::DiscoverPoints) -> Result<Value, Status> {
    use proto::target_vector::Target;
    let mut out = Map::new();
    if let Some(target) = d.target.and_then(|t| t.target) {
        let Target::Single(e) = target;
        out.insert("target".into(), example(e, "target")?);
    }
    let context = d
        .context
        .into_iter()
        .enumerate()
        .map(|(i, pair)| {
            let at = |side| format!("context[{i}].{side}");
            let positive = example(required(pair.positive, &at("positive"))?, &at("positive"))?;
            let negative = example(required(pair.negative, &at("negative"))?, &at("negative"))?;
            Ok(object!({"positive": positive, "negative": negative}))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    out.insert("context".into(), Value::Array(context));
    out.insert("limit".into(), json!(d.limit));
    put(&mut out, "offset", d.offset);
    put(&mut out, "using", d.using);
    put(&mut out, "lookup_from", d.lookup_from.map(lookup_from));
    Common {
        filter: d.filter,
        with_payload: d.with_payload,
        with_vectors: d.with_vectors,
        params: d.params,
        score_threshold: None,
    }
    .into_body(&mut out)?;
    shard_key(&mut out, d.shard_key_selector);
    Ok(Value::Object(out))
}

fn inputs(list: Vec<proto::VectorInput>, what: &str) -> Result<Value, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, v)| vector_input(v, &format!("{what}[{i}]")))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn context_pairs(pairs: Vec<proto::ContextInputPair>, what: &str) -> Result<Value, Status> {
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let at = |side| format!("{what}[{i}].{side}");
            let positive = vector_input(required(p.positive, &at("positive"))?, &at("positive"))?;
            let negative = vector_input(required(p.negative, &at("negative"))?, &at("negative"))?;
            Ok(object!({"positive": positive, "negative": negative}))
        })
        .collect::<Result<_, Status>>()
        .map(Value::Array)
}

fn order_by(o: proto::OrderBy) -> Result<Value, Status> {
    use proto::start_from::Value as From;
    let mut out = Map::new();
    out.insert("key".into(), json!(o.key));
    if let Some(d) = o.direction {
        let desc = proto::Direction::try_from(d) == Ok(proto::Direction::Desc);
        out.insert("direction".into(), json!(if desc { "desc" } else { "asc" }));
    }
    if let Some(from) = o.start_from.and_then(|s| s.value) {
        let from = match from {
            From::Float(f) => number(f, "order_by.start_from")?,
            From::Integer(i) => json!(i),
            From::Timestamp(t) => json!(super::common::timestamp(t)?),
            From::Datetime(s) => json!(s),
        };
        out.insert("start_from".into(), from);
    }
    Ok(Value::Object(out))
}

pub fn order_by_opt(o: Option<proto::OrderBy>) -> Result<Option<Value>, Status> {
    o.map(order_by).transpose()
}

fn query(q: proto::Query) -> Result<Value, Status> {
    use proto::query::Variant;
    Ok(match required(q.variant, "query")? {
        Variant::Nearest(v) => object!({ "nearest": vector_input(v, "query.nearest")? }),
        Variant::NearestWithMmr(n) => {
            let nearest = vector_input(required(n.nearest, "query.nearest")?, "query.nearest")?;
            let mmr = required(n.mmr, "query.mmr")?;
            let mut m = Map::new();
            put(&mut m, "diversity", mmr.diversity.map(f64::from));
            put(&mut m, "candidates_limit", mmr.candidates_limit);
            object!({"nearest": nearest, "mmr": m})
        }
        Variant::Recommend(r) => {
            let mut body = Map::new();
            body.insert("positive".into(), inputs(r.positive, "query.recommend.positive")?);
            body.insert("negative".into(), inputs(r.negative, "query.recommend.negative")?);
            put(&mut body, "strategy", r.strategy.map(strategy).transpose()?);
            object!({ "recommend": body })
        }
        Variant::Discover(d) => {
            let target = vector_input(required(d.target, "query.discover.target")?, "query.discover.target")?;
            let pairs = d.context.map(|c| c.pairs).unwrap_or_default();
            let context = context_pairs(pairs, "query.discover.context")?;
            object!({"discover": object!({"target": target, "context": context})})
        }
        Variant::Context(c) => object!({ "context": context_pairs(c.pairs, "query.context")? }),
        Variant::OrderBy(o) => object!({ "order_by": order_by(o)? }),
        Variant::Fusion(f) => match proto::Fusion::try_from(f) {
            Ok(proto::Fusion::Rrf) => object!({"fusion": "rrf"}),
            Ok(proto::Fusion::Dbsf) => object!({"fusion": "dbsf"}),
            Err(_) => return Err(bad_arg!("query.fusion: unknown fusion {f}")),
        },
        Variant::Rrf(r) => {
            let mut body = Map::new();
            put(&mut body, "k", r.k);
            if !r.weights.is_empty() {
                body.insert("weights".into(), json!(r.weights));
            }
            object!({ "rrf": body })
        }
        Variant::Sample(_) => object!({"sample": "random"}),
        Variant::Formula(f) => {
            let expression = expression(required(f.expression, "query.formula")?)?;
            let defaults = json::object(f.defaults, "query.defaults")?;
            object!({"formula": expression, "defaults": defaults})
        }
        Variant::RelevanceFeedback(r) => feedback(r)?,
        Variant::Text(_) => {
            return Err(bad_arg!("query.text: text queries need an inference service, which vecdb does not have; send a sparse vector"))
        }
    })
}

fn feedback(r: proto::RelevanceFeedbackInput) -> Result<Value, Status> {
    use proto::feedback_strategy::Variant;
    let at = "query.relevance_feedback";
    let target = vector_input(required(r.target, "target")?, &format!("{at}.target"))?;
    let feedback = r
        .feedback
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let what = format!("{at}.feedback[{i}].example");
            let example = vector_input(required(item.example, &what)?, &what)?;
            let score = number(f64::from(item.score), &format!("{at}.feedback[{i}].score"))?;
            Ok(object!({"example": example, "score": score}))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let mut body = object!({"target": target, "feedback": feedback});
    if let Some(Variant::Naive(n)) = r.strategy.and_then(|s| s.variant) {
        body["strategy"] = object!({"naive": object!({"a": n.a, "b": n.b, "c": n.c})});
    }
    Ok(object!({ "relevance_feedback": body }))
}

fn expression(e: proto::Expression) -> Result<Value, Status> {
    use proto::expression::Variant;
    let list = |items: Vec<proto::Expression>| -> Result<Value, Status> {
        items
            .into_iter()
            .map(expression)
            .collect::<Result<_, _>>()
            .map(Value::Array)
    };
    let one = |e: Box<proto::Expression>| expression(*e);
    Ok(match required(e.variant, "formula expression")? {
        Variant::Constant(c) => number(f64::from(c), "formula constant")?,
        Variant::Variable(v) => json!(v),
        Variant::Condition(c) => {
            // A condition is the one filter clause of a `must`.
            let f = filter(proto::Filter {
                must: vec![c],
                ..Default::default()
            })?;
            f["must"][0].clone()
        }
        Variant::GeoDistance(g) => {
            let origin = required(g.origin, "geo_distance.origin")?;
            object!({"geo_distance": object!({"origin": object!({"lon": origin.lon, "lat": origin.lat}), "to": g.to})})
        }
        Variant::Datetime(s) => object!({ "datetime": s }),
        Variant::DatetimeKey(s) => object!({ "datetime_key": s }),
        Variant::Mult(m) => object!({ "mult": list(m.mult)? }),
        Variant::Sum(s) => object!({ "sum": list(s.sum)? }),
        Variant::Max(m) => object!({ "max": list(m.max)? }),
        Variant::Min(m) => object!({ "min": list(m.min)? }),
        Variant::Div(d) => {
            let left = expression(*required(d.left, "div.left")?)?;
            let right = expression(*required(d.right, "div.right")?)?;
            let mut body = object!({"left": left, "right": right});
            if let Some(z) = d.by_zero_default {
                body["by_zero_default"] = number(f64::from(z), "div.by_zero_default")?;
            }
            object!({ "div": body })
        }
        Variant::Neg(e) => object!({ "neg": one(e)? }),
        Variant::Abs(e) => object!({ "abs": one(e)? }),
        Variant::Sqrt(e) => object!({ "sqrt": one(e)? }),
        Variant::Exp(e) => object!({ "exp": one(e)? }),
        Variant::Log10(e) => object!({ "log10": one(e)? }),
        Variant::Ln(e) => object!({ "ln": one(e)? }),
        Variant::Acosh(e) => object!({ "acosh": one(e)? }),
        Variant::Pow(p) => {
            let base = expression(*required(p.base, "pow.base")?)?;
            let exponent = expression(*required(p.exponent, "pow.exponent")?)?;
            object!({"pow": object!({"base": base, "exponent": exponent})})
        }
        Variant::ExpDecay(d) => object!({ "exp_decay": decay(*d)? }),
        Variant::GaussDecay(d) => object!({ "gauss_decay": decay(*d)? }),
        Variant::LinDecay(d) => object!({ "lin_decay": decay(*d)? }),
    })
}

fn decay(d: proto::DecayParamsExpression) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("x".into(), expression(*required(d.x, "decay.x")?)?);
    if let Some(t) = d.target {
        out.insert("target".into(), expression(*t)?);
    }
    put(&mut out, "scale", d.scale.map(f64::from));
    put(&mut out, "midpoint", d.midpoint.map(f64::from));
    Ok(Value::Object(out))
}

/// One level of a query: its prefetches, query, vector, filter, parameters and limit.
struct Level {
    prefetch: Vec<proto::PrefetchQuery>,
    query: Option<proto::Query>,
    using: Option<String>,
    filter: Option<proto::Filter>,
    params: Option<proto::SearchParams>,
    score_threshold: Option<f32>,
    limit: Option<u64>,
    lookup_from: Option<proto::LookupLocation>,
}

impl Level {
    fn into_body(self, out: &mut Map<String, Value>) -> Result<(), Status> {
        if !self.prefetch.is_empty() {
            let prefetch = self
                .prefetch
                .into_iter()
                .map(prefetch)
                .collect::<Result<Vec<_>, _>>()?;
            out.insert("prefetch".into(), Value::Array(prefetch));
        }
        put(out, "query", self.query.map(query).transpose()?);
        put(out, "using", self.using);
        put(out, "filter", optional_filter(self.filter)?);
        put(out, "params", self.params.map(params).transpose()?);
        if let Some(t) = self.score_threshold {
            out.insert(
                "score_threshold".into(),
                number(f64::from(t), "score_threshold")?,
            );
        }
        put(out, "limit", self.limit);
        put(out, "lookup_from", self.lookup_from.map(lookup_from));
        Ok(())
    }
}

fn prefetch(p: proto::PrefetchQuery) -> Result<Value, Status> {
    let mut out = Map::new();
    Level {
        prefetch: p.prefetch,
        query: p.query,
        using: p.using,
        filter: p.filter,
        params: p.params,
        score_threshold: p.score_threshold,
        limit: p.limit,
        lookup_from: p.lookup_from,
    }
    .into_body(&mut out)?;
    Ok(Value::Object(out))
}

pub fn query_points(q: proto::QueryPoints) -> Result<Value, Status> {
    let mut out = Map::new();
    Level {
        prefetch: q.prefetch,
        query: q.query,
        using: q.using,
        filter: q.filter,
        params: q.params,
        score_threshold: q.score_threshold,
        limit: q.limit,
        lookup_from: q.lookup_from,
    }
    .into_body(&mut out)?;
    put(&mut out, "offset", q.offset);
    put(&mut out, "with_payload", with_payload(q.with_payload));
    put(&mut out, "with_vector", with_vectors(q.with_vectors));
    shard_key(&mut out, q.shard_key_selector);
    Ok(Value::Object(out))
}

pub fn query_groups(q: proto::QueryPointGroups) -> Result<Value, Status> {
    let mut out = Map::new();
    Level {
        prefetch: q.prefetch,
        query: q.query,
        using: q.using,
        filter: q.filter,
        params: q.params,
        score_threshold: q.score_threshold,
        limit: q.limit,
        lookup_from: q.lookup_from,
    }
    .into_body(&mut out)?;
    out.insert("group_by".into(), json!(q.group_by));
    put(&mut out, "group_size", q.group_size);
    put(&mut out, "with_payload", with_payload(q.with_payload));
    put(&mut out, "with_vector", with_vectors(q.with_vectors));
    put(&mut out, "with_lookup", q.with_lookup.map(with_lookup));
    shard_key(&mut out, q.shard_key_selector);
    Ok(Value::Object(out))
}

/// `{"searches": [...]}` of a batch.
pub fn batch<T>(
    items: Vec<T>,
    convert: impl Fn(T) -> Result<Value, Status>,
) -> Result<Value, Status> {
    let searches = items
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(object!({ "searches": searches }))
}

pub fn matrix(m: proto::SearchMatrixPoints, form: &str) -> Result<Call, Status> {
    let mut body = Map::new();
    put(&mut body, "filter", optional_filter(m.filter)?);
    put(&mut body, "sample", m.sample);
    put(&mut body, "limit", m.limit);
    put(&mut body, "using", m.using);
    shard_key(&mut body, m.shard_key_selector);
    let params = ReadParams::new(m.read_consistency, m.timeout);
    let path = format!(
        "{}/points/search/matrix/{form}",
        collection(&m.collection_name)
    );
    Ok(params.call(path, Value::Object(body)))
}
