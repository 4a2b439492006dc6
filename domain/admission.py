"""Ingest admission: while the derived views are far behind, new writes wait.

In the embedded mode the API and every log consumer (counters, archive, analytics,
trending, integrity, notifications) share one process and so one core. A
closed-loop client can then write faster than the consumers can apply, and
nothing tells the API to leave them their share: the backlog, and with it every
derived view's staleness, grows for as long as the load lasts. The gate turns
that into back-pressure, as a storage engine stalls writes while its compaction
is behind: it closes when the oldest event waiting for any in-process consumer
is older than ``max_lag_ms`` and opens again when that falls to half of it;
while it is closed, a write waits for it to open, at most ``max_wait_s``, then
goes ahead anyway (a stuck consumer must not stop the ingest; it is bounded by
the lag alarms instead).

The longest wait is a full batch's (``FULL_WAIT_EVENTS`` events or more); a smaller
write waits that share of it, so the back-pressure falls on the writes that add the
backlog: a ``recordViews`` batch of 100 waits up to ``max_wait_s``, a like or one
player's view event a hundredth of it. A person's click is not held for seconds
behind a bulk ingest, and many small writes cannot outrun the workers either, as
each costs a whole request of the API's share of the core.

The lag comes from a sampler (workers/ingest_gate.py); the gate itself is pure
state plus an ``asyncio.Event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from workers.metrics import INGEST_GATE_CLOSED, INGEST_GATE_WAIT_SECONDS, INGEST_GATE_WAITS

# A write of this many events or more may wait the whole ``max_wait_s``.
FULL_WAIT_EVENTS = 100


def gate_open(was_open: bool, lag_ms: float, max_lag_ms: float) -> bool:
    """The gate's next state: it closes at ``max_lag_ms`` of lag and reopens at
    half of it, so that it does not flap on every sample near the limit."""
    if was_open:
        return lag_ms < max_lag_ms
    return lag_ms <= max_lag_ms / 2


class IngestGate:
    """The write paths' admission (``admit``), driven by ``observe(lag_ms)``."""

    __slots__ = ("_open", "max_lag_ms", "max_wait_s")

    def __init__(self, max_lag_ms: float, max_wait_s: float) -> None:
        if max_lag_ms <= 0:
            raise ValueError("max_lag_ms must be positive; leave the gate out to turn it off")
        if max_wait_s <= 0:
            raise ValueError("max_wait_s must be positive")
        self.max_lag_ms = max_lag_ms
        self.max_wait_s = max_wait_s
        self._open = asyncio.Event()
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def observe(self, lag_ms: float) -> None:
        """A new sample of the largest consumer lag."""
        if gate_open(self.is_open, lag_ms, self.max_lag_ms):
            self._open.set()
            INGEST_GATE_CLOSED.set(0)
        else:
            self._open.clear()
            INGEST_GATE_CLOSED.set(1)

    def release(self) -> None:
        """Open for good (the sampler stopped: no sample will open it again)."""
        self.observe(0.0)

    def longest_wait_s(self, events: int) -> float:
        """How long a write of ``events`` events may wait at the closed gate."""
        return self.max_wait_s * min(1.0, max(1, events) / FULL_WAIT_EVENTS)

    async def admit(self, events: int = 1) -> None:
        """Return at once while open; else when it opens, or after the write's
        longest wait (``longest_wait_s``)."""
        if self._open.is_set():
            return
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._open.wait(), self.longest_wait_s(events))
        INGEST_GATE_WAITS.inc()
        INGEST_GATE_WAIT_SECONDS.observe(time.perf_counter() - started)
