"""The aggregator: event log -> counters (effectively once) -> live updates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import tracing
from domain.events import REACTION, EngagementEvent
from domain.log import Delivery, EventConsumer, consume, drain, events_of
from domain.ports import CounterStore, Publisher
from subscriptions.messages import encode_counts, encode_mine
from workers.metrics import BATCHES, COUNTER_LAG, EVENTS_APPLIED

log = logging.getLogger(__name__)


class Aggregator:
    def __init__(
        self,
        consumer: EventConsumer,
        counters: CounterStore,
        publisher: Publisher,
        channel: Callable[[str], str],
        user_channel: Callable[[str], str],
        *,
        batch: int = 500,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._consumer = consumer
        self._counters = counters
        self._publisher = publisher
        self._channel = channel
        self._user_channel = user_channel
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._wall_clock = wall_clock
        self.applied_batches = 0

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        if tracing.tracer is not None:
            from tracing.spans import applying

            # The apply continues (or links to) the traces of the likes it counts.
            with applying(events_of(deliveries)):
                return await self._process(deliveries)
        return await self._process(deliveries)

    async def _process(self, deliveries: Sequence[Delivery]) -> int:
        by_partition: dict[int, list[Delivery]] = {}
        for d in deliveries:
            by_partition.setdefault(d.partition, []).append(d)
        touched_by: dict[str, set[str]] = {}
        for e in events_of(deliveries):
            if e.kind == REACTION:
                touched_by.setdefault(e.actor, set()).add(e.content_id)
        # "Your reactions change" goes out before the counters change: any counts
        # that include the change, whichever worker publishes them, then reach a
        # subscriber after it, and its subscription re-reads its own reaction
        # together with the counters before it shows them.
        await self._publish(
            {self._user_channel(user): encode_mine(cids) for user, cids in touched_by.items()}
        )
        counts: dict[str, str] = {}
        for partition, items in by_partition.items():
            # Raw view events only feed the archive; they change no counter (new
            # entries carry them apart, undecoded; older ones inline).
            countable = [e for e in events_of(items) if e.deltas or e.unique]
            changed = await self._counters.apply(partition, countable)
            self._observe_lag(countable)
            for cid, reading in changed.items():
                # One message per touched content per batch: a storm coalesces here first.
                counts[self._channel(cid)] = encode_counts(cid, reading)
        # Acknowledge only after the counters hold the batch; a crash before this
        # redelivers, and the applied-id set turns the redelivery into a no-op.
        await self._consumer.ack(deliveries)
        await self._publish(counts)
        self.applied_batches += 1
        BATCHES.inc()
        count = sum(d.size for d in deliveries)
        EVENTS_APPLIED.inc(count)
        return count

    def _observe_lag(self, events: Sequence[EngagementEvent]) -> None:
        """Counter lag: each counted event's occurrence to now, when Redis holds it
        (a redelivered or republished one is observed again: its lag is real)."""
        now_ms = self._wall_clock() * 1000
        observe = COUNTER_LAG.observe
        for e in events:
            observe(max(0.0, now_ms - e.occurred_at_ms) / 1000)

    async def _publish(self, messages: dict[str, str]) -> None:
        if not messages:
            return
        try:
            if tracing.tracer is not None:
                from tracing.spans import publishing

                with publishing(len(messages)):
                    await self._publisher.publish(messages)
            else:
                await self._publisher.publish(messages)
        except Exception:
            # Pub/sub is at-most-once anyway; subscribers resync on (re)connect.
            log.warning("publishing live updates failed", exc_info=True)

    async def run_once(self) -> int:
        """Drain what is there (own pending first), then return the count."""
        return await drain(self._consumer, self._batch, self.process)

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.ensure_groups()
        await self.run_once()
        # The shared loop claims a dead consumer's entries on a timer, busy or not:
        # claiming only when idle left them pending for as long as load lasted.
        await consume(
            self._consumer,
            self.process,
            stop,
            name="aggregator",
            batch=self._batch,
            block_ms=self._block_ms,
            claim_idle_ms=self._claim_idle_ms,
        )
