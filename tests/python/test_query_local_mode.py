"""The universal query through the official client, crosschecked against the client's local
mode (Qdrant's semantics in Python) on the same points: many random query trees — nearest by
vector and by id, recommend with each strategy, discover, context, relevance feedback, MMR,
order_by, and prefetches nested under fusion (rrf, dbsf) or rescoring — must give the same
points in the same order with the same scores. The older recommend and discover endpoints,
which the client no longer calls, are checked over HTTP against the same queries."""

import random

import httpx
import pytest
from qdrant_client import QdrantClient, models
from conftest import connect

N = 240
CASES = 160


def _points(rng):
    points = []
    for i in range(1, N + 1):
        vector = {
            "a": [round(rng.gauss(0, 1), 4) for _ in range(8)],
            "b": [round(rng.gauss(0, 1), 4) for _ in range(4)],
        }
        payload = {"group": i % 5, "price": round(rng.uniform(0, 100), 3), "tag": rng.choice("xyz")}
        points.append(models.PointStruct(id=i, vector=vector, payload=payload))
    return points


@pytest.fixture(scope="module")
def pair(server_url):
    """The same collection in vecdb and in local mode: a cosine space `a` and a Euclid `b`."""
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    config = {
        "a": models.VectorParams(size=8, distance=models.Distance.COSINE),
        "b": models.VectorParams(size=4, distance=models.Distance.EUCLID),
    }
    points = _points(random.Random(7))
    for c in (remote, local):
        c.create_collection("q", vectors_config=config)
        c.create_payload_index("q", "price", models.PayloadSchemaType.FLOAT)
        c.upsert("q", points, wait=True)
    yield remote, local, server_url
    remote.close()


class Gen:
    """Random parts of query trees."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def using(self):
        return self.rng.choice(["a", "b"])

    def vector(self, using):
        return [round(self.rng.gauss(0, 1), 3) for _ in range(8 if using == "a" else 4)]

    def example(self, using):
        return self.rng.randint(1, N) if self.rng.random() < 0.5 else self.vector(using)

    def filter(self):
        r = self.rng.random()
        if r < 0.4:
            return None
        if r < 0.6:
            return models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=self.rng.randint(0, 4)))])
        if r < 0.8:
            low = self.rng.uniform(0, 60)
            return models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gte=low, lt=low + 40))])
        return models.Filter(
            should=[
                models.FieldCondition(key="tag", match=models.MatchValue(value="x")),
                models.FieldCondition(key="group", match=models.MatchAny(any=[1, 2])),
            ]
        )

    def pairs(self, using):
        return [
            models.ContextPair(positive=self.example(using), negative=self.example(using))
            for _ in range(self.rng.randint(1, 3))
        ]

    def scoring(self, using, ties=True):
        """A query that scores points by vectors; `ties`: also context queries, whose scores
        tie (every point on the right side of all pairs scores 0), so that which of the tied
        points a limited prefetch keeps is unspecified."""
        kinds = ["nearest", "id", "recommend", "discover", "feedback"] + (["context"] if ties else [])
        kind = self.rng.choice(kinds)
        if kind == "feedback":
            rated = [
                models.FeedbackItem(example=self.example(using), score=round(self.rng.uniform(0, 1), 2))
                for _ in range(self.rng.randint(1, 4))
            ]
            a, b, c = (round(self.rng.uniform(0.5, 2), 2) for _ in range(3))
            strategy = models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(a=a, b=b, c=c))
            feedback = models.RelevanceFeedbackInput(target=self.example(using), feedback=rated, strategy=strategy)
            return models.RelevanceFeedbackQuery(relevance_feedback=feedback)
        if kind == "nearest":
            return models.NearestQuery(nearest=self.vector(using))
        if kind == "id":
            return self.rng.randint(1, N)
        if kind == "recommend":
            strategy = self.rng.choice(list(models.RecommendStrategy))
            positive = [self.example(using) for _ in range(self.rng.randint(1, 3))]
            negative = [self.example(using) for _ in range(self.rng.randint(0, 2))]
            return models.RecommendQuery(recommend=models.RecommendInput(positive=positive, negative=negative, strategy=strategy))
        if kind == "discover":
            return models.DiscoverQuery(discover=models.DiscoverInput(target=self.example(using), context=self.pairs(using)))
        return models.ContextQuery(context=self.pairs(using))

    def prefetch(self, depth):
        using = self.using()
        inner = None
        if depth > 0 and self.rng.random() < 0.4:
            inner = [self.prefetch(depth - 1) for _ in range(self.rng.randint(1, 2))]
        fused = inner and self.rng.random() < 0.5
        query = self.fusion() if fused else self.scoring(using, ties=False)
        return models.Prefetch(
            prefetch=inner,
            query=query,
            using=None if fused else using,
            filter=self.filter(),
            limit=self.rng.randint(3, 30),
        )

    def fusion(self):
        r = self.rng.random()
        if r < 0.4:
            return models.FusionQuery(fusion=models.Fusion.RRF)
        if r < 0.7:
            return models.FusionQuery(fusion=models.Fusion.DBSF)
        return models.RrfQuery(rrf=models.Rrf(k=self.rng.randint(1, 80)))

    def request(self):
        """Keyword arguments of one `query_points` call."""
        using = self.using()
        args = {"using": using, "query_filter": self.filter(), "limit": self.rng.randint(1, 25)}
        if self.rng.random() < 0.3:
            args["offset"] = self.rng.randint(0, 5)
        r = self.rng.random()
        if r < 0.35:
            args["query"] = self.scoring(using)
        elif r < 0.5:
            mmr = models.Mmr(diversity=round(self.rng.random(), 2), candidates_limit=self.rng.randint(5, 60))
            args["query"] = models.NearestQuery(nearest=self.vector(using), mmr=mmr)
        elif r < 0.8:
            args["prefetch"] = [self.prefetch(2) for _ in range(self.rng.randint(1, 3))]
            args["query"] = self.fusion()
            del args["using"]
        else:
            args["prefetch"] = [self.prefetch(2) for _ in range(self.rng.randint(1, 2))]
            args["query"] = self.scoring(using)
        return args


def _same(found, expected, case):
    """Same scores in the same order, and the same points; points of equal score (context
    queries give many) may come in any order, and at either end of the page any of them may
    be the ones shown."""
    assert len(found) == len(expected), case
    for f, e in zip(found, expected):
        assert f.score == pytest.approx(e.score, rel=1e-4, abs=1e-4), (case, f.id, e.id)
    groups = {}
    for f, e in zip(found, expected):
        key = round(e.score, 4)
        got, want = groups.setdefault(key, (set(), set()))
        got.add(f.id)
        want.add(e.id)
    # An offset may also cut into a tie: the first group is as open as the last.
    ends = {round(expected[0].score, 4), round(expected[-1].score, 4)} if expected else set()
    for key, (got, want) in groups.items():
        if key not in ends:
            assert got == want, (case, key)


@pytest.mark.parametrize("seed", range(CASES))
def test_random_query_trees_match_local_mode(pair, seed):
    remote, local, _ = pair
    args = Gen(seed).request()
    found = remote.query_points("q", **args).points
    expected = local.query_points("q", **args).points
    _same(found, expected, args)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_order_by_query_matches_local_mode(pair, direction):
    remote, local, _ = pair
    query = models.OrderByQuery(order_by=models.OrderBy(key="price", direction=direction))
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
    found = remote.query_points("q", query=query, query_filter=flt, limit=15).points
    expected = local.query_points("q", query=query, query_filter=flt, limit=15).points
    assert [p.id for p in found] == [p.id for p in expected]
    assert [p.order_value for p in found] == [p.order_value for p in expected]


def test_random_sample_draws_from_matching_points(pair):
    remote, _, _ = pair
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=3))])
    draws = [
        [p.id for p in remote.query_points("q", query=models.SampleQuery(sample=models.Sample.RANDOM), query_filter=flt, limit=10).points]
        for _ in range(3)
    ]
    for ids in draws:
        assert len(ids) == 10 and len(set(ids)) == 10
        assert all(i % 5 == 3 for i in ids)
    assert len({tuple(d) for d in draws}) > 1, "three random samples came out identical"


def test_fusion_without_prefetch_is_a_clear_error(pair):
    _, _, url = pair
    body = {"query": {"fusion": "rrf"}, "limit": 3}
    r = httpx.post(f"{url}/collections/q/points/query", json=body)
    assert r.status_code == 400, r.text
    assert "prefetch" in r.json()["status"]["error"]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"query": {"recommend": {"negative": [1]}}}, "positive"),
        ({"query": {"nearest": [1.0] * 8, "mmr": {"diversity": 3}}, "using": "a"}, "diversity"),
        ({"query": {"rrf": {"k": 0}}, "prefetch": {"query": [1.0] * 4, "using": "b"}}, "query.rrf.k"),
        ({"query": 999999, "using": "a"}, "999999"),
        ({"prefetch": [{"query": [1.0] * 8, "using": "a", "limt": 3}], "query": {"fusion": "dbsf"}}, "prefetch[0]"),
    ],
)
def test_bad_queries_get_4xx_naming_the_problem(pair, body, needle):
    _, _, url = pair
    r = httpx.post(f"{url}/collections/q/points/query", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert needle in r.json()["status"]["error"], r.text


@pytest.mark.parametrize("seed", range(12))
def test_recommend_and_discover_endpoints_answer_as_query(pair, seed):
    remote, local, url = pair
    g = Gen(1000 + seed)
    using = g.using()
    limit = g.rng.randint(1, 15)
    strategy = g.rng.choice(["average_vector", "best_score", "sum_scores"])
    positive = [g.example(using) for _ in range(2)]
    negative = [g.example(using)]
    body = {"positive": positive, "negative": negative, "strategy": strategy, "using": using, "limit": limit}
    r = httpx.post(f"{url}/collections/q/points/recommend", json=body)
    assert r.status_code == 200, r.text
    query = models.RecommendQuery(recommend=models.RecommendInput(positive=positive, negative=negative, strategy=strategy))
    expected = local.query_points("q", query=query, using=using, limit=limit).points
    _same([models.ScoredPoint(**p) for p in r.json()["result"]], expected, body)

    pairs = g.pairs(using)
    target = g.example(using)
    body = {"target": target, "context": [p.model_dump() for p in pairs], "using": using, "limit": limit}
    r = httpx.post(f"{url}/collections/q/points/discover/batch", json={"searches": [body]})
    assert r.status_code == 200, r.text
    query = models.DiscoverQuery(discover=models.DiscoverInput(target=target, context=pairs))
    expected = local.query_points("q", query=query, using=using, limit=limit).points
    _same([models.ScoredPoint(**p) for p in r.json()["result"][0]], expected, body)


def _same_groups(found, expected, case):
    assert [g.id for g in found.groups] == [g.id for g in expected.groups], case
    for f, e in zip(found.groups, expected.groups):
        _same(f.hits, e.hits, case)


@pytest.mark.parametrize("seed", range(30))
def test_random_groups_match_local_mode(pair, seed):
    remote, local, _ = pair
    g = Gen(2000 + seed)
    using = g.using()
    args = {
        "using": using,
        "query": g.scoring(using, ties=False),
        "query_filter": g.filter(),
        "group_by": g.rng.choice(["group", "tag"]),
        "limit": g.rng.randint(1, 6),
        "group_size": g.rng.randint(1, 5),
    }
    found = remote.query_points_groups("q", **args)
    expected = local.query_points_groups("q", **args)
    _same_groups(found, expected, args)


def test_groups_look_up_points_of_another_collection(pair):
    remote, local, url = pair
    for c in (remote, local):
        if not c.collection_exists("groups"):
            c.create_collection("groups", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
            c.upsert("groups", [models.PointStruct(id=i, vector=[1.0, i], payload={"name": f"group {i}"}) for i in range(5)], wait=True)
    args = {"query": [1.0] * 8, "using": "a", "group_by": "group", "limit": 5, "group_size": 2, "with_lookup": "groups"}
    found = remote.query_points_groups("q", **args)
    expected = local.query_points_groups("q", **args)
    _same_groups(found, expected, args)
    assert [g.lookup.payload for g in found.groups] == [g.lookup.payload for g in expected.groups]
    assert all(g.lookup.id == g.id for g in found.groups)
    # The older search and recommend group endpoints, over HTTP.
    body = {"vector": {"name": "a", "vector": [1.0] * 8}, "group_by": "group", "limit": 5, "group_size": 2}
    r = httpx.post(f"{url}/collections/q/points/search/groups", json=body)
    assert r.status_code == 200, r.text
    assert [g["id"] for g in r.json()["result"]["groups"]] == [g.id for g in expected.groups]
    body = {"positive": [1, 2], "negative": [3], "using": "b", "group_by": "tag", "limit": 3, "group_size": 2}
    r = httpx.post(f"{url}/collections/q/points/recommend/groups", json=body)
    assert r.status_code == 200, r.text
    query = models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[3]))
    expected = local.query_points_groups("q", query=query, using="b", group_by="tag", limit=3, group_size=2)
    got = r.json()["result"]["groups"]
    assert [g["id"] for g in got] == [g.id for g in expected.groups]
    assert [[h["id"] for h in g["hits"]] for g in got] == [[h.id for h in g.hits] for g in expected.groups]


@pytest.mark.parametrize("using", ["a", "b"])
def test_distance_matrix_matches_local_mode(pair, using):
    remote, local, _ = pair
    # A sample larger than the matching points draws all of them: the matrix is determined.
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    found = remote.search_matrix_pairs("q", query_filter=flt, sample=100, limit=3, using=using)
    expected = local.search_matrix_pairs("q", query_filter=flt, sample=100, limit=3, using=using)
    assert [(p.a, p.b) for p in found.pairs] == [(p.a, p.b) for p in expected.pairs]
    assert [p.score for p in found.pairs] == pytest.approx([p.score for p in expected.pairs], rel=1e-4, abs=1e-4)
    offsets = remote.search_matrix_offsets("q", query_filter=flt, sample=100, limit=3, using=using)
    want = local.search_matrix_offsets("q", query_filter=flt, sample=100, limit=3, using=using)
    assert (offsets.ids, offsets.offsets_row, offsets.offsets_col) == (want.ids, want.offsets_row, want.offsets_col)
    drawn = remote.search_matrix_pairs("q", sample=10, limit=2, using=using)
    assert len({p.a for p in drawn.pairs}) == 10 and len(drawn.pairs) == 20


def _formula(rng, prefetches):
    """A random score-boosting expression over the prefetch scores and the payload."""
    score = rng.choice(["$score"] + [f"$score[{i}]" for i in range(prefetches)])
    terms = [
        score,
        models.MultExpression(mult=[round(rng.uniform(0, 2), 2), models.FieldCondition(key="tag", match=models.MatchValue(value=rng.choice("xyz")))]),
        models.MultExpression(mult=["price", round(rng.uniform(0, 0.05), 3)]),
        models.GaussDecayExpression(gauss_decay=models.DecayParamsExpression(x="price", target=rng.uniform(0, 100), scale=rng.uniform(5, 50))),
        models.LinDecayExpression(lin_decay=models.DecayParamsExpression(x="group", target=2, scale=3, midpoint=0.3)),
        models.ExpDecayExpression(exp_decay=models.DecayParamsExpression(x=score, scale=rng.uniform(0.5, 5))),
        models.DivExpression(div=models.DivParams(left="price", right=score, by_zero_default=0.0)),
        models.LnExpression(ln=models.SumExpression(sum=[1.0, "price"])),
        models.PowExpression(pow=models.PowParams(base=models.AbsExpression(abs=score), exponent=2)),
        models.MaxExpression(max=[score, "missing_key"]),
    ]
    picked = rng.sample(terms, rng.randint(1, 4))
    return models.FormulaQuery(formula=models.SumExpression(sum=picked), defaults={"missing_key": 0.5})


@pytest.mark.parametrize("seed", range(40))
def test_random_formulas_match_local_mode(pair, seed):
    remote, local, _ = pair
    g = Gen(3000 + seed)
    prefetch = [g.prefetch(1) for _ in range(g.rng.randint(1, 3))]
    args = {
        "prefetch": prefetch,
        "query": _formula(g.rng, len(prefetch)),
        "limit": g.rng.randint(1, 20),
        "query_filter": g.filter(),
    }
    found = remote.query_points("q", **args).points
    expected = local.query_points("q", **args).points
    _same(found, expected, args)


def test_formula_errors_are_4xx(pair):
    _, _, url = pair
    prefetch = {"query": [1.0] * 8, "using": "a", "limit": 5}
    for formula, needle in [
        ({"sum": ["$score", "nowhere"]}, "No value found for nowhere"),
        ({"div": {"left": 1, "right": 0}}, "non-finite"),
        ({"max": []}, "at least one operand"),
        ("$score[one]", "score variable"),
    ]:
        body = {"prefetch": prefetch, "query": {"formula": formula}}
        r = httpx.post(f"{url}/collections/q/points/query", json=body)
        assert r.status_code == 400, r.text
        assert needle in r.json()["status"]["error"], r.text


def test_lookup_from_reads_examples_from_another_collection(pair):
    remote, local, _ = pair
    for c in (remote, local):
        if not c.collection_exists("examples"):
            c.create_collection("examples", vectors_config={"v": models.VectorParams(size=8, distance=models.Distance.COSINE)})
            rng = random.Random(5)
            points = [models.PointStruct(id=i, vector={"v": [rng.gauss(0, 1) for _ in range(8)]}) for i in range(1, 6)]
            c.upsert("examples", points, wait=True)
    lookup = models.LookupLocation(collection="examples", vector="v")
    queries = [
        {"query": 3},
        {"query": models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[4]))},
        {"query": models.RecommendQuery(recommend=models.RecommendInput(positive=[1], negative=[5], strategy="best_score"))},
        {"prefetch": [models.Prefetch(query=2, using="a", lookup_from=lookup, limit=20)], "query": models.FusionQuery(fusion=models.Fusion.RRF)},
    ]
    for args in queries:
        kw = {"using": "a", "lookup_from": lookup, "limit": 7, **args}
        if "prefetch" in args:
            kw.pop("using")
            kw.pop("lookup_from")
        found = remote.query_points("q", **kw).points
        expected = local.query_points("q", **kw).points
        # Ids of the other collection are not left out of this one's results.
        _same(found, expected, kw)
    # `lookup_from` takes an alias of the other collection too (resolved by the collection
    # layer in cluster mode).
    remote.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="examples", alias_name="examples_alias"))
        ]
    )
    by_alias = models.LookupLocation(collection="examples_alias", vector="v")
    query = models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[4]))
    found = remote.query_points("q", query=query, using="a", lookup_from=by_alias, limit=7).points
    expected = local.query_points("q", query=query, using="a", lookup_from=lookup, limit=7).points
    _same(found, expected, {"lookup_from": "alias"})
