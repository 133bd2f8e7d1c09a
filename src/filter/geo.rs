//! Geo conditions: `geo_bounding_box`, `geo_radius` and `geo_polygon` on payload values shaped
//! `{"lon": .., "lat": ..}` (degrees). Semantics follow qdrant-client's local mode: a bounding
//! box excludes its edges and may cross the antimeridian (`top_left.lon > bottom_right.lon`);
//! a radius is a haversine distance in meters, strictly less than `radius`; a polygon excludes
//! its outer boundary and the inside of its holes, hole boundaries included.

use crate::error::Invalid;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::parse::{describe, expect_object, fail, required, Loc};

/// Mean Earth radius in meters (IUGG), as Qdrant uses.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on Earth, in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Longitude, -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// Latitude, -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
}

/// Matches points inside the rectangle between `top_left` and `bottom_right`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBox {
    pub top_left: GeoPoint,
    pub bottom_right: GeoPoint,
}

/// Matches points closer than `radius` meters to `center`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoRadius {
    pub center: GeoPoint,
    /// Meters.
    pub radius: f64,
}

/// A closed ring: at least 4 points, the last equal to the first.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoLineString {
    #[schema(min_items = 4)]
    pub points: Vec<GeoPoint>,
}

/// Matches points inside `exterior` and outside every one of `interiors` (holes).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygon {
    pub exterior: GeoLineString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interiors: Option<Vec<GeoLineString>>,
}

/// The geo point a payload value holds: an object with numeric `lon` and `lat` (other keys are
/// allowed).
pub(super) fn payload_point(value: &Value) -> Option<GeoPoint> {
    let map = value.as_object()?;
    Some(GeoPoint {
        lon: map.get("lon")?.as_f64()?,
        lat: map.get("lat")?.as_f64()?,
    })
}

impl GeoBoundingBox {
    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        let (tl, br) = (self.top_left, self.bottom_right);
        let lon = if tl.lon > br.lon {
            p.lon > tl.lon || p.lon < br.lon // crosses the antimeridian
        } else {
            tl.lon < p.lon && p.lon < br.lon
        };
        lon && tl.lat > p.lat && p.lat > br.lat
    }
}

impl GeoRadius {
    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        haversine_m(self.center, p) < self.radius
    }
}

/// Great-circle distance in meters.
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

impl GeoPolygon {
    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        in_ring(p, &self.exterior.points, false)
            && !self
                .interiors
                .iter()
                .flatten()
                .any(|hole| in_ring(p, &hole.points, true))
    }
}

/// Even-odd test of `p` against a closed ring; a point on the ring counts as inside only when
/// `boundary_inside`. Coordinates are taken as (x = lat, y = lon), as local mode does.
fn in_ring(p: GeoPoint, ring: &[GeoPoint], boundary_inside: bool) -> bool {
    let ring = match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    };
    let (px, py) = (p.lat, p.lon);
    let mut inside = false;
    let mut j = ring.len().wrapping_sub(1);
    for (i, a) in ring.iter().enumerate() {
        let b = ring[j];
        let (xi, yi, xj, yj) = (a.lat, a.lon, b.lat, b.lon);
        let on_edge = py * (xi - xj) + yi * (xj - px) + yj * (px - xi) == 0.0
            && (xi - px) * (xj - px) <= 0.0
            && (yi - py) * (yj - py) <= 0.0;
        if on_edge {
            return boundary_inside;
        }
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Parses `{"lon": .., "lat": ..}` within the valid degree ranges.
fn parse_point(value: &Value, loc: &Loc) -> Result<GeoPoint, Invalid> {
    let map = expect_object(value, loc, "an object with lon and lat")?;
    if let Some(key) = map.keys().find(|k| *k != "lon" && *k != "lat") {
        return fail(
            &Loc::Key(loc, key),
            "unknown field in a geo point; expected lon and lat",
        );
    }
    let coordinate = |name: &str, limit: f64| -> Result<f64, Invalid> {
        let here = Loc::Key(loc, name);
        let value = required(map, name, loc)?;
        let Some(x) = value.as_f64() else {
            return fail(&here, format!("expected a number, got {}", describe(value)));
        };
        if x.abs() > limit {
            return fail(
                &here,
                format!("must be between -{limit} and {limit}, got {x}"),
            );
        }
        Ok(x)
    };
    Ok(GeoPoint {
        lon: coordinate("lon", 180.0)?,
        lat: coordinate("lat", 90.0)?,
    })
}

/// Checks that `map` has only the `allowed` keys.
fn only_keys(
    map: &serde_json::Map<String, Value>,
    allowed: &[&str],
    loc: &Loc,
) -> Result<(), Invalid> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => fail(
            &Loc::Key(loc, key),
            format!("unknown field; expected {}", allowed.join(", ")),
        ),
        None => Ok(()),
    }
}

pub(super) fn parse_bounding_box(value: &Value, loc: &Loc) -> Result<GeoBoundingBox, Invalid> {
    let map = expect_object(value, loc, "an object with top_left and bottom_right")?;
    only_keys(map, &["top_left", "bottom_right"], loc)?;
    let point = |name| parse_point(required(map, name, loc)?, &Loc::Key(loc, name));
    Ok(GeoBoundingBox {
        top_left: point("top_left")?,
        bottom_right: point("bottom_right")?,
    })
}

pub(super) fn parse_radius(value: &Value, loc: &Loc) -> Result<GeoRadius, Invalid> {
    let map = expect_object(value, loc, "an object with center and radius")?;
    only_keys(map, &["center", "radius"], loc)?;
    let center = parse_point(required(map, "center", loc)?, &Loc::Key(loc, "center"))?;
    let radius = required(map, "radius", loc)?;
    let Some(radius_m) = radius.as_f64() else {
        let here = Loc::Key(loc, "radius");
        return fail(
            &here,
            format!("expected meters as a number, got {}", describe(radius)),
        );
    };
    Ok(GeoRadius {
        center,
        radius: radius_m,
    })
}

pub(super) fn parse_polygon(value: &Value, loc: &Loc) -> Result<GeoPolygon, Invalid> {
    let map = expect_object(value, loc, "an object with exterior and optional interiors")?;
    only_keys(map, &["exterior", "interiors"], loc)?;
    let exterior = parse_ring(required(map, "exterior", loc)?, &Loc::Key(loc, "exterior"))?;
    let interiors = match map.get("interiors") {
        None | Some(Value::Null) => None,
        Some(Value::Array(rings)) => {
            let here = Loc::Key(loc, "interiors");
            let parsed = rings
                .iter()
                .enumerate()
                .map(|(i, ring)| parse_ring(ring, &Loc::Index(&here, i)))
                .collect::<Result<_, _>>()?;
            Some(parsed)
        }
        Some(other) => {
            let here = Loc::Key(loc, "interiors");
            return fail(
                &here,
                format!("expected an array of rings, got {}", describe(other)),
            );
        }
    };
    Ok(GeoPolygon {
        exterior,
        interiors,
    })
}

/// A ring: `{"points": [...]}` with at least 4 points, closed.
fn parse_ring(value: &Value, loc: &Loc) -> Result<GeoLineString, Invalid> {
    let map = expect_object(value, loc, "an object with points")?;
    only_keys(map, &["points"], loc)?;
    let here = Loc::Key(loc, "points");
    let Value::Array(items) = required(map, "points", loc)? else {
        return fail(&here, "expected an array of geo points");
    };
    let points = items
        .iter()
        .enumerate()
        .map(|(i, p)| parse_point(p, &Loc::Index(&here, i)))
        .collect::<Result<Vec<_>, _>>()?;
    if points.len() < 4 {
        return fail(
            &here,
            format!("a ring needs at least 4 points, got {}", points.len()),
        );
    }
    if points.first() != points.last() {
        return fail(
            &here,
            "a ring must be closed: its last point must equal its first",
        );
    }
    Ok(GeoLineString { points })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::crosscheck_geo::{CASES, POINTS};
    use super::super::tests_eval::check_table;
    use crate::filter::Filter;

    #[test]
    fn geo_conditions_match_local_mode() {
        check_table(POINTS, CASES);
    }

    #[test]
    fn bad_geo_conditions_name_the_place() {
        let cases = [
            (
                json!({"key": "l", "geo_radius": {"center": {"lon": 1, "lat": 91}, "radius": 5}}),
                "filter.must[0].geo_radius.center.lat: must be between -90 and 90, got 91",
            ),
            (
                json!({"key": "l", "geo_radius": {"center": {"lon": 1, "lat": 1}}}),
                "filter.must[0].geo_radius: missing field radius",
            ),
            (
                json!({"key": "l", "geo_bounding_box": {"top_left": {"lon": 1, "lat": 1, "alt": 3}, "bottom_right": {"lon": 2, "lat": 0}}}),
                "filter.must[0].geo_bounding_box.top_left.alt: unknown field in a geo point",
            ),
            (
                json!({"key": "l", "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 0, "lat": 0}]}}}),
                "filter.must[0].geo_polygon.exterior.points: a ring needs at least 4 points, got 3",
            ),
            (
                json!({"key": "l", "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}]}}}),
                "filter.must[0].geo_polygon.exterior.points: a ring must be closed",
            ),
            (
                json!({"key": "l", "geo_polygon": {"exterior": {"points": []}, "interiors": 3}}),
                "filter.must[0].geo_polygon.exterior.points: a ring needs at least 4 points",
            ),
            (
                json!({"key": "l", "geo_radius": {"center": {"lon": 1, "lat": 1}, "radius": "far"}}),
                "filter.must[0].geo_radius.radius: expected meters as a number, got \"far\"",
            ),
        ];
        for (condition, message) in cases {
            let err = Filter::from_json(&json!({"must": [condition]})).unwrap_err();
            assert!(err.starts_with(message), "{err}\n  expected: {message}");
        }
    }
}
