"""Abuse limits and the client address over HTTP, on servers of their own: a like over
its limit is RATE_LIMITED with retryAfterMs, a view over its limit is recorded but not
counted, and X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (seen through
the hashed address the events carry)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    PARTITIONS,
    Server,
    data_of,
    eventually,
    gql,
    register,
    single_error_code,
    token,
    uid,
)

LIKE = """mutation($i: LikeInput!) { like(input: $i) { changed viewerReaction } }"""
RECORD_MANY = """mutation($v: [ViewInput!]!) { recordViews(inputs: $v) {
  sessionId decision { counted rule reason } } }"""


@pytest.fixture(scope="module")
def limited(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    """Low limits: two likes per user at once then one a second, one view event per
    device at once. The address limits stay at their defaults (a NAT's)."""
    with serving(
        redis_proc,
        tmp_path_factory,
        RATE_LIMIT_LIKE_USER="60:2",
        RATE_LIMIT_VIEW_DEVICE="60:1",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def behind_untrusted_proxy(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    """X-Forwarded-For believed only from 192.0.2.1: the tests' own requests come from
    127.0.0.1, so their X-Forwarded-For headers must be ignored."""
    with serving(redis_proc, tmp_path_factory, FORWARDED_ALLOW_IPS="192.0.2.1") as server:
        yield server


async def like(
    http: httpx.AsyncClient, user: str, cid: str, reaction: str, request_id: str, **headers: str
) -> dict[str, Any]:
    inp = {"contentId": cid, "reaction": reaction, "requestId": request_id, "deviceId": "ph-1"}
    return await gql(http, LIKE, {"i": inp}, bearer=token(user), headers=headers or None)


async def stream_events(server: Server) -> list[dict[str, Any]]:
    """Every event in the server's event log (read-only)."""
    probe = aioredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        found: list[dict[str, Any]] = []
        for p in range(PARTITIONS):
            messages: Any = await probe.xrange(f"{server.key_prefix}:{{p{p}}}:events")
            for _, fields in messages:
                found += orjson.loads(fields.get("b", "[]")) + orjson.loads(fields.get("r", "[]"))
        return found
    finally:
        await probe.aclose()


async def test_a_like_over_the_limit_is_refused_with_retry_after(limited: Server) -> None:
    async with httpx.AsyncClient(base_url=limited.base_url, timeout=15) as http:
        cid = await register(http)
        user = uid("u")
        assert data_of(await like(http, user, cid, "LIKE", "k1"))["like"]["changed"]
        assert data_of(await like(http, user, cid, "LOVE", "k2"))["like"]["changed"]
        body = await like(http, user, cid, "WOW", "k3")
        assert single_error_code(body) == "RATE_LIMITED"
        retry_after = body["errors"][0]["extensions"]["retryAfterMs"]
        assert isinstance(retry_after, int) and 0 < retry_after <= 1000
        assert "user" not in body["errors"][0]["message"]  # which limit is not said
        # Nothing was written: the reaction is still LOVE.
        mine = await gql(
            http,
            "query($id: ID!) { engagementSummary(contentId: $id) { viewerReaction } }",
            {"id": cid},
            bearer=token(user),
        )
        assert data_of(mine)["engagementSummary"]["viewerReaction"] == "LOVE"
        # The same request after the wait it was told: applied once.
        await asyncio.sleep(retry_after / 1000)
        retried = await eventually(
            lambda: like(http, user, cid, "WOW", "k3"),
            lambda b: not b.get("errors"),
            within=5,
            interval=0.1,
            what="the retry passes",
        )
        assert retried["data"]["like"] == {"changed": True, "viewerReaction": "WOW"}
        again = await like(http, user, cid, "WOW", "k3")
        assert again == retried  # replayed, not applied twice


async def test_a_view_over_the_limit_is_recorded_but_not_counted(limited: Server) -> None:
    async with httpx.AsyncClient(base_url=limited.base_url, timeout=15) as http:
        a, b = await register(http), await register(http)
        device = uid("dev")
        events = [
            {"contentId": cid, "sessionId": uid("s"), "deviceId": device, "watchedMs": 31_000}
            for cid in (a, b)
        ]
        body = await gql(http, RECORD_MANY, {"v": events})
        first, second = (r["decision"] for r in data_of(body)["recordViews"])
        assert first["counted"] is True
        assert second == {"counted": False, "rule": "VIDEO.default", "reason": "not counted"}
        # Recorded: its raw event is in the log, with its watch time accepted.
        raw = await eventually(
            lambda: stream_events(limited),
            lambda found: any(
                e["kind"] == "view_event" and e["data"]["session_id"] == events[1]["sessionId"]
                for e in found
            ),
            what="the limited event is in the log",
        )
        (limited_raw,) = [
            e
            for e in raw
            if e["kind"] == "view_event" and e["data"]["session_id"] == events[1]["sessionId"]
        ]
        assert limited_raw["data"]["accepted_ms"] == 31_000
        assert limited_raw["data"]["device"] == device
        assert len(limited_raw["data"]["addr"]) == 16


async def _addr_of_likes(server: Server, forwarded: list[str]) -> list[str]:
    """Each like's data.addr, by a user of its own with the given X-Forwarded-For."""
    users = [uid("x") for _ in forwarded]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        cid = await register(http)
        for user, xff in zip(users, forwarded, strict=True):
            body = await like(http, user, cid, "LIKE", uid("k"), **{"X-Forwarded-For": xff})
            assert data_of(body)["like"]["changed"]
    found = await eventually(
        lambda: stream_events(server),
        lambda evs: {e["actor"] for e in evs if e["kind"] == "reaction"} >= set(users),
        what="the likes are in the log",
    )
    by_actor = {e["actor"]: e["data"] for e in found if e["kind"] == "reaction"}
    for user in users:
        assert by_actor[user]["device"] == "ph-1"
        # Never the address itself, anywhere in the event.
        assert all(xff not in orjson.dumps(by_actor[user]).decode() for xff in forwarded)
    return [by_actor[u]["addr"] for u in users]


FORWARDED = ["203.0.113.7", "198.51.100.9", "203.0.113.7"]


async def test_x_forwarded_for_is_believed_from_a_trusted_proxy(limited: Server) -> None:
    # The server's FORWARDED_ALLOW_IPS is the default (127.0.0.1, ::1): these requests
    # come from 127.0.0.1, as from a proxy on the same host.
    a, b, c = await _addr_of_likes(limited, FORWARDED)
    assert len(a) == 16 and a == c and a != b
    assert "203.0.113.7" not in limited.logs()


async def test_x_forwarded_for_is_ignored_from_anyone_else(behind_untrusted_proxy: Server) -> None:
    a, b, c = await _addr_of_likes(behind_untrusted_proxy, FORWARDED)
    # All three are the real peer, 127.0.0.1, whatever they claimed.
    assert a == b == c and len(a) == 16
    assert "127.0.0.1" not in orjson.dumps(await stream_events(behind_untrusted_proxy)).decode()
