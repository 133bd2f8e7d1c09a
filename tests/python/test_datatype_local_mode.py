"""Vector datatypes (`float16`, `uint8`) through the official client, against the client's
local mode (which keeps float32 whatever the datatype): with values each type holds exactly,
nearest search, filters, recommendation and retrieval give the same answers under every
distance; values a type cannot hold are refused."""

import random

import pytest
from qdrant_client import QdrantClient, models
from conftest import assert_error, client_errors, connect

SIZE = 8
DATATYPES = [models.Datatype.FLOAT16, models.Datatype.UINT8]
DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]
CASES = [(t, d) for t in DATATYPES for d in DISTANCES]


def _vector(rng, datatype):
    """Values the type holds exactly: sixty-fourths within ±4 for float16, bytes for uint8."""
    if datatype == models.Datatype.FLOAT16:
        return [rng.randint(-256, 256) / 64 for _ in range(SIZE)]
    return [float(rng.randint(0, 255)) for _ in range(SIZE)]


def _name(datatype, distance):
    return f"{datatype.value}_{distance.value.lower()}"


@pytest.fixture(scope="module")
def clients(server_url):
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    for datatype, distance in CASES:
        rng = random.Random(_name(datatype, distance))
        points = [
            models.PointStruct(id=i, vector=_vector(rng, datatype), payload={"even": i % 2 == 0})
            for i in range(200)
        ]
        for c in (remote, local):
            params = models.VectorParams(size=SIZE, distance=distance, datatype=datatype)
            c.create_collection(_name(datatype, distance), vectors_config=params)
            c.upsert(_name(datatype, distance), points, wait=True)
    yield remote, local
    remote.close()


def _tolerance(datatype, distance):
    # A float16 cosine space stores each vector normalised and then rounded to half precision;
    # local mode keeps the normalised float32 vector.
    return 2e-3 if (datatype, distance) == (models.Datatype.FLOAT16, models.Distance.COSINE) else 1e-5


def _same(found, expected, rel):
    """The same scores in order; the same points, except among scores closer than the
    tolerance, which may come in either order."""
    got = [p.score for p in found.points]
    want = [p.score for p in expected.points]
    assert got == pytest.approx(want, rel=rel, abs=rel)
    for i, p in enumerate(expected.points):
        near = [q.score for q in expected.points if q.id != p.id and abs(q.score - p.score) <= 2 * rel * max(1, abs(p.score))]
        if not near and i < len(expected.points) - 1:
            assert found.points[i].id == p.id, (found.points, expected.points)


EVEN = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])


@pytest.mark.parametrize("datatype,distance", CASES, ids=lambda x: x.value)
@pytest.mark.parametrize("flt", [None, EVEN], ids=["all", "even"])
def test_nearest_matches_local_mode(clients, datatype, distance, flt):
    remote, local = clients
    rng = random.Random(f"q{datatype.value}{distance.value}")
    name = _name(datatype, distance)
    for _ in range(10):
        query = _vector(rng, datatype)
        found, expected = (c.query_points(name, query=query, query_filter=flt, limit=10) for c in (remote, local))
        _same(found, expected, _tolerance(datatype, distance))


@pytest.mark.parametrize("datatype,distance", CASES, ids=lambda x: x.value)
@pytest.mark.parametrize("strategy", list(models.RecommendStrategy), ids=lambda s: s.value)
def test_recommend_matches_local_mode(clients, datatype, distance, strategy):
    remote, local = clients
    rng = random.Random(f"r{datatype.value}{distance.value}{strategy.value}")
    name = _name(datatype, distance)
    for _ in range(5):
        positive = rng.sample(range(200), 2)
        negative = rng.sample([i for i in range(200) if i not in positive], 1)
        query = models.RecommendQuery(recommend=models.RecommendInput(positive=positive, negative=negative, strategy=strategy))
        found, expected = (c.query_points(name, query=query, limit=8) for c in (remote, local))
        _same(found, expected, _tolerance(datatype, distance))


@pytest.mark.parametrize("datatype", DATATYPES, ids=lambda x: x.value)
@pytest.mark.parametrize("distance", [models.Distance.DOT, models.Distance.EUCLID], ids=lambda x: x.value)
def test_vectors_read_back_as_stored(clients, datatype, distance):
    remote, local = clients
    name = _name(datatype, distance)
    ids = list(range(0, 200, 17))
    found, expected = (c.retrieve(name, ids, with_vectors=True) for c in (remote, local))
    assert [p.vector for p in found] == [p.vector for p in expected]


def test_the_configuration_names_the_datatype(clients):
    remote, _ = clients
    info = remote.get_collection(_name(models.Datatype.UINT8, models.Distance.DOT))
    assert info.config.params.vectors.datatype == models.Datatype.UINT8


@pytest.mark.parametrize(
    "datatype,value",
    [(models.Datatype.UINT8, 256.0), (models.Datatype.UINT8, -1.0), (models.Datatype.FLOAT16, 1e5)],
    ids=["uint8-high", "uint8-negative", "float16-high"],
)
def test_values_the_type_cannot_hold_are_refused(clients, datatype, value):
    remote, _ = clients
    name = _name(datatype, models.Distance.DOT)
    vector = [1.0] * SIZE
    vector[2] = value
    before = remote.retrieve(name, [3], with_vectors=True)[0].vector
    with pytest.raises(client_errors()) as e:
        remote.upsert(name, [models.PointStruct(id=3, vector=vector)], wait=True)
    assert_error(e.value, 400, datatype.value)
    assert remote.retrieve(name, [3], with_vectors=True)[0].vector == before
