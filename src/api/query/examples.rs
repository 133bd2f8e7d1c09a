//! The examples of one query: vectors and sparse vectors as given, or looked up by point id,
//! checked against the vector they are compared with and prepared for it (normalised for
//! cosine, IDF-weighted for sparse vectors with the IDF modifier).

use std::collections::HashMap;

use super::base::Scoring;
use super::eval::Source;
use super::model::{Input, Node, Pair, Query, Strategy};
use super::rank::{Custom, Pairs};
use crate::api::convert::{prepare, prepare_dense, DenseInput};
use crate::api::error::ApiError;
use crate::api::models::{WithPayload, WithVector};
use crate::collection::config::VectorSpace;
use crate::index::sparse::SparseVector;
use crate::point_id::PointId;

/// What a query of the sparse space `node.using` ranks by: nearest to a sparse vector (also
/// the average of recommendation examples), or a custom scorer over sparse examples; with the
/// collection-wide IDF counts of every dimension involved when the space has `modifier: idf`
/// (given in `params` by a cluster's collection layer, else gathered).
pub(super) async fn sparse_scoring(
    source: &dyn Source,
    node: &Node,
    query: &Query,
    idf: bool,
) -> Result<Scoring, ApiError> {
    let ex = SparseExamples::look_up(source, node, query.ids()).await?;
    let custom = |c: Custom<SparseVector>| Ok::<_, ApiError>(Some(c));
    let (nearest, custom) = match query {
        Query::Nearest { target, mmr: None } => (Some(ex.get(target)?), None),
        Query::Recommend {
            positive,
            negative,
            strategy: Strategy::AverageVector,
        } => (Some(ex.average(positive, negative)?), None),
        Query::Recommend {
            positive,
            negative,
            strategy,
        } => (
            None,
            custom(Custom::Recommend {
                positive: ex.all(positive)?,
                negative: ex.all(negative)?,
                sum: *strategy == Strategy::SumScores,
            })?,
        ),
        Query::Discover { target, context } => (
            None,
            custom(Custom::Discover {
                target: ex.get(target)?,
                pairs: ex.pairs(context)?,
            })?,
        ),
        Query::Context(context) => (None, custom(Custom::Context(ex.pairs(context)?))?),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "`{}` is a sparse vector: nearest, recommend, discover and context queries search it (not mmr or relevance feedback)",
                node.using
            )))
        }
    };
    let mut dims: Vec<u32> = match (&nearest, &custom) {
        (Some(v), _) => v.indices().to_vec(),
        (_, Some(c)) => c
            .examples()
            .iter()
            .flat_map(|v| v.indices().to_vec())
            .collect(),
        _ => Vec::new(),
    };
    dims.sort_unstable();
    dims.dedup();
    let given = node.params.as_ref().and_then(|p| p.idf_stats.clone());
    let stats = match (idf, given) {
        (false, _) => None,
        (true, Some(stats)) => Some(stats),
        (true, None) => {
            let corpus = node.params.as_ref().and_then(|p| p.idf_corpus());
            Some(source.idf_stats(&node.using, dims, corpus).await?)
        }
    };
    Ok(match (nearest, custom) {
        (Some(v), _) => Scoring::Sparse(v, stats),
        (_, Some(c)) => Scoring::SparseCustom(c, stats),
        _ => unreachable!("every arm above gives one"),
    })
}

/// The sparse examples of one query: as given, or looked up by id.
struct SparseExamples {
    found: HashMap<PointId, SparseVector>,
    using: String,
}

impl SparseExamples {
    /// Looks up the sparse vectors of `ids` (from `lookup_from` when set).
    async fn look_up(
        source: &dyn Source,
        node: &Node,
        ids: Vec<PointId>,
    ) -> Result<SparseExamples, ApiError> {
        let from = node.lookup_from.as_ref();
        let name = from
            .and_then(|l| l.vector.as_deref())
            .unwrap_or(&node.using);
        let mut found = HashMap::new();
        if !ids.is_empty() {
            let collection = from.map_or(source.name(), |l| l.collection.as_str());
            let with_vector = Some(WithVector::Names(vec![name.to_string()]));
            let no_payload = Some(WithPayload::All(false));
            let records = source
                .records(collection, ids, &no_payload, &with_vector)
                .await?;
            for (id, record) in records {
                if let Some(v) = record.get("vector").and_then(|v| v.get(name)) {
                    found.insert(id, crate::api::models::parse_sparse(v, "vector")?);
                }
            }
        }
        let using = name.to_string();
        Ok(SparseExamples { found, using })
    }

    fn get(&self, input: &Input) -> Result<SparseVector, ApiError> {
        match input {
            Input::Sparse(v) => Ok(v.clone()),
            Input::Id(id) => self.found.get(id).cloned().ok_or_else(|| {
                ApiError::NotFound(format!(
                    "No point with id {id} and sparse vector `{}` found",
                    self.using
                ))
            }),
            Input::Vector(_) | Input::Multi(_) => Err(ApiError::BadRequest(format!(
                "`{}` is a sparse vector: give examples as {{\"indices\": [...], \"values\": [...]}} or point ids",
                self.using
            ))),
        }
    }

    fn all(&self, inputs: &[Input]) -> Result<Vec<SparseVector>, ApiError> {
        inputs.iter().map(|i| self.get(i)).collect()
    }

    fn pairs(&self, pairs: &[Pair<Input>]) -> Result<Pairs<SparseVector>, ApiError> {
        let pair = |p: &Pair<Input>| Ok((self.get(&p.positive)?, self.get(&p.negative)?));
        pairs.iter().map(pair).collect()
    }

    /// Qdrant's average of sparse examples: mean(positive), or with negatives
    /// 2·mean(positive) − mean(negative), dimension by dimension.
    fn average(&self, positive: &[Input], negative: &[Input]) -> Result<SparseVector, ApiError> {
        let (pos, neg) = (self.all(positive)?, self.all(negative)?);
        let mean = SparseVector::mean(&pos);
        Ok(match neg.is_empty() {
            true => mean,
            false => mean.combine(&SparseVector::mean(&neg), |p, n| p + p - n),
        })
    }
}

/// The examples of one query: vectors as given, or looked up by id.
pub(super) struct Examples<'a> {
    pub space: &'a VectorSpace,
    pub found: HashMap<PointId, Vec<f32>>,
}

impl Examples<'_> {
    /// The example's vector as stored or sent, its size checked (a multivector's vectors one
    /// after another, prepared already).
    pub fn raw(&self, input: &Input, what: &str) -> Result<Vec<f32>, ApiError> {
        let v = match input {
            Input::Vector(v) if !self.space.multi => v.clone(),
            Input::Vector(v) => prepare_dense(self.space, DenseInput::One(v.clone()), what)?,
            Input::Multi(rows) => prepare_dense(self.space, DenseInput::Multi(rows.clone()), what)?,
            Input::Sparse(_) => {
                return Err(ApiError::BadRequest(format!(
                    "{what}: a sparse vector, but `using` names a dense one"
                )))
            }
            Input::Id(id) => self
                .found
                .get(id)
                .cloned()
                .ok_or_else(|| ApiError::NotFound(format!("No point with id {id} found")))?,
        };
        if v.len() != self.space.size && !self.space.multi {
            // The same message as for a vector of the wrong size anywhere.
            prepare(self.space, v.clone(), what)?;
        }
        Ok(v)
    }

    pub fn raws(&self, inputs: &[Input], what: &str) -> Result<Vec<Vec<f32>>, ApiError> {
        inputs.iter().map(|i| self.raw(i, what)).collect()
    }

    /// The example prepared for the space (normalised for cosine).
    pub fn ready(&self, input: &Input, what: &str) -> Result<Vec<f32>, ApiError> {
        prepare(self.space, self.raw(input, what)?, what)
    }

    pub fn all(&self, inputs: &[Input], what: &str) -> Result<Vec<Vec<f32>>, ApiError> {
        inputs.iter().map(|i| self.ready(i, what)).collect()
    }

    pub fn pairs(&self, pairs: &[Pair<Input>], what: &str) -> Result<Pairs, ApiError> {
        let pair = |p: &Pair<Input>| {
            Ok((
                self.ready(&p.positive, what)?,
                self.ready(&p.negative, what)?,
            ))
        };
        pairs.iter().map(pair).collect()
    }
}

/// `2 × mean(positive) − mean(negative)`, or the mean of the positives without negatives.
pub(super) fn average(positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Vec<f32> {
    let mean = |vs: &[Vec<f32>]| -> Vec<f32> {
        let mut sum = vec![0.0f32; vs.first().map_or(0, Vec::len)];
        for v in vs {
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
        sum.iter().map(|s| s / vs.len() as f32).collect()
    };
    let pos = mean(positive);
    if negative.is_empty() {
        return pos;
    }
    let neg = mean(negative);
    pos.iter().zip(&neg).map(|(p, n)| p + p - n).collect()
}

/// The "average" of multivector examples, as Qdrant's local mode takes it: one multivector of
/// every positive example's vectors and every negative one's, negated.
pub(super) fn multi_average(positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Vec<f32> {
    let negated = negative.iter().flatten().map(|x| -x);
    positive.iter().flatten().copied().chain(negated).collect()
}
