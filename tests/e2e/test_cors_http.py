"""CORS for HTTP, from the same ALLOWED_ORIGINS as WebSockets."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import ALLOWED_ORIGINS, Server, raw_http

ALLOWED = ALLOWED_ORIGINS[0]
REFUSED = "https://evil.example"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_preflight_from_an_allowed_origin(http: httpx.AsyncClient) -> None:
    r = await http.options("/graphql", headers={"origin": ALLOWED, **PREFLIGHT})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in r.headers["access-control-allow-methods"]
    assert int(r.headers["access-control-max-age"]) > 0


async def test_post_from_an_allowed_origin_is_readable(http: httpx.AsyncClient) -> None:
    r = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": ALLOWED})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.json() == {"data": {"__typename": "Query"}}


async def test_a_refusal_carries_cors_headers_too(likeview_server: Server) -> None:
    head = (
        f"POST /graphql HTTP/1.1\r\nhost: x\r\norigin: {ALLOWED}\r\n"
        "content-type: application/json\r\ncontent-length: 104857600\r\n\r\n"
    ).encode()
    status, headers, _ = await raw_http(likeview_server, head)
    assert status == 413
    assert headers["access-control-allow-origin"] == ALLOWED


async def test_another_origin_gets_no_cors_grant(http: httpx.AsyncClient) -> None:
    r = await http.options("/graphql", headers={"origin": REFUSED, **PREFLIGHT})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    post = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": REFUSED}
    )
    # The server answers; the browser withholds it from the page.
    assert "access-control-allow-origin" not in post.headers
