"""The notifier: event log and ranking signals -> creator notifications, exactly once
(docs/NOTIFICATIONS.md).

Per batch of deliveries (its own consumer group, ``notifier``):

1. per content, one script call (one round trip for the batch) applies the events
   effectively once (an applied-id set): public reactions join the content's open
   digest window, likes that raise the public count become first-like candidates,
   unlikes withdraw them;
2. checks are scheduled in the due set, each once (``ZADD NX``): a milestone check
   and a first-like check ``settle_s`` after the events that call for them (the
   integrity worker's promise to exclude within that delay), the digest window's
   close ``digest_s`` after its first reaction;
3. the deliveries are acknowledged;
4. VIRAL from the ranking signals of contents with new views, TRENDING from the top
   20 lists of the kinds the batch touched;
5. tick(): the due checks whose time has come.

Every notification goes through ``_emit``: muted ones are not created, ones over a
rate limit are held back (folded) for the content's next digest, the rest are
inserted by id (a hash of their dedupe key): a duplicate key means it was stored
already, so a redelivery, a replay or a second worker sends nothing twice. A stored
notification is published on its creator's channel for the subscription.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from domain import notifications as nt
from domain import signals, trending
from domain.contents import Content
from domain.events import EngagementEvent
from domain.integrity import Tier
from domain.log import Delivery, EventConsumer, consume, drain, events_of
from domain.notifications import Decision, Notification, NotificationKind, NotifyConfig
from domain.ports import (
    Clock,
    ContentRepository,
    CounterStore,
    NotificationStore,
    Publisher,
    ReactionRepository,
)
from domain.trending import ALL_REGIONS, WINDOWS
from storage.redis_notifications import RecordItem, RedisNotifyState
from storage.redis_trending import RedisTrending, TopQuery
from workers.metrics import NOTIFICATIONS, NOTIFIER_BATCHES

log = logging.getLogger(__name__)

# Contents whose creator and kind a worker remembers (immutable; a few MB).
CONTENTS_CACHED = 100_000
DUE_PER_TICK = 200
# A digest over a limit is tried again this often.
WAIT_RETRY_MS = 60_000
# First-like candidates looked at per check.
CANDIDATES = 10
MAINTENANCE_S = 60.0


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class NotifierWorker:
    def __init__(
        self,
        consumer: EventConsumer,
        contents: ContentRepository,
        reactions: ReactionRepository,
        counters: CounterStore,
        ranking: RedisTrending,
        store: NotificationStore,
        state: RedisNotifyState,
        publisher: Publisher,
        clock: Clock,
        config: NotifyConfig | None = None,
        *,
        expire_in_process: bool = False,
        batch: int = 200,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self._consumer = consumer
        self._contents = contents
        self._reactions = reactions
        self._counters = counters
        self._ranking = ranking
        self._store = store
        self._state = state
        self._publisher = publisher
        self._clock = clock
        self.config = config or NotifyConfig()
        self._expire = expire_in_process
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._known: dict[str, Content] = {}
        self._last_maintenance = float("-inf")
        self.applied_batches = 0

    # --- the event log -----------------------------------------------------------------

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        """Record the deliveries' events, acknowledge them, look for VIRAL and
        TRENDING, then tick(); returns how many events were read."""
        if not deliveries:
            await self.tick()
            return 0
        seen: set[str] = set()
        events: list[EngagementEvent] = []
        for e in events_of(deliveries):
            if e.event_id not in seen:
                seen.add(e.event_id)
                events.append(e)
        await self._learn({e.content_id for e in events})
        events = [e for e in events if e.content_id in self._known]
        events.sort(key=lambda e: (e.occurred_at_ms, e.event_id))
        now_ms = _ms(self._clock.now())
        await self._record(events, now_ms)
        # Only after the state is written: a crash before this redelivers, and the
        # applied ids and the unique notification ids make the redelivery harmless.
        await self._consumer.ack(deliveries)
        self.applied_batches += 1
        NOTIFIER_BATCHES.inc()
        viewed = sorted({e.content_id for e in events if nt.raises_views(e)})
        if viewed:
            await self._viral(viewed, now_ms)
        await self._trending(events, now_ms)
        await self.tick()
        return len(events)

    async def _learn(self, content_ids: Iterable[str]) -> None:
        missing = sorted(set(content_ids) - self._known.keys())
        if missing:
            if len(self._known) + len(missing) > CONTENTS_CACHED:
                self._known.clear()
            self._known.update(await self._contents.get_many(missing))

    async def _record(self, events: Sequence[EngagementEvent], now_ms: int) -> None:
        settle_ms = int(self.config.settle_s * 1000)
        items: dict[str, list[RecordItem]] = {}
        due: dict[str, int] = {}

        def at(member: str, ms: int) -> None:
            due[member] = min(due.get(member, ms), ms)

        for e in events:
            flags = (
                ("r" if nt.public_reaction(e) else "")
                + ("u" if nt.removes_like(e) else "")
                + ("l" if nt.raises_likes(e) else "")
            )
            if flags:
                items.setdefault(e.content_id, []).append(
                    (e.event_id, e.occurred_at_ms, flags, e.actor)
                )
            if nt.raises_counts(e):
                at(f"m:{e.content_id}", e.occurred_at_ms + settle_ms)
            if nt.raises_likes(e):
                at(f"f:{e.content_id}", e.occurred_at_ms + settle_ms)
        windows = await self._state.record(items, now_ms)
        digest_ms = int(self.config.digest_s * 1000)
        for cid, start in windows.items():
            if start is not None:
                at(f"d:{cid}:{start}", start + digest_ms)
        await self._state.schedule(due)

    # --- VIRAL and TRENDING -------------------------------------------------------------

    async def _viral(self, content_ids: list[str], now_ms: int) -> None:
        cfg = self.config
        raw = await self._ranking.raw_signals(content_ids)
        marks = await self._store.marks(content_ids)
        for cid in content_ids:
            r = raw.get(cid, signals.EMPTY)
            s = signals.compute(cid, r, now_ms)
            views = {m: c.views for m, c in r.minutes.items()}
            recent = (
                signals.window_sum(views, now_ms, 0, signals.VELOCITY_RECENT)
                / signals.VELOCITY_RECENT
            )
            ratio = s.velocity_ratio
            if ratio is None or ratio < cfg.viral_ratio or recent < cfg.viral_min_views_per_minute:
                continue
            last = int(marks.get(cid, {}).get("viral_at", 0))
            if last and now_ms - last < nt.DAY_MS:
                continue  # at most once per content per 24 h
            content = self._known[cid]
            label = nt.content_label(content.kind.value, cid)
            await self._emit(
                self._make(
                    nt.viral_key(cid, now_ms),
                    content,
                    NotificationKind.VIRAL,
                    {"velocity_ratio": ratio, "views_per_minute": recent},
                    nt.viral_text(label, ratio),
                )
            )
            await self._store.raise_marks(cid, {"viral_at": now_ms})

    async def _trending(self, events: Sequence[EngagementEvent], now_ms: int) -> None:
        kinds = sorted(
            {self._known[e.content_id].kind.value for e in events if trending.weight(e) != 0.0}
        )
        if not kinds:
            return
        order = [(w, kind) for w in WINDOWS for kind in kinds]
        lists = await self._ranking.tops(
            [TopQuery(w, kind, ALL_REGIONS, nt.TRENDING_TOP) for w, kind in order]
        )
        # Per content, its best place: the best rank, then the longest window.
        span = {w.value: spec.recent_s for w, spec in WINDOWS.items()}
        best: dict[str, tuple[str, int]] = {}
        for (w, _), ranked in zip(order, lists, strict=True):
            for rank, r in enumerate(ranked, start=1):
                heat = trending.current_heat(r.frame, now_ms, WINDOWS[w])
                if heat < self.config.trending_min_heat:
                    continue
                held = best.get(r.content_id)
                if held is None or (rank, -span[w.value]) < (held[1], -span[held[0]]):
                    best[r.content_id] = (w.value, rank)
        if not best:
            return
        ids = {nt.notification_id(nt.trending_key(c, w, now_ms)): c for c, (w, _) in best.items()}
        stored = await self._store.known(list(ids))
        fresh = sorted(c for i, c in ids.items() if i not in stored)
        if not fresh:
            return
        await self._learn(fresh)
        marks = await self._store.marks(fresh)
        for cid in fresh:
            content = self._known.get(cid)
            last = int(marks.get(cid, {}).get("trending_at", 0))
            if content is None or (last and now_ms - last < nt.HOUR_MS):
                continue  # one TRENDING per content per hour, whatever the window
            window, rank = best[cid]
            label = nt.content_label(content.kind.value, cid)
            await self._emit(
                self._make(
                    nt.trending_key(cid, window, now_ms),
                    content,
                    NotificationKind.TRENDING,
                    {"window": window, "rank": rank},
                    nt.trending_text(label, content.kind.value, window, rank),
                )
            )
            await self._store.raise_marks(cid, {"trending_at": now_ms})

    # --- the due checks ---------------------------------------------------------------

    async def tick(self) -> int:
        """The checks whose time has come; returns how many were made."""
        now = self._clock.now()
        now_ms = _ms(now)
        due = await self._state.due(now_ms, DUE_PER_TICK)
        first = [m[2:] for m, _ in due if m.startswith("f:")]
        miles = [m[2:] for m, _ in due if m.startswith("m:")]
        # Claimed before they are made: an event arriving meanwhile schedules again.
        await self._state.unschedule([f"f:{c}" for c in first] + [f"m:{c}" for c in miles])
        if first:
            await self._learn(first)
            await self._first_likes([c for c in first if c in self._known])
        if miles:
            await self._learn(miles)
            await self._milestones([c for c in miles if c in self._known])
        for member, _ in due:
            if member.startswith("d:"):
                cid, _, start = member[2:].rpartition(":")
                await self._learn([cid])
                if cid in self._known:
                    await self._close_digest(member, cid, int(start), now_ms)
                else:
                    await self._state.unschedule([member])
        if time.monotonic() - self._last_maintenance >= MAINTENANCE_S:
            self._last_maintenance = time.monotonic()
            await self.maintain()
        return len(due)

    async def maintain(self) -> None:
        """Digests of folded updates no digest took within an hour; and, in the
        embedded mode (no TTL index), notifications past their expiry."""
        now = self._clock.now()
        for creator, cid, first_ms in await self._store.stale_folds(now - timedelta(hours=1), 100):
            await self._learn([cid])
            content = self._known.get(cid)
            if content is not None and content.creator_id == creator:
                await self._digest(content, None, nt.folds_digest_key(cid, first_ms), _ms(now))
        if self._expire:
            await self._store.expire(now, 500)

    async def _first_likes(self, content_ids: list[str]) -> None:
        marks = await self._store.marks(content_ids)
        readings = await self._counters.read(content_ids)
        for cid in content_ids:
            if marks.get(cid, {}).get("first_like"):
                await self._state.clear_candidates(cid)
                continue
            reading = readings.get(cid)
            # The like must still stand after the settle delay, in the public count.
            if reading is None or reading.counters.get("likes", 0) < 1:
                continue
            actor = None
            for user in await self._state.first_like_candidates(cid, CANDIDATES):
                record = await self._reactions.get(cid, user)
                if record and record.reaction is not None and record.tier is not Tier.EXCLUDED:
                    actor = user
                    break
            if actor is None:
                continue
            content = self._known[cid]
            label = nt.content_label(content.kind.value, cid)
            await self._emit(
                self._make(
                    nt.first_like_key(cid),
                    content,
                    NotificationKind.FIRST_LIKE,
                    {"actor": actor},
                    nt.first_like_text(label, actor),
                )
            )
            await self._store.raise_marks(cid, {"first_like": 1})
            await self._state.clear_candidates(cid)

    async def _milestones(self, content_ids: list[str]) -> None:
        readings = await self._counters.read(content_ids)
        marks = await self._store.marks(content_ids)
        for cid in content_ids:
            reading = readings.get(cid)
            if reading is None:
                continue  # counters evicted: the next event schedules a check again
            counts = nt.trusted_counts(reading.counters)
            content = self._known[cid]
            label = nt.content_label(content.kind.value, cid)
            raised: dict[str, int] = {}
            for metric in nt.METRICS:
                mark = int(marks.get(cid, {}).get(metric, 0))
                threshold = nt.next_milestone(counts[metric], mark)
                if threshold is None:
                    continue
                await self._emit(
                    self._make(
                        nt.milestone_key(cid, metric, threshold),
                        content,
                        NotificationKind.MILESTONE,
                        {"metric": metric, "threshold": threshold, "value": counts[metric]},
                        nt.milestone_text(label, metric, threshold),
                    )
                )
                raised[metric] = threshold
            await self._store.raise_marks(cid, raised)

    async def _close_digest(self, member: str, cid: str, start_ms: int, now_ms: int) -> None:
        content = self._known[cid]
        done = await self._digest(content, start_ms, nt.digest_key(cid, start_ms), now_ms)
        if done:
            await self._state.discard_closed(cid, start_ms)
            await self._state.unschedule([member])
        else:
            await self._state.reschedule(member, now_ms + WAIT_RETRY_MS)

    async def _digest(
        self, content: Content, start_ms: int | None, dedupe: str, now_ms: int
    ) -> bool:
        """A digest of a window's reactors (``start_ms``) and the content's folded
        updates; False when it waits for a limit (nothing was closed)."""
        cid, creator = content.content_id, content.creator_id
        digest_id = nt.notification_id(dedupe)
        if digest_id in await self._store.known([digest_id]):
            return True
        prefs = await self._store.preferences(creator)
        kind = NotificationKind.REACTIONS_DIGEST
        if start_ms is None:
            # A digest of held-back updates alone carries other kinds: only a muted
            # content silences it.
            prefs = replace(prefs, muted_kinds=frozenset())
        recent = await self._store.recent(creator, cid, now_ms - nt.HOUR_MS)
        decision = nt.decide(kind, prefs, cid, recent, self.config)
        if decision is Decision.WAIT:
            NOTIFICATIONS.labels(kind.value, "waiting").inc()
            return False
        window = await self._state.close_window(cid, start_ms) if start_ms is not None else None
        if decision is Decision.DROP:
            NOTIFICATIONS.labels(kind.value, "muted").inc()
            return True
        folded, total = await self._store.folds_for(
            creator, cid, digest_id, nt.DIGEST_FOLDED_LISTED
        )
        count = window.count if window else 0
        if count == 0 and total == 0:
            return True
        if total:
            await self._store.give_folds(creator, cid, digest_id)
        label = nt.content_label(content.kind.value, cid)
        actors = window.recent_actors if window else []
        await self._store_and_publish(
            self._make(
                dedupe,
                content,
                kind,
                nt.digest_payload(window, folded, total),
                nt.digest_text(label, nt.named_actors(actors, count), count, total),
            )
        )
        return True

    # --- creating one ---------------------------------------------------------------

    def _make(
        self,
        dedupe: str,
        content: Content,
        kind: NotificationKind,
        payload: dict[str, object],
        text: str,
    ) -> Notification:
        return nt.make(
            dedupe,
            content.creator_id,
            content.content_id,
            kind,
            payload,
            text,
            self._clock.now().astimezone(UTC),
            self.config.ttl_s,
        )

    async def _emit(self, n: Notification) -> Decision | None:
        """Send, fold or drop one notification (not a digest); None: known already."""
        if n.id in await self._store.known([n.id]):
            NOTIFICATIONS.labels(n.kind.value, "duplicate").inc()
            return None
        prefs = await self._store.preferences(n.creator_id)
        recent = await self._store.recent(n.creator_id, n.content_id, n.created_ms - nt.HOUR_MS)
        decision = nt.decide(n.kind, prefs, n.content_id, recent, self.config)
        if decision is Decision.DROP:
            NOTIFICATIONS.labels(n.kind.value, "muted").inc()
        elif decision is Decision.FOLD:
            # The content's next digest takes it, or one of folds alone an hour
            # later (maintain()).
            if await self._store.fold(n):
                NOTIFICATIONS.labels(n.kind.value, "folded").inc()
        else:
            await self._store_and_publish(n)
        return decision

    async def _store_and_publish(self, n: Notification) -> None:
        if not await self._store.insert(n):
            NOTIFICATIONS.labels(n.kind.value, "duplicate").inc()
            return
        NOTIFICATIONS.labels(n.kind.value, "sent").inc()
        message = orjson.dumps({"id": n.id, "seq": n.seq, "kind": n.kind.value}).decode()
        try:
            await self._publisher.publish({self._state.keys.notify_channel(n.creator_id): message})
        except Exception:
            # Stored is what counts: the subscription re-reads on its next message.
            log.warning("notification publish failed", exc_info=True)

    # --- running ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Drain what is there (own pending first), then tick; returns the events read."""
        n = await drain(self._consumer, self._batch, self.process)
        await self.tick()
        return n

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.ensure_groups()
        await self.run_once()
        await consume(
            self._consumer,
            self.process,
            stop,
            name="notifier",
            batch=self._batch,
            block_ms=self._block_ms,
            claim_idle_ms=self._claim_idle_ms,
        )
