"""Helpers for the end-to-end tests: tokens, GraphQL over HTTP, a graphql-transport-ws
client and bounded polling. Nothing here sleeps to synchronise: every wait is a
bounded poll of a condition or a receive with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
import websockets
from websockets.typing import Origin, Subprotocol

from resolvers.auth import issue_token

# Debian's chromium for the browser tests, started as the probe of this machine kind
# starts it: no sandbox as root, no background traffic to Google's hosts.
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SECRET = "e2e-test-secret-0123456789abcdef-0123456789abcdef"
LIVE_RATE = 20.0
PARTITIONS = 4
WS_PROTOCOL = "graphql-transport-ws"
ALLOWED_ORIGINS = ("https://app.example", "https://admin.example")

T = TypeVar("T")


@dataclass(frozen=True)
class Server:
    base_url: str
    ws_url: str
    redis_url: str
    key_prefix: str
    stderr_path: Path

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")


# --- tokens and ids ---------------------------------------------------------------


def token(sub: str, roles: Sequence[str] = (), *, ttl_s: int = 3600, secret: str = SECRET) -> str:
    return issue_token(secret, sub, list(roles), ttl_s)


def service_token() -> str:
    return token("svc-e2e", ["service"])


def uid(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --- GraphQL over HTTP ------------------------------------------------------------


async def raw_http(
    server: Server, head: bytes, body: bytes = b"", within: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One request written by hand (httpx refuses long URLs and stops reading when
    its write fails): the status, headers (lower-case names) and body of the answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()
    head_part, _, body_part = answer.partition(b"\r\n\r\n")
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body_part


# What a leaked stack trace or source location would look like in a body.
_LEAK = re.compile(r"Traceback|File \"|\.py\b|/work/|site-packages|line \d+, in ")


def assert_no_leak(body: str) -> None:
    match = _LEAK.search(body)
    assert match is None, f"response leaks internals ({match.group(0)!r}): {body[:2000]}"


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one operation; returns the decoded body (data and/or errors)."""
    h = dict(headers or {})
    if bearer is not None:
        h["authorization"] = f"Bearer {bearer}"
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=h
    )
    assert_no_leak(r.text)
    assert r.status_code in (200, 400), f"{r.status_code}: {r.text}"
    body = r.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    return body


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    assert body.get("data") is not None, body
    return body["data"]


def error_codes(body: dict[str, Any]) -> list[str | None]:
    errors = body.get("errors") or []
    assert errors, f"expected errors, got {body}"
    return [(e.get("extensions") or {}).get("code") for e in errors]


def single_error_code(body: dict[str, Any]) -> str | None:
    codes = error_codes(body)
    assert len(codes) == 1, body
    return codes[0]


REGISTER = """
mutation Register($input: RegisterContentInput!) {
  registerContent(input: $input) { contentId creatorId kind durationMs createdAt }
}
"""

SUMMARY_FIELDS = "contentId likes reactions { reaction count } viewerReaction"

LIKE = f"""
mutation Like($input: LikeInput!) {{
  like(input: $input) {{ contentId viewerReaction changed summary {{ {SUMMARY_FIELDS} }} }}
}}
"""

UNLIKE = f"""
mutation Unlike($input: UnlikeInput!) {{
  unlike(input: $input) {{ contentId viewerReaction changed summary {{ {SUMMARY_FIELDS} }} }}
}}
"""

SUMMARY = f"""
query Summary($id: ID!) {{ engagementSummary(contentId: $id) {{ {SUMMARY_FIELDS} }} }}
"""

SUMMARIES = f"""
query Summaries($ids: [ID!]!) {{ engagementSummaries(contentIds: $ids) {{ {SUMMARY_FIELDS} }} }}
"""

SUBSCRIBE = f"""
subscription Live($ids: [ID!]!) {{ engagementUpdated(contentIds: $ids) {{ {SUMMARY_FIELDS} }} }}
"""


async def register(
    client: httpx.AsyncClient,
    content_id: str | None = None,
    *,
    creator_id: str = "creator-1",
    kind: str = "VIDEO",
) -> str:
    content_id = content_id or uid()
    body = await gql(
        client,
        REGISTER,
        {"input": {"contentId": content_id, "creatorId": creator_id, "kind": kind}},
        bearer=service_token(),
    )
    assert data_of(body)["registerContent"]["contentId"] == content_id
    return content_id


def own_address(user: str) -> dict[str, str]:
    """Headers that put ``user`` on a network of their own (X-Forwarded-For, which
    the test servers believe from 127.0.0.1). Load of many fresh accounts liking
    one content unseen from one address is what the integrity worker excludes as
    a fake-account crowd (``blind_crowd``); a test about counting, not integrity,
    sends each user's likes from their own address, as real users' come."""
    digest = hashlib.sha256(user.encode()).digest()
    return {"x-forwarded-for": f"10.{digest[0]}.{digest[1]}.{digest[2]}"}


async def like(
    client: httpx.AsyncClient,
    user: str,
    content_id: str,
    reaction: str | None = None,
    request_id: str | None = None,
    *,
    own_network: bool = False,
) -> dict[str, Any]:
    inp: dict[str, Any] = {"contentId": content_id}
    if reaction is not None:
        inp["reaction"] = reaction
    if request_id is not None:
        inp["requestId"] = request_id
    headers = own_address(user) if own_network else None
    return await gql(client, LIKE, {"input": inp}, bearer=token(user), headers=headers)


async def summary(
    client: httpx.AsyncClient, content_id: str, viewer: str | None = None
) -> dict[str, Any]:
    body = await gql(client, SUMMARY, {"id": content_id}, bearer=token(viewer) if viewer else None)
    return data_of(body)["engagementSummary"]


def counts(s: dict[str, Any]) -> dict[str, int]:
    return {r["reaction"]: r["count"] for r in s["reactions"]}


# --- bounded polling --------------------------------------------------------------


async def eventually(
    probe: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while True:
        last = await probe()
        if predicate(last):
            return last
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"{what} not met within {within}s; last value: {last!r}")
        await asyncio.sleep(interval)


async def pipeline_drained(redis: aioredis.Redis, server: Server) -> bool:
    """True when the aggregator has read and acknowledged every event in every partition."""
    for p in range(PARTITIONS):
        stream = f"{server.key_prefix}:{{p{p}}}:events"
        if not await redis.exists(stream):
            continue
        groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
        group = groups.get("aggregator")
        if group is None or group.get("pending") != 0 or group.get("lag") not in (0,):
            return False
    return True


async def wait_drained(redis: aioredis.Redis, server: Server, within: float = 15.0) -> None:
    await eventually(
        lambda: pipeline_drained(redis, server),
        bool,
        within=within,
        what="aggregator drained every partition",
    )


# --- a minimal graphql-transport-ws client ----------------------------------------


class WsClosed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed: {code} {reason}")
        self.code = code
        self.reason = reason


class GqlWs:
    """Just enough of graphql-transport-ws; every receive has a timeout."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, origin: str | None = None) -> AsyncIterator[GqlWs]:
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol(WS_PROTOCOL)],
            open_timeout=10,
            close_timeout=5,
            origin=Origin(origin) if origin else None,
        ) as ws:
            assert ws.subprotocol == WS_PROTOCOL
            yield cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        """Next protocol message other than ping/pong (pings are answered)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no message within {within}s")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except websockets.ConnectionClosed as exc:
                rcvd = exc.rcvd
                raise WsClosed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from exc
            assert isinstance(raw, str), f"binary frame: {raw!r}"
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            if message.get("type") == "pong":
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None, within: float = 5.0) -> None:
        msg: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            msg["payload"] = payload
        await self.send(msg)
        ack = await self.recv(within)
        assert ack["type"] == "connection_ack", ack

    async def init_with_token(self, jwt: str | None) -> None:
        await self.init({"authorization": f"Bearer {jwt}"} if jwt else None)

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def next_payload(self, op_id: str, within: float = 5.0) -> dict[str, Any]:
        message = await self.recv(within)
        assert message.get("id") == op_id, message
        assert message["type"] == "next", message
        return message["payload"]

    async def wait_closed(self, within: float = 5.0) -> tuple[int | None, str]:
        """Drain until the server closes the socket; returns (code, reason)."""
        try:
            while True:
                await self.recv(within)
        except WsClosed as exc:
            return exc.code, exc.reason

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})
