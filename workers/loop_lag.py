"""Event-loop lag: how late a short sleep wakes up is how long the loop was held.

Anything synchronous on the loop (an in-process MongoDB scan, a full garbage
collection, a long pure-Python pass) delays every request and every worker of
the process by the same amount; this probe turns those stalls into metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from prometheus_client import Gauge, Histogram

LOOP_LAG = Histogram(
    "likeview_event_loop_lag_seconds",
    "How late the event loop ran a timer it was due to run (a stall of the process)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LOOP_LAG_MAX = Gauge(
    "likeview_event_loop_lag_max_seconds", "The longest event-loop stall since the process started"
)


class LoopLagProbe:
    def __init__(
        self,
        *,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        observe: Callable[[float], None] = LOOP_LAG.observe,
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._observe = observe
        self.max_s = 0.0

    def record(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self._observe(lag_s)
        if lag_s > self.max_s:
            self.max_s = lag_s
            # One gauge per process: the largest of every probe it runs.
            if lag_s > LOOP_LAG_MAX._value.get():
                LOOP_LAG_MAX.set(lag_s)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            due = self._clock() + self._interval
            await asyncio.sleep(self._interval)
            self.record(self._clock() - due)


@contextlib.asynccontextmanager
async def probing(probe: LoopLagProbe | None = None) -> AsyncIterator[LoopLagProbe]:
    """Run a probe for as long as the block: every process that serves or works."""
    probe = probe or LoopLagProbe()
    stop = asyncio.Event()
    task = asyncio.create_task(probe.run(stop))
    try:
        yield probe
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
