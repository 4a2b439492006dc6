"""X-Request-Id and the access log (transport/request_id.py, docs/OPERATIONS.md "Logs")."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from structlog.contextvars import get_contextvars

from main import Settings, configure_logging, create_app, open_runtime
from transport.graphql_app import GraphQLApp
from transport.request_id import RequestId

SECRET = "unit-request-id-secret-0123456789abcdef"
SANE = "abc-123_x.y:z"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn_access = logging.getLogger("uvicorn.access")
    access_handlers, propagate = uvicorn_access.handlers[:], uvicorn_access.propagate
    out = io.StringIO()
    configure_logging(Settings(log_json=True), stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    uvicorn_access.handlers[:] = access_handlers
    uvicorn_access.propagate = propagate


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def access_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [r for r in records(out) if r.get("logger") == "likeview.access"]


seen_inside: list[dict[str, Any]] = []


async def dummy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Logs one line (stdlib and structlog) and answers 204, or fails on /boom."""
    seen_inside.append(dict(get_contextvars()))
    structlog.get_logger("likeview.test").info("inside")
    logging.getLogger("some.library").warning("stdlib inside")
    if scope["path"] == "/boom":
        raise RuntimeError("a bug")
    await send({"type": "http.response.start", "status": 204, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b""})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_sane_id_is_echoed(log_lines) -> None:
    async with client(RequestId(dummy)) as c:
        r = await c.get("/x", headers={"x-request-id": SANE})
    assert r.status_code == 204
    assert r.headers["x-request-id"] == SANE
    assert r.headers["x-a"] == "1"


@pytest.mark.parametrize(
    "sent", [None, "", "a" * 129, "has space", "new\nline", "ünïcode", "a/b", "<script>"]
)
async def test_a_missing_or_bad_id_is_replaced_by_a_new_one(log_lines, sent) -> None:
    headers = {} if sent is None else {"x-request-id": sent.encode()}
    async with client(RequestId(dummy)) as c:
        first = await c.get("/x", headers=headers)
        second = await c.get("/x", headers=headers)
    ids = first.headers["x-request-id"], second.headers["x-request-id"]
    assert ids[0] != ids[1]
    for rid in ids:
        assert len(rid) == 32 and int(rid, 16) >= 0


async def test_the_longest_sane_id_is_kept(log_lines) -> None:
    rid = "A" * 128
    async with client(RequestId(dummy)) as c:
        r = await c.get("/x", headers={"x-request-id": rid})
    assert r.headers["x-request-id"] == rid


async def test_the_id_is_bound_during_the_request_and_cleared_after(log_lines) -> None:
    seen_inside.clear()
    async with client(RequestId(dummy)) as c:
        await c.get("/x", headers={"x-request-id": SANE})
    assert seen_inside == [{"request_id": SANE}]
    assert "request_id" not in get_contextvars()
    lines = records(log_lines)
    inside = [r for r in lines if r["event"] in ("inside", "stdlib inside")]
    assert len(inside) == 2
    assert all(r["request_id"] == SANE for r in inside)


async def test_one_access_line_per_request_only_when_on(log_lines) -> None:
    async with client(RequestId(dummy)) as c:
        await c.get("/x")
    assert access_lines(log_lines) == []
    async with client(RequestId(dummy, access_log=True)) as c:
        r = await c.get("/x/y?token=secret-in-the-query", headers={"x-request-id": SANE})
    [line] = access_lines(log_lines)
    assert line["event"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/x/y"
    assert line["status"] == 204
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["operation"] is None  # not the GraphQL endpoint
    assert line["request_id"] == SANE == r.headers["x-request-id"]
    ours = json.dumps([r for r in records(log_lines) if r.get("logger") != "httpx"])
    assert "secret-in-the-query" not in ours  # httpx, the client here, logs its URL
    for field in ("client", "address", "ip", "remote_addr"):
        assert field not in line
    assert "127.0.0.1" not in ours


async def test_a_failing_app_still_answers_500_with_the_id_and_a_line(log_lines) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    # Starlette's error middleware is outside RequestId, as in create_app.
    app = Starlette(
        routes=[Route("/boom", boom)], middleware=[Middleware(RequestId, access_log=True)]
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/boom", headers={"x-request-id": SANE})
    assert r.status_code == 500 and r.headers["x-request-id"] == SANE
    [line] = access_lines(log_lines)
    assert line["status"] == 500 and line["request_id"] == SANE


# --- through create_app: middleware order ------------------------------------------


async def test_a_413_carries_the_id(log_lines) -> None:
    app = create_app(Settings(max_request_bytes=64 * 1024, access_log=True))
    async with client(app) as c:
        r = await c.post(
            "/graphql",
            content=b"x" * (64 * 1024 + 1),
            headers={"content-type": "application/json", "x-request-id": SANE},
        )
    assert r.status_code == 413
    assert r.headers["x-request-id"] == SANE
    [line] = access_lines(log_lines)
    assert (line["status"], line["path"], line["method"]) == (413, "/graphql", "POST")


async def test_a_cors_preflight_and_its_413_carry_the_id(log_lines) -> None:
    origin = "https://app.example"
    app = create_app(Settings(allowed_origins=[origin], max_request_bytes=64 * 1024))
    async with client(app) as c:
        pre = await c.options(
            "/graphql",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-request-id",
            },
        )
        big = await c.post(
            "/graphql",
            content=b"x" * (64 * 1024 + 1),
            headers={"content-type": "application/json", "origin": origin},
        )
    assert pre.status_code == 200
    assert len(pre.headers["x-request-id"]) == 32
    assert "x-request-id" in pre.headers["access-control-allow-headers"].lower()
    assert big.status_code == 413
    assert len(big.headers["x-request-id"]) == 32
    assert big.headers["access-control-allow-origin"] == origin
    # A page may read the id (to quote it in a support request).
    assert "x-request-id" in big.headers["access-control-expose-headers"].lower()


async def test_health_answers_carry_the_id_without_cors(log_lines) -> None:
    async with client(create_app(Settings())) as c:
        r = await c.get("/healthz", headers={"x-request-id": SANE})
    assert r.status_code == 200 and r.headers["x-request-id"] == SANE


# --- the operation name -------------------------------------------------------------

LIKE = "mutation Like($id: ID!) { like(input: {contentId: $id}) { changed } }"


@pytest.fixture(params=[True, False], ids=["lean", "view"])
async def graphql(request: Any) -> AsyncIterator[Any]:
    async with open_runtime(Settings(jwt_secret=SECRET)) as runtime:
        app = GraphQLApp(runtime.services)
        app._lean = request.param and app._lean
        assert app._lean is request.param
        yield RequestId(app, access_log=True)


@pytest.mark.parametrize(
    ("payload", "operation"),
    [
        ({"query": "query Q { __typename }", "operationName": "Q"}, "Q"),
        ({"query": "{ __typename }"}, "anonymous"),
        ({"query": "query Q { __typename }", "operationName": "Q\nforged line"}, "invalid"),
        ({"query": "query Q { __typename }", "operationName": 5}, "invalid"),
        (
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
            "persisted",
        ),
    ],
)
async def test_the_operation_name_is_logged(log_lines, graphql, payload, operation) -> None:
    async with client(graphql) as c:
        r = await c.post("/graphql", json=payload, headers={"x-request-id": SANE})
    assert r.headers["x-request-id"] == SANE
    [line] = access_lines(log_lines)
    assert line["operation"] == operation
    assert line["status"] == r.status_code
    assert "forged line" not in log_lines.getvalue()


# --- WebSocket ----------------------------------------------------------------------


async def ws_dummy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    seen_inside.append(dict(get_contextvars()))
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text", "")})
    await send({"type": "websocket.close", "code": 1000})


def test_a_websocket_gets_the_id_and_a_line_at_connect_and_at_close(log_lines) -> None:
    seen_inside.clear()
    client = TestClient(RequestId(ws_dummy, access_log=True))
    with client.websocket_connect("/graphql?token=t0k", headers={"x-request-id": SANE}) as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
    assert seen_inside == [{"request_id": SANE}]
    lines = access_lines(log_lines)
    assert [line["event"] for line in lines] == ["websocket connect", "websocket close"]
    assert [line["status"] for line in lines] == [101, 1000]
    for line in lines:
        assert line["request_id"] == SANE
        assert line["path"] == "/graphql" and line["method"] == "WEBSOCKET"
    assert "t0k" not in log_lines.getvalue()
