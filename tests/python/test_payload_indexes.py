"""Payload indexes through the official client: create_payload_index, payload_schema as the
client parses it, and filters answered through the indexes matching the client's local mode."""

import pathlib
import sys
import time

import pytest
from qdrant_client import QdrantClient, models

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "crosscheck"))
import datetimes  # noqa: E402
import geo  # noqa: E402
import text  # noqa: E402

# Points without payload pad the collection so that segments are sealed (and indexed) with
# the crosscheck points in them; no condition matches them.
PADDING = [(10_000 + i, {}) for i in range(400)]

TABLES = {
    "geo": (geo, {"loc": models.PayloadSchemaType.GEO, "trip.stops[].at": models.PayloadSchemaType.GEO}),
    "datetimes": (
        datetimes,
        {"at": models.PayloadSchemaType.DATETIME, "trip.legs[].at": models.PayloadSchemaType.DATETIME},
    ),
    "text": (text, {"t": models.PayloadSchemaType.TEXT, "doc.title": models.PayloadSchemaType.TEXT}),
}


def wait_green(client, name):
    deadline = time.time() + 60
    while client.get_collection(name).status != models.CollectionStatus.GREEN:
        assert time.time() < deadline, "collection never became green"
        time.sleep(0.05)


@pytest.fixture(scope="module", params=sorted(TABLES))
def indexed(request, server_url):
    """The table's points in vecdb, with indexes on its fields, and in local mode."""
    table, fields = TABLES[request.param]
    remote = QdrantClient(url=server_url, prefer_grpc=False, check_compatibility=False, timeout=60)
    local = QdrantClient(":memory:")
    points = [
        models.PointStruct(id=i, vector=[1.0, (i % 97) / 10.0], payload=payload)
        for i, payload in table.POINTS + PADDING
    ]
    name = f"idx_{request.param}"
    vectors = models.VectorParams(size=2, distance=models.Distance.EUCLID)
    remote.create_collection(
        name, vectors_config=vectors, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1)
    )
    local.create_collection(name, vectors_config=vectors)
    for c in (remote, local):
        c.upsert(name, points, wait=True)
    wait_green(remote, name)
    for field, kind in fields.items():
        result = remote.create_payload_index(name, field_name=field, field_schema=kind, wait=True)
        assert result.status == models.UpdateStatus.COMPLETED
    yield table, fields, name, remote, local
    remote.close()


def test_payload_schema_lists_every_index_with_counts(indexed):
    table, fields, name, remote, _ = indexed
    schema = remote.get_collection(name).payload_schema
    assert {f: info.data_type for f, info in schema.items()} == fields
    first = next(iter(fields))
    with_field = sum(1 for _, payload in table.POINTS if first in payload and payload[first] not in (None, []))
    # Values the index cannot read (malformed points, wrong types) are not counted.
    assert 0 < schema[first].points <= with_field


def test_indexed_filters_match_local_mode(indexed):
    table, _, name, remote, local = indexed
    for condition in table.CONDITIONS:
        flt = models.Filter(must=[models.FieldCondition(**condition)])
        found = []
        for c in (remote, local):
            page, _ = c.scroll(name, scroll_filter=flt, limit=1000)
            near = c.query_points(name, query=[1.0, 0.0], query_filter=flt, limit=1000).points
            assert sorted(p.id for p in near) == sorted(p.id for p in page), condition
            found.append(sorted(p.id for p in page))
        assert found[0] == found[1], condition


def test_dropping_an_index_keeps_the_answers(indexed):
    table, fields, name, remote, local = indexed
    field = next(iter(fields))
    remote.delete_payload_index(name, field_name=field, wait=True)
    assert field not in remote.get_collection(name).payload_schema
    for condition in table.CONDITIONS:
        flt = models.Filter(must=[models.FieldCondition(**condition)])
        near = remote.query_points(name, query=[1.0, 0.0], query_filter=flt, limit=1000).points
        page, _ = local.scroll(name, scroll_filter=flt, limit=1000)
        assert sorted(p.id for p in near) == sorted(p.id for p in page), condition
