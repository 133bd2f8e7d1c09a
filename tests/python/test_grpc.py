"""Qdrant's gRPC API against its REST API on the same server: the official client with
`prefer_grpc=True` and with `prefer_grpc=False` must get the same answers to the same
requests (ids, scores, payloads, vectors to float32 precision), writes through one must be
read back through the other, and errors must carry the same message with the gRPC code Qdrant
uses for the REST status."""

import random

import grpc
import httpx
import pytest
from qdrant_client import models
from qdrant_client.grpc import collections_pb2, points_pb2

from conftest import as_f32, assert_error, client_errors, connect, grpc_port

N = 150


@pytest.fixture(scope="module")
def both(server_url):
    rest = connect(server_url, prefer_grpc=False)
    grpc_client = connect(server_url, prefer_grpc=True)
    rng = random.Random(21)
    rest.create_collection(
        "both",
        vectors_config={
            "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
            "image": models.VectorParams(size=4, distance=models.Distance.EUCLID),
        },
        sparse_vectors_config={"words": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    rest.create_payload_index("both", "tag", models.PayloadSchemaType.KEYWORD)
    rest.create_payload_index("both", "price", models.PayloadSchemaType.FLOAT)
    points = []
    for i in range(1, N + 1):
        words = sorted(rng.sample(range(50), 4))
        vector = {
            "text": [round(rng.gauss(0, 1), 4) for _ in range(8)],
            "image": [round(rng.gauss(0, 1), 4) for _ in range(4)],
            "words": models.SparseVector(indices=words, values=[round(rng.uniform(0.1, 2), 3) for _ in words]),
        }
        payload = {"tag": rng.choice("abc"), "price": round(rng.uniform(0, 100), 2), "n": i, "nested": {"k": [i, "x"]}}
        points.append(models.PointStruct(id=i, vector=vector, payload=payload))
    # Half through each API.
    rest.upsert("both", points[: N // 2], wait=True)
    grpc_client.upsert("both", points[N // 2 :], wait=True)
    yield rest, grpc_client, rng
    rest.close()
    grpc_client.close()


def _f32(vector):
    if isinstance(vector, dict):
        return {name: _f32(v) for name, v in vector.items()}
    if isinstance(vector, models.SparseVector):
        return (list(vector.indices), [as_f32(x) for x in vector.values])
    if vector and isinstance(vector[0], list):
        return [_f32(row) for row in vector]
    return [as_f32(x) for x in vector] if vector is not None else None


def _points(points):
    """What must agree between the two APIs: ids, scores, payloads, vectors as float32."""
    out = []
    for p in points:
        score = getattr(p, "score", None)
        out.append((p.id, None if score is None else pytest.approx(score, rel=1e-6), p.payload, _f32(p.vector)))
    return out


def test_the_same_reads_give_the_same_answers(both):
    rest, grpc_client, rng = both
    cheap = models.Filter(must=[models.FieldCondition(key="price", range=models.Range(lt=60))])
    tag = models.Filter(must_not=[models.FieldCondition(key="tag", match=models.MatchAny(any=["c"]))])
    for _ in range(10):
        q = [rng.gauss(0, 1) for _ in range(8)]
        asks = [
            dict(query=q, using="text", limit=7, query_filter=cheap, with_vectors=True),
            dict(query=q, using="text", limit=5, with_payload=models.PayloadSelectorInclude(include=["tag"])),
            dict(query=rng.randint(1, N), using="image", limit=6, query_filter=tag),
            dict(
                query=models.SparseVector(indices=[1, 7, 30], values=[0.5, 1.0, 0.25]),
                using="words",
                limit=5,
            ),
            dict(
                prefetch=[
                    models.Prefetch(query=q, using="text", limit=20),
                    models.Prefetch(query=models.SparseVector(indices=[3, 4], values=[1.0, 1.0]), using="words", limit=20),
                ],
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=8,
            ),
            dict(
                query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[3])),
                using="text",
                limit=5,
            ),
            dict(query=models.OrderByQuery(order_by=models.OrderBy(key="price", direction="desc")), limit=4),
        ]
        for ask in asks:
            found = grpc_client.query_points("both", **ask).points
            expected = rest.query_points("both", **ask).points
            assert _points(found) == _points(expected), ask
    kwargs = dict(scroll_filter=cheap, limit=9, with_vectors=["image"])
    (page, next_g), (expected, next_r) = (c.scroll("both", **kwargs) for c in (grpc_client, rest))
    assert _points(page) == _points(expected) and next_g == next_r
    ids = [5, 140, 77, 9999]
    assert _points(grpc_client.retrieve("both", ids, with_vectors=True)) == _points(rest.retrieve("both", ids, with_vectors=True))
    assert grpc_client.count("both", count_filter=tag).count == rest.count("both", count_filter=tag).count
    facet = [(h.value, h.count) for h in grpc_client.facet("both", "tag").hits]
    assert facet == [(h.value, h.count) for h in rest.facet("both", "tag").hits]
    groups = [
        c.query_points_groups("both", query=[1.0] * 8, using="text", group_by="tag", limit=3, group_size=2)
        for c in (grpc_client, rest)
    ]
    assert [(g.id, _points(g.hits)) for g in groups[0].groups] == [(g.id, _points(g.hits)) for g in groups[1].groups]


def test_the_same_collection_info(both):
    rest, grpc_client, _ = both
    found, expected = grpc_client.get_collection("both"), rest.get_collection("both")
    assert found.points_count == expected.points_count == N
    assert found.config.params.vectors == expected.config.params.vectors
    assert found.config.params.sparse_vectors == expected.config.params.sparse_vectors
    assert found.config.hnsw_config == expected.config.hnsw_config
    assert set(found.payload_schema) == set(expected.payload_schema) == {"tag", "price"}
    assert {k: v.data_type for k, v in found.payload_schema.items()} == {
        k: v.data_type for k, v in expected.payload_schema.items()
    }


def test_writes_through_grpc_read_back_through_rest(both):
    rest, grpc_client, _ = both
    grpc_client.create_collection("edits", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    assert rest.collection_exists("edits")
    grpc_client.upsert(
        "edits",
        [models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"i": i, "big": 2**62}) for i in range(1, 11)],
        wait=True,
    )
    grpc_client.set_payload("edits", {"extra": {"deep": [1, 2.5, None]}}, points=[1, 2], wait=True)
    grpc_client.delete_payload("edits", ["i"], points=[2], wait=True)
    grpc_client.overwrite_payload("edits", {"only": True}, points=[3], wait=True)
    grpc_client.clear_payload("edits", points_selector=[4], wait=True)
    grpc_client.update_vectors("edits", [models.PointVectors(id=5, vector=[9.0, 9.0, 9.0])], wait=True)
    grpc_client.delete("edits", points_selector=models.Filter(must=[models.HasIdCondition(has_id=[6, 7])]), wait=True)
    grpc_client.batch_update_points(
        "edits",
        [
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=20, vector=[0.0, 0.0, 1.0])])),
            models.DeleteOperation(delete=models.PointIdsList(points=[8])),
        ],
        wait=True,
    )
    got = {p.id: (p.payload, p.vector) for p in rest.scroll("edits", limit=100, with_vectors=True)[0]}
    assert sorted(got) == [1, 2, 3, 4, 5, 9, 10, 20]
    assert got[1][0] == {"i": 1, "big": 2**62, "extra": {"deep": [1, 2.5, None]}}
    assert got[2][0] == {"big": 2**62, "extra": {"deep": [1, 2.5, None]}}
    assert got[3][0] == {"only": True} and got[4][0] == {}
    assert got[5][1] == [9.0, 9.0, 9.0] and got[20][1] == [0.0, 0.0, 1.0]
    grpc_client.create_payload_index("edits", "i", models.PayloadSchemaType.INTEGER, wait=True)
    assert rest.get_collection("edits").payload_schema["i"].data_type == models.PayloadSchemaType.INTEGER
    grpc_client.delete_payload_index("edits", "i", wait=True)
    assert "i" not in rest.get_collection("edits").payload_schema
    grpc_client.update_collection_aliases(
        change_aliases_operations=[models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="edits", alias_name="e"))]
    )
    assert [(a.alias_name, a.collection_name) for a in grpc_client.get_collection_aliases("edits").aliases] == [("e", "edits")]
    assert grpc_client.count("e").count == rest.count("edits").count == 8
    assert grpc_client.delete_collection("edits")
    assert not rest.collection_exists("edits")


@pytest.mark.parametrize(
    "call, status, message",
    [
        (lambda c: c.get_collection("missing"), 404, "Collection `missing` doesn't exist!"),
        (lambda c: c.upsert("both", [models.PointStruct(id=1, vector={"text": [1.0]})]), 400, "expected dim: 8, got 1"),
        (lambda c: c.query_points("both", query=[1.0] * 8, using="nope"), 400, "nope"),
        (
            lambda c: c.create_collection("both", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)),
            409,
            "already exists",
        ),
    ],
    ids=["not_found", "bad_dimension", "unknown_vector", "exists"],
)
def test_errors_carry_the_rest_message_and_qdrants_code(both, call, status, message):
    rest, grpc_client, _ = both
    errors = []
    for client in (rest, grpc_client):
        with pytest.raises(client_errors()) as e:
            call(client)
        assert_error(e.value, status, message)
        errors.append(e.value)
    assert errors[1].details() in errors[0].content.decode()
    assert rest.count("both").count == N


def _raw_error(server_url, method, payload):
    """The error of calling `method` with raw message bytes."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port(server_url)}") as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            call(payload)
    return e.value


def test_unimplemented_methods_name_themselves(both, server_url):
    _, grpc_client, _ = both
    with pytest.raises(grpc.RpcError) as e:
        grpc_client.grpc_collections.ListShardKeys(collections_pb2.ListShardKeysRequest(collection_name="both"))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "ListShardKeys" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        grpc_client.grpc_points.CreateVectorName(points_pb2.CreateVectorNameRequest(collection_name="both", vector_name="v"))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED and "CreateVectorName" in e.value.details()
    error = _raw_error(server_url, "/qdrant.Nowhere/Nothing", b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED and "/qdrant.Nowhere/Nothing" in error.details()


def test_malformed_messages_are_refused_without_harm(both, server_url):
    _, grpc_client, _ = both
    with pytest.raises(grpc.RpcError) as e:
        # A point without an id.
        grpc_client.grpc_points.Upsert(
            points_pb2.UpsertPoints(collection_name="both", points=[points_pb2.PointStruct()]), timeout=10
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "points[0].id is required" in e.value.details()
    error = _raw_error(server_url, "/qdrant.Points/Count", b"\xff\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "decode" in error.details()
    assert grpc_client.count("both").count == N


def test_calls_are_counted_per_method(both, server_url):
    _, grpc_client, _ = both
    grpc_client.count("both")
    with pytest.raises(grpc.RpcError):
        grpc_client.get_collection("missing-for-metrics")
    metrics = httpx.get(f"{server_url}/metrics").text
    assert 'vecdb_grpc_requests_total{method="qdrant.Points/Count",code="Ok"}' in metrics
    assert 'vecdb_grpc_requests_total{method="qdrant.Collections/Get",code="NotFound"}' in metrics
    assert 'vecdb_grpc_request_duration_seconds_count{method="qdrant.Points/Count"}' in metrics
