"""Automatic persisted queries, as Apollo's PersistedQueryLink speaks them."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx

QUERY_TEMPLATE = '{{ engagementSummary(contentId: "{cid}") {{ contentId likes }} }}'


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ext(sha: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def _query() -> str:
    # A distinct text per test: the store is shared by the module's server.
    return QUERY_TEMPLATE.format(cid=f"apq-{uuid.uuid4().hex[:8]}")


async def test_the_apollo_sequence_over_post(http: httpx.AsyncClient) -> None:
    query = _query()
    sha = _sha(query)
    miss = await http.post("/graphql", json={"extensions": _ext(sha)})
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await http.post("/graphql", json={"query": query, "extensions": _ext(sha)})
    assert registered.json()["data"]["engagementSummary"]["likes"] == 0
    hit = await http.post("/graphql", json={"extensions": _ext(sha)})
    assert hit.json() == registered.json()


async def test_a_hash_over_get_for_cacheable_queries(http: httpx.AsyncClient) -> None:
    query = _query()
    sha = _sha(query)
    params = {"extensions": json.dumps(_ext(sha))}
    miss = await http.get("/graphql", params=params, headers={"accept": "application/json"})
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    await http.get(
        "/graphql", params={**params, "query": query}, headers={"accept": "application/json"}
    )
    hit = await http.get("/graphql", params=params, headers={"accept": "application/json"})
    assert hit.status_code == 200
    assert "likes" in hit.json()["data"]["engagementSummary"]


async def test_a_wrong_hash_is_refused_and_not_registered(http: httpx.AsyncClient) -> None:
    query = _query()
    wrong = _sha(query + " ")
    body = (await http.post("/graphql", json={"query": query, "extensions": _ext(wrong)})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    miss = await http.post("/graphql", json={"extensions": _ext(wrong)})
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_an_invalid_query_is_not_registered(http: httpx.AsyncClient) -> None:
    query = "{ noSuchField" + uuid.uuid4().hex + " }"
    sha = _sha(query)
    body = (await http.post("/graphql", json={"query": query, "extensions": _ext(sha)})).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    miss = await http.post("/graphql", json={"extensions": _ext(sha)})
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_malformed_persisted_query_extensions(http: httpx.AsyncClient) -> None:
    for ext in (
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": "abc"},
    ):
        body = (await http.post("/graphql", json={"extensions": ext})).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", ext
