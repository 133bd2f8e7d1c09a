"""The official qdrant-client with API keys: the full key writes, the read-only key only reads."""

import warnings

import pytest
from qdrant_client import QdrantClient, models

from conftest import assert_error, client_errors, connect, running_server

FULL = "full-key-for-client-test"
READ = "read-key-for-client-test"


@pytest.fixture(scope="module")
def keyed_url():
    with running_server(VECDB__SERVICE__API_KEY=FULL, VECDB__SERVICE__READ_ONLY_API_KEY=READ) as url:
        yield url


def keyed(url, key):
    with warnings.catch_warnings():
        # The client warns about keys over plain HTTP; the test server has no TLS.
        warnings.simplefilter("ignore")
        return connect(url, api_key=key, timeout=30)


def test_full_and_read_only_keys(keyed_url):
    full = keyed(keyed_url, FULL)
    full.create_collection("keys", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    full.upsert("keys", points=[models.PointStruct(id=1, vector=[1.0, 0.0], payload={"k": 1})], wait=True)

    reader = keyed(keyed_url, READ)
    assert [p.id for p in reader.query_points("keys", query=[1.0, 0.0], limit=1).points] == [1]
    assert reader.count("keys").count == 1
    with pytest.raises(client_errors()) as refused:
        reader.upsert("keys", points=[models.PointStruct(id=2, vector=[0.0, 1.0])], wait=True)
    assert_error(refused.value, 403)

    for key in (None, "not-a-key"):
        with pytest.raises(client_errors()) as denied:
            keyed(keyed_url, key).get_collections()
        assert_error(denied.value, 401)
    assert full.count("keys").count == 1
