"""Stand-ins the integration tests share: a clock they move, an event consumer that
delivers nothing (tests hand deliveries to process() themselves), and an applied
set that fails once (a worker that died between writing a batch and remembering it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.log import Delivery
from storage.redis_analytics import RedisAnalytics

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


class FakeConsumer:
    def __init__(self) -> None:
        self.acked: list[Delivery] = []

    async def ensure_groups(self) -> None:
        return None

    async def read(self, count: int, block_ms: int | None, *, pending: bool = False) -> list:
        return []

    async def claim_stale(self, min_idle_ms: int, count: int) -> list:
        return []

    async def ack(self, deliveries: Any) -> None:
        self.acked.extend(deliveries)


class CrashOnce:
    """The applied set, failing once after the rollups were written."""

    def __init__(self, inner: RedisAnalytics) -> None:
        self.inner = inner
        self.crashed = False

    async def unapplied(self, events: Any) -> Any:
        return await self.inner.unapplied(events)

    async def remember(self, events: Any) -> None:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("the worker died between the write and the applied set")
        await self.inner.remember(events)
