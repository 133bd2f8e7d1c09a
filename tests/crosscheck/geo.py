"""Expected results of geo filter conditions, computed with qdrant-client's local mode.

Prints the Rust table `src/filter/crosscheck_geo.rs` on stdout; regenerate it with
`python tests/crosscheck/geo.py > src/filter/crosscheck_geo.rs` (needs `qdrant-client`).
"""

from table import local_mode_cases, print_table

BERLIN = {"lon": 13.4050, "lat": 52.5200}
POTSDAM = {"lon": 13.0645, "lat": 52.3906}
MOSCOW = {"lon": 37.6173, "lat": 55.7558}
LONDON = {"lon": -0.1278, "lat": 51.5074}

POINTS = [
    (1, {"loc": BERLIN}),
    (2, {"loc": POTSDAM}),
    (3, {"loc": MOSCOW}),
    (4, {"loc": LONDON}),
    (5, {"loc": [LONDON, MOSCOW]}),
    (6, {"loc": {"lon": 179.5, "lat": 0.5}}),
    (7, {"loc": {"lon": -179.5, "lat": -0.5}}),
    (8, {"loc": {"lon": 0.0, "lat": 0.0}}),
    (9, {"loc": {"lon": 5, "lat": 5}}),
    (10, {"loc": {"lon": 10, "lat": 5}}),
    (11, {"loc": {"lon": 5, "lat": 10}}),
    (12, {"loc": {"lon": 2, "lat": 2}}),
    (13, {"loc": "52.52,13.405"}),
    (14, {"loc": {"lat": 52.52}}),
    (15, {"loc": {"lon": "13.4", "lat": 52.52}}),
    (16, {"loc": None}),
    (17, {}),
    (18, {"loc": {"lon": 13.4050, "lat": 52.5200, "name": "Berlin"}}),
    (19, {"trip": {"stops": [{"at": BERLIN}, {"at": MOSCOW}]}}),
    (20, {"loc": {"lon": 0, "lat": 5}}),
    (21, {"loc": {"lon": 7, "lat": 7}}),
]


def box(top_left, bottom_right):
    return {"top_left": top_left, "bottom_right": bottom_right}


def ring(*points):
    return {"points": [{"lon": lon, "lat": lat} for lon, lat in points]}


SQUARE = ring((0, 0), (10, 0), (10, 10), (0, 10), (0, 0))
HOLE = ring((1, 1), (3, 1), (3, 3), (1, 3), (1, 1))
CONDITIONS = [
    {"key": "loc", "geo_bounding_box": box({"lon": 13.0, "lat": 53.0}, {"lon": 14.0, "lat": 52.0})},
    {"key": "loc", "geo_bounding_box": box({"lon": -10.0, "lat": 60.0}, {"lon": 40.0, "lat": 50.0})},
    {"key": "loc", "geo_bounding_box": box({"lon": 179.0, "lat": 1.0}, {"lon": -179.0, "lat": -1.0})},
    {"key": "loc", "geo_bounding_box": box({"lon": 0.0, "lat": 10.0}, {"lon": 10.0, "lat": 0.0})},
    {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 50_000.0}},
    {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 1_000.0}},
    {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 2_000_000.0}},
    {"key": "loc", "geo_radius": {"center": {"lon": 180.0, "lat": 0.0}, "radius": 120_000.0}},
    {"key": "loc", "geo_radius": {"center": BERLIN, "radius": -1.0}},
    {"key": "loc", "geo_polygon": {"exterior": SQUARE}},
    {"key": "loc", "geo_polygon": {"exterior": SQUARE, "interiors": [HOLE]}},
    {"key": "loc", "geo_polygon": {"exterior": ring((0, 0), (10, 0), (10, 10), (0, 0))}},
    {"key": "trip.stops[].at", "geo_radius": {"center": MOSCOW, "radius": 10_000.0}},
    {"key": "trip.stops[].at", "geo_bounding_box": box({"lon": 0, "lat": 60}, {"lon": 20, "lat": 50})},
]


def expected() -> list[tuple[str, str]]:
    """(filter JSON, ids local mode matches, ascending) for every condition."""
    return local_mode_cases(POINTS, CONDITIONS)


if __name__ == "__main__":
    print_table("geo.py", POINTS, expected())
