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
from conftest import assert_error, client_errors, connect

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
    remote = connect(server_url)
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


def aggregation_points():
    """Points with fields to facet, count and order by, a few of them multi-valued or odd."""
    points = []
    for i in range(300):
        payload = {
            "color": ["red", "green", "blue", "black"][i % 4] if i % 9 else ["red", "teal"],
            "size": i % 13 if i % 11 else [i % 13, 99],
            "price": (i * 7 % 50) / 4,
            "at": f"2024-02-{i % 28 + 1:02d}T{i % 24:02d}:00:00Z",
            "flag": i % 3 == 0,
        }
        if i % 17 == 0:
            payload["size"] = "not a number"
        points.append(models.PointStruct(id=i, vector=[1.0, (i % 29) / 10.0], payload=payload))
    return points


@pytest.fixture(scope="module")
def aggregated(server_url):
    """The same points in vecdb (indexed, sealed into segments) and in local mode."""
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    vectors = models.VectorParams(size=2, distance=models.Distance.EUCLID)
    remote.create_collection(
        "agg", vectors_config=vectors, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1)
    )
    local.create_collection("agg", vectors_config=vectors)
    for c in (remote, local):
        c.upsert("agg", aggregation_points(), wait=True)
    wait_green(remote, "agg")
    kinds = {
        "color": models.PayloadSchemaType.KEYWORD,
        "size": models.PayloadSchemaType.INTEGER,
        "price": models.PayloadSchemaType.FLOAT,
        "at": models.PayloadSchemaType.DATETIME,
        "flag": models.PayloadSchemaType.BOOL,
    }
    for field, kind in kinds.items():
        remote.create_payload_index("agg", field_name=field, field_schema=kind, wait=True)
    yield remote, local
    remote.close()


FILTERS = [
    None,
    models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))]),
    models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gte=3.0, lt=9.5))]),
]


@pytest.mark.parametrize("flt", FILTERS, ids=["all", "flag", "price"])
def test_facet_and_count_match_local_mode(aggregated, flt):
    remote, local = aggregated
    # The server counts the values its index holds; local mode, which has no indexes, also
    # counts values of other types (the "not a number" sizes), so those are left out of it.
    for key, kind in (("color", str), ("size", int), ("flag", bool)):
        got = [(h.value, h.count) for h in remote.facet("agg", key=key, facet_filter=flt, limit=20).hits]
        hits = local.facet("agg", key=key, facet_filter=flt, limit=40).hits
        want = [(h.value, h.count) for h in hits if type(h.value) is kind][:20]
        assert got == want, key
    assert remote.count("agg", count_filter=flt, exact=True).count == local.count("agg", count_filter=flt).count
    approx = remote.count("agg", count_filter=flt, exact=False).count
    assert approx >= local.count("agg", count_filter=flt).count  # indexes give an upper bound here


@pytest.mark.parametrize(
    "order",
    [
        models.OrderBy(key="price"),
        models.OrderBy(key="price", direction=models.Direction.DESC),
        models.OrderBy(key="size", start_from=5),
        models.OrderBy(key="size", direction=models.Direction.DESC, start_from=7),
        models.OrderBy(key="at", start_from="2024-02-20T00:00:00Z"),
    ],
    ids=["price", "price-desc", "size-from-5", "size-desc-from-7", "at-from"],
)
@pytest.mark.parametrize("flt", FILTERS, ids=["all", "flag", "price"])
def test_scroll_order_by_matches_local_mode(aggregated, order, flt):
    remote, local = aggregated
    got, next_got = remote.scroll("agg", scroll_filter=flt, order_by=order, limit=40)
    want, _ = local.scroll("agg", scroll_filter=flt, order_by=order, limit=40)
    assert next_got is None
    assert [(p.id, p.order_value) for p in got] == [(p.id, p.order_value) for p in want]


def test_order_by_and_facet_need_an_index(aggregated):
    remote, _ = aggregated
    with pytest.raises(client_errors()) as err:
        remote.scroll("agg", order_by="color", limit=5)
    assert_error(err.value, 400, "integer, float or datetime index")
    with pytest.raises(client_errors()) as err:
        remote.facet("agg", key="price")
    assert_error(err.value, 400, "keyword, integer, bool or uuid index")
