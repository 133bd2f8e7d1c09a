"""The filter crosscheck tables the Rust unit tests use hold what the installed qdrant-client's
local mode computes: a client upgrade that changes a semantic fails here, not silently."""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "crosscheck"))
import datetimes  # noqa: E402
import geo  # noqa: E402
import table  # noqa: E402
import text  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _normalised(cases):
    return [(json.loads(flt), json.loads(ids)) for flt, ids in cases]


def test_main_table_matches_local_mode():
    _, committed = table.committed(table.TABLE)
    assert len(committed) > 50
    assert _normalised(table.recompute()) == _normalised(committed)


def test_geo_table_matches_local_mode():
    _, committed = table.committed(ROOT / "src" / "filter" / "crosscheck_geo.rs")
    assert len(committed) == len(geo.CONDITIONS)
    assert _normalised(geo.expected()) == _normalised(committed)


def test_datetime_table_matches_local_mode():
    _, committed = table.committed(ROOT / "src" / "filter" / "crosscheck_datetime.rs")
    assert len(committed) == len(datetimes.CONDITIONS)
    assert _normalised(datetimes.expected()) == _normalised(committed)


def test_text_table_matches_local_mode():
    _, committed = table.committed(ROOT / "src" / "filter" / "crosscheck_text.rs")
    assert len(committed) == len(text.CONDITIONS)
    assert _normalised(text.expected()) == _normalised(committed)
