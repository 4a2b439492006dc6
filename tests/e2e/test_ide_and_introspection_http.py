"""GraphiQL served offline, and the production lock-down: GRAPHIQL=false and
INTROSPECTION=false (no schema, no "Did you mean" suggestions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.e2e.helpers import Server, gql, token

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def locked_server(redis_proc, tmp_path_factory) -> Iterator[Server]:
    with serving(redis_proc, tmp_path_factory, GRAPHIQL="false", INTROSPECTION="false") as s:
        yield s


@pytest.fixture
async def locked(locked_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=locked_server.base_url, timeout=15.0) as client:
        yield client


async def test_graphiql_and_its_assets_come_from_this_server(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower() and "unpkg.com" not in page.text
    script = await http.get("/graphiql-assets/graphiql/graphiql.min.js")
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_introspection_and_suggestions_are_on_by_default(http: httpx.AsyncClient) -> None:
    body = await gql(http, "{ __schema { queryType { name } } }")
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    body = await gql(http, "{ engagementSumary }")
    assert "Did you mean" in body["errors"][0]["message"]


async def test_no_graphiql_when_off(locked: httpx.AsyncClient) -> None:
    page = await locked.get("/graphql", headers=HTML)
    assert "graphiql" not in page.text.lower()
    assert (await locked.get("/graphiql-assets/graphiql/graphiql.min.js")).status_code == 404


@pytest.mark.parametrize(
    "query", ["{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }']
)
async def test_no_introspection_when_off(locked: httpx.AsyncClient, query: str) -> None:
    body = await gql(locked, query)
    assert "data" not in body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection has been disabled" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ engagementSumary }", None),  # a field name
        ('{ engagementSummary(contentId: "x") { likess } }', None),
        ('{ reactors(contentId: "x", reaction: LOVES) { pageInfo { hasNextPage } } }', None),
        (
            "mutation($i: LikeInput!) { like(input: $i) { changed } }",
            {"i": {"contentId": "x", "reaction": "LOVES"}},
        ),
        (
            "mutation($i: LikeInput!) { like(input: $i) { changed } }",
            {"i": {"contentId": "x", "reactoin": "LOVE"}},
        ),
    ],
)
async def test_no_suggestions_when_introspection_is_off(
    locked: httpx.AsyncClient, query: str, variables: dict | None
) -> None:
    body = await gql(locked, query, variables, bearer=token("u-locked"))
    message = body["errors"][0]["message"]
    assert "Did you mean" not in message, message
    assert body["errors"][0]["extensions"]["code"] in {
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
    }
