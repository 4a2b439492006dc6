"""The outbox relay: repairs a crash between a MongoDB write and its event append.

Outbox entries older than the grace period are either archived already (the
append happened: prune them) or not (republish them; the aggregator ignores an
event id it has applied before, so a spurious republish costs nothing).

Every write leaves an entry, so pruning is steady work, not only repair: a pass
drains everything that is due, in batches of 50 documents (a fixed number per
pass would fall behind any write rate above it, and outboxes would only grow).
Between batches the relay rests for a multiple of
the time the batch took, so it never holds more than ``share`` of the event
loop: with the embedded mongomock, every batch is synchronous CPU on the
request loop. A stop ends a pass between batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.ports import Clock, EventArchive, EventLog, Outbox
from workers.metrics import OUTBOX_REPUBLISHED
from workers.periodic import periodic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayReport:
    pruned: int
    republished: int


class OutboxRelay:
    def __init__(
        self,
        outboxes: list[Outbox],
        archive: EventArchive,
        event_log: EventLog,
        clock: Clock,
        *,
        grace: timedelta = timedelta(seconds=10),
        batch: int = 50,
        interval_s: float = 5.0,
        share: float = 0.25,
    ) -> None:
        self._outboxes = outboxes
        self._archive = archive
        self._log = event_log
        self._clock = clock
        self._grace = grace
        self._batch = batch
        self._interval = interval_s
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._rest = (1 - share) / share

    async def run_once(self, stop: asyncio.Event | None = None) -> RelayReport:
        """Drain every entry older than the grace period, batch by batch."""
        pruned = republished = 0
        cutoff = self._clock.now() - self._grace
        for outbox in self._outboxes:
            while stop is None or not stop.is_set():
                started = time.monotonic()
                done, lost = await self._one_batch(outbox, cutoff)
                if not done and not lost:
                    break
                pruned += done
                republished += lost
                await asyncio.sleep((time.monotonic() - started) * self._rest)
        return RelayReport(pruned, republished)

    async def _one_batch(self, outbox: Outbox, cutoff: datetime) -> tuple[int, int]:
        """(pruned, republished) for one batch; (0, 0) when nothing was due or
        nothing could be pruned (the pass stops rather than spin on it)."""
        pending = await outbox.pending(cutoff, self._batch)
        if not pending:
            return 0, 0
        archived = await self._archive.existing([p.event.event_id for p in pending])
        done = [p for p in pending if p.event.event_id in archived]
        lost = [p for p in pending if p.event.event_id not in archived]
        if lost:
            await self._log.append([p.event for p in lost])
            # Archive directly too, so the prune below is right next time as well.
            await self._archive.store([p.event for p in lost])
            OUTBOX_REPUBLISHED.inc(len(lost))
            log.warning("outbox relay republished %d events", len(lost))
        if not await outbox.prune(done + lost):
            log.warning("outbox relay could not prune %d entries", len(pending))
            return 0, 0
        return len(done), len(lost)

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(
            lambda: self.run_once(stop), stop, self._interval, "outbox relay", first_at_once=True
        )
