"""What the event log delivers to its consumers, and the consumer port the workers use.

The log itself is a port too (``domain.ports.EventLog``, the producer side); this
is the reading side: a consumer in a group, over the log's partitions, receiving
deliveries it acknowledges once applied (at-least-once). The Redis Streams adapter
is storage/redis_stream.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from domain.events import EngagementEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry: the events one request appended to one partition.

    Raw view events (archive only, the bulk of a recordViews batch) travel in
    their own field and stay encoded until the archiver asks for them: the
    aggregator never decodes them.
    """

    partition: int
    message_id: str
    events: tuple[EngagementEvent, ...]
    raw_views: str | bytes | None = None  # a JSON list of EngagementEvent.to_dict() dicts
    raw_view_count: int = 0

    @property
    def size(self) -> int:
        return len(self.events) + self.raw_view_count


def events_of(deliveries: Sequence[Delivery]) -> list[EngagementEvent]:
    """The events other than raw views (older entries may still carry raw views here)."""
    return [e for d in deliveries for e in d.events]


def raw_views_of(deliveries: Sequence[Delivery]) -> list[dict[str, Any]]:
    """Raw view events as the dicts they were encoded from, in delivery order."""
    return [raw for d in deliveries if d.raw_views for raw in orjson.loads(d.raw_views)]


class EventConsumer(Protocol):
    async def ensure_groups(self) -> None:
        """Create the consumer group on every partition, if it is not there yet."""

    async def read(
        self, count: int, block_ms: int | None, *, pending: bool = False
    ) -> list[Delivery]:
        """New deliveries, or with ``pending`` this consumer's unacknowledged ones."""

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over deliveries a dead consumer left unacknowledged."""

    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...


async def drain(
    consumer: EventConsumer,
    batch: int,
    apply: Callable[[list[Delivery]], Awaitable[int]],
) -> int:
    """A worker's run_once: its own unacknowledged deliveries first (a crash left
    them), then everything new, each batch through ``apply``; the sum of what it
    returned."""
    await consumer.ensure_groups()
    total = 0
    while items := await consumer.read(batch, None, pending=True):
        total += await apply(items)
        if len(items) < batch:
            break
    while items := await consumer.read(batch, None):
        total += await apply(items)
    return total


async def consume(
    consumer: EventConsumer,
    process: Callable[[list[Delivery]], Awaitable[int]],
    stop: asyncio.Event,
    *,
    name: str,
    batch: int,
    block_ms: int | Callable[[], int],
    claim_idle_ms: int,
) -> None:
    """A derived view's run loop, after its run_once: read, process, acknowledge
    (``process`` does), until ``stop``.

    Deliveries a dead consumer left are claimed on a timer, busy or not: a derived
    view's guard against applying twice holds for a while, not for ever. The timer
    runs at a quarter of ``claim_idle_ms``, so an entry is taken over at most
    1.25 x ``claim_idle_ms`` after its consumer died. A failed
    batch is retried from this consumer's own pending entries after a second.
    ``block_ms`` may be a function, for a worker that must wake sooner while it
    holds something back (the trending worker's throttled lists)."""
    last_claim = time.monotonic()
    retry_own = False
    while not stop.is_set():
        try:
            if retry_own:
                items = await consumer.read(batch, None, pending=True)
                retry_own = False
            else:
                block = block_ms() if callable(block_ms) else block_ms
                items = await consumer.read(batch, block)
            if time.monotonic() - last_claim >= claim_idle_ms / 4000:
                last_claim = time.monotonic()
                items += await consumer.claim_stale(claim_idle_ms, batch)
            await process(items)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s batch failed; retrying", name)
            retry_own = True
            await asyncio.sleep(1)
