"""Drill 2: the Redis primary fails over under load, behind Redis Sentinel.

A primary, a replica and one sentinel (Debian's redis-sentinel, quorum 1) are
real processes; `main.py serve` finds the primary through REDIS_SENTINELS.
Replication is asynchronous, so a failover loses writes the primary had
acknowledged. The drill makes the loss certain rather than lucky: the primary is
reached through a proxy (tests/drills/procs.py; the sentinel monitors the proxy's
address, so it does not "repair" the replica's link around it), the replica's
link through it goes silent, likes keep being acknowledged, and then the primary
is killed (SIGKILL); the sentinel promotes the replica, which never received
those writes. The service must follow
the new primary, and the outbox relay and the reconciler must bring every count
back to exactly the acknowledged likes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.drills.procs import (
    Load,
    likes_of,
    metric_values,
    new_prefix,
    poll,
    scrape,
    serve,
    service_env,
    silent_proxy,
    start_redis,
    start_sentinel,
    stream,
)
from tests.e2e.helpers import PARTITIONS, register

MASTER = "drill"


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=15.0, limits=limits) as client:
        yield client


async def stream_entries(client: aioredis.Redis, prefix: str) -> int:
    return sum([await client.xlen(stream(prefix, p)) for p in range(PARTITIONS)])


async def test_primary_failover_loses_acknowledged_writes_and_counts_converge(
    tmp_path: Path, http_client: httpx.AsyncClient
) -> None:
    prefix = new_prefix()
    primary = start_redis(tmp_path)
    procs: list[Any] = [primary]
    clients: list[aioredis.Redis] = []
    try:
        async with silent_proxy(primary.port) as link:
            replica = start_redis(tmp_path, replica_of=link.port)
            procs.append(replica)
            old, new = primary.client(), replica.client()
            clients += [old, new]
            await poll(
                lambda: new.info("replication"),
                lambda info: info.get("master_link_status") == "up",
                within=20,
                what="replica in sync",
            )
            sentinel = start_sentinel(tmp_path, MASTER, link.port)
            procs.append(sentinel)
            watcher = sentinel.client()
            clients.append(watcher)
            await poll(
                lambda: watcher.execute_command("SENTINEL", "REPLICAS", MASTER),
                lambda replicas: len(replicas) == 1,
                within=30,
                interval=0.2,
                what="sentinel knows the replica",
            )

            env = service_env(
                prefix,
                REDIS_SENTINELS=f"127.0.0.1:{sentinel.port}",
                REDIS_SENTINEL_MASTER=MASTER,
                RATE_LIMITS="false",
                OUTBOX_GRACE_S="2",
                RECONCILE_INTERVAL_S="2",
                LIVE_PUBSUB_HEALTH_S="1",
            )
            with serve(tmp_path, env) as server:
                http_client.base_url = httpx.URL(server.base_url)
                contents = [await register(http_client) for _ in range(4)]
                stop = asyncio.Event()
                load = Load(http_client, contents, concurrency=4)
                running = asyncio.create_task(load.run(stop))
                await poll(lambda: _total(load), lambda n: n >= 100, within=60, what="load")

                # Replication goes silent; acknowledged likes pile up on the primary only.
                assert link.freeze(replication_only=True) == 1
                frozen_at = load.total
                await poll(
                    lambda: _total(load), lambda n: n >= frozen_at + 60, within=60, what="load"
                )
                entries_before = await stream_entries(old, prefix)
                primary.signal(signal.SIGKILL)
                primary.proc.wait(timeout=10)
                killed_at = load.total
                # Before the promotion (1 s down, then a vote) nothing writes to the
                # replica: what it holds now is what the new primary starts from.
                entries_after = await stream_entries(new, prefix)
                lost = entries_before - entries_after

                await poll(
                    lambda: watcher.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER),
                    lambda addr: int(addr[1]) == replica.port,
                    within=30,
                    interval=0.2,
                    what="sentinel promoted the replica",
                )
                # The service follows the new primary: likes are acknowledged again.
                await poll(
                    lambda: _total(load), lambda n: n >= killed_at + 100, within=60, what="load"
                )
                stop.set()
                await running

                got = await poll(
                    lambda: likes_of(http_client, contents),
                    lambda got: got == load.acked,
                    within=60,
                    interval=0.5,
                    what="counts converged to the acknowledged likes",
                )
                assert got == load.acked
                assert lost > 0, "the failover lost nothing: the drill did not bite"
                metrics = await scrape(http_client, f"{server.base_url}/metrics")
                drift = sum(metric_values(metrics, "likeview_reconciler_drift_total"))
                repairs = sum(metric_values(metrics, "likeview_reconciler_repairs_total"))
                republished = sum(metric_values(metrics, "likeview_outbox_republished_total"))
                print(
                    f"\ndrill 2: {load.total} likes acknowledged ({load.failed} failed "
                    f"attempts retried); {killed_at - frozen_at} acknowledged while replication "
                    f"was silent; the failover lost {lost} event-log entries; repaired: "
                    f"outbox republished {republished:.0f} events, reconciler repaired "
                    f"{repairs:.0f} contents (drift {drift:.0f})"
                )
    finally:
        for client in clients:
            await client.aclose()
        for proc in reversed(procs):
            proc.signal(signal.SIGCONT)
            proc.stop()


async def _total(load: Load) -> int:
    return load.total
