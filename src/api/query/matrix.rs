//! The distance matrix of a sample: `sample` points drawn at random among those matching the
//! filter, ordered by id, and for each the `limit` nearest among the others — as pairs, or as
//! the offsets of a sparse matrix.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::base::{no_space, Base, Scoring};
use super::eval::Source;
use crate::api::error::ApiError;
use crate::api::models::{ScoredPoint, WithVector};
use crate::error::Invalid;
use crate::filter::{Condition, Filter, HasIdCondition, HasVectorCondition, ValueSet};
use crate::point_id::PointId;

/// `POST .../points/search/matrix/{pairs,offsets}` body.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixRequest {
    pub filter: Option<Filter>,
    /// Points to draw (default 10, at least 2).
    pub sample: Option<usize>,
    /// Neighbours per sampled point (default 3).
    pub limit: Option<usize>,
    pub using: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub shard_key: Option<Value>,
}

/// One entry of the matrix: `b` is among the nearest of `a`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MatrixPair {
    pub a: PointId,
    pub b: PointId,
    pub score: f32,
}

/// `result` of `.../matrix/pairs`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MatrixPairs {
    pub pairs: Vec<MatrixPair>,
}

/// `result` of `.../matrix/offsets`: entry `i` says `ids[offsets_col[i]]` is among the
/// nearest of `ids[offsets_row[i]]` with score `scores[i]`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MatrixOffsets {
    pub offsets_row: Vec<u64>,
    pub offsets_col: Vec<u64>,
    pub scores: Vec<f32>,
    pub ids: Vec<PointId>,
}

/// The sampled ids (in id order) and each one's nearest among the others.
pub struct Matrix {
    pub ids: Vec<PointId>,
    pub rows: Vec<Vec<ScoredPoint>>,
}

impl Matrix {
    pub fn pairs(self) -> MatrixPairs {
        let pairs = self.ids.iter().zip(self.rows).flat_map(|(&a, row)| {
            row.into_iter().map(move |p| MatrixPair {
                a,
                b: p.id,
                score: p.score,
            })
        });
        MatrixPairs {
            pairs: pairs.collect(),
        }
    }

    pub fn offsets(self) -> MatrixOffsets {
        let at = |id: PointId| self.ids.iter().position(|&x| x == id).unwrap_or(0) as u64;
        let mut out = MatrixOffsets {
            offsets_row: Vec::new(),
            offsets_col: Vec::new(),
            scores: Vec::new(),
            ids: self.ids.clone(),
        };
        for (row, points) in self.rows.iter().enumerate() {
            for p in points {
                out.offsets_row.push(row as u64);
                out.offsets_col.push(at(p.id));
                out.scores.push(p.score);
            }
        }
        out
    }
}

/// Draws the sample and searches each sampled point's neighbours among the others.
pub async fn matrix(source: &dyn Source, req: MatrixRequest) -> Result<Matrix, ApiError> {
    let max = crate::limits::get().max_limit;
    let (sample, limit) = (req.sample.unwrap_or(10), req.limit.unwrap_or(3));
    if sample < 2 {
        return Err(Invalid::below("sample", sample, 2).into());
    }
    if limit == 0 {
        return Err(Invalid::below("limit", 0, 1).into());
    }
    if sample > max {
        return Err(ApiError::BadRequest(format!(
            "sample must be between 2 and {max} (limits.max_limit), got {sample}"
        )));
    }
    if limit > max {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {max} (limits.max_limit), got {limit}"
        )));
    }
    let using = req.using.unwrap_or_default();
    if !source.spaces().iter().any(|s| s.name == using) {
        return Err(no_space(&using));
    }
    let base = |scoring, filter, limit, with_vector| Base {
        scoring,
        using: using.clone(),
        filter,
        params: None,
        limit,
        offset: 0,
        score_threshold: None,
        with_payload: None,
        with_vector,
    };
    let vectors = Some(WithVector::Names(vec![using.clone()]));
    // Only points that have the vector can be in the matrix.
    let mut with_vector = req.filter.clone().unwrap_or_default();
    with_vector
        .must
        .push(Condition::HasVector(HasVectorCondition {
            has_vector: using.clone(),
        }));
    let drawn = source
        .base(base(Scoring::Sample, Some(with_vector), sample, vectors))
        .await?;
    if drawn.len() < 2 {
        return Ok(Matrix {
            ids: Vec::new(),
            rows: Vec::new(),
        });
    }
    let mut drawn: Vec<(PointId, Vec<f32>)> = drawn
        .into_iter()
        .map(|p| {
            (
                p.id,
                p.vector
                    .as_ref()
                    .and_then(|v| vector_in(v, &using))
                    .unwrap_or_default(),
            )
        })
        .collect();
    drawn.sort_by_key(|(id, _)| *id);
    let ids: Vec<PointId> = drawn.iter().map(|(id, _)| *id).collect();
    let searches = drawn.into_iter().map(|(id, vector)| {
        let others: Vec<PointId> = ids.iter().copied().filter(|&x| x != id).collect();
        let mut filter = req.filter.clone().unwrap_or_default();
        filter.must.push(Condition::HasId(HasIdCondition {
            has_id: ValueSet::new(others),
        }));
        source.base(base(Scoring::Nearest(vector), Some(filter), limit, None))
    });
    let rows = futures::future::try_join_all(searches).await?;
    Ok(Matrix { ids, rows })
}

/// The vector `using` of a returned point's `vector` field (a plain list for the unnamed
/// vector, else a name → vector map), if it has one; a multivector's vectors one after another.
pub fn vector_in(vector: &Value, using: &str) -> Option<Vec<f32>> {
    let v = match vector {
        Value::Object(named) => named.get(using)?,
        plain => plain,
    };
    let mut out = Vec::new();
    for x in v.as_array()? {
        match x {
            Value::Array(row) => out.extend(row.iter().filter_map(Value::as_f64).map(|x| x as f32)),
            x => out.extend(x.as_f64().map(|x| x as f32)),
        }
    }
    Some(out)
}
