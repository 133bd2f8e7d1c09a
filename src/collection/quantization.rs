//! `quantization_config` in Qdrant's shape. Only scalar int8 is implemented: `{"scalar": {"type":
//! "int8", "quantile": 0.99, "always_ram": true}}`; product and binary quantization are refused
//! with a message saying so rather than silently ignored.

use crate::error::Invalid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Quantization of a collection or of one named vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantizationConfig {
    pub scalar: ScalarQuantization,
}

/// Int8 scalar quantization: traversal over u8 codes, rescoring with the float vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalarQuantization {
    /// Code type; only `int8`.
    #[serde(rename = "type")]
    pub kind: ScalarType,
    /// Central fraction of components (0.5 to 1) that the code range covers; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Accepted for compatibility; codes are always kept in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
}

/// Scalar code types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    Int8,
}

/// Search-time quantization knobs (`params.quantization` of a query, as Qdrant has them).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantizationSearchParams {
    /// Traverse over the float vectors even though codes exist.
    #[serde(default)]
    pub ignore: bool,
    /// Rescore the kept candidates with the float vectors (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescore: Option<bool>,
    /// Keep at least `limit × oversampling` candidates for rescoring (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversampling: Option<f64>,
}

/// Parses a request's `quantization_config` (absent, null and `{}` mean none).
pub fn parse(value: &Option<Value>, what: &str) -> Result<Option<QuantizationConfig>, Invalid> {
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) if m.is_empty() => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(other) => return invalid!("{what} must be an object, got {other}"),
    };
    for kind in ["product", "binary"] {
        if object.contains_key(kind) {
            return invalid!(
                "{what}: {kind} quantization is not supported yet; use {{\"scalar\": {{\"type\": \"int8\"}}}}"
            );
        }
    }
    let config: QuantizationConfig = serde_json::from_value(Value::Object(object.clone()))
        .map_err(|e| format!("{what}: {e}"))?;
    if let Some(q) = config.scalar.quantile {
        if !(0.5..=1.0).contains(&q) {
            return invalid!("{what}.scalar.quantile must be between 0.5 and 1, got {q}");
        }
    }
    Ok(Some(config))
}

impl QuantizationSearchParams {
    /// Checks the knobs; `what` names them in the error.
    pub fn validate(&self, what: &str) -> Result<(), Invalid> {
        match self.oversampling {
            Some(o) if !(o.is_finite() && o >= 1.0) => {
                invalid!("{what}.oversampling must be a number of at least 1, got {o}")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_scalar_int8_and_refuses_what_is_not_built() {
        let ok = parse(
            &Some(json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}})),
            "quantization_config",
        )
        .unwrap()
        .unwrap();
        assert_eq!(ok.scalar.quantile, Some(0.99));
        assert_eq!(parse(&Some(json!(null)), "q").unwrap(), None);
        assert_eq!(parse(&Some(json!({})), "q").unwrap(), None);
        let product = parse(&Some(json!({"product": {"compression": "x16"}})), "q");
        assert!(product
            .unwrap_err()
            .contains("product quantization is not supported"));
        let bad_type = parse(&Some(json!({"scalar": {"type": "int4"}})), "q");
        assert!(bad_type.unwrap_err().contains("int4"));
        let bad_quantile = parse(
            &Some(json!({"scalar": {"type": "int8", "quantile": 0.2}})),
            "q",
        );
        assert!(bad_quantile.unwrap_err().contains("quantile"));
        assert!(parse(&Some(json!([1])), "q").is_err());
    }
}
