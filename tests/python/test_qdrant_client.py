"""The official qdrant-client (REST mode) against vecdb: the operations a user of that client does."""

import hashlib
import random
import time
import urllib.request
import uuid

import httpx
import pytest
from qdrant_client import QdrantClient, models

from conftest import GRPC, as_f32, assert_error, client_errors, cluster_mode, connect


@pytest.fixture(scope="module")
def client(server_url):
    c = connect(server_url)
    yield c
    c.close()


def make_points(n, dim, rng):
    return [
        models.PointStruct(
            id=i,
            vector=[rng.uniform(-1, 1) for _ in range(dim)],
            payload={"group": i % 5, "name": f"p{i}", "tags": ["even" if i % 2 == 0 else "odd"]},
        )
        for i in range(n)
    ]


def test_collection_lifecycle(client):
    assert not client.collection_exists("life")
    client.create_collection("life", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    assert client.collection_exists("life")
    info = client.get_collection("life")
    assert info.status == models.CollectionStatus.GREEN
    assert info.config.params.vectors.size == 4
    assert info.config.params.vectors.distance == models.Distance.DOT
    assert "life" in [c.name for c in client.get_collections().collections]
    client.update_collection("life", hnsw_config=models.HnswConfigDiff(ef_construct=50))
    assert client.get_collection("life").config.hnsw_config.ef_construct == 50
    assert client.delete_collection("life")
    assert not client.collection_exists("life")


def test_upsert_query_scroll_count(client):
    rng = random.Random(42)
    client.create_collection("pts", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    points = make_points(200, 8, rng)
    result = client.upsert("pts", points=points, wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    assert client.count("pts", exact=True).count == 200

    query = [rng.uniform(-1, 1) for _ in range(8)]
    hits = client.query_points("pts", query=query, limit=5, with_payload=True).points
    assert len(hits) == 5
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    exact = client.query_points("pts", query=query, limit=5, search_params=models.SearchParams(exact=True)).points
    assert [h.id for h in hits] == [h.id for h in exact]

    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=3))])
    hits = client.query_points("pts", query=query, query_filter=flt, limit=100, with_payload=True).points
    assert len(hits) == 40 and all(h.payload["group"] == 3 for h in hits)
    assert client.count("pts", count_filter=flt).count == 40

    seen, offset = [], None
    while True:
        records, offset = client.scroll("pts", limit=64, offset=offset, with_payload=False)
        seen.extend(r.id for r in records)
        if offset is None:
            break
    assert seen == list(range(200))

    got = client.retrieve("pts", ids=[3, 7, 1000], with_vectors=True)
    assert sorted(r.id for r in got) == [3, 7]
    assert len(got[0].vector) == 8


def test_batch_upload_uuid_ids_and_named_vectors(client):
    client.create_collection(
        "named",
        vectors_config={
            "text": models.VectorParams(size=3, distance=models.Distance.COSINE),
            "image": models.VectorParams(size=2, distance=models.Distance.EUCLID),
        },
    )
    ids = [str(uuid.uuid4()) for _ in range(3)]
    client.upsert(
        "named",
        points=models.Batch(
            ids=ids,
            vectors={"text": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "image": [[0, 0], [1, 1], [5, 5]]},
            payloads=[{"k": i} for i in range(3)],
        ),
        wait=True,
    )
    hits = client.query_points("named", query=[0.1, 0.9, 0], using="text", limit=1, with_payload=True).points
    assert str(hits[0].id) == ids[1] and hits[0].payload == {"k": 1}
    hits = client.query_points("named", query=[4, 4], using="image", limit=1, with_vectors=True).points
    assert str(hits[0].id) == ids[2]
    assert hits[0].vector["image"] == [5.0, 5.0]


def test_payload_operations_and_deletes(client):
    client.create_collection("pay", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID))
    client.upsert("pay", points=[models.PointStruct(id=i, vector=[i, i], payload={"n": i}) for i in range(10)], wait=True)
    client.set_payload("pay", payload={"color": "red"}, points=[1, 2], wait=True)
    assert client.retrieve("pay", ids=[1])[0].payload == {"n": 1, "color": "red"}
    client.overwrite_payload("pay", payload={"only": True}, points=[2], wait=True)
    assert client.retrieve("pay", ids=[2])[0].payload == {"only": True}
    client.delete_payload("pay", keys=["color"], points=[1], wait=True)
    assert client.retrieve("pay", ids=[1])[0].payload == {"n": 1}
    client.clear_payload("pay", points_selector=models.PointIdsList(points=[1]), wait=True)
    assert client.retrieve("pay", ids=[1])[0].payload == {}

    client.delete("pay", points_selector=models.PointIdsList(points=[0, 1]), wait=True)
    assert client.count("pay").count == 8
    flt = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=7))])
    client.delete("pay", points_selector=models.FilterSelector(filter=flt), wait=True)
    assert client.count("pay").count == 5

    results = client.batch_update_points(
        "pay",
        update_operations=[
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=50, vector=[0, 0], payload={"x": 1})])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"y": 2}, points=[50])),
            models.DeleteOperation(delete=models.PointIdsList(points=[3])),
        ],
        wait=True,
    )
    assert len(results) == 3
    assert client.retrieve("pay", ids=[50])[0].payload == {"x": 1, "y": 2}
    assert client.count("pay").count == 5


def test_errors_surface_as_client_exceptions(client):
    client.create_collection("err", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    with pytest.raises(client_errors()) as e:
        client.upsert("err", points=[models.PointStruct(id=1, vector=[1, 2])], wait=True)
    assert_error(e.value, 400, "expected dim: 3, got 2")
    with pytest.raises(client_errors()) as e:
        client.get_collection("missing")
    assert_error(e.value, 404)
    assert client.count("err").count == 0


def test_scalar_quantization(client):
    rng = random.Random(7)
    client.create_collection(
        "sq",
        vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(full_scan_threshold=0),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        ),
    )
    client.upsert("sq", points=make_points(600, 16, rng), wait=True)
    info = client.get_collection("sq")
    assert info.config.quantization_config.scalar.type == models.ScalarType.INT8
    # gRPC carries the quantile as a float32.
    assert info.config.quantization_config.scalar.quantile == pytest.approx(0.99, rel=1e-7)
    query = [rng.uniform(-1, 1) for _ in range(16)]
    exact = client.query_points("sq", query=query, limit=5, search_params=models.SearchParams(exact=True)).points
    params = models.SearchParams(
        hnsw_ef=128, quantization=models.QuantizationSearchParams(ignore=False, rescore=True, oversampling=2.0)
    )
    hits = client.query_points("sq", query=query, limit=5, search_params=params).points
    assert len(hits) == 5
    assert len({h.id for h in hits} & {h.id for h in exact}) >= 4
    for h in hits:
        match = [e for e in exact if e.id == h.id]
        if match:
            assert abs(match[0].score - h.score) < 1e-5
    with pytest.raises(Exception):
        client.create_collection(
            "pq",
            vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE),
            quantization_config=models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X16)
            ),
        )
    assert not client.collection_exists("pq")



def test_snapshots_round_trip(client, server_url, tmp_path):
    rng = random.Random(3)
    client.create_collection("snap", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID))
    client.upsert("snap", points=make_points(50, 4, rng), wait=True)
    before = client.scroll("snap", limit=100, with_payload=True, with_vectors=True)[0]
    made = client.create_snapshot("snap", wait=True)
    assert made.size > 0
    assert [s.name for s in client.list_snapshots("snap")] == [made.name]

    path = tmp_path / made.name
    with urllib.request.urlopen(f"{server_url}/collections/snap/snapshots/{made.name}") as resp:
        path.write_bytes(resp.read())
    assert path.stat().st_size == made.size

    assert made.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert client.list_snapshots("snap")[0].checksum == made.checksum

    client.delete("snap", points_selector=models.PointIdsList(points=list(range(25))), wait=True)
    client.set_payload("snap", payload={"changed": True}, points=[30], wait=True)
    assert client.count("snap").count == 25
    with pytest.raises(Exception, match="checksum mismatch"):
        client.recover_snapshot("snap", location=f"file://{path}", checksum="0" * 64, wait=True)
    assert client.count("snap").count == 25
    assert client.recover_snapshot("snap", location=f"file://{path}", checksum=made.checksum.upper(), wait=True)
    after = client.scroll("snap", limit=100, with_payload=True, with_vectors=True)[0]
    assert after == before
    assert client.delete_snapshot("snap", made.name, wait=True)
    assert client.list_snapshots("snap") == []
    # Not waited for: 202 at once, the snapshot appears when written.
    r = httpx.post(f"{server_url}/collections/snap/snapshots?wait=false")
    assert r.status_code == 202 and r.json()["status"] == "accepted", r.text
    for _ in range(100):
        if client.list_snapshots("snap"):
            break
        time.sleep(0.05)
    assert len(client.list_snapshots("snap")) == 1


def test_vectors_read_back_as_written(client):
    client.create_collection("floats", vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID))
    client.upsert("floats", [models.PointStruct(id=1, vector=[0.15, -0.3, 1e-7])], wait=True)
    (point,) = client.retrieve("floats", [1], with_vectors=True)
    # REST reads back the shortest decimal of each stored float32 (what was written); gRPC
    # carries the float32 itself.
    written = [as_f32(x) for x in [0.15, -0.3, 1e-7]] if GRPC else [0.15, -0.3, 1e-7]
    assert point.vector == written
    (hit,) = client.query_points("floats", query=[0.0, 0.0, 0.0], with_vectors=True).points
    assert hit.vector == written


def test_collection_metadata_is_kept_and_merged(client, server_url):
    client.create_collection(
        "meta",
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        metadata={"owner": "search-team", "tier": 1},
    )
    assert client.get_collection("meta").config.metadata == {"owner": "search-team", "tier": 1}
    client.update_collection("meta", metadata={"tier": 2, "note": "reindexed"})
    assert client.get_collection("meta").config.metadata == {"owner": "search-team", "tier": 2, "note": "reindexed"}
    r = httpx.patch(f"{server_url}/collections/meta", json={"metadata": [1, 2]})
    assert r.status_code == 400 and "metadata must be a JSON object" in r.text, r.text
    assert client.get_collection("meta").config.metadata["tier"] == 2


def test_aliases_name_collections_everywhere(client, server_url):
    for name in ("blue", "green"):
        client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        client.upsert(name, [models.PointStruct(id=1, vector=[1.0, 0.0], payload={"from": name})], wait=True)
    create = models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="blue", alias_name="live"))
    assert client.update_collection_aliases([create])
    assert client.query_points("live", query=[1.0, 0.0], with_payload=True).points[0].payload == {"from": "blue"}
    assert client.collection_exists("live")
    client.upsert("live", [models.PointStruct(id=2, vector=[0.0, 1.0])], wait=True)
    assert client.count("blue").count == 2
    # Switch the alias in one request: delete and create apply together.
    switch = [
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="live")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="green", alias_name="live")),
    ]
    client.update_collection_aliases(switch)
    assert client.retrieve("live", [1], with_payload=True)[0].payload == {"from": "green"}
    # A failing action leaves every alias as it was.
    failing = [
        models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="live", new_alias_name="prod")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="missing", alias_name="x")),
    ]
    with pytest.raises(Exception, match="missing"):
        client.update_collection_aliases(failing)
    listed = [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases]
    assert listed == [("live", "green")]
    assert [a.alias_name for a in client.get_collection_aliases("green").aliases] == ["live"]
    assert client.get_collection_aliases("blue").aliases == []
    r = httpx.post(
        f"{server_url}/collections/aliases",
        json={"actions": [{"create_alias": {"collection_name": "green", "alias_name": "blue"}}]},
    )
    assert r.status_code == 409, r.text
    client.delete_collection("green")
    assert client.get_aliases().aliases == []
    assert not client.collection_exists("live")
    client.delete_collection("blue")


def test_update_vectors_keeps_the_other_vectors_and_the_payload(client):
    config = {
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=2, distance=models.Distance.EUCLID),
    }
    client.create_collection("upd", vectors_config=config)
    client.upsert("upd", [models.PointStruct(id=1, vector={"a": [1.0, 0.0], "b": [0.0, 1.0]}, payload={"k": 1})])
    client.update_vectors("upd", [models.PointVectors(id=1, vector={"a": [0.5, 0.25]})])
    (p,) = client.retrieve("upd", [1], with_vectors=True, with_payload=True)
    assert p.vector == {"a": [0.5, 0.25], "b": [0.0, 1.0]} and p.payload == {"k": 1}
    hit = client.query_points("upd", query=[1.0, 1.0], using="a").points[0]
    assert hit.score == pytest.approx(0.75)
    update = models.UpdateVectorsOperation(
        update_vectors=models.UpdateVectors(points=[models.PointVectors(id=1, vector={"b": [2.0, 2.0]})])
    )
    client.batch_update_points("upd", [update])
    assert client.retrieve("upd", [1], with_vectors=True)[0].vector == {"a": [0.5, 0.25], "b": [2.0, 2.0]}
    with pytest.raises(Exception, match="No point with id 9"):
        client.update_vectors("upd", [models.PointVectors(id=9, vector={"a": [1.0, 1.0]})])
    with pytest.raises(Exception, match="Not existing vector name error: c"):
        client.update_vectors("upd", [models.PointVectors(id=1, vector={"c": [1.0, 1.0]})])
    assert client.retrieve("upd", [1], with_vectors=True)[0].vector == {"a": [0.5, 0.25], "b": [2.0, 2.0]}


@pytest.mark.parametrize(
    "selector",
    [
        ["country.name"],
        ["country.cities[].name", "tags"],
        ['"a.b"', "country.cities[0]"],
        models.PayloadSelectorInclude(include=["country.cities[]", "country"]),
        models.PayloadSelectorExclude(exclude=["country.cities[].population", "tags"]),
        models.PayloadSelectorExclude(exclude=["country"]),
    ],
    ids=str,
)
def test_payload_selectors_match_local_mode(client, selector):
    payload = {
        "country": {"name": "Norway", "cities": [{"name": "Oslo", "population": 700}, {"name": "Bergen", "population": 290}]},
        "tags": ["north", "fjord"],
        "a.b": 1,
        "a": {"b": 2},
    }
    local = QdrantClient(":memory:")
    for c in (client, local):
        if not c.collection_exists("selectors"):
            c.create_collection("selectors", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
            c.upsert("selectors", [models.PointStruct(id=1, vector=[1.0, 0.0], payload=payload)], wait=True)
    found = client.retrieve("selectors", [1], with_payload=selector)[0].payload
    expected = local.retrieve("selectors", [1], with_payload=selector)[0].payload
    assert found == expected
    hit = client.query_points("selectors", query=[1.0, 0.0], with_payload=selector).points[0]
    assert hit.payload == expected


@pytest.mark.parametrize(
    "key, patch",
    [
        (None, {"x": None, "new": 1}),
        ("country.name", {"short": "NO"}),
        ("country.cities[1]", {"capital": False}),
        ("country.cities[].stats", {"checked": True}),
        ("country.cities[9]", {"never": 1}),
        ("tags.inner", {"replaced": "the list"}),
        ("fresh.path", {"made": 1}),
    ],
)
def test_set_payload_at_nested_keys_matches_local_mode(client, key, patch):
    payload = {
        "country": {"name": "Norway", "cities": [{"name": "Oslo"}, {"name": "Bergen"}]},
        "tags": ["north"],
        "x": 1,
    }
    local = QdrantClient(":memory:")
    for c in (client, local):
        if c.collection_exists("nested"):
            c.delete_collection("nested")
        c.create_collection("nested", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        c.upsert("nested", [models.PointStruct(id=1, vector=[1.0, 0.0], payload=payload)], wait=True)
        c.set_payload("nested", patch, points=[1], key=key, wait=True)
    assert client.retrieve("nested", [1])[0].payload == local.retrieve("nested", [1])[0].payload
    client.delete_payload("nested", ["country.cities[].name", "country.cities[0]"], points=[1], wait=True)
    local.delete_payload("nested", ["country.cities[].name", "country.cities[0]"], points=[1], wait=True)
    assert client.retrieve("nested", [1])[0].payload == local.retrieve("nested", [1])[0].payload


@pytest.mark.parametrize("mode", [None, "insert_only", "update_only", "upsert"])
def test_conditional_upserts_match_local_mode(client, mode):
    local = QdrantClient(":memory:")
    old = [models.PointStruct(id=i, vector=[1.0, float(i)], payload={"v": 1, "keep": i % 2 == 0}) for i in range(4)]
    new = [models.PointStruct(id=i, vector=[0.5, float(i)], payload={"v": 2}) for i in range(2, 6)]
    keep = models.Filter(must=[models.FieldCondition(key="keep", match=models.MatchValue(value=True))])
    for c in (client, local):
        if c.collection_exists("cond"):
            c.delete_collection("cond")
        c.create_collection("cond", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        c.upsert("cond", old, wait=True)
        update_mode = models.UpdateMode(mode) if mode else None
        c.upsert("cond", new, wait=True, update_filter=keep, update_mode=update_mode)
        vectors = [models.PointVectors(id=i, vector=[9.0, 9.0]) for i in range(4)]
        c.update_vectors("cond", vectors, update_filter=keep, wait=True)
    found = client.scroll("cond", limit=10, with_payload=True, with_vectors=True)[0]
    expected = local.scroll("cond", limit=10, with_payload=True, with_vectors=True)[0]
    assert [(p.id, p.payload, p.vector) for p in found] == [(p.id, p.payload, p.vector) for p in expected]


def test_optional_named_vectors_match_local_mode(client):
    config = {
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=3, distance=models.Distance.EUCLID),
    }
    rng = random.Random(16)

    def vectors(i):
        chosen = {"a": [rng.uniform(-1, 1) for _ in range(2)], "b": [rng.uniform(-1, 1) for _ in range(3)]}
        return {name: v for name, v in chosen.items() if (name == "a" and i % 3 != 0) or (name == "b" and i % 2 == 0)}

    points = [models.PointStruct(id=i, vector=vectors(i), payload={"i": i}) for i in range(30)]
    local = QdrantClient(":memory:")
    for c in (client, local):
        if c.collection_exists("optional"):
            c.delete_collection("optional")
        c.create_collection("optional", vectors_config=config)
        c.upsert("optional", points, wait=True)
        c.delete_vectors("optional", ["a"], points=[1, 2], wait=True)
        c.delete_vectors(
            "optional",
            ["b"],
            points=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(gte=20))]),
            wait=True,
        )
        c.update_vectors("optional", [models.PointVectors(id=3, vector={"b": [0.5, 0.5, 0.5]})], wait=True)

    def same(call):
        assert call(client) == call(local)

    # Local mode keeps float32 and reads them back widened: values compare approximately.
    found, expected = (c.scroll("optional", limit=100, with_vectors=True)[0] for c in (client, local))
    assert [(p.id, sorted(p.vector)) for p in found] == [(p.id, sorted(p.vector)) for p in expected]
    for p, q in zip(found, expected):
        assert p.vector == {name: pytest.approx(v, rel=1e-6) for name, v in q.vector.items()}
    for name in ("a", "b", "c"):
        has = models.Filter(must=[models.HasVectorCondition(has_vector=name)])
        same(lambda c: c.count("optional", count_filter=has, exact=True).count)
        same(lambda c: sorted(p.id for p in c.scroll("optional", scroll_filter=has, limit=100)[0]))
    for name, query in (("a", [0.3, -0.9]), ("b", [0.1, 0.2, 0.3])):
        same(lambda c: [p.id for p in c.query_points("optional", query=query, using=name, limit=100).points])
