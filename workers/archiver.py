"""The archiver: event log -> MongoDB ``events`` (append-only, batched)."""

from __future__ import annotations

import asyncio
import logging

from domain.log import Delivery, EventConsumer, drain, events_of, raw_views_of
from domain.ports import EventArchive

log = logging.getLogger(__name__)


class Archiver:
    def __init__(
        self,
        consumer: EventConsumer,
        archive: EventArchive,
        *,
        batch: int = 1000,
        block_ms: int = 1000,
    ) -> None:
        self._consumer = consumer
        self._archive = archive
        self._batch = batch
        self._block_ms = block_ms

    async def run_once(self) -> int:
        return await drain(self._consumer, self._batch, self._store)

    async def _store(self, items: list[Delivery]) -> int:
        events = events_of(items)
        raw_views = raw_views_of(items)
        await self._archive.store(events)
        await self._archive.store_raw_views(raw_views)
        await self._consumer.ack(items)
        return len(events) + len(raw_views)

    async def run(self, stop: asyncio.Event) -> None:
        await self.run_once()
        while not stop.is_set():
            try:
                items = await self._consumer.read(self._batch, self._block_ms)
                if items:
                    await self._store(items)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("archiver batch failed; retrying")
                await asyncio.sleep(1)
