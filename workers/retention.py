"""Retention in the embedded mode: keeps the in-process store to a time window.

Each pass removes, per kind (raw view events, archived events, idle view
sessions), everything older than the retention, a page at a time, resting
between pages for a multiple of the time the page took so it never holds more
than ``share`` of the event loop. What it removes and why counters stay right:
storage/mongo_retention.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.ports import Clock, RetentionStore
from workers.periodic import periodic


@dataclass(slots=True)
class RetentionReport:
    removed: dict[str, int] = field(default_factory=dict)
    pages: int = 0


class Retention:
    def __init__(
        self,
        store: RetentionStore,
        clock: Clock,
        *,
        keep: timedelta,
        batch: int = 200,
        interval_s: float = 10.0,
        share: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._store = store
        self._clock = clock
        self._keep = keep
        self._batch = batch
        self._interval = interval_s
        self._rest = (1 - share) / share
        self._sleep = sleep

    async def run_once(self, stop: asyncio.Event | None = None) -> RetentionReport:
        report = RetentionReport()
        now = self._clock.now()
        before = now - self._keep
        steps: dict[str, Callable[[datetime, int], Awaitable[int]]] = {
            "view_events": self._store.expire_raw_views,
            "events": self._store.expire_events,
            "view_sessions": self._store.fold_sessions,
            # Minute and hour buckets keep their own retention, whatever the window.
            "analytics": lambda _, limit: self._store.expire_analytics(now, limit),
            "webhook_deliveries": self._store.expire_webhook_deliveries,
        }
        for name, step in steps.items():
            removed = 0
            while not (stop and stop.is_set()):
                started = time.monotonic()
                n = await step(before, self._batch)
                report.pages += 1
                await self._sleep((time.monotonic() - started) * self._rest)
                if not n:
                    break
                removed += n
            report.removed[name] = removed
        return report

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(
            lambda: self.run_once(stop), stop, self._interval, "retention", first_at_once=False
        )
