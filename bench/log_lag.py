"""Every consumer group's lag during a load run, read straight from the bench's Redis.

Runs in a thread beside a wrk run (scenario 4): every ``interval`` s it reads, for
each group on each partition, how old the oldest entry not yet delivered to the
group is, and the oldest delivered but unacknowledged (storage/redis_stream.py,
``RedisEventLag``, the reader behind the ``likeview_event_log_*`` gauges). A
worker's lag is the larger of the two: how long an event has waited for it.
"""

from __future__ import annotations

import asyncio
import threading
import time

import redis.asyncio as aioredis

from storage.keys import Keys
from storage.redis_stream import CONSUMER_GROUPS, RedisEventLag


class LogLagSampler:
    def __init__(self, redis_url: str, seconds: float, interval: float = 0.5) -> None:
        self.url = redis_url
        self.seconds = seconds
        self.interval = interval
        # group -> every sample's lag (ms): the largest over its partitions.
        self.samples: dict[str, list[int]] = {g: [] for g in CONSUMER_GROUPS}
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(self.seconds + 30)

    def _run(self) -> None:
        try:
            asyncio.run(self._sample())
        except Exception as exc:  # reported, not raised: the load run goes on
            self.error = f"{type(exc).__name__}: {exc}"

    async def _sample(self) -> None:
        client = aioredis.Redis.from_url(self.url)
        try:
            # The suite's servers run with the default prefix and partitions.
            reader = RedisEventLag(client, Keys(), CONSUMER_GROUPS)
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                worst: dict[str, int] = {}
                for lag in await reader.read(int(time.time() * 1000)):
                    ms = max(lag.undelivered_age_ms, lag.pending_age_ms)
                    worst[lag.group] = max(worst.get(lag.group, 0), ms)
                for group, ms in worst.items():
                    self.samples.setdefault(group, []).append(ms)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            await client.aclose()

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for group, values in self.samples.items():
            if values:
                ordered = sorted(values)
                out[group] = {
                    "samples": len(values),
                    "p50_ms": float(ordered[len(ordered) // 2]),
                    "max_ms": float(ordered[-1]),
                }
        return out
