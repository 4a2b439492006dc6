"""Event-log lag: per consumer group and partition, what waits and for how long.

Every ``interval_s`` (and at start) the probe reads the lag of every group on
every partition (storage/redis_stream.py ``RedisEventLag``, two pipelined round
trips) and sets the ``likeview_event_log_*`` gauges. It runs wherever the workers
run; several worker processes export the same values, so dashboards and alerts
take ``max by (group, partition)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from prometheus_client import Gauge

from storage.redis_stream import GroupLag, RedisEventLag
from workers.metrics import (
    EVENT_LOG_LAG_READ_AT,
    EVENT_LOG_PENDING,
    EVENT_LOG_PENDING_AGE,
    EVENT_LOG_UNDELIVERED,
    EVENT_LOG_UNDELIVERED_AGE,
)
from workers.periodic import periodic


class EventLogLagProbe:
    def __init__(
        self,
        reader: RedisEventLag,
        *,
        interval_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._interval = interval_s
        self._clock = wall_clock
        # The gauges' children, bound once per (group, partition).
        self._children: dict[tuple[str, int], tuple[Gauge, Gauge, Gauge, Gauge]] = {}

    async def run_once(self) -> list[GroupLag]:
        now = self._clock()
        lags = await self._reader.read(int(now * 1000))
        self.export(lags)
        EVENT_LOG_LAG_READ_AT.set(now)
        return lags

    def export(self, lags: Sequence[GroupLag]) -> None:
        for lag in lags:
            key = (lag.group, lag.partition)
            children = self._children.get(key)
            if children is None:
                labels = {"group": lag.group, "partition": str(lag.partition)}
                children = self._children[key] = (
                    EVENT_LOG_PENDING.labels(**labels),
                    EVENT_LOG_UNDELIVERED.labels(**labels),
                    EVENT_LOG_UNDELIVERED_AGE.labels(**labels),
                    EVENT_LOG_PENDING_AGE.labels(**labels),
                )
            pending, undelivered, undelivered_age, pending_age = children
            pending.set(lag.pending)
            undelivered.set(float("nan") if lag.undelivered is None else lag.undelivered)
            undelivered_age.set(lag.undelivered_age_ms / 1000)
            pending_age.set(lag.pending_age_ms / 1000)

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(self.run_once, stop, self._interval, "event-log lag", first_at_once=True)
