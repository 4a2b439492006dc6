"""The integrity worker: event log -> windowed features per actor, device and
address (Redis) -> a trust per actor (domain/integrity_rules.py) -> the enforcer.

Per batch of deliveries (its own consumer group, ``Keys.INTEGRITY_GROUP``):

1. the batch's reactions, counted views, view events, session ends and
   sessions sent again verbatim (replays) are recorded
   (storage/redis_integrity.py ``record``, one round trip), effectively once:
   each actor's script skips events whose token it applied before. Tokens as in
   the trending worker: an event's id, or for raw view events their log entry's.
   The same round trip stores what the previous batch learnt too late to write
   (the notes below and the trusts it reported);
2. every actor the batch touched is assessed, plus the actors seen on a device
   or address whose aggregates changed enough to matter (crossed a threshold of
   a rule that reads them, or grew by a tenth while inside a rule's ramp):
   retroactive, so the earlier accounts of a device that turns into a farm are
   excluded with the later ones. What the worker knows of an actor's groups
   travels as *notes* in the actor's own hash (one slot per actor), written by
   the read (``read``, one round trip), which also registers the playback
   signatures of the sessions that just ended and reads their crowds. Actors
   who shared a signature whose crowd turned bad are assessed at the next batch;
3. the enforcer is told of the assessments whose trust moved by more than 0.01
   or crossed a bar (``exclude_below``, ``confident_at``); an actor never
   reported counts as trust 1;
4. the deliveries are acknowledged.

Events of other kinds (the enforcer's own "integrity" events among them) are
ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace

import orjson

from domain.events import RAW_VIEW, REACTION, REPLAYED_VIEW, VIEW, VIEW_END, EngagementEvent
from domain.integrity_rules import (
    ActorAssessment,
    Assessment,
    IntegrityRules,
    assess,
)
from domain.log import Delivery, EventConsumer, consume, drain
from domain.ports import Clock, Enforcer
from storage.redis_integrity import (
    END,
    LIKE,
    RAW,
    REPLAY,
    UNLIKE,
    ActorEvent,
    Batch,
    CohortOp,
    GroupChange,
    RedisIntegrity,
)
from storage.redis_integrity import VIEW as VIEW_CODE
from workers.analytics import log_token
from workers.metrics import INTEGRITY_ASSESSMENTS, INTEGRITY_EVENTS, INTEGRITY_FLAGS

log = logging.getLogger(__name__)

INTEGRITY_KINDS = frozenset({REACTION, VIEW, RAW_VIEW, VIEW_END, REPLAYED_VIEW})
# A trust that moves by more than this is reported (or one that crosses a bar).
TRUST_STEP = 0.01
# A device is switching accounts when this many accounts used it within a peak window.
SWITCHING_AT = 2


def _digest(*parts: str) -> str:
    return hashlib.sha1("\t".join(parts).encode(), usedforsecurity=False).hexdigest()


def actor_of(event: EngagementEvent) -> str:
    """The viewer key: a reaction's actor is a bare user id."""
    return f"u:{event.actor}" if event.kind == REACTION else event.actor


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _actor_event(event: EngagementEvent, token: str) -> ActorEvent | None:
    data = event.data
    t = event.occurred_at_ms
    if event.kind == REACTION:
        before, after = data.get("before"), data.get("after")
        if before is None and after is not None:
            return ActorEvent(token, LIKE, t, event.content_id)
        if before is not None and after is None:
            return ActorEvent(token, UNLIKE, t, event.content_id)
        return None  # one reaction for another: neither adds nor removes a like
    if event.kind == VIEW:
        return ActorEvent(token, VIEW_CODE, t, event.content_id, str(data.get("session_id", "")))
    if event.kind == VIEW_END:
        return ActorEvent(token, END, t, event.content_id, str(data.get("session_id", "")))
    if event.kind == REPLAYED_VIEW:
        # One per session and address (its id): the token counts distinct addresses.
        return ActorEvent(token, REPLAY, t, event.content_id, str(data.get("session_id", "")))
    position = data.get("position_ms")
    visible = data.get("visible_fraction")
    watched = _int(data.get("watched_ms"))
    return ActorEvent(
        token,
        RAW,
        t,
        event.content_id,
        str(data.get("session_id", "")),
        watched_ms=watched,
        accepted_ms=_int(data.get("accepted_ms"), watched),
        position_ms=None if position is None else _int(position),
        visible_fraction=float(visible) if isinstance(visible, int | float) else None,
        final=bool(data.get("final", False)),
    )


def batch_of(deliveries: Sequence[Delivery]) -> Batch:
    """The deliveries' events the worker knows, per actor in time order, each event
    once; and per device and address the actors seen there."""
    batch = Batch()
    seen: set[str] = set()

    def take(event: EngagementEvent, token: str) -> None:
        if event.kind not in INTEGRITY_KINDS or event.event_id in seen:
            return
        seen.add(event.event_id)
        actor = actor_of(event)
        item = _actor_event(event, token)
        events = batch.actors.setdefault(actor, [])
        if item is not None:
            events.append(item)
        if event.kind == REPLAYED_VIEW:
            # The address is whoever resent the session, not the actor's own: it
            # joins no device, address or cohort of the actor.
            return
        t = event.occurred_at_ms
        device = event.data.get("device")
        if actor.startswith("d:"):
            device = actor[2:]
        if isinstance(device, str) and device:
            at = batch.devices.setdefault(device, {})
            at[actor] = max(at.get(actor, t), t)
        addr = event.data.get("addr")
        if isinstance(addr, str) and addr:
            at = batch.addresses.setdefault(addr, {})
            at[actor] = max(at.get(actor, t), t)
            if isinstance(device, str) and device:
                batch.device_addresses.setdefault(device, set()).add(addr)
            batch.content_addresses[(actor, event.content_id)] = addr

    for d in deliveries:
        for event in d.events:
            take(event, event.event_id)
        if d.raw_views:
            token = log_token(d)
            for raw in orjson.loads(d.raw_views):
                take(EngagementEvent.from_dict(raw), token)
    for events in batch.actors.values():
        # Stable: log order within one time, except that a count and an end come
        # after the view events of their time (the one that made it count, the last).
        events.sort(key=lambda e: (e.t_ms, e.code in (VIEW_CODE, END)))
    return batch


def _last_trust(raw: str | None) -> float:
    if not raw:
        return 1.0
    try:
        return float(raw)
    except ValueError:
        return 1.0


class IntegrityWorker:
    def __init__(
        self,
        consumer: EventConsumer,
        features: RedisIntegrity,
        rules: IntegrityRules,
        enforcer: Enforcer,
        clock: Clock,
        *,
        batch: int = 200,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self._consumer = consumer
        self._store = features
        self._rules = rules
        self._enforcer = enforcer
        self._clock = clock
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        # Fields learnt after a batch's writes, stored by the next batch's record.
        self._remember: dict[str, dict[str, str]] = {}
        # Actors to assess at the next batch, with notes (a signature crowd turned bad).
        self._carry: dict[str, dict[str, str]] = {}
        self.applied_batches = 0

    @property
    def rules(self) -> IntegrityRules:
        return self._rules

    def _matters(self, change: GroupChange, feature: str, name: str) -> bool:
        """Whether a group's aggregate moved enough to re-assess its actors."""
        before, after = change.before.get(name, 0), change.after.get(name, 0)
        if after <= before:
            return False
        for rule in self._rules.on(feature):
            if before < rule.at <= after or before < rule.full <= after:
                return True
            if rule.at <= after <= rule.full and after - before >= max(1, before // 10):
                return True
        # A gate (a rule's `when`) that opens matters as much as a threshold.
        return any(before < r.when[feature] <= after for r in self._rules.gated_by(feature))

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        """Record the deliveries, assess, tell the enforcer, acknowledge; returns how
        many events were applied (not applied before). With no deliveries it
        stores what the last batch left to store and assesses the carried actors."""
        if not deliveries and not self._remember and not self._carry:
            return 0
        batch = batch_of(deliveries)
        now = self._clock.now()
        now_ms = int(now.timestamp() * 1000)
        remember, self._remember = self._remember, {}
        carry, self._carry = self._carry, {}
        try:
            recorded = await self._store.record(batch, now_ms, remember)
        except Exception:
            # Nothing of it is lost: stored again with the redelivery.
            for actor, fields in remember.items():
                self._remember.setdefault(actor, {}).update(fields)
            self._carry.update(carry)
            raise

        notes: dict[str, dict[str, str]] = {a: dict(f) for a, f in carry.items()}
        assess_now: set[str] = set(batch.actors) | set(carry)

        def note(actors: Sequence[str] | set[str], field: str, value: str) -> None:
            for actor in actors:
                notes.setdefault(actor, {})[field] = value
                assess_now.add(actor)

        cohorts: list[CohortOp] = []
        seen_again: set[str] = set()
        window_ms = self._rules.windows.actor_ms
        # Cohort name -> (note field, feature) for the crowds the read answers.
        cohort_notes: list[tuple[str, str]] = []

        def join(cohort: str, part: str, actor: str, by: str, noted: tuple[str, str]) -> None:
            cohorts.append(CohortOp(cohort, "add", part, actor, now_ms, by=by, window_ms=window_ms))
            cohort_notes.append(noted)

        def leave(cohort: str, actor: str) -> None:
            cohorts.append(CohortOp(cohort, "del", "", actor, now_ms))
            cohort_notes.append(("", ""))

        for device, change in recorded.devices.items():
            after = change.after
            field = f"n:d:{device}"
            value = f"{after['accounts']},{after.get('recent', 0)},{now_ms}"
            note(list(batch.devices[device]), field, value)
            if self._matters(change, "device_accounts", "accounts") or self._matters(
                change, "device_recent_accounts", "recent"
            ):
                note(list(change.members), field, value)
            if after.get("recent", 0) >= SWITCHING_AT:
                # Accounts switching fast on one device: a cohort per address.
                for addr in sorted(batch.device_addresses.get(device, ())):
                    for account in change.accounts:
                        join(
                            f"w\t{addr}",
                            _digest(device)[:16],
                            account,
                            "",
                            (f"n:w:{_digest(addr)}", "switching_devices"),
                        )
        for actor, items in recorded.marks.items():
            anonymous = actor.startswith("d:")
            for mark, text in items:
                # "h": "<tenth of a second it stopped at>\t<content>"
                at, _, content = text.partition("\t") if mark == "h" else ("", "", text)
                where = batch.content_addresses.get((actor, content), "")
                if mark == "u":
                    leave(f"l\t{content}", actor)
                elif mark == "l" and where:
                    join(
                        f"l\t{content}",
                        where,
                        actor,
                        where,
                        (f"n:k:{_digest(content, where)}", "blind_crowd"),
                    )
                elif mark == "x" and anonymous:
                    # Seen again: no longer a one-off, so out of the crowd at once.
                    seen_again.add(actor)
                    leave(f"o\t{content}", actor)
                    note([actor], f"n:o:{_digest(content)}", f"0,0,0,{now_ms}")
                elif mark in ("o", "h") and anonymous and where:
                    part = where if mark == "o" else f"{where}!{at}"
                    join(
                        f"o\t{content}",
                        part,
                        actor,
                        where,
                        (f"n:o:{_digest(content)}", "one_off_hugging"),
                    )
        for addr, change in recorded.addresses.items():
            after = change.after
            field, value = f"n:i:{addr}", f"{after['accounts']},{after['devices']},{now_ms}"
            note(list(batch.addresses[addr]), field, value)
            if self._matters(change, "address_accounts", "accounts") or self._matters(
                change, "address_devices", "devices"
            ):
                note(list(change.members), field, value)

        signatures: dict[str, dict[str, int]] = {}
        for actor, sigs in recorded.signatures.items():
            for sig in sigs:
                signatures.setdefault(sig, {})[actor] = now_ms
        states, crowds, joined = await self._store.read(
            sorted(assess_now), notes, signatures, now_ms, cohorts
        )

        # Crowds learnt by the read: stored with the next batch's record, and used at
        # once for the actors read now; earlier members are assessed at the next batch.
        learnt: dict[str, dict[str, int]] = {}

        def crowd(
            feature: str, field: str, change: GroupChange, actors: Sequence[str] | set[str]
        ) -> None:
            size = change.after["actors"]
            name = "actors"
            one_off = feature == "one_off_hugging"
            if one_off:
                # A consistent pair, the crowd's flagged members and its size, and
                # whether the member itself is flagged ("!").
                name = "flagged"
            flagged = {m[1:] for m in change.members if m[:1] == "!"}

            def value(actor: str) -> str:
                if one_off:
                    own = int(actor in flagged)
                    return f"{change.after['flagged']},{size},{own},{now_ms}"
                return f"{size},{now_ms}"

            for actor in actors:
                if actor in seen_again:
                    continue  # its one-off ended in this very batch
                if not one_off:
                    raised = {feature: size}
                elif actor in flagged:
                    raised = {feature: change.after["flagged"], "one_off_crowd": size}
                else:
                    raised = {}
                top = learnt.setdefault(actor, {})
                if raised and raised[feature] >= top.get(feature, 0):
                    top.update(raised)
                self._remember.setdefault(actor, {})[field] = value(actor)
                if actor not in states:
                    self._carry.setdefault(actor, {})[field] = value(actor)
            if self._matters(change, feature, name):
                for member in (m.lstrip("!") for m in change.members):
                    if member not in actors and member not in seen_again:
                        self._carry.setdefault(member, {})[field] = value(member)

        for sig, change in crowds.items():
            crowd("signature_crowd", f"n:s:{sig}", change, set(signatures[sig]))
        for cop, (field, feature), grown in zip(cohorts, cohort_notes, joined, strict=True):
            if grown is not None:
                crowd(feature, field, grown, {cop.actor})

        changed: list[ActorAssessment] = []
        for actor in sorted(states):
            state = states[actor]
            features = state.features
            known = learnt.get(actor, {})
            raised = {
                name: size
                for name, size in known.items()
                if size > getattr(features, name) and name != "one_off_crowd"
            }
            if "one_off_hugging" in raised:
                raised["one_off_crowd"] = known["one_off_crowd"]
            if raised:
                features = replace(features, **raised)  # type: ignore[arg-type]
            result = assess(features, self._rules)
            INTEGRITY_ASSESSMENTS.labels(tier=self._rules.tier(result.trust)).inc()
            if self._moved(_last_trust(state.last), result):
                changed.append(
                    ActorAssessment(actor, result.trust, result.reasons, result.evidence)
                )
        if changed:
            await self._enforcer.assess(changed, now)
            for a in changed:
                self._remember.setdefault(a.actor, {})["t"] = repr(a.trust)
                verdict = self._rules.tier(a.trust)
                for reason in a.reasons:
                    INTEGRITY_FLAGS.labels(rule=reason, verdict=verdict).inc()
        if deliveries:
            # Only after the enforcer heard: a crash before this redelivers, the
            # tokens make the records a no-op, and the assessments are made again.
            await self._consumer.ack(deliveries)
        self.applied_batches += 1
        INTEGRITY_EVENTS.inc(recorded.applied)
        return recorded.applied

    def _moved(self, last: float, now: Assessment) -> bool:
        if abs(now.trust - last) > TRUST_STEP:
            return True
        return self._rules.tier(now.trust) != self._rules.tier(last)

    async def flush(self) -> None:
        """Store what the last batch left to store and assess carried actors (the
        run loop does it at its next read; run_once at its end)."""
        while self._remember or self._carry:
            await self.process([])

    async def run_once(self) -> int:
        """Drain what is there (own pending first), then flush; return the count."""
        done = await drain(self._consumer, self._batch, self.process)
        await self.flush()
        await self._enforcer.settled()
        return done

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._consumer.ensure_groups()
            await self.run_once()
            await consume(
                self._consumer,
                self.process,
                stop,
                name="integrity",
                batch=self._batch,
                block_ms=self._block_ms,
                claim_idle_ms=self._claim_idle_ms,
            )
        finally:
            self._enforcer.close()
