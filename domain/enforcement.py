"""Count integrity, enforced: an actor's trust becomes a tier, and the tier decides
how their likes and views count, retroactively and reversibly.

A change of tier is made in three steps, in this order:

1. the actor store (MongoDB, the truth) and its audit entry;
2. the tier mirror the write paths read (Redis): from here on, a new like or
   counted view of the actor is written in the new tier;
3. every document of the actor written in another tier is re-tiered, each with a
   version-guarded update that puts the integrity event of the change (its delta,
   domain/integrity.py) in the document's outbox; the events then go to the log
   like a like's. A write racing with step 3 either lands first (and is re-tiered
   by it) or reads the new tier (it retries after the version moved).

Nothing is deleted, so a later verdict restores the counts exactly, and a recount
of the documents, grouped by tier, agrees with the counters at every step.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from domain.clock import to_ms
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.events import INTEGRITY, EngagementEvent, integrity_view_event_id, reaction_event_id
from domain.identity import Actor, require_role
from domain.integrity import (
    Tier,
    Verdict,
    difference,
    reaction_counters,
    tier_of,
    view_counters,
)
from domain.integrity_rules import ActorAssessment
from domain.ports import (
    ActorRecord,
    AuditEntry,
    IntegrityPorts,
    ReactionRecord,
    Retiering,
    TieredSession,
)

log = logging.getLogger(__name__)

PAGE = 200
# A document whose version keeps moving (its actor is liking and unliking it
# while being re-tiered) is retried this often before the pass gives up on it;
# the next assessment of the actor takes it up again.
MAX_ATTEMPTS = 8
# A trust change smaller than this, with no change of tier, is not audited.
AUDIT_STEP = 0.01
MAX_NOTE = 500
MAX_ACTOR = 200
WORKER = "integrity"
MAX_CASES = 100
_ENTRY_ID = re.compile(r"\d{14}-\d{9}-[0-9a-f]{8}")


class Enforcement:
    """The integrity worker's enforcer (domain.ports.Enforcer) over this module.

    The second sweep of a re-tiered actor (``_sweep_again``) waits ``settle_s``
    for writes that read the old tier to land. It runs beside the worker, not in
    its read: awaited there, every read that moved a tier held the worker for
    ``settle_s``, so a load that keeps re-tiering actors (a farm at work) held
    the whole integrity view back by seconds per read. A crash before the sweep
    loses it as it did before: the redelivery finds the tier already moved.
    """

    def __init__(self, deps: Deps, ports: IntegrityPorts) -> None:
        self._deps = deps
        self._ports = ports
        self._sweeps: set[asyncio.Task[int]] = set()

    async def assess(self, assessments: Sequence[ActorAssessment], now: datetime) -> None:
        _, changed = await first_pass(self._deps, self._ports, assessments, now)
        if changed:
            task = asyncio.create_task(self._sweep(list(changed), now))
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)

    async def _sweep(self, actors: list[str], now: datetime) -> int:
        try:
            return await _sweep_again(self._deps, self._ports, actors, now)
        except Exception:
            log.exception("second re-tiering sweep failed", extra={"actors": len(actors)})
            return 0

    async def settled(self) -> None:
        """Wait for the second sweeps started so far (run_once, tests)."""
        while self._sweeps:
            await asyncio.gather(*self._sweeps)

    def close(self) -> None:
        """Cancel the sweeps still waiting (the worker is stopping)."""
        for task in self._sweeps:
            task.cancel()


def unknown_actor(actor: str) -> ActorRecord:
    """An actor nothing was ever held against."""
    return ActorRecord(actor, 1.0, Tier.TRUSTED, Verdict.AUTO.value, (), {}, None)


def check_actor(actor: str) -> str:
    if not (actor.startswith("u:") or actor.startswith("d:")) or not 2 < len(actor) <= MAX_ACTOR:
        raise BadUserInput(
            "actor must be a viewer key: 'u:<user id>' for a signed-in user or "
            f"'d:<device id>' for an anonymous device, at most {MAX_ACTOR} characters"
        )
    return actor


_SEQUENCE = itertools.count()


def _entry_id(at: datetime) -> str:
    # Sorts by time as a string; within one millisecond, by this process's order,
    # then apart from other processes' entries by a random part.
    return f"{to_ms(at):014d}-{next(_SEQUENCE) % 10**9:09d}-{uuid.uuid4().hex[:8]}"


async def assess(
    deps: Deps, ports: IntegrityPorts, assessments: Sequence[ActorAssessment], now: datetime
) -> int:
    """Apply the detection's scores; returns how many documents were re-tiered."""
    moved, changed = await first_pass(deps, ports, assessments, now)
    return moved + await _sweep_again(deps, ports, list(changed), now)


async def first_pass(
    deps: Deps, ports: IntegrityPorts, assessments: Sequence[ActorAssessment], now: datetime
) -> tuple[int, dict[str, Tier]]:
    """``assess`` without its second sweep: the documents re-tiered, and the actors
    whose tier changed (to sweep again after ``ports.settle_s``)."""
    if not assessments:
        return 0, {}
    stored = await ports.actors.get_many([a.actor for a in assessments])
    moved = 0
    changed: dict[str, Tier] = {}
    for a in assessments:
        old = stored.get(a.actor) or unknown_actor(a.actor)
        trust = min(1.0, max(0.0, a.trust))
        tier = tier_of(trust, Verdict(old.verdict), ports.bars)
        if tier is old.tier and abs(trust - old.trust) < AUDIT_STEP:
            continue
        record = replace(
            old, trust=trust, tier=tier, reasons=a.reasons, evidence=a.evidence, updated_at=now
        )
        audit = AuditEntry(
            _entry_id(now),
            a.actor,
            ",".join(a.reasons) or "recovered",
            a.evidence,
            old.trust,
            trust,
            old.tier,
            tier,
            old.verdict,
            None,
            WORKER,
            now,
        )
        moved += await _change(deps, ports, old, record, audit, now)
        if record.tier is not old.tier:
            changed[a.actor] = record.tier
    return moved, changed


async def set_verdict(
    deps: Deps,
    ports: IntegrityPorts,
    admin: Actor | None,
    actor: str,
    verdict: Verdict,
    note: str | None,
) -> ActorRecord:
    """An admin's BOT or HUMAN overrides the score; AUTO returns to it."""
    who = require_role(admin, "admin")
    check_actor(actor)
    if note is not None and len(note) > MAX_NOTE:
        raise BadUserInput(f"note is at most {MAX_NOTE} characters")
    now = deps.clock.now()
    old = (await ports.actors.get_many([actor])).get(actor) or unknown_actor(actor)
    tier = tier_of(old.trust, verdict, ports.bars)
    record = replace(old, verdict=verdict.value, tier=tier, note=note, updated_at=now)
    audit = AuditEntry(
        _entry_id(now),
        actor,
        "verdict",
        {"verdict": verdict.value},
        old.trust,
        old.trust,
        old.tier,
        tier,
        verdict.value,
        note,
        who.user_id,
        now,
    )
    await _change(deps, ports, old, record, audit, now)
    if tier is not old.tier:
        await _sweep_again(deps, ports, [actor], now)
    return record


async def actor_risk(ports: IntegrityPorts, admin: Actor | None, actor: str) -> ActorRecord:
    require_role(admin, "admin")
    check_actor(actor)
    return (await ports.actors.get_many([actor])).get(actor) or unknown_actor(actor)


async def cases(
    ports: IntegrityPorts, admin: Actor | None, first: int, after: str | None
) -> tuple[list[AuditEntry], bool]:
    """The audit log, newest first, after the entry id ``after``; and whether
    there is more."""
    require_role(admin, "admin")
    if not 1 <= first <= MAX_CASES:
        raise BadUserInput(f"first must be between 1 and {MAX_CASES}; got {first}")
    if after is not None and not _ENTRY_ID.fullmatch(after):
        raise BadUserInput("after is not a cursor of integrityCases")
    rows = await ports.actors.cases(first + 1, after)
    return rows[:first], len(rows) > first


async def _change(
    deps: Deps,
    ports: IntegrityPorts,
    old: ActorRecord,
    record: ActorRecord,
    audit: AuditEntry,
    now: datetime,
) -> int:
    await ports.actors.save(record, audit)
    if record.tier is old.tier:
        return 0
    await ports.mirror.set_many({record.actor: record.tier})
    return await retier(deps, ports.documents, record.actor, record.tier, now)


async def _sweep_again(
    deps: Deps, ports: IntegrityPorts, actors: Sequence[str], now: datetime
) -> int:
    """A second pass, once writes that read the old tier before the mirror changed
    have landed: a new document (a first like, a new counted session) has no
    version for the first pass to race with, so one written in the old tier just
    after that pass listed the actor's documents is moved here. Into the tier each
    actor has after the wait: another assessment or verdict may have moved it."""
    if not actors:
        return 0
    await asyncio.sleep(ports.settle_s)
    stored = await ports.actors.get_many(list(actors))
    moved = 0
    for actor in actors:
        if actor in stored:
            moved += await retier(deps, ports.documents, actor, stored[actor].tier, now)
    return moved


async def retier(deps: Deps, docs: Retiering, actor: str, tier: Tier, now: datetime) -> int:
    """Every document of ``actor`` into ``tier``; the events go to the log (or stay
    in the outboxes for the relay). Returns how many documents moved."""
    events: list[EngagementEvent] = []
    if actor.startswith("u:"):
        events += await _retier_reactions(docs, actor[2:], tier, now)
    events += await _retier_sessions(docs, actor, tier, now)
    for i in range(0, len(events), PAGE):
        try:
            await deps.log.append(events[i : i + PAGE])
        except Exception:
            log.warning("event log append failed; outbox relay will republish", exc_info=True)
    return len(events)


def reaction_retier_event(
    record: ReactionRecord, tier: Tier, now: datetime
) -> EngagementEvent | None:
    """The event of moving one reaction document into ``tier`` (None: it counts
    the same in both, e.g. a removed reaction)."""
    deltas = difference(
        reaction_counters(record.reaction, tier), reaction_counters(record.reaction, record.tier)
    )
    if not deltas:
        return None
    user = record.user_id
    return EngagementEvent(
        event_id=reaction_event_id(record.content_id, user, record.version + 1),
        kind=INTEGRITY,
        content_id=record.content_id,
        actor=user,
        occurred_at_ms=to_ms(now),
        deltas=deltas,
        data={
            "subject": "reaction",
            "actor": f"u:{user}",
            "tier_before": record.tier.value,
            "tier_after": tier.value,
            "reaction": record.reaction.value if record.reaction else None,
            # When what moves was counted: trending takes it back from that time.
            "original_at_ms": to_ms(record.updated_at),
        },
    )


def session_retier_event(session: TieredSession, tier: Tier, now: datetime) -> EngagementEvent:
    return EngagementEvent(
        event_id=integrity_view_event_id(
            session.content_id, session.session_id, session.viewer_key, session.version + 1
        ),
        kind=INTEGRITY,
        content_id=session.content_id,
        actor=session.viewer_key,
        occurred_at_ms=to_ms(now),
        deltas=difference(view_counters(True, tier), view_counters(True, session.tier)),
        data={
            "subject": "view",
            "actor": session.viewer_key,
            "session_id": session.session_id,
            "tier_before": session.tier.value,
            "tier_after": tier.value,
            "original_at_ms": to_ms(session.counted_at or now),
        },
    )


async def _retier_reactions(
    docs: Retiering, user_id: str, tier: Tier, now: datetime
) -> list[EngagementEvent]:
    events: list[EngagementEvent] = []
    after: str | None = None
    while page := await docs.reactions_of(user_id, after, PAGE):
        after = page[-1].content_id
        for record in page:
            for _ in range(MAX_ATTEMPTS):
                if record.tier is tier:
                    break
                event = reaction_retier_event(record, tier, now)
                if await docs.retier_reaction(record, tier, event):
                    if event is not None:
                        events.append(event)
                    break
                fresh = await docs.reaction(record.content_id, user_id)
                if fresh is None:
                    break
                record = fresh
            else:
                log.warning("reaction kept changing while re-tiered", extra={"user": user_id})
        if len(page) < PAGE:
            break
    return events


async def _retier_sessions(
    docs: Retiering, viewer_key: str, tier: Tier, now: datetime
) -> list[EngagementEvent]:
    events: list[EngagementEvent] = []
    after: str | None = None
    for _ in range(MAX_ATTEMPTS):
        conflicts = 0
        after = None
        while page := await docs.counted_sessions_of(viewer_key, after, PAGE):
            after = page[-1].session_id
            moves = [
                (session, session_retier_event(session, tier, now))
                for session in page
                if session.tier is not tier
            ]
            changed = await docs.retier_sessions(moves, tier)
            events += [event for session, event in moves if session.session_id not in changed]
            conflicts += len(changed)
            if len(page) < PAGE:
                break
        if not conflicts:
            return events
    log.warning("view sessions kept changing while re-tiered", extra={"viewer": viewer_key})
    return events


async def restore_mirror(ports: IntegrityPorts) -> int:
    """Write the tier mirror back from the actor store (after a Redis loss); returns
    how many actors are not trusted. Only those have an entry."""
    n = 0
    after: str | None = None
    while page := await ports.actors.not_trusted(after, PAGE):
        await ports.mirror.set_many({r.actor: r.tier for r in page})
        n += len(page)
        after = page[-1].actor
        if len(page) < PAGE:
            break
    return n
