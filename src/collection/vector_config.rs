//! The dense vector part of a collection's configuration: each vector's parameters as sent and
//! returned (size, distance, multivector comparator, per-vector HNSW and quantization) and the
//! resolved [`VectorSpace`] the engine works with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::config::{HnswConfig, HnswConfigDiff};
use super::quantization::{QuantizationConfig, ScalarQuantization};
use crate::index::distance::max_sim;
pub use crate::index::typed::Datatype;
use crate::index::Metric;

/// Similarity function of a vector space, with Qdrant's names and score meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Distance {
    /// Cosine similarity (vectors are normalised on write); higher is closer.
    Cosine,
    /// Dot product; higher is closer.
    Dot,
    /// Euclidean distance; lower is closer.
    Euclid,
    /// Manhattan (L1) distance; lower is closer.
    Manhattan,
}

impl Distance {
    /// The index metric that ranks the same way ("lower is closer").
    pub fn metric(self) -> Metric {
        match self {
            Distance::Cosine | Distance::Dot => Metric::Dot,
            Distance::Euclid => Metric::L2,
            Distance::Manhattan => Metric::L1,
        }
    }

    /// Turns an index distance back into the score a client sees.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => -distance,
            Distance::Euclid => distance.max(0.0).sqrt(),
            Distance::Manhattan => distance,
        }
    }

    /// Whether a higher score means closer (for `score_threshold`).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Distance::Cosine | Distance::Dot)
    }
}

/// Per-vector HNSW overrides and the other per-vector settings clients may send.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorParams {
    /// Number of dimensions.
    pub size: usize,
    /// Similarity function.
    pub distance: Distance,
    /// HNSW settings for this vector, overriding the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Accepted for compatibility; vectors are kept in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// How each element is stored: `float32` (the default), `float16` (half the memory,
    /// about three significant digits) or `uint8` (a quarter; whole values 0 to 255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<Datatype>,
    /// Int8 scalar quantization of this vector, overriding the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<QuantizationConfig>)]
    pub quantization_config: Option<Value>,
    /// Points carry several vectors of `size` under this name (late interaction, as ColBERT),
    /// compared by `comparator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<MultiVectorConfig>,
}

/// How two multivectors compare.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiVectorConfig {
    pub comparator: Comparator,
}

/// `max_sim`: the sum, over the query's vectors, of the similarity to the closest stored one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    MaxSim,
}

/// One unnamed vector per point, or a map of named vectors.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VectorsConfig {
    /// A single unnamed vector.
    Single(VectorParams),
    /// Named vectors, e.g. `{"text": {...}, "image": {...}}`.
    Named(BTreeMap<String, VectorParams>),
}

impl<'de> Deserialize<'de> for VectorsConfig {
    /// An object with `size` or `distance` is one unnamed vector; any other object maps names to
    /// vector parameters. Deciding up front keeps serde's precise error (an untagged enum would
    /// only say that no variant matched).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let single = value
            .as_object()
            .is_some_and(|m| m.contains_key("size") || m.contains_key("distance"));
        let result = if single {
            serde_path_to_error::deserialize(value).map(VectorsConfig::Single)
        } else {
            serde_path_to_error::deserialize(value).map(VectorsConfig::Named)
        };
        result.map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                D::Error::custom(e.into_inner())
            } else {
                D::Error::custom(format!("{path}: {}", e.into_inner()))
            }
        })
    }
}

/// A vector space of a collection, resolved: its name ("" for the unnamed one), size, distance,
/// HNSW parameters and quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSpace {
    pub name: String,
    pub size: usize,
    pub distance: Distance,
    pub hnsw: HnswConfig,
    pub quantization: Option<ScalarQuantization>,
    /// Whether points carry several vectors of `size` here, compared by late interaction.
    pub multi: bool,
    pub datatype: Datatype,
}

impl VectorSpace {
    /// The index metric of this space. Cosine spaces compare by the dot product of vectors
    /// normalised on write, except `uint8` ones: whole bytes cannot hold a unit vector, so
    /// (as in Qdrant) they are stored as sent and compared by the full cosine.
    pub fn metric(&self) -> Metric {
        match (self.distance, self.datatype) {
            (Distance::Cosine, Datatype::Uint8) => Metric::Cosine,
            (distance, _) => distance.metric(),
        }
    }

    /// Whether vectors are normalised to unit length on write.
    pub fn normalises(&self) -> bool {
        self.metric() == Metric::Dot && self.distance == Distance::Cosine
    }

    /// Distance (lower is closer) from `query` to the stored vector `row` of this space: the
    /// metric's, or for multivectors the late-interaction sum ([`max_sim`]).
    pub fn distance_between(&self, query: &[f32], row: &[f32]) -> f32 {
        let metric = self.metric();
        match self.multi {
            false => metric.distance(query, row),
            true => max_sim(metric.kernel(), self.size, query, row),
        }
    }
}
