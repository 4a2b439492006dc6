"""The outbox relay: repairs a crash between a MongoDB write and its event append.

Outbox entries older than the grace period are either archived already (the
append happened: prune them) or not (republish them; the aggregator ignores an
event id it has applied before, so a spurious republish costs nothing).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

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
        batch: int = 500,
        interval_s: float = 5.0,
    ) -> None:
        self._outboxes = outboxes
        self._archive = archive
        self._log = event_log
        self._clock = clock
        self._grace = grace
        self._batch = batch
        self._interval = interval_s

    async def run_once(self) -> RelayReport:
        pruned = republished = 0
        cutoff = self._clock.now() - self._grace
        for outbox in self._outboxes:
            pending = await outbox.pending(cutoff, self._batch)
            if not pending:
                continue
            archived = await self._archive.existing([p.event.event_id for p in pending])
            done = [p for p in pending if p.event.event_id in archived]
            lost = [p for p in pending if p.event.event_id not in archived]
            if lost:
                await self._log.append([p.event for p in lost])
                # Archive directly too, so the next pass can prune them.
                await self._archive.store([p.event for p in lost])
                republished += len(lost)
                OUTBOX_REPUBLISHED.inc(len(lost))
                log.warning("outbox relay republished %d events", len(lost))
            await outbox.prune(done + lost)
            pruned += len(done)
        return RelayReport(pruned, republished)

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(self.run_once, stop, self._interval, "outbox relay", first_at_once=True)
