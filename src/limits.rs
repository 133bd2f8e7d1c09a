//! Limits on what one request may ask for, so hostile or mistaken input is refused with a 400
//! naming the limit instead of exhausting memory or the stack. `[limits]` in the configuration.
//!
//! The limits are process-wide and set once at start-up ([`install`]): filters are parsed inside
//! serde `Deserialize` impls, which cannot take arguments.

use crate::error::Invalid;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `[limits]`. The request body size is `service.max_request_size_mb`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Points (or point ids) one write request may carry.
    pub max_points_per_request: usize,
    /// Components of a vector, checked when a collection is created.
    pub max_vector_dimension: usize,
    /// Size of one point's payload as JSON, in kilobytes.
    pub max_payload_kb: usize,
    /// Nesting of objects and arrays inside a payload (the payload object is level 1).
    pub max_payload_depth: usize,
    /// Nesting of filters (the top-level filter is level 1).
    pub max_filter_depth: usize,
    /// `limit + offset` of searches and scrolls, and `hnsw_ef`.
    pub max_limit: usize,
}

/// serde_json refuses JSON nested deeper than 128 levels while parsing; a filter level takes up
/// to three JSON levels (filter, clause array, condition), a payload level one.
pub const FILTER_DEPTH_CEILING: usize = 40;
pub const PAYLOAD_DEPTH_CEILING: usize = 120;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_points_per_request: 100_000,
            max_vector_dimension: 65_536,
            max_payload_kb: 1024,
            max_payload_depth: 32,
            max_filter_depth: 32,
            max_limit: 100_000,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_points_per_request", self.max_points_per_request),
            ("max_vector_dimension", self.max_vector_dimension),
            ("max_payload_kb", self.max_payload_kb),
            ("max_payload_depth", self.max_payload_depth),
            ("max_filter_depth", self.max_filter_depth),
            ("max_limit", self.max_limit),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("limits.{name} must be at least 1"));
        }
        if self.max_filter_depth > FILTER_DEPTH_CEILING {
            return Err(format!(
                "limits.max_filter_depth must be at most {FILTER_DEPTH_CEILING} (JSON parsing stops at 128 levels)"
            ));
        }
        if self.max_payload_depth > PAYLOAD_DEPTH_CEILING {
            return Err(format!(
                "limits.max_payload_depth must be at most {PAYLOAD_DEPTH_CEILING} (JSON parsing stops at 128 levels)"
            ));
        }
        Ok(())
    }

    /// Checks one payload's nesting depth and JSON size.
    pub fn check_payload(&self, payload: &serde_json::Map<String, Value>) -> Result<(), Invalid> {
        let mut size = 2;
        let mut deepest = 1;
        let mut stack: Vec<(&Value, usize)> = payload.values().map(|v| (v, 2)).collect();
        size += payload.keys().map(|k| k.len() + 4).sum::<usize>();
        while let Some((value, depth)) = stack.pop() {
            size += match value {
                Value::String(s) => s.len() + 3,
                Value::Array(items) => {
                    deepest = deepest.max(depth);
                    stack.extend(items.iter().map(|v| (v, depth + 1)));
                    items.len() + 2
                }
                Value::Object(map) => {
                    deepest = deepest.max(depth);
                    stack.extend(map.values().map(|v| (v, depth + 1)));
                    map.keys().map(|k| k.len() + 4).sum::<usize>() + 2
                }
                _ => 8,
            };
        }
        if deepest > self.max_payload_depth {
            return Err(Invalid(format!(
                "payload nests {deepest} levels deep; the limit is {} (limits.max_payload_depth)",
                self.max_payload_depth
            )));
        }
        if size > self.max_payload_kb * 1024 {
            return Err(Invalid(format!(
                "payload is about {} KB as JSON; the limit is {} KB (limits.max_payload_kb)",
                size.div_ceil(1024),
                self.max_payload_kb
            )));
        }
        Ok(())
    }
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Sets the process's limits; the first call wins (one server per process).
pub fn install(limits: Limits) {
    let _ = LIMITS.set(limits);
}

/// The process's limits, or the defaults before [`install`].
pub fn get() -> &'static Limits {
    LIMITS.get_or_init(Limits::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn payload_depth_counts_objects_and_arrays() {
        let limits = Limits {
            max_payload_depth: 3,
            ..Limits::default()
        };
        assert!(limits.check_payload(&map(json!({"a": {"b": [1]}}))).is_ok());
        let err = limits
            .check_payload(&map(json!({"a": {"b": [[1]]}})))
            .unwrap_err();
        assert!(
            err.contains("4 levels") && err.contains("max_payload_depth"),
            "{err}"
        );
    }

    #[test]
    fn payload_size_tracks_the_json_length() {
        let limits = Limits {
            max_payload_kb: 1,
            ..Limits::default()
        };
        let fits = map(json!({"s": "x".repeat(900)}));
        assert!(limits.check_payload(&fits).is_ok());
        let big = map(json!({"s": "x".repeat(1000), "t": vec!["y"; 100]}));
        let actual = serde_json::to_vec(&big).unwrap().len();
        assert!(actual > 1024, "{actual}");
        assert!(limits
            .check_payload(&big)
            .unwrap_err()
            .contains("max_payload_kb"));
    }

    #[test]
    fn zero_and_unparseable_depths_are_refused() {
        let mut l = Limits::default();
        assert!(l.validate().is_ok());
        l.max_limit = 0;
        assert!(l.validate().unwrap_err().contains("max_limit"));
        l = Limits {
            max_filter_depth: 100,
            ..Limits::default()
        };
        assert!(l.validate().unwrap_err().contains("max_filter_depth"));
    }
}
