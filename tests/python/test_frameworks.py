"""The frameworks people build retrieval on, used unchanged against vecdb: LangChain's
`QdrantVectorStore` in dense mode, with similarity and maximal-marginal-relevance search,
against the same store on the client's local mode. (Its sparse and hybrid modes, and
LlamaIndex's hybrid mode, need sparse vectors.)"""

import random

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models

WORDS = "vector graph shard replica index query filter payload segment snapshot raft leader".split()


def _texts(rng, n):
    return [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(n)]


@pytest.fixture(scope="module")
def stores(server_url):
    rng = random.Random(11)
    texts = _texts(rng, 120)
    metadatas = [{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(len(texts))]
    ids = list(range(1, len(texts) + 1))
    embedding = DeterministicFakeEmbedding(size=24)
    remote = QdrantClient(url=server_url, prefer_grpc=False, check_compatibility=False, timeout=60)
    local = QdrantClient(":memory:")
    made = []
    for client in (remote, local):
        client.create_collection("lc", vectors_config=models.VectorParams(size=24, distance=models.Distance.COSINE))
        store = QdrantVectorStore(client=client, collection_name="lc", embedding=embedding)
        store.add_texts(texts, metadatas=metadatas, ids=ids)
        made.append(store)
    yield made
    remote.close()


@pytest.mark.parametrize("query", ["vector index query", "raft leader replica", "payload filter"])
def test_similarity_search_matches_local_mode(stores, query):
    remote, local = stores
    found = remote.similarity_search_with_score(query, k=5)
    expected = local.similarity_search_with_score(query, k=5)
    assert [d.metadata["n"] for d, _ in found] == [d.metadata["n"] for d, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-4)
    assert found[0][0].page_content == expected[0][0].page_content


@pytest.mark.parametrize("lambda_mult", [0.0, 0.5, 1.0])
def test_max_marginal_relevance_search_matches_local_mode(stores, lambda_mult):
    remote, local = stores
    found = remote.max_marginal_relevance_search("shard snapshot segment", k=6, fetch_k=30, lambda_mult=lambda_mult)
    expected = local.max_marginal_relevance_search("shard snapshot segment", k=6, fetch_k=30, lambda_mult=lambda_mult)
    assert [d.metadata["n"] for d in found] == [d.metadata["n"] for d in expected]


def test_filtered_search_and_delete(stores):
    remote, local = stores
    even = models.Filter(must=[models.FieldCondition(key="metadata.kind", match=models.MatchValue(value="even"))])
    for store in (remote, local):
        docs = store.similarity_search("graph", k=4, filter=even)
        assert len(docs) == 4 and all(d.metadata["kind"] == "even" for d in docs)
    found = [d.metadata["n"] for d in remote.similarity_search("graph", k=4, filter=even)]
    assert found == [d.metadata["n"] for d in local.similarity_search("graph", k=4, filter=even)]
    assert remote.delete(ids=[1, 2])
    assert all(d.metadata["n"] not in (0, 1) for d in remote.similarity_search("graph", k=50))
