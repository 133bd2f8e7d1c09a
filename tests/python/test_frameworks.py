"""The frameworks people build retrieval on, used unchanged against vecdb: LangChain's
`QdrantVectorStore` in its dense, sparse and hybrid retrieval modes, with similarity and
maximal-marginal-relevance search, and LlamaIndex's `QdrantVectorStore` with hybrid search
enabled, each against the same store on the client's local mode."""

import random
import zlib

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
from qdrant_client import QdrantClient, models
from conftest import connect, store_args

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
    remote = connect(server_url)
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


class TermCounts(SparseEmbeddings):
    """A sparse embedding of the kind BM25 retrieval uses: one dimension per word (its index in
    the vocabulary), valued by how often the word occurs, scaled a little per text so that no
    two texts score alike (tied scores may be listed in any order, which would make the
    fused rankings differ for no fault of either side)."""

    def _embed(self, text):
        counts = {}
        for word in text.split():
            index = WORDS.index(word) if word in WORDS else len(WORDS) + len(word)
            counts[index] = counts.get(index, 0) + 1.0
        scale = 1 + zlib.crc32(text.encode()) % 10007 / 1e5
        indices = sorted(counts)
        return SparseVector(indices=indices, values=[counts[i] * scale for i in indices])

    def embed_documents(self, texts):
        return [self._embed(t) for t in texts]

    def embed_query(self, text):
        return self._embed(text)


@pytest.fixture(scope="module", params=[RetrievalMode.SPARSE, RetrievalMode.HYBRID], ids=["sparse", "hybrid"])
def sparse_stores(server_url, request):
    rng = random.Random(12)
    texts = _texts(rng, 150)
    metadatas = [{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(len(texts))]
    name = f"lc_{request.param.value}"
    common = dict(
        embedding=DeterministicFakeEmbedding(size=16),
        sparse_embedding=TermCounts(),
        retrieval_mode=request.param,
        collection_name=name,
        metadatas=metadatas,
        ids=list(range(1, len(texts) + 1)),
    )
    # The framework creates the collection itself, sparse vector configuration included.
    remote = QdrantVectorStore.from_texts(texts, timeout=60, **store_args(server_url), **common)
    local = QdrantVectorStore.from_texts(texts, location=":memory:", **common)
    yield remote, local
    remote.client.delete_collection(name)
    remote.client.close()


@pytest.mark.parametrize("query", ["vector index query", "raft raft leader", "payload", "unknown words only"])
def test_sparse_and_hybrid_retrieval_match_local_mode(sparse_stores, query):
    remote, local = sparse_stores
    found = remote.similarity_search_with_score(query, k=8)
    expected = local.similarity_search_with_score(query, k=8)
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-4)
    # Equal scores may come in either order, and the last score's points may be any of those
    # tied with it; above it, the points of each score must agree.
    last = round(expected[-1][1], 4) if expected else None
    by_score = lambda hits: sorted((round(s, 4), d.metadata["n"]) for d, s in hits if round(s, 4) != last)
    assert by_score(found) == by_score(expected)


def test_sparse_and_hybrid_retrieval_filter(sparse_stores):
    remote, local = sparse_stores
    even = models.Filter(must=[models.FieldCondition(key="metadata.kind", match=models.MatchValue(value="even"))])
    found = remote.similarity_search_with_score("graph shard", k=6, filter=even)
    expected = local.similarity_search_with_score("graph shard", k=6, filter=even)
    assert all(d.metadata["kind"] == "even" for d, _ in found)
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-4)


def _term_encoder(texts):
    """LlamaIndex's sparse encoder shape: (indices per text, values per text)."""
    vectors = TermCounts().embed_documents(texts)
    return [v.indices for v in vectors], [v.values for v in vectors]


@pytest.mark.parametrize("mode", ["hybrid", "sparse", "default"])
def test_llamaindex_hybrid_store_matches_local_mode(server_url, mode):
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
    from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant

    rng = random.Random(13)
    texts = _texts(rng, 120)
    embedding = DeterministicFakeEmbedding(size=16)
    nodes = [
        TextNode(id_=f"00000000-0000-0000-0000-{i:012d}", text=t, embedding=embedding.embed_query(t), metadata={"n": i})
        for i, t in enumerate(texts)
    ]
    name = f"li_{mode}"
    remote = connect(server_url)
    local = QdrantClient(":memory:")
    answers = []
    for client in (remote, local):
        # The store creates the collection (dense and sparse vectors) on its first add.
        store = LlamaQdrant(
            collection_name=name,
            client=client,
            enable_hybrid=True,
            sparse_doc_fn=_term_encoder,
            sparse_query_fn=_term_encoder,
        )
        store.add([n.model_copy() for n in nodes])
        query = VectorStoreQuery(
            query_embedding=embedding.embed_query("raft leader index"),
            query_str="raft leader index",
            similarity_top_k=6,
            sparse_top_k=6,
            mode=VectorStoreQueryMode(mode),
        )
        result = store.query(query)
        answers.append([(n.metadata["n"], round(s, 4)) for n, s in zip(result.nodes, result.similarities)])
    assert answers[0] == answers[1]
    assert len(answers[0]) == 6
    remote.delete_collection(name)
    remote.close()
