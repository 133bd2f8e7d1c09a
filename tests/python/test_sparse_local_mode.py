"""Sparse vectors and hybrid queries through the official client, against the client's local
mode as the definition of each behaviour: sparse nearest search (plain and IDF-weighted),
filters, fusion of dense and sparse prefetches, retrieval, `has_vector`, and removing
sparse vectors."""

import random

import pytest
from qdrant_client import QdrantClient, models
from conftest import connect

DENSE = 8


def _sparse(rng):
    dims = sorted({int(rng.random() ** 2 * 40) for _ in range(rng.randint(1, 6))})
    return models.SparseVector(indices=dims, values=[rng.uniform(0.1, 2.0) for _ in dims])


def _points(rng, n):
    points = []
    for i in range(n):
        vector = {"dense": [rng.uniform(-1, 1) for _ in range(DENSE)]}
        if i % 6 != 0:
            vector["bm25"] = _sparse(rng)
            vector["plain"] = _sparse(rng)
        points.append(models.PointStruct(id=i, vector=vector, payload={"i": i, "even": i % 2 == 0}))
    return points


@pytest.fixture(scope="module")
def clients(server_url):
    rng = random.Random(7)
    points = _points(rng, 150)
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    for c in (remote, local):
        c.create_collection(
            "hybrid",
            vectors_config={"dense": models.VectorParams(size=DENSE, distance=models.Distance.COSINE)},
            sparse_vectors_config={
                "bm25": models.SparseVectorParams(modifier=models.Modifier.IDF),
                "plain": models.SparseVectorParams(index=models.SparseIndexParams(full_scan_threshold=100)),
            },
        )
        c.upsert("hybrid", points, wait=True)
    yield remote, local
    remote.close()


def _same(found, expected):
    """The same points in the same order with the same scores (values are random enough that
    ties do not occur)."""
    assert [p.id for p in found.points] == [p.id for p in expected.points]
    assert [p.score for p in found.points] == pytest.approx([p.score for p in expected.points], rel=1e-4)


QUERIES = [
    models.SparseVector(indices=[0, 1, 2], values=[1.0, 0.5, 0.25]),
    models.SparseVector(indices=[3, 17, 30], values=[0.7, 1.5, 2.0]),
    models.SparseVector(indices=[5], values=[1.0]),
]
EVEN = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])


@pytest.mark.parametrize("using", ["bm25", "plain"])
@pytest.mark.parametrize("query", QUERIES, ids=["common", "mixed", "one"])
@pytest.mark.parametrize("flt", [None, EVEN], ids=["all", "even"])
def test_sparse_nearest_matches_local_mode(clients, using, query, flt):
    remote, local = clients
    found, expected = (
        c.query_points("hybrid", query=query, using=using, query_filter=flt, limit=15) for c in (remote, local)
    )
    _same(found, expected)


@pytest.mark.parametrize("fusion", [models.Fusion.RRF, models.Fusion.DBSF])
def test_hybrid_fusion_matches_local_mode(clients, fusion):
    remote, local = clients
    rng = random.Random(3)
    dense = [rng.uniform(-1, 1) for _ in range(DENSE)]

    def run(c):
        prefetch = [
            models.Prefetch(query=dense, using="dense", limit=20),
            models.Prefetch(query=QUERIES[1], using="bm25", limit=20),
        ]
        return c.query_points("hybrid", prefetch=prefetch, query=models.FusionQuery(fusion=fusion), limit=10)

    _same(run(remote), run(local))


def test_sparse_vectors_read_back_and_count(clients):
    remote, local = clients
    for ids in ([1, 2, 3, 6], list(range(0, 150, 13))):
        found, expected = (c.retrieve("hybrid", ids, with_vectors=["bm25"]) for c in (remote, local))
        assert [(p.id, sorted(p.vector)) for p in found] == [(p.id, sorted(p.vector)) for p in expected]
        for p, q in zip(found, expected):
            if "bm25" in q.vector:
                # Local mode keeps the values as sent; vecdb stores float32.
                assert p.vector["bm25"].indices == q.vector["bm25"].indices
                assert p.vector["bm25"].values == pytest.approx(q.vector["bm25"].values, rel=1e-6)
    has = models.Filter(must=[models.HasVectorCondition(has_vector="plain")])
    counts = [c.count("hybrid", count_filter=has, exact=True).count for c in (remote, local)]
    assert counts[0] == counts[1] == 125


def test_query_by_point_id_of_a_sparse_vector(clients):
    remote, local = clients
    found, expected = (c.query_points("hybrid", query=7, using="plain", limit=5) for c in (remote, local))
    _same(found, expected)
    assert 7 not in [p.id for p in found.points]


def test_removing_and_replacing_sparse_vectors_matches_local_mode(server_url):
    rng = random.Random(5)
    points = _points(rng, 60)
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    for c in (remote, local):
        c.create_collection(
            "edits",
            vectors_config={"dense": models.VectorParams(size=DENSE, distance=models.Distance.DOT)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF), "plain": models.SparseVectorParams()},
        )
        c.upsert("edits", points, wait=True)
        c.delete_vectors("edits", ["bm25"], points=list(range(1, 20)), wait=True)
        c.delete("edits", list(range(40, 50)), wait=True)
        c.update_vectors("edits", [models.PointVectors(id=0, vector={"bm25": QUERIES[0]})], wait=True)
    for query in QUERIES:
        found, expected = (c.query_points("edits", query=query, using="bm25", limit=10) for c in (remote, local))
        _same(found, expected)
    remote.close()


@pytest.mark.parametrize("using", ["bm25", "plain"])
@pytest.mark.parametrize(
    "query",
    [
        models.RecommendQuery(recommend=models.RecommendInput(positive=[7, QUERIES[0]], negative=[9])),
        models.RecommendQuery(
            recommend=models.RecommendInput(positive=[7, 8], negative=[QUERIES[1]], strategy=models.RecommendStrategy.BEST_SCORE)
        ),
        models.RecommendQuery(
            recommend=models.RecommendInput(positive=[7, QUERIES[2]], negative=[10], strategy=models.RecommendStrategy.SUM_SCORES)
        ),
        models.DiscoverQuery(
            discover=models.DiscoverInput(target=QUERIES[1], context=[models.ContextPair(positive=7, negative=8)])
        ),
        models.ContextQuery(context=[models.ContextPair(positive=7, negative=QUERIES[0]), models.ContextPair(positive=11, negative=9)]),
    ],
    ids=["average", "best_score", "sum_scores", "discover", "context"],
)
def test_sparse_examples_match_local_mode(clients, using, query):
    remote, local = clients
    found, expected = (
        c.query_points("hybrid", query=query, using=using, query_filter=EVEN if using == "plain" else None, limit=12)
        for c in (remote, local)
    )
    # Context scores tie a lot (every point beyond all pairs scores 0): compare scores, and
    # ids only where the score is not tied.
    assert [p.score for p in found.points] == pytest.approx([p.score for p in expected.points], rel=1e-4, abs=1e-6)
    scores = [round(p.score, 5) for p in expected.points]
    untied = {round(p.score, 5): p.id for p in expected.points if scores.count(round(p.score, 5)) == 1}
    assert {round(p.score, 5): p.id for p in found.points if round(p.score, 5) in untied} == untied


@pytest.mark.parametrize(
    "idf",
    [
        models.IdfScope.GLOBAL,
        models.IdfCorpusParams(corpus=EVEN),
        models.IdfCorpusParams(corpus=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=40))])),
    ],
    ids=["global", "even", "first_forty"],
)
@pytest.mark.parametrize("query", QUERIES, ids=["common", "mixed", "one"])
def test_idf_corpus_matches_local_mode(clients, idf, query):
    """`params.idf` counts the IDF statistics over the points matching a corpus filter only
    (the search itself still ranks every point)."""
    remote, local = clients
    params = models.SearchParams(idf=idf)
    found, expected = (
        c.query_points("hybrid", query=query, using="bm25", search_params=params, limit=15) for c in (remote, local)
    )
    _same(found, expected)
    prefetched = [
        c.query_points(
            "hybrid",
            prefetch=[models.Prefetch(query=query, using="bm25", params=params, limit=30)],
            query=models.FusionQuery(fusion=models.Fusion.DBSF),
            limit=10,
        )
        for c in (remote, local)
    ]
    _same(*prefetched)
