"""Error codes by what failed, not by wording; no "data" when refused before execution."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import gql, single_error_code, token

LIKE = "mutation($input: LikeInput!) { like(input: $input) { changed } }"
SUMMARY = "query($id: ID!) { engagementSummary(contentId: $id) { likes } }"
REACTORS = 'query($n: Int) { reactors(contentId: "x", first: $n) { edges { cursor } } }'


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        # The document itself is wrong: validation, whatever the message says.
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("{ engagementSummary { likes } }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            '{ reactors(contentId: "x", first: 3000000000) { pageInfo { hasNextPage } } }',
            None,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ engagementSummary(contentId: 5.5) { likes } }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            '{ reactors(contentId: "x", reaction: MEH) { pageInfo { hasNextPage } } }',
            None,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        # The variables do not fit: the client's input, whatever the message says.
        (LIKE, {}, "BAD_USER_INPUT"),  # "... required, but it was not provided"
        (LIKE, {"input": {}}, "BAD_USER_INPUT"),  # "... to include required field"
        (LIKE, {"input": {"contentId": "x", "reaction": "MEH"}}, "BAD_USER_INPUT"),
        (LIKE, {"input": None}, "BAD_USER_INPUT"),  # "non-null type ... not to be None"
        (SUMMARY, {"id": 5.5}, "BAD_USER_INPUT"),  # "ID cannot represent ..."
        (SUMMARY, {"id": ["a"]}, "BAD_USER_INPUT"),
        (REACTORS, {"n": 3_000_000_000}, "BAD_USER_INPUT"),  # "Int cannot represent non 32-bit"
        # A domain rule.
        (SUMMARY, {"id": ""}, "BAD_USER_INPUT"),
        # The text.
        ("{ engagementSummary(", None, "GRAPHQL_PARSE_FAILED"),
    ],
)
async def test_codes_by_what_failed_and_no_data_before_execution(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    body = await gql(http, query, variables, bearer=token("u-errors"))
    assert single_error_code(body) == code, body
    if code != "BAD_USER_INPUT" or variables is None or variables.get("id") != "":
        # Refused before execution: "data" is absent (GraphQL over HTTP).
        assert "data" not in body, body


async def test_a_single_id_is_reported_without_an_index(http: httpx.AsyncClient) -> None:
    body = await gql(http, SUMMARY, {"id": ""})
    assert body["errors"][0]["message"] == "contentId must be a non-empty string"
    # A field error during execution: data is there, null.
    assert body["data"] is None


async def test_view_session_needs_a_token(http: httpx.AsyncClient) -> None:
    body = await gql(http, 'query { viewSession(sessionId: "s") { watchedMs } }')
    assert single_error_code(body) == "UNAUTHENTICATED"
    signed_in = await gql(
        http, 'query { viewSession(sessionId: "s") { watchedMs } }', bearer=token("u-vs")
    )
    assert signed_in == {"data": {"viewSession": None}}
