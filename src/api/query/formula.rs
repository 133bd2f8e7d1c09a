//! Score boosting: `{"formula": expression, "defaults": {...}}` rescores the points of the
//! prefetches with an arithmetic expression over their prefetch scores (`$score`,
//! `$score[i]`), payload values, conditions (1 when met, else 0), datetimes, geo distances
//! and decay functions, as Qdrant defines them. Evaluated in f64; a result that is not a
//! finite f32 is the request's error, as in Qdrant.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::model::object;
use crate::api::models::kind;
use crate::error::Invalid;
use crate::filter::{parse_path, Filter, GeoPoint, JsonPath, PointView};
use crate::point_id::PointId;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(f64),
    /// The score of the point in prefetch `i` (0 when absent there, unless a default says).
    Score(usize),
    /// A number in the payload at a key (written as in the request, for `defaults`).
    Payload(String, JsonPath),
    /// 1 when the condition holds, else 0.
    Condition(Box<Filter>),
    Mult(Vec<Expr>),
    Sum(Vec<Expr>),
    Max(Vec<Expr>),
    Min(Vec<Expr>),
    Neg(Box<Expr>),
    Abs(Box<Expr>),
    Sqrt(Box<Expr>),
    Exp(Box<Expr>),
    Log10(Box<Expr>),
    Ln(Box<Expr>),
    Acosh(Box<Expr>),
    Div(Box<Expr>, Box<Expr>, Option<f64>),
    Pow(Box<Expr>, Box<Expr>),
    /// Meters from `origin` to the geo point at a payload key.
    GeoDistance(GeoPoint, String, JsonPath),
    /// Seconds since the epoch.
    Datetime(f64),
    DatetimeKey(String, JsonPath),
    Decay(Decay, Box<DecayParams>),
}

/// The shape of a decay function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    Lin,
    Exp,
    Gauss,
}

/// A decay's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DecayParams {
    x: Expr,
    target: Option<Expr>,
    midpoint: f64,
    scale: f64,
}

/// A formula with its defaults (by key as written; `$score` and `$score[0]` are one key).
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    pub expr: Expr,
    pub defaults: Map<String, Value>,
}

/// Parses `{"formula": ..., "defaults": ...}` at path `what`.
pub fn parse(body: &Map<String, Value>, what: &str) -> Result<Formula, Invalid> {
    if let Some(other) = body.keys().find(|k| *k != "formula" && *k != "defaults") {
        return invalid!("{what}: unknown field `{other}`, expected formula or defaults");
    }
    let expr = expression(&body["formula"], &format!("{what}.formula"))?;
    let mut defaults = Map::new();
    match body.get("defaults") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let key = match variable(key, what)? {
                    Expr::Score(i) => format!("$score[{i}]"),
                    _ => key.clone(),
                };
                defaults.insert(key, value.clone());
            }
        }
        Some(other) => return invalid!("{what}.defaults: expected an object, got {}", kind(other)),
    }
    Ok(Formula { expr, defaults })
}

const OPERATORS: [&str; 19] = [
    "mult",
    "sum",
    "max",
    "min",
    "neg",
    "abs",
    "sqrt",
    "exp",
    "log10",
    "ln",
    "acosh",
    "div",
    "pow",
    "geo_distance",
    "datetime",
    "datetime_key",
    "lin_decay",
    "exp_decay",
    "gauss_decay",
];

fn expression(value: &Value, what: &str) -> Result<Expr, Invalid> {
    let map = match value {
        Value::Number(n) => return Ok(Expr::Const(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => return variable(s, what),
        Value::Object(map) => map,
        other => return invalid!("{what}: expected an expression, got {}", kind(other)),
    };
    let op = match map.keys().next() {
        Some(k) if map.len() == 1 && OPERATORS.contains(&k.as_str()) => k,
        // Anything else is a filter condition.
        _ => {
            let filter = Filter::from_json(&serde_json::json!({ "must": [value] }))
                .map_err(|e| Invalid(format!("{what}: {e}")))?;
            return Ok(Expr::Condition(Box::new(filter)));
        }
    };
    let inner = &map[op.as_str()];
    let at = format!("{what}.{op}");
    let one = || expression(inner, &at).map(Box::new);
    let list = |at: &str, nonempty: bool| -> Result<Vec<Expr>, Invalid> {
        let Value::Array(items) = inner else {
            return invalid!("{at}: expected a list of expressions");
        };
        if nonempty && items.is_empty() {
            return invalid!("{at}: needs at least one operand");
        }
        let each = items.iter().enumerate();
        each.map(|(i, e)| expression(e, &format!("{at}[{i}]")))
            .collect()
    };
    Ok(match op.as_str() {
        "mult" => Expr::Mult(list(&at, false)?),
        "sum" => Expr::Sum(list(&at, false)?),
        "max" => Expr::Max(list(&at, true)?),
        "min" => Expr::Min(list(&at, true)?),
        "neg" => Expr::Neg(one()?),
        "abs" => Expr::Abs(one()?),
        "sqrt" => Expr::Sqrt(one()?),
        "exp" => Expr::Exp(one()?),
        "log10" => Expr::Log10(one()?),
        "ln" => Expr::Ln(one()?),
        "acosh" => Expr::Acosh(one()?),
        "div" => {
            let f = object(inner, &at, &["left", "right", "by_zero_default"])?;
            let by_zero = f.get("by_zero_default").and_then(Value::as_f64);
            Expr::Div(field(f, "left", &at)?, field(f, "right", &at)?, by_zero)
        }
        "pow" => {
            let f = object(inner, &at, &["base", "exponent"])?;
            Expr::Pow(field(f, "base", &at)?, field(f, "exponent", &at)?)
        }
        "geo_distance" => {
            let f = object(inner, &at, &["origin", "to"])?;
            let origin = f.get("origin").and_then(geo_point).ok_or_else(|| {
                Invalid(format!(
                    "{at}.origin: expected {{\"lon\": number, \"lat\": number}}"
                ))
            })?;
            let to = key(f.get("to"), &format!("{at}.to"))?;
            Expr::GeoDistance(origin, to.0, to.1)
        }
        "datetime" => {
            let text = inner.as_str().unwrap_or_default();
            let d = crate::filter::Datetime::parse(text)
                .ok_or_else(|| Invalid(format!("{at}: expected a datetime, got {inner}")))?;
            Expr::Datetime(d.0 as f64 / 1e6)
        }
        "datetime_key" => {
            let (raw, path) = key(Some(inner), &at)?;
            Expr::DatetimeKey(raw, path)
        }
        decay => {
            let shape = match decay {
                "lin_decay" => Decay::Lin,
                "exp_decay" => Decay::Exp,
                _ => Decay::Gauss,
            };
            Expr::Decay(shape, Box::new(decay_params(inner, &at, shape)?))
        }
    })
}

fn field(map: &Map<String, Value>, name: &str, what: &str) -> Result<Box<Expr>, Invalid> {
    let value = map
        .get(name)
        .ok_or_else(|| Invalid(format!("{what}.{name} is required")))?;
    expression(value, &format!("{what}.{name}")).map(Box::new)
}

fn key(value: Option<&Value>, what: &str) -> Result<(String, JsonPath), Invalid> {
    let raw = value
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid(format!("{what}: expected a payload key")))?;
    let path = parse_path(raw).map_err(|e| Invalid(format!("{what}: {e}")))?;
    Ok((raw.to_string(), path))
}

/// `{"lon": ..., "lat": ...}`.
fn geo_point(value: &Value) -> Option<GeoPoint> {
    Some(GeoPoint {
        lon: value.get("lon")?.as_f64()?,
        lat: value.get("lat")?.as_f64()?,
    })
}

/// `$score`, `$score[i]`, or a payload key.
fn variable(text: &str, what: &str) -> Result<Expr, Invalid> {
    let Some(rest) = text.strip_prefix("$score") else {
        let path = parse_path(text).map_err(|e| Invalid(format!("{what}: {e}")))?;
        return Ok(Expr::Payload(text.to_string(), path));
    };
    if rest.is_empty() {
        return Ok(Expr::Score(0));
    }
    let index = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse().ok());
    index.map(Expr::Score).ok_or_else(|| {
        Invalid(format!(
            "{what}: invalid score variable {text:?}; expected $score or $score[i]"
        ))
    })
}

fn decay_params(value: &Value, what: &str, shape: Decay) -> Result<DecayParams, Invalid> {
    let f = object(value, what, &["x", "target", "scale", "midpoint"])?;
    let number = |name: &str, default: f64| -> Result<f64, Invalid> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| Invalid(format!("{what}.{name}: expected a number, got {v}"))),
        }
    };
    let midpoint = number("midpoint", 0.5)?;
    let scale = number("scale", 1.0)?;
    let in_range = match shape {
        Decay::Lin => (0.0..=1.0).contains(&midpoint),
        _ => midpoint > 0.0 && midpoint < 1.0,
    };
    if !in_range {
        return invalid!("{what}.midpoint: {midpoint} is out of range (linear decay: [0, 1]; exponential and gaussian: (0, 1))");
    }
    if scale <= 0.0 {
        return invalid!("{what}.scale must be positive, got {scale}");
    }
    let target = match f.get("target") {
        None | Some(Value::Null) => None,
        Some(t) => Some(expression(t, &format!("{what}.target"))?),
    };
    Ok(DecayParams {
        x: *field(f, "x", what)?,
        target,
        midpoint,
        scale,
    })
}

/// What a formula is evaluated against: one point and its scores in each prefetch.
pub struct Point<'a> {
    pub id: PointId,
    pub payload: &'a Map<String, Value>,
    pub scores: &'a [HashMap<PointId, f32>],
}

impl PointView for Point<'_> {
    fn id(&self) -> PointId {
        self.id
    }
    fn payload(&self) -> Option<&Map<String, Value>> {
        Some(self.payload)
    }
    fn has_vector(&self, _name: &str) -> bool {
        true
    }
}

impl Formula {
    /// The point's score as a finite f32.
    pub fn score(&self, point: &Point) -> Result<f32, Invalid> {
        let value = self.eval(&self.expr, point)?;
        let score = value as f32;
        if !score.is_finite() {
            return invalid!("The expression {value} as f32 produced a non-finite number");
        }
        Ok(score)
    }

    fn eval(&self, expr: &Expr, p: &Point) -> Result<f64, Invalid> {
        let e = |x: &Expr| self.eval(x, p);
        let non_finite =
            |what: String| invalid!("The expression {what} produced a non-finite number");
        Ok(match expr {
            Expr::Const(c) => *c,
            Expr::Score(i) => match p.scores.get(*i).and_then(|s| s.get(&p.id)) {
                Some(s) => *s as f64,
                None => self.defaults.get(&format!("$score[{i}]")).and_then(Value::as_f64).unwrap_or(0.0),
            },
            Expr::Payload(raw, path) => match self.value(raw, path, p)? {
                Value::Number(n) => n.as_f64().unwrap_or(0.0),
                _ => return invalid!("Expected number value for {raw} in the payload and/or in the formula defaults. Error: Value is not a number"),
            },
            Expr::Condition(f) => f64::from(u8::from(f.matches(p))),
            Expr::Mult(xs) => {
                let mut product = 1.0;
                for x in xs {
                    let factor = e(x)?;
                    if factor == 0.0 {
                        return Ok(factor);
                    }
                    product *= factor;
                }
                product
            }
            Expr::Sum(xs) => xs.iter().map(e).sum::<Result<f64, _>>()?,
            Expr::Max(xs) => xs.iter().try_fold(f64::NEG_INFINITY, |m, x| e(x).map(|v| m.max(v)))?,
            Expr::Min(xs) => xs.iter().try_fold(f64::INFINITY, |m, x| e(x).map(|v| m.min(v)))?,
            Expr::Neg(x) => -e(x)?,
            Expr::Abs(x) => e(x)?.abs(),
            Expr::Sqrt(x) => match e(x)? {
                v if v >= 0.0 => v.sqrt(),
                v => return non_finite(format!("√{v}")),
            },
            Expr::Exp(x) => match e(x)?.exp() {
                r if r.is_finite() => r,
                _ => return non_finite("exp".into()),
            },
            Expr::Log10(x) | Expr::Ln(x) => match e(x)? {
                v if v > 0.0 && matches!(expr, Expr::Log10(_)) => v.log10(),
                v if v > 0.0 => v.ln(),
                v => return non_finite(format!("log({v})")),
            },
            Expr::Acosh(x) => match e(x)? {
                v if v >= 1.0 => v.acosh(),
                v => return non_finite(format!("acosh({v})")),
            },
            Expr::Div(left, right, by_zero) => {
                let l = e(left)?;
                if l == 0.0 {
                    return Ok(l);
                }
                let r = e(right)?;
                match (r, by_zero) {
                    (0.0, Some(d)) => *d,
                    (r, _) if (l / r).is_finite() => l / r,
                    _ => return non_finite(format!("{l}/{r}")),
                }
            }
            Expr::Pow(base, exponent) => {
                let (b, x) = (e(base)?, e(exponent)?);
                match b.powf(x) {
                    r if r.is_finite() => r,
                    _ => return non_finite(format!("{b}^{x}")),
                }
            }
            Expr::GeoDistance(origin, raw, path) => {
                let to = geo_point(&self.value(raw, path, p)?).ok_or_else(|| {
                    Invalid(format!("Expected geo point for {raw} in the payload and/or in the formula defaults."))
                })?;
                crate::filter::haversine_m(*origin, to)
            }
            Expr::Datetime(seconds) => *seconds,
            Expr::DatetimeKey(raw, path) => {
                let value = self.value(raw, path, p)?;
                let parsed = value.as_str().and_then(crate::filter::Datetime::parse);
                let d = parsed.ok_or_else(|| {
                    Invalid(format!("Expected datetime for {raw} in the payload and/or in the formula defaults."))
                })?;
                d.0 as f64 / 1e6
            }
            Expr::Decay(shape, d) => {
                let x = e(&d.x)?;
                let target = d.target.as_ref().map(e).transpose()?.unwrap_or(0.0);
                let diff = (x - target).abs();
                match shape {
                    Decay::Lin => (1.0 - (1.0 - d.midpoint) / d.scale * diff).max(0.0),
                    Decay::Exp => (d.midpoint.ln() / d.scale * diff).exp(),
                    Decay::Gauss => (d.midpoint.ln() / (d.scale * d.scale) * diff * diff).exp(),
                }
            }
        })
    }

    /// The value at `path` in the payload, else the default for `raw`; one value unwrapped
    /// from a list.
    fn value(&self, raw: &str, path: &JsonPath, p: &Point) -> Result<Value, Invalid> {
        let mut found = Vec::new();
        let _ = path.visit(p.payload, true, &mut |v| {
            found.push(v.clone());
            ControlFlow::Continue(())
        });
        let value = if found.is_empty() {
            match self.defaults.get(raw) {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) if a.is_empty() => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(v) => Some(vec![v.clone()]),
            }
        } else {
            Some(found)
        };
        match value {
            None => invalid!("No value found for {raw} in the payload nor the formula defaults"),
            Some(mut one) if one.len() == 1 => Ok(one.remove(0)),
            Some(many) => Ok(Value::Array(many)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn formula(v: Value) -> Result<Formula, Invalid> {
        parse(v.as_object().unwrap(), "query")
    }

    fn score(f: &Formula, payload: Value, prefetch_score: f32) -> Result<f32, Invalid> {
        let id = PointId::Num(1);
        let scores = vec![HashMap::from([(id, prefetch_score)])];
        let payload = payload.as_object().cloned().unwrap();
        f.score(&Point {
            id,
            payload: &payload,
            scores: &scores,
        })
    }

    #[test]
    fn boosts_by_payload_and_conditions() {
        let f = formula(json!({"formula": {"sum": [
            "$score",
            {"mult": [0.5, {"key": "tag", "match": {"value": "x"}}]},
            {"mult": ["price", 0.01]},
        ]}}))
        .unwrap();
        assert_eq!(
            score(&f, json!({"tag": "x", "price": 10}), 0.25).unwrap(),
            0.25 + 0.5 + 0.1
        );
        assert_eq!(
            score(&f, json!({"tag": "y", "price": 10}), 0.25).unwrap(),
            0.25 + 0.1
        );
        let missing = score(&f, json!({"tag": "y"}), 0.25).unwrap_err();
        assert!(missing.0.contains("No value found for price"), "{missing}");
    }

    #[test]
    fn defaults_and_decays() {
        let f = formula(json!({
            "formula": {"gauss_decay": {"x": "age", "target": 30, "scale": 10, "midpoint": 0.5}},
            "defaults": {"age": 40},
        }))
        .unwrap();
        // One scale away from the target: the midpoint.
        assert!((score(&f, json!({}), 0.0).unwrap() - 0.5).abs() < 1e-6);
        // 1 − (1 − 0.5) / 2 × |x|, never below 0.
        let lin = formula(json!({"formula": {"lin_decay": {"x": "x", "scale": 2.0}}})).unwrap();
        assert_eq!(score(&lin, json!({"x": 3.0}), 0.0).unwrap(), 0.25);
        assert_eq!(score(&lin, json!({"x": -5.0}), 0.0).unwrap(), 0.0);
    }

    #[test]
    fn refuses_what_cannot_be_computed() {
        let f = formula(json!({"formula": {"div": {"left": 1, "right": "$score"}}})).unwrap();
        assert!(score(&f, json!({}), 0.0).is_err());
        let f = formula(
            json!({"formula": {"div": {"left": 1, "right": "$score", "by_zero_default": 7}}}),
        )
        .unwrap();
        assert_eq!(score(&f, json!({}), 0.0).unwrap(), 7.0);
        assert!(formula(json!({"formula": "$score[x]"})).is_err());
        assert!(formula(json!({"formula": {"max": []}})).is_err());
        assert!(formula(json!({"formula": {"exp_decay": {"x": 1, "midpoint": 1.0}}})).is_err());
    }
}
