"""domain.log.consume, the derived views' run loop: a failed batch is retried from the
consumer's own pending entries, stale deliveries are claimed on a timer, and stop
ends it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.log import Delivery, consume


class ScriptedConsumer:
    """Hands out one new delivery per read until it has none; remembers what the
    loop asked for."""

    def __init__(self, new: list[Delivery]) -> None:
        self.new = list(new)
        self.pending: list[Delivery] = []
        self.calls: list[tuple[str, Any]] = []

    async def ensure_groups(self) -> None:
        return None

    async def read(self, count: int, block_ms: int | None, *, pending: bool = False) -> list:
        self.calls.append(("read", (block_ms, pending)))
        if pending:
            return list(self.pending)
        if not self.new:
            await asyncio.sleep(0)
            return []
        item = self.new.pop(0)
        self.pending.append(item)
        return [item]

    async def claim_stale(self, min_idle_ms: int, count: int) -> list:
        self.calls.append(("claim", min_idle_ms))
        return []

    async def ack(self, deliveries: Any) -> None:
        for d in deliveries:
            self.pending.remove(d)


def delivery(n: int) -> Delivery:
    return Delivery(0, f"{n}-0", ())


async def test_a_failed_batch_is_retried_from_the_consumers_own_pending(monkeypatch) -> None:
    consumer = ScriptedConsumer([delivery(1), delivery(2)])
    stop = asyncio.Event()
    seen: list[list[str]] = []
    failures = iter([True])

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("domain.log.asyncio.sleep", no_wait)

    async def process(items: list[Delivery]) -> int:
        seen.append([d.message_id for d in items])
        if items:
            fail: bool = next(failures, False)
            if fail:
                raise ConnectionError("the store went away")
        await consumer.ack(items)
        if len([s for s in seen if s]) >= 3:
            stop.set()
        return len(items)

    await asyncio.wait_for(
        consume(consumer, process, stop, name="t", batch=10, block_ms=5, claim_idle_ms=60_000),
        5,
    )
    # 1 fails, is read again from pending and applied, then 2.
    assert [s for s in seen if s] == [["1-0"], ["1-0"], ["2-0"]]
    assert ("read", (None, True)) in consumer.calls
    assert consumer.pending == []


@pytest.mark.parametrize(("claim_idle_ms", "claims"), [(0, True), (60_000, False)])
async def test_stale_deliveries_are_claimed_on_a_timer(claim_idle_ms: int, claims: bool) -> None:
    consumer = ScriptedConsumer([])
    stop = asyncio.Event()
    blocks: list[int] = []

    async def process(items: list[Delivery]) -> int:
        if len(consumer.calls) > 6:
            stop.set()
        return 0

    def block() -> int:
        blocks.append(7)
        return 7

    await asyncio.wait_for(
        consume(
            consumer, process, stop, name="t", batch=10, block_ms=block, claim_idle_ms=claim_idle_ms
        ),
        5,
    )
    assert any(c[0] == "claim" for c in consumer.calls) is claims
    assert blocks and all(c[1] == (7, False) for c in consumer.calls if c[0] == "read")
