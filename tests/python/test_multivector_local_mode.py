"""Multivectors (late interaction, `max_sim`) through the official client, against the
client's local mode as the definition of each behaviour: nearest search under every distance,
filters, recommendation (average, best score, sum of scores), discovery and context with
multivector examples and point ids, retrieval, `has_vector`, and removing and replacing
multivectors."""

import random

import pytest
from qdrant_client import QdrantClient, models
from conftest import GRPC, as_f32, assert_error, client_errors, connect

SIZE = 6
DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]


def _multi(rng, rows=None):
    rows = rows or rng.randint(1, 5)
    return [[round(rng.uniform(-1, 1), 4) for _ in range(SIZE)] for _ in range(rows)]


def _points(rng, n):
    points = []
    for i in range(n):
        vector = {"dense": [rng.uniform(-1, 1) for _ in range(SIZE)]}
        if i % 7 != 0:
            vector["colbert"] = _multi(rng)
        points.append(models.PointStruct(id=i, vector=vector, payload={"i": i, "even": i % 2 == 0}))
    return points


def _config(distance):
    return {
        "dense": models.VectorParams(size=SIZE, distance=models.Distance.DOT),
        "colbert": models.VectorParams(
            size=SIZE,
            distance=distance,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        ),
    }


@pytest.fixture(scope="module")
def clients(server_url):
    rng = random.Random(11)
    points = _points(rng, 160)
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    for c in (remote, local):
        for distance in DISTANCES:
            name = f"multi_{distance.value.lower()}"
            c.create_collection(name, vectors_config=_config(distance))
            c.upsert(name, points, wait=True)
    yield remote, local
    remote.close()


def _same(found, expected):
    """The same points in the same order with the same scores (values are random enough that
    ties do not occur)."""
    assert [p.id for p in found.points] == [p.id for p in expected.points]
    assert [p.score for p in found.points] == pytest.approx([p.score for p in expected.points], rel=1e-4, abs=1e-5)


EVEN = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
@pytest.mark.parametrize("flt", [None, EVEN], ids=["all", "even"])
def test_multivector_nearest_matches_local_mode(clients, distance, flt):
    remote, local = clients
    rng = random.Random(hash(distance.value) % 1000)
    name = f"multi_{distance.value.lower()}"
    for _ in range(8):
        query = _multi(rng)
        found, expected = (
            c.query_points(name, query=query, using="colbert", query_filter=flt, limit=12) for c in (remote, local)
        )
        _same(found, expected)


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID], ids=lambda d: d.value)
def test_multivector_score_threshold_and_offset(clients, distance):
    remote, local = clients
    name = f"multi_{distance.value.lower()}"
    query = _multi(random.Random(4), 3)
    everything = local.query_points(name, query=query, using="colbert", limit=30)
    # Midway between two scores, so float32 and float64 arithmetic agree on the cut.
    threshold = (everything.points[10].score + everything.points[11].score) / 2
    found, expected = (
        c.query_points(name, query=query, using="colbert", limit=8, offset=3, score_threshold=threshold)
        for c in (remote, local)
    )
    _same(found, expected)


def test_multivectors_read_back_and_count(clients):
    remote, local = clients
    for name in ("multi_cosine", "multi_dot"):
        ids = [0, 1, 2, 7, 8, 100]
        found, expected = (c.retrieve(name, ids, with_vectors=True) for c in (remote, local))
        assert [(p.id, sorted(p.vector)) for p in found] == [(p.id, sorted(p.vector)) for p in expected]
        for p, q in zip(found, expected):
            if "colbert" in q.vector:
                assert len(p.vector["colbert"]) == len(q.vector["colbert"])
                for a, b in zip(p.vector["colbert"], q.vector["colbert"]):
                    assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    has = models.Filter(must=[models.HasVectorCondition(has_vector="colbert")])
    counts = [c.count("multi_dot", count_filter=has, exact=True).count for c in (remote, local)]
    assert counts[0] == counts[1] == 160 - len(range(0, 160, 7))


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID], ids=lambda d: d.value)
@pytest.mark.parametrize(
    "query",
    [
        lambda q: models.RecommendQuery(recommend=models.RecommendInput(positive=[8, q[0]], negative=[9])),
        lambda q: models.RecommendQuery(
            recommend=models.RecommendInput(positive=[8, 10], negative=[q[1]], strategy=models.RecommendStrategy.BEST_SCORE)
        ),
        lambda q: models.RecommendQuery(
            recommend=models.RecommendInput(positive=[8, q[2]], negative=[10], strategy=models.RecommendStrategy.SUM_SCORES)
        ),
        lambda q: models.DiscoverQuery(
            discover=models.DiscoverInput(target=q[1], context=[models.ContextPair(positive=8, negative=9)])
        ),
        lambda q: models.ContextQuery(
            context=[models.ContextPair(positive=8, negative=q[0]), models.ContextPair(positive=11, negative=9)]
        ),
        lambda q: 12,
    ],
    ids=["average", "best_score", "sum_scores", "discover", "context", "by_id"],
)
def test_multivector_examples_match_local_mode(clients, distance, query):
    remote, local = clients
    rng = random.Random(21)
    q = query([_multi(rng) for _ in range(3)])
    name = f"multi_{distance.value.lower()}"
    found, expected = (
        c.query_points(name, query=q, using="colbert", query_filter=EVEN, limit=12) for c in (remote, local)
    )
    # Context scores tie a lot (every point beyond all pairs scores 0): compare scores, and
    # ids only where the score is not tied.
    assert [p.score for p in found.points] == pytest.approx([p.score for p in expected.points], rel=1e-4, abs=1e-5)
    scores = [round(p.score, 4) for p in expected.points]
    untied = {round(p.score, 4): p.id for p in expected.points if scores.count(round(p.score, 4)) == 1}
    assert {round(p.score, 4): p.id for p in found.points if round(p.score, 4) in untied} == untied


def test_removing_and_replacing_multivectors_matches_local_mode(server_url):
    rng = random.Random(5)
    points = _points(rng, 60)
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    replacement = _multi(rng, 4)
    for c in (remote, local):
        c.create_collection("multi_edits", vectors_config=_config(models.Distance.DOT))
        c.upsert("multi_edits", points, wait=True)
        c.delete_vectors("multi_edits", ["colbert"], points=list(range(1, 20)), wait=True)
        c.delete("multi_edits", list(range(40, 50)), wait=True)
        c.update_vectors("multi_edits", [models.PointVectors(id=3, vector={"colbert": replacement})], wait=True)
    for query in (_multi(rng) for _ in range(5)):
        found, expected = (c.query_points("multi_edits", query=query, using="colbert", limit=10) for c in (remote, local))
        _same(found, expected)
    found, expected = (c.retrieve("multi_edits", [3, 4], with_vectors=["colbert"]) for c in (remote, local))
    # Local mode and gRPC read back float32 values widened to float64; vecdb's REST API reads
    # back the shortest decimal of each float32, which is what was sent.
    if GRPC:
        assert [p.vector for p in found] == [{"colbert": [[as_f32(x) for x in row] for row in replacement]}, {}]
    else:
        assert [p.vector for p in found] == [{"colbert": replacement}, {}]
    assert expected[0].vector["colbert"] == [pytest.approx(row, rel=1e-6) for row in replacement]
    assert expected[1].vector == {}
    remote.close()


@pytest.mark.parametrize(
    "vector, status, message",
    [
        ({"colbert": []}, 422, "Validation error in JSON body: [points[0].vector.colbert: multivector must not be empty]"),
        ({"colbert": [[1.0] * SIZE, []]}, 422, "[points[0].vector.colbert: all vectors must be non-empty]"),
        ({"colbert": [[1.0] * SIZE, [1.0] * (SIZE - 1)]}, 400, "expected dim: 6, got 5"),
        ({"colbert": [1.0] * SIZE}, 400, "is a multivector"),
        ({"dense": [[1.0] * SIZE]}, 400, "not a multivector"),
    ],
    ids=["empty", "empty_row", "short_row", "flat", "multi_for_dense"],
)
def test_bad_multivectors_are_rejected_and_change_nothing(clients, vector, status, message):
    remote, local = clients
    before = remote.count("multi_dot", exact=True).count
    with pytest.raises(client_errors()) as remote_error:
        remote.upsert("multi_dot", [models.PointStruct(id=999, vector=vector)], wait=True)
    assert_error(remote_error.value, status, message)
    with pytest.raises(Exception):
        local.upsert("multi_dot", [models.PointStruct(id=999, vector=vector)], wait=True)
    assert remote.count("multi_dot", exact=True).count == before


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.MANHATTAN], ids=lambda d: d.value)
def test_multivector_mmr_and_groups_match_local_mode(clients, distance):
    remote, local = clients
    name = f"multi_{distance.value.lower()}"
    rng = random.Random(31)
    for _ in range(4):
        query = _multi(rng)
        mmr = models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=0.6, candidates_limit=40))
        found, expected = (c.query_points(name, query=mmr, using="colbert", limit=8) for c in (remote, local))
        assert [p.id for p in found.points] == [p.id for p in expected.points]
        groups = [
            c.query_points_groups(name, query=query, using="colbert", group_by="even", limit=2, group_size=4)
            for c in (remote, local)
        ]
        assert [(g.id, [p.id for p in g.hits]) for g in groups[0].groups] == [
            (g.id, [p.id for p in g.hits]) for g in groups[1].groups
        ]


def test_multivector_distance_matrix_matches_local_mode(clients):
    remote, local = clients
    # A sample larger than the matching points draws all of them: the matrix is determined.
    flt = models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=30))])
    found, expected = (
        c.search_matrix_pairs("multi_dot", query_filter=flt, sample=100, limit=3, using="colbert") for c in (remote, local)
    )
    assert [(p.a, p.b) for p in found.pairs] == [(p.a, p.b) for p in expected.pairs]
    assert [p.score for p in found.pairs] == pytest.approx([p.score for p in expected.pairs], rel=1e-4, abs=1e-5)
