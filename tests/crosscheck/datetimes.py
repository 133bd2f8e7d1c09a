"""Expected results of datetime range conditions, computed with qdrant-client's local mode.

Prints the Rust table `src/filter/crosscheck_datetime.rs` on stdout; regenerate it with
`python tests/crosscheck/datetimes.py > src/filter/crosscheck_datetime.rs` (needs `qdrant-client`).
"""

from table import local_mode_cases, print_table

STAMPS = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.000001Z",
    "2024-01-01 10:30:00",
    "2024-01-01T10:30",
    "2024-01-01 23:59",
    "2024-01-02",
    "2024-1-3",
    "2024-01-01T12:00:00+01:00",
    "2024-01-01T12:00:00-0500",
    "2024-01-01T12:00:00 +02",
    "2024-01-01T05:00:00.123456789z",
    "2024-01-01 05:00:00.5 UTC",
    "  2024-01-01T06:00:00",
    "2023-12-31T23:59:59.999999Z",
    "2024-01-01T07:00+01:00",
    "2024-01-01T00:00:00.",
    "2024-13-01",
    "yesterday",
    "",
]

POINTS = [(i + 1, {"at": stamp}) for i, stamp in enumerate(STAMPS)] + [
    (40, {"at": ["2020-06-01", "2024-01-01T08:00:00Z"]}),
    (41, {"at": 1704067200}),
    (42, {"at": None}),
    (43, {}),
    (44, {"trip": {"legs": [{"at": "2024-01-01T09:00:00Z"}, {"at": "2025-01-01"}]}}),
]

CONDITIONS = [
    {"key": "at", "range": {"gte": "2024-01-01T00:00:00Z"}},
    {"key": "at", "range": {"gt": "2024-01-01T00:00:00Z"}},
    {"key": "at", "range": {"lt": "2024-01-01"}},
    {"key": "at", "range": {"lte": "2024-01-01 00:00:00"}},
    {"key": "at", "range": {"gte": "2024-01-01T06:00:00+01:00", "lt": "2024-01-01T12:00:00"}},
    {"key": "at", "range": {"gt": "2024-01-01T05:00:00.123456Z", "lte": "2024-01-01T10:30:00Z"}},
    {"key": "at", "range": {"gte": "2024-01-01T05:00:00.123456999Z", "lte": "2024-01-01T05:00:00.123456Z"}},
    {"key": "at", "range": {"gte": "2024-01-02", "lte": "2024-01-03 UTC"[:10]}},
    {"key": "at", "range": {"lt": "2024-01-01T00:00:00-01:00"}},
    {"key": "at", "range": {"gte": "2020-01-01", "lt": "2021-01-01"}},
    {"key": "trip.legs[].at", "range": {"gte": "2024-06-01"}},
]


def expected() -> list[tuple[str, str]]:
    """(filter JSON, ids local mode matches, ascending) for every condition."""
    return local_mode_cases(POINTS, CONDITIONS)


if __name__ == "__main__":
    print_table("datetimes.py", POINTS, expected())
