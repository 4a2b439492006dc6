"""Samples the in-process consumers' lag for the ingest gate (domain/admission.py).

Every ``interval_s`` it reads the lag of the groups whose workers run in this
process (storage/redis_stream.py ``RedisEventLag``, two pipelined round trips)
and gives the gate the largest: the age of the oldest entry that any of them has
not acknowledged or not yet been handed. A failed read opens the gate: without a
sample there is no reason to hold writes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from domain.admission import IngestGate
from storage.redis_stream import GroupLag, RedisEventLag
from workers.metrics import INGEST_GATE_LAG
from workers.periodic import periodic


def largest_lag_ms(lags: Sequence[GroupLag]) -> int:
    """How long the oldest waiting event has waited for any group."""
    return max((max(g.pending_age_ms, g.undelivered_age_ms) for g in lags), default=0)


class IngestGateSampler:
    def __init__(
        self,
        reader: RedisEventLag,
        gate: IngestGate,
        *,
        interval_s: float = 0.2,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._gate = gate
        self._interval = interval_s
        self._clock = wall_clock

    async def run_once(self) -> int:
        try:
            lag = largest_lag_ms(await self._reader.read(int(self._clock() * 1000)))
        except Exception:
            self._gate.release()
            raise
        self._gate.observe(lag)
        INGEST_GATE_LAG.set(lag / 1000)
        return lag

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await periodic(self.run_once, stop, self._interval, "ingest gate", first_at_once=True)
        finally:
            self._gate.release()
