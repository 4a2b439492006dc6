"""Drill 7: a slow Redis.

``main.py serve`` reaches its own redis-server through tests/faults.py's
latency proxy. With the proxy holding every reply longer than
REDIS_SOCKET_TIMEOUT_S, requests must end at the timeout, not pile up: a read
answers UNAVAILABLE, a like still answers (MongoDB holds it; its summary is a
bounded recount), /healthz answers while they wait, and once Redis is fast
again the counts catch up exactly (the outbox relay republishes).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.drills.procs import new_prefix, poll, serve, service_env, start_redis
from tests.e2e.helpers import SUMMARY, data_of, gql, like, register
from tests.faults import latency_proxy

SOCKET_TIMEOUT_S = 1.5
# Longer than the socket timeout: every Redis reply comes too late.
LATENCY_S = 4.0
READS = 20
LIKES = 5


def code_of(body: dict[str, Any]) -> str:
    if not body.get("errors"):
        return "OK"
    return str(body["errors"][0].get("extensions", {}).get("code"))


async def test_slow_redis_times_out_typed_and_keeps_the_loop_responsive(
    tmp_path: Path,
) -> None:
    redis = start_redis(tmp_path)
    try:
        async with latency_proxy(redis.port) as proxy:
            env = service_env(
                new_prefix(),
                REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
                REDIS_SOCKET_TIMEOUT_S=str(SOCKET_TIMEOUT_S),
                REDIS_POOL_WAIT_S="2",
                OUTBOX_GRACE_S="1",
            )
            with serve(tmp_path, env) as server:
                await _drill(server.base_url, proxy)
    finally:
        redis.stop()


async def _drill(base_url: str, proxy: Any) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as http:
        cid = await register(http, kind="SHORT")
        assert data_of(await like(http, "slow-0", cid, request_id="r0"))["like"]["changed"]

        proxy.delay_s = LATENCY_S
        reads = [asyncio.create_task(gql(http, SUMMARY, {"id": cid})) for _ in range(READS)]
        likes = [
            asyncio.create_task(like(http, f"slow-{i}", cid, request_id=f"r{i}", own_network=True))
            for i in range(1, LIKES + 1)
        ]
        # The event loop answers while every one of those waits on Redis.
        health = await http.get("/healthz")
        waiting = sum(not t.done() for t in reads + likes)
        assert health.status_code == 200
        assert waiting > 0, "the slow requests ended before /healthz answered"

        read_codes = Counter([code_of(await t) for t in reads])
        like_bodies = [await t for t in likes]
        # Reads need the counters: a typed refusal at the timeout, never a 500.
        assert read_codes == {"UNAVAILABLE": READS}, read_codes
        # Likes land in MongoDB and answer, with a recount from it.
        for body in like_bodies:
            assert code_of(body) == "OK", body
            assert body["data"]["like"]["changed"] is True

        proxy.delay_s = 0.0

        async def likes_now() -> int:
            body = await gql(http, SUMMARY, {"id": cid})
            return int(data_of(body)["engagementSummary"]["likes"])

        await poll(likes_now, lambda n: n == 1 + LIKES, within=60, what="every like counted")
        # And no more: exact after settling.
        assert await likes_now() == 1 + LIKES
