"""The HTTP surface: GraphiQL, health probes, error shapes."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import (
    LIKE,
    assert_no_leak,
    data_of,
    gql,
    register,
    single_error_code,
    token,
    uid,
)


async def test_graphiql_is_served_to_browsers(http: httpx.AsyncClient) -> None:
    r = await http.get("/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "graphiql" in r.text.lower()


async def test_healthz_answers_json(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


async def test_readyz_answers_json_with_each_backend(http: httpx.AsyncClient) -> None:
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}


async def test_query_over_get_works(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    r = await http.get(
        "/graphql",
        params={"query": f'{{ engagementSummary(contentId: "{cid}") {{ contentId likes }} }}'},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"engagementSummary": {"contentId": cid, "likes": 0}}}


async def test_unknown_field_is_a_validation_error_with_a_code(http: httpx.AsyncClient) -> None:
    body = await gql(http, "{ noSuchField }")
    assert single_error_code(body) == "GRAPHQL_VALIDATION_FAILED"
    assert "noSuchField" in body["errors"][0]["message"]


async def test_unknown_input_field_is_bad_user_input(http: httpx.AsyncClient) -> None:
    body = await gql(
        http,
        LIKE,
        {"input": {"contentId": "x", "bogus": 1}},
        bearer=token("u-unknown-field"),
    )
    assert single_error_code(body) == "BAD_USER_INPUT"


async def test_wrong_enum_value_is_bad_user_input(http: httpx.AsyncClient) -> None:
    body = await gql(
        http, LIKE, {"input": {"contentId": "x", "reaction": "MEH"}}, bearer=token("u-enum")
    )
    assert single_error_code(body) == "BAD_USER_INPUT"


async def test_syntax_error_has_a_code(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ engagementSummary(contentId: "x") { likes }')
    assert "Syntax Error" in body["errors"][0]["message"]
    assert single_error_code(body) == "GRAPHQL_PARSE_FAILED"


async def test_malformed_json_is_an_error_with_a_code(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/graphql", content=b'{"query": "{ x }"', headers={"content-type": "application/json"}
    )
    assert_no_leak(r.text)
    assert r.status_code == 400
    body = r.json()
    assert body["errors"][0]["extensions"]["code"]


async def test_json_that_is_not_an_object_is_a_bad_request(http: httpx.AsyncClient) -> None:
    for body in (b"null", b"5", b'"{ engagementSummary }"'):
        r = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
        assert_no_leak(r.text)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_subscription_over_http_is_a_bad_request(http: httpx.AsyncClient) -> None:
    body = await gql(http, 'subscription { engagementUpdated(contentIds: ["x"]) { likes } }')
    assert single_error_code(body) == "BAD_REQUEST"
    assert "subscriptions are not allowed" in body["errors"][0]["message"]


async def test_missing_query_is_rejected_without_leaking(http: httpx.AsyncClient) -> None:
    r = await http.post("/graphql", json={"variables": {}})
    assert r.status_code == 400
    assert_no_leak(r.text)


async def test_no_stack_trace_in_any_error_response(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    bad_requests = [
        ("{ noSuchField }", None, None),
        ("{ engagementSummary(contentId: 1.5) { likes } }", None, None),
        (
            'query($n: Int!) { reactors(contentId: "x", first: $n) { edges { cursor } } }',
            {"n": "many"},
            None,
        ),
        ('{ reactors(contentId: "x", first: 0) { edges { cursor } } }', None, None),
        ('{ reactors(contentId: "x", after: "%%%") { edges { cursor } } }', None, None),
        (LIKE, {"input": {"contentId": uid("missing")}}, token("u-leak")),
        (LIKE, {"input": {"contentId": cid}}, "not-a-jwt"),
        (LIKE, {"input": {"contentId": "x" * 129}}, token("u-leak")),
    ]
    for query, variables, bearer in bad_requests:
        body = await gql(http, query, variables, bearer=bearer)  # asserts no leak
        for error in body["errors"]:
            assert error.get("extensions", {}).get("code"), body
            assert "stacktrace" not in str(error.get("extensions", {})).lower()


async def test_anonymous_query_works(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    body = await gql(
        http, f'{{ engagementSummary(contentId: "{cid}") {{ likes viewerReaction }} }}'
    )
    assert data_of(body) == {"engagementSummary": {"likes": 0, "viewerReaction": None}}
