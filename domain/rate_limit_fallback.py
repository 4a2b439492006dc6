"""Abuse limits while Redis is down: the same GCRA, kept in this process.

Chosen over failing closed (refusing every like because the limiter is out, which
turns a Redis outage into a write outage) and over failing wide open (no limit at
all, which an abuser can time). Per process, so N API processes allow up to N
times a limit during an outage; bounded to ``max_subjects`` states, oldest out
(an evicted subject starts again with a full burst). When Redis answers again its
own states take over; what was spent locally is not carried over.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from domain.outages import is_outage
from domain.rate_limits import Rate, RateLimitStore, Subject, gcra

log = logging.getLogger(__name__)

MAX_SUBJECTS = 100_000


class LocalRateLimits:
    """A RateLimitStore in memory (one process, one event loop: no lock needed)."""

    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        self._tats: OrderedDict[Subject, float] = OrderedDict()
        self._max = max_subjects

    async def acquire(
        self, now_ms: int, requests: Sequence[Sequence[tuple[Subject, Rate]]]
    ) -> list[list[int]]:
        out: list[list[int]] = []
        for request in requests:
            steps = [
                (subject, gcra(self._tats.get(subject), now_ms, rate)) for subject, rate in request
            ]
            out.append([s.wait_ms for _, s in steps])
            if all(s.allowed for _, s in steps):
                for subject, s in steps:
                    self._tats[subject] = s.tat
                    self._tats.move_to_end(subject)
        while len(self._tats) > self._max:
            self._tats.popitem(last=False)
        return out


class FallbackRateLimits:
    """``primary`` (Redis) while it answers; ``fallback`` for a call it could not."""

    def __init__(self, primary: RateLimitStore, fallback: RateLimitStore) -> None:
        self._primary = primary
        self._fallback = fallback
        # Logged once per outage, not once per request.
        self.degraded = False

    async def acquire(
        self, now_ms: int, requests: Sequence[Sequence[tuple[Subject, Rate]]]
    ) -> list[list[int]]:
        try:
            waits = await self._primary.acquire(now_ms, requests)
        except Exception as exc:
            if not is_outage(exc):
                raise
            if not self.degraded:
                log.warning("rate limits: store unavailable, limiting in process (%r)", exc)
                self.degraded = True
            return await self._fallback.acquire(now_ms, requests)
        if self.degraded:
            log.warning("rate limits: store answers again")
            self.degraded = False
        return waits
