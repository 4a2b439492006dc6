"""Drill 6: the live pub/sub connection dies silently; and (drill 1, its live part)
a subscription opened while Redis is unreachable.

A TCP proxy (tests/drills/procs.py) sits between the server and Redis. Frozen, it
keeps the pub/sub connection open but forwards nothing: no reset, no FIN. The
server must notice within LIVE_PUBSUB_HEALTH_S (a PING unanswered), reconnect,
resubscribe and push every open subscription a fresh snapshot; live pushes then
resume. Without the health check no push would ever arrive and the polls fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.drills.procs import metric_values, new_prefix, scrape, serve, service_env, silent_proxy
from tests.e2e.helpers import SUBSCRIBE, GqlWs, like, register, uid

HEALTH_S = 1.0
# Detection within HEALTH_S, then a reconnect, a resync read and a push: generous,
# but bounded; without detection nothing ever arrives.
WITHIN_S = 10 * HEALTH_S + 10


async def likes_reach(ws: GqlWs, op: str, target: int, within: float) -> dict[str, Any]:
    """Read pushes until one shows ``target`` likes (pushes never go backwards)."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + within
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no push with likes={target} within {within}s")
        payload = await ws.next_payload(op, within=left)
        assert "errors" not in payload, payload
        got = payload["data"]["engagementUpdated"]
        assert got["likes"] <= target, got
        if got["likes"] == target:
            return dict(got)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15.0) as client:
        yield client


async def test_silent_pubsub_connection_is_detected_and_subscribers_resync(
    redis_proc: Any, tmp_path: Any, http_client: httpx.AsyncClient
) -> None:
    async with silent_proxy(redis_proc.port) as proxy:
        env = service_env(
            new_prefix(),
            REDIS_URL=f"redis://127.0.0.1:{redis_proc.port}/0",
            REDIS_PUBSUB_URL=proxy.url,
            LIVE_PUBSUB_HEALTH_S=str(HEALTH_S),
        )
        with serve(tmp_path, env) as server:
            http_client.base_url = httpx.URL(server.base_url)
            cid = await register(http_client)
            async with GqlWs.connect(server.ws_url) as ws:
                await ws.init()
                await ws.subscribe("s", SUBSCRIBE, {"ids": [cid]})
                first = await ws.next_payload("s", within=10)
                assert first["data"]["engagementUpdated"]["likes"] == 0
                await like(http_client, uid("u"), cid)
                await likes_reach(ws, "s", 1, within=10)
                connections_before = proxy.accepted

                # The pub/sub connection goes silent; likes go on.
                assert proxy.freeze() >= 1
                for _ in range(3):
                    await like(http_client, uid("u"), cid)

                # The resync: a fresh snapshot reaches the subscriber, no error, no complete.
                await likes_reach(ws, "s", 4, within=WITHIN_S)
                assert proxy.accepted > connections_before, "no new pub/sub connection"
                # And live pushes flow again on the new connection.
                await like(http_client, uid("u"), cid)
                await likes_reach(ws, "s", 5, within=10)

            metrics = await scrape(http_client, f"{server.base_url}/metrics")
            assert sum(metric_values(metrics, "likeview_live_pubsub_reconnects_total")) >= 1
            assert "PubSubSilentError" in server.logs()


async def test_subscription_opened_while_redis_is_unreachable_waits_then_resyncs(
    redis_proc: Any, tmp_path: Any, http_client: httpx.AsyncClient
) -> None:
    async with silent_proxy(redis_proc.port) as proxy:
        env = service_env(new_prefix(), REDIS_URL=proxy.url, LIVE_PUBSUB_HEALTH_S=str(HEALTH_S))
        with serve(tmp_path, env) as server:
            http_client.base_url = httpx.URL(server.base_url)
            cid = await register(http_client)
            await like(http_client, uid("u"), cid)
            async with GqlWs.connect(server.ws_url) as ws:
                await ws.init()
                # Redis goes away: every connection is closed, new ones are refused.
                proxy.refuse = True
                proxy.drop_all()
                await ws.subscribe("s", SUBSCRIBE, {"ids": [cid]})
                # Nothing (in particular no error and no complete) while Redis is away.
                with pytest.raises(TimeoutError):
                    await ws.recv(within=2 * HEALTH_S)
                proxy.refuse = False
                first = await ws.next_payload("s", within=WITHIN_S)
                assert first["data"]["engagementUpdated"]["likes"] == 1
                # Live pushes work once the hub has reconnected too.
                await like(http_client, uid("u"), cid)
                await likes_reach(ws, "s", 2, within=WITHIN_S)
