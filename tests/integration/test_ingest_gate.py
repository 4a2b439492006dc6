"""The ingest gate against a real Redis: the sampler reads the in-process groups'
lag, closes the gate, and a like waits for the aggregator to catch up."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.admission import IngestGate
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from domain.view_recording import record_views
from main import run_workers
from storage.keys import Keys
from storage.redis_stream import RedisEventLag
from workers.ingest_gate import IngestGateSampler


def later(seconds: float):
    """A wall clock ``seconds`` ahead: the log's entries look that old."""
    return lambda: time.time() + seconds


async def stream_length(app_redis, keys: Keys) -> int:
    return sum([await app_redis.xlen(s) for s in keys.streams()])


async def test_a_like_waits_while_the_aggregator_lags(runtime, deps, content, app_redis):
    keys = runtime.services.keys
    # A like waits a hundredth of the longest wait: here up to 60 s.
    gate = deps.admission = IngestGate(2_000, 6_000)
    aggregator = runtime.workers["aggregator"]
    await aggregator.run_once()  # creates its groups
    reader = RedisEventLag(app_redis, keys, [Keys.AGGREGATOR_GROUP])

    await set_reaction(deps, Actor("alice"), content, R.LIKE)
    assert await IngestGateSampler(reader, gate, wall_clock=later(10)).run_once() >= 10_000
    assert not gate.is_open

    bob = asyncio.create_task(set_reaction(deps, Actor("bob"), content, R.LIKE))
    done, _ = await asyncio.wait({bob}, timeout=0.2)
    assert not done
    assert await stream_length(app_redis, keys) == 1  # bob's like is not written yet

    await aggregator.run_once()
    assert await IngestGateSampler(reader, gate, wall_clock=later(10)).run_once() == 0
    assert gate.is_open
    assert (await bob).changed
    assert await stream_length(app_redis, keys) == 2


async def test_only_the_sampled_groups_hold_writes(runtime, deps, content, app_redis):
    """A group of a worker that does not run here (not sampled) never closes it."""
    keys = runtime.services.keys
    gate = deps.admission = IngestGate(2_000, 60)
    await runtime.workers["aggregator"].run_once()
    await set_reaction(deps, Actor("alice"), content, R.LIKE)
    await runtime.workers["aggregator"].run_once()
    # The analytics group never read anything; only the aggregator's is sampled.
    sampler = IngestGateSampler(
        RedisEventLag(app_redis, keys, [Keys.AGGREGATOR_GROUP]), gate, wall_clock=later(60)
    )
    assert await sampler.run_once() == 0
    assert gate.is_open
    results = await record_views(
        deps, Actor("carol"), [{"content_id": content, "session_id": "s1", "watched_ms": 0}]
    )
    assert len(results) == 1


async def test_a_failed_sample_opens_the_gate(runtime, deps):
    gate = IngestGate(2_000, 60)
    gate.observe(5_000)

    class Broken:
        async def read(self, now_ms: int):
            raise ConnectionError("redis went away")

    sampler = IngestGateSampler(Broken(), gate)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await sampler.run_once()
    assert gate.is_open


class SpyGate(IngestGate):
    __slots__ = ("sampled",)

    def __init__(self) -> None:
        super().__init__(2_000, 60)
        self.sampled = asyncio.Event()

    def observe(self, lag_ms: float) -> None:
        super().observe(lag_ms)
        self.sampled.set()


async def test_workers_in_the_api_process_sample_for_its_gate(runtime):
    gate = SpyGate()
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(runtime, stop, gate=gate))
    try:
        await asyncio.wait_for(gate.sampled.wait(), 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert gate.is_open  # released on the way out
