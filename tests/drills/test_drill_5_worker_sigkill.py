"""Drill 5: an aggregator worker is killed with SIGKILL in the middle of a batch.

Design (docs/OPERATIONS.md, "Failure drills"): the aggregator's whole effect is in
Redis (counters, applied-id sets, pub/sub), so two `main.py worker` processes
running only it (WORKERS=aggregator) share everything they need through the real
Redis, with no shared MongoDB. `main.py serve` (embedded MongoDB) runs every other
worker and takes the likes.

"Mid-batch" is made certain, not hoped for: worker A is stopped (SIGSTOP) at
moments under load until Redis shows it holding delivered, unacknowledged entries,
and is then killed with SIGKILL. Worker B must claim them (XAUTOCLAIM once they
are idle for the claim time, 30 s) and the counts must come out exact.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.drills.procs import (
    ALL_WORKERS,
    Load,
    group_backlog,
    likes_of,
    new_prefix,
    pending_of,
    poll,
    scrape,
    serve,
    service_env,
    start_worker,
)
from tests.e2e.helpers import register

CLAIM_IDLE_S = 30  # the aggregator's claim time (workers/aggregator.py)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=15.0, limits=limits) as client:
        yield client


async def test_sigkilled_worker_entries_are_claimed_and_counts_are_exact(
    redis_proc: Any, tmp_path: Any, http_client: httpx.AsyncClient
) -> None:
    prefix = new_prefix()
    redis_url = f"redis://127.0.0.1:{redis_proc.port}/0"
    # The reconciler is kept out of the way: the claim alone must make counts exact.
    base = service_env(
        prefix, REDIS_URL=redis_url, RATE_LIMITS="false", RECONCILE_INTERVAL_S="3600"
    )
    others = ",".join(w for w in ALL_WORKERS if w != "aggregator")
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    with serve(tmp_path, {**base, "WORKERS": others}) as server:
        http_client.base_url = httpx.URL(server.base_url)
        a = start_worker(tmp_path, base, "aggregator")
        b = start_worker(tmp_path, base, "aggregator")
        try:
            for w in (a, b):
                assert w.metrics_url is not None
                await poll(_scraper(http_client, w.metrics_url), bool, within=30, what="worker up")
            contents = [await register(http_client) for _ in range(4)]
            consumer_a = f"{socket.gethostname()}-{a.pid}"

            stop = asyncio.Event()
            load = Load(http_client, contents, concurrency=6)
            running = asyncio.create_task(load.run(stop, limit=1500))

            async def caught_mid_batch() -> int:
                # Frozen at a random moment; kept frozen only if it holds entries.
                a.signal(signal.SIGSTOP)
                held = await pending_of(redis, prefix, "aggregator", consumer_a)
                if held == 0:
                    a.signal(signal.SIGCONT)
                return held

            held = await poll(caught_mid_batch, lambda n: n > 0, within=60, what="A mid-batch")
            a.signal(signal.SIGKILL)
            a.proc.wait(timeout=10)
            await running
            assert load.total == 1500, f"likes not acknowledged: {load.failed} failures"

            # B claims A's entries after CLAIM_IDLE_S idle (checked every quarter of it).
            await poll(
                lambda: group_backlog(redis, prefix, "aggregator"),
                lambda lp: lp == (0, 0),
                within=CLAIM_IDLE_S * 1.25 + 30,
                interval=0.5,
                what="aggregator group drained",
            )
            assert await pending_of(redis, prefix, "aggregator", consumer_a) == 0
            assert await likes_of(http_client, contents) == load.acked
            print(f"\ndrill 5: worker A killed holding {held} entries; B claimed them")
        finally:
            stop_all = [a, b]
            for w in stop_all:
                w.signal(signal.SIGCONT)
                w.stop()
            await redis.aclose()


def _scraper(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[str]]:
    return lambda: scrape(client, url)
