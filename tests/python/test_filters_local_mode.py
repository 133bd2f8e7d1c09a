"""Filter conditions through the official client: vecdb's answers against the client's local
(in-process) mode, which implements Qdrant's semantics, on the same points."""

import pathlib
import sys

import pytest
from qdrant_client import QdrantClient, models

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "crosscheck"))
import geo  # noqa: E402  (the crosscheck's points and conditions)
from conftest import connect


@pytest.fixture(scope="module")
def pair(server_url):
    """The same collection in vecdb and in local mode."""
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    points = [
        models.PointStruct(id=i, vector=[1.0, i / 10.0], payload=payload) for i, payload in geo.POINTS
    ]
    for c in (remote, local):
        c.create_collection("geo", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID))
        c.upsert("geo", points, wait=True)
    yield remote, local
    remote.close()


@pytest.mark.parametrize("condition", geo.CONDITIONS, ids=lambda c: next(k for k in c if k != "key"))
def test_geo_conditions_match_local_mode(pair, condition):
    remote, local = pair
    flt = models.Filter(must=[models.FieldCondition(**condition)])
    ids = []
    for c in (remote, local):
        found, _ = c.scroll("geo", scroll_filter=flt, limit=100)
        near = c.query_points("geo", query=[1.0, 0.0], query_filter=flt, limit=100).points
        assert sorted(p.id for p in near) == sorted(p.id for p in found)
        ids.append(sorted(p.id for p in found))
    assert ids[0] == ids[1], condition
