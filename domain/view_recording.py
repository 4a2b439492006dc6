"""The recordView(s) use case: policy decisions for batches of view events.

A batch costs a constant number of round trips whatever its size: one read of
the sessions, one read and one claim of the dedupe marks, one bulk write, one
pipelined append to the event log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.clock import to_ms
from domain.contents import Content
from domain.deps import Deps
from domain.errors import BadUserInput, Conflict, ContentNotFound, NotFound
from domain.events import (
    RAW_VIEW,
    REPLAYED_VIEW,
    VIEW,
    VIEW_END,
    EngagementEvent,
    replayed_view_event_id,
    view_end_event_id,
    view_event_id,
)
from domain.identity import Actor, require_user
from domain.integrity import Tier, view_counters
from domain.outages import is_outage
from domain.ports import DedupeMark, StoredSession, ViewPorts
from domain.rate_limits import Action, RateLimiter, subjects
from domain.tier_fallback import tiers_of
from domain.view_policy import ClientPlatform, DedupeScope, PolicyBook, ViewPolicy, ViewSource
from domain.view_sessions import (
    SessionStatus,
    ViewDecision,
    ViewEvent,
    ViewSession,
    ViewStep,
    check_view_event,
    dedupe_key,
    step,
)
from workers.metrics import (
    VIEW_BATCH_SECONDS,
    VIEW_DEDUPED,
    VIEW_EVENT_SECONDS,
    VIEW_EVENTS,
    VIEW_EVENTS_REPEATED,
)

log = logging.getLogger(__name__)

MAX_VIEW_BATCH = 500
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ViewResult:
    content_id: str
    session_id: str
    decision: ViewDecision


def parse_inputs(actor: Actor | None, inputs: Sequence[Mapping[str, Any]]) -> list[ViewEvent]:
    if len(inputs) > MAX_VIEW_BATCH:
        raise BadUserInput(f"inputs has {len(inputs)} events; at most {MAX_VIEW_BATCH}")
    user_id = actor.user_id if actor else None
    events = []
    for i, raw in enumerate(inputs):
        try:
            events.append(check_view_event(user_id=user_id, **{"device_id": None, **raw}))
        except BadUserInput as exc:
            prefix = f"inputs[{i}]: " if len(inputs) > 1 else ""
            raise BadUserInput(prefix + exc.message) from None
    return events


def _policy(
    book: PolicyBook, content: Content, session: ViewSession | None, ev: ViewEvent
) -> ViewPolicy:
    # A session keeps the platform of its first event, and so its policy.
    platform = session.platform if session is not None else ev.platform
    return book.for_content(content.kind, platform)


def _raw_event(
    ev: ViewEvent, session: ViewSession, now_ms: int, accepted_ms: int, addr: str | None
) -> EngagementEvent:
    seq = ev.event_id or f"#{session.events}"
    return EngagementEvent(
        event_id=view_event_id(ev.content_id, ev.session_id, f"{ev.viewer_key}/{seq}"),
        kind=RAW_VIEW,
        content_id=ev.content_id,
        actor=ev.viewer_key,
        occurred_at_ms=now_ms,
        deltas={},
        data={
            "session_id": ev.session_id,
            "watched_ms": ev.watched_ms,
            "position_ms": ev.position_ms,
            "visible_fraction": ev.visible_fraction,
            "source": ev.source,
            "platform": ev.platform,
            "final": ev.final,
            # What this event added to the session's watch time (0: flagged impossible).
            "accepted_ms": accepted_ms,
            # The session's, like its source and platform: a session is one place.
            "region": session.region,
            # Signals for the integrity worker: the request's hashed address and the
            # event's device (domain/identity.py); never the address itself.
            "addr": addr,
            "device": ev.device_id,
        },
    )


def _replayed_event(ev: ViewEvent, session: ViewSession, now_ms: int, addr: str) -> EngagementEvent:
    """Evidence that ``session`` was sent again verbatim from ``addr`` (hashed): a
    client resends what it got no answer to, from its own network; a captured
    session replayed by a script arrives from many (docs/INTEGRITY.md,
    ``replayed_session``). Its actor is the session's viewer, whoever sent it."""
    return EngagementEvent(
        event_id=replayed_view_event_id(ev.content_id, ev.session_id, session.viewer_key, addr),
        kind=REPLAYED_VIEW,
        content_id=ev.content_id,
        actor=session.viewer_key,
        occurred_at_ms=now_ms,
        deltas={},
        data={"session_id": ev.session_id, "addr": addr, "device": session.device_id},
    )


def _value(member: ViewSource | ClientPlatform | None) -> str | None:
    return None if member is None else member.value


def counted_event(
    session: ViewSession, now_ms: int, addr: str | None = None, tier: Tier = Tier.TRUSTED
) -> EngagementEvent:
    """The session's count; ``addr`` is the hashed address of the request that made
    it, ``tier`` its viewer's integrity tier (domain/integrity.py): an excluded
    viewer's count goes to the suspect counter, not to views or unique viewers."""
    return EngagementEvent(
        event_id=view_event_id(session.content_id, session.session_id, session.viewer_key),
        kind=VIEW,
        content_id=session.content_id,
        actor=session.viewer_key,
        occurred_at_ms=now_ms,
        deltas=view_counters(True, tier),
        unique=None if tier is Tier.EXCLUDED else session.viewer_key,
        data={
            "session_id": session.session_id,
            "platform": _value(session.platform),
            "source": _value(session.source),
            "region": session.region,
            "addr": addr,
            "device": session.device_id,
        },
    )


def end_event(session: ViewSession, duration_ms: int | None, reason: str) -> EngagementEvent:
    """The session's end, for analytics: ``reason`` "final" (its final event) or
    "idle" (workers/session_closer.py). Both give it the same id, so a session
    has one end whichever writes it."""
    return EngagementEvent(
        event_id=view_end_event_id(session.content_id, session.session_id, session.viewer_key),
        kind=VIEW_END,
        content_id=session.content_id,
        actor=session.viewer_key,
        occurred_at_ms=to_ms(session.last_event_at),
        deltas={},
        data={
            "session_id": session.session_id,
            "position_ms": session.position_ms,
            "duration_ms": duration_ms,
            "watched_ms": session.watched_ms,
            "platform": _value(session.platform),
            "source": _value(session.source),
            "region": session.region,
            "counted": session.counted,
            "reason": reason,
        },
    )


@dataclass(slots=True)
class _Plan:
    """What one attempt decided for the events still to do (pure)."""

    steps: dict[int, ViewStep]
    sessions: dict[str, ViewSession]
    # Marks to claim for newly counted sessions: (content, key, session, window).
    claims: list[tuple[str, str, str, timedelta]]
    # Indexes of events that changed their session (ignored ones did not).
    applied: set[int]
    # Watch time each applied event added to its session.
    accepted: dict[int, int]
    # For the metrics: events that could not count because a view had counted
    # (index -> dedupe scope), or whose eventId their session had seen.
    deduped: dict[int, str] = field(default_factory=dict)
    repeated: set[int] = field(default_factory=set)
    # Events their session had seen (its eventId), ended or not: sent again verbatim.
    replayed: set[int] = field(default_factory=set)


def _decide(
    events: Sequence[ViewEvent],
    todo: Sequence[int],
    stored: Mapping[str, StoredSession],
    marks: Mapping[tuple[str, str], DedupeMark],
    book: PolicyBook,
    contents: Mapping[str, Content],
    now: datetime,
    lost: Collection[str] = (),
    *,
    region: str,
    limited: Collection[int] = (),
) -> _Plan:
    """Run every event through its session's policy, in order, in memory.

    ``lost`` sessions lost their dedupe claim to another session just now, so
    they are decided as duplicates of a view counted at ``now``.
    """
    state: dict[str, ViewSession | None] = {
        events[i].session_id: stored[events[i].session_id].session
        if events[i].session_id in stored
        else None
        for i in todo
    }
    marks = dict(marks)
    plan = _Plan({}, {}, [], set(), {})
    for i in todo:
        ev = events[i]
        before = state[ev.session_id]
        policy = _policy(book, contents[ev.content_id], before, ev)
        key = dedupe_key(policy, before or ev)
        mark = marks.get((ev.content_id, key)) if key else None
        if ev.session_id in lost:
            last: datetime | None = now
        else:
            # A mark this very session set is its own count, not a duplicate.
            last = mark.counted_at if mark and mark.session_id != ev.session_id else None
        try:
            s = step(
                policy,
                before,
                ev,
                duration_ms=contents[ev.content_id].duration_ms,
                now=now,
                last_counted_at=last,
                region=region,
                limited=i in limited,
            )
        except BadUserInput as exc:
            if before is None:
                raise
            # The event names a session of another content, viewer or device: a
            # client bug (or a probe) on this one event must not cost the rest of
            # the batch, so only this event is refused and the session is untouched.
            refused = ViewDecision(before.counted, policy.rule, f"refused: {exc.message}")
            s = ViewStep(before, refused, False, key)
        _note_dedupe(plan, i, policy, before, ev, s)
        if s.newly_counted and key is not None:
            # Later sessions of the same viewer in this batch are its duplicates.
            marks[(ev.content_id, key)] = DedupeMark(now, ev.session_id)
            plan.claims.append((ev.content_id, key, ev.session_id, policy.window))
        if s.session is not before:
            plan.applied.add(i)
            plan.accepted[i] = s.session.watched_ms - (before.watched_ms if before else 0)
        state[ev.session_id] = s.session
        plan.steps[i] = s
    plan.sessions = {sid: s for sid, s in state.items() if s is not None}
    return plan


def _note_dedupe(
    plan: _Plan,
    i: int,
    policy: ViewPolicy,
    before: ViewSession | None,
    ev: ViewEvent,
    s: ViewStep,
) -> None:
    """Metrics only: why event ``i`` could not count, if a dedupe said so."""
    if before is None:
        if s.session.status is SessionStatus.DUPLICATE:
            plan.deduped[i] = policy.dedupe.value
        return
    if s.session is before:
        if ev.event_id is not None and ev.event_id in before.recent_event_ids:
            # Only from its own viewer: ids alone (refused for another viewer) must
            # not let anyone hold a session's replays against its viewer.
            if (ev.viewer_key, ev.content_id) == (before.viewer_key, before.content_id):
                plan.replayed.add(i)
            if not before.ended:
                plan.repeated.add(i)
        return
    if before.status is SessionStatus.COUNTED:
        plan.deduped[i] = DedupeScope.SESSION.value
    elif s.session.status is SessionStatus.DUPLICATE and before.status is not s.session.status:
        plan.deduped[i] = policy.dedupe.value


def _mark_keys(
    events: Sequence[ViewEvent],
    todo: Sequence[int],
    stored: Mapping[str, StoredSession],
    book: PolicyBook,
    contents: Mapping[str, Content],
) -> list[tuple[str, str]]:
    """Every (content, dedupe key) a step of this batch may consult."""
    wanted: set[tuple[str, str]] = set()
    for i in todo:
        ev = events[i]
        session = _prev(stored, ev)
        key = dedupe_key(_policy(book, contents[ev.content_id], session, ev), session or ev)
        if key is not None:
            wanted.add((ev.content_id, key))
    return sorted(wanted)


async def _marks(
    views: ViewPorts, wanted: Sequence[tuple[str, str]]
) -> Mapping[tuple[str, str], DedupeMark] | None:
    """The dedupe marks, or None when Redis, which keeps them, is down."""
    try:
        return await views.marks.get_many(wanted)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("view dedupe marks unavailable; sessions under a dedupe window wait")
        return None


async def _claim(
    views: ViewPorts, claims: Sequence[tuple[str, str, str, timedelta]], now: datetime
) -> Collection[str] | None:
    """The sessions that lost their claim, or None when Redis is down."""
    try:
        return await views.marks.claim_many(
            [(cid, key, sid, now, window) for cid, key, sid, window in claims]
        )
    except Exception as exc:
        if not is_outage(exc):
            raise
        return None


def _keyed(
    events: Sequence[ViewEvent],
    todo: Sequence[int],
    stored: Mapping[str, StoredSession],
    book: PolicyBook,
    contents: Mapping[str, Content],
) -> set[int]:
    """The events whose session falls under a cross-session dedupe window. Without
    the marks (Redis down) none of them may make its session count: the session keeps
    its watch time and counts at a later event once Redis is back, or not at all:
    an outage can under-count such views, never count one twice."""
    out = set()
    for i in todo:
        ev = events[i]
        session = _prev(stored, ev)
        if dedupe_key(_policy(book, contents[ev.content_id], session, ev), session or ev):
            out.add(i)
    return out


async def record_views(
    deps: Deps,
    actor: Actor | None,
    inputs: Sequence[Mapping[str, Any]],
    region: str = "unknown",
    *,
    addr: str | None = None,
    limiter: RateLimiter | None = None,
) -> list[ViewResult]:
    """Decide a batch of view events; ``region`` is the caller's (a new session keeps it).

    ``addr`` is the caller's hashed address (domain/identity.py), put in the events.
    With a ``limiter``, every event is checked against the view limits of its viewer,
    device and address (one round trip, alongside the sessions' read): an event over
    one is recorded but cannot make its session count (reason "not counted").
    """
    started = time.perf_counter()
    events = parse_inputs(actor, inputs)
    if not events:
        return []
    views = deps.views
    assert views is not None, "views are not wired"
    contents = await deps.contents.get_many(list(dict.fromkeys(e.content_id for e in events)))
    unknown = sorted({e.content_id for e in events} - set(contents))
    if unknown:
        raise ContentNotFound(f"no content registered with id(s) {', '.join(map(repr, unknown))}")
    if deps.admission is not None:
        # Before the clock is read: a view is decided at the time it is let in.
        await deps.admission.admit(len(events))

    now = deps.clock.now()
    now_ms = to_ms(now)
    book = views.policies
    todo = list(range(len(events)))
    decided: dict[int, ViewStep] = {}
    deduped: list[str] = []
    repeated = 0
    to_log: list[EngagementEvent] = []
    (stored, limited), tiers = await asyncio.gather(
        _first_read(views, events, now, addr, limiter), _tiers(deps, events)
    )
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            stored = await views.sessions.get_many(
                list(dict.fromkeys(events[i].session_id for i in todo))
            )
        marks = await _marks(views, _mark_keys(events, todo, stored, book, contents))
        held = (
            limited if marks is not None else limited | _keyed(events, todo, stored, book, contents)
        )
        plan = _decide(
            events, todo, stored, marks or {}, book, contents, now, region=region, limited=held
        )
        lost = await _claim(views, plan.claims, now) if marks is not None else set()
        if lost is None:
            # Redis went away between the read and the claim: decide as without marks.
            marks, held = {}, limited | _keyed(events, todo, stored, book, contents)
            plan = _decide(
                events, todo, stored, marks, book, contents, now, region=region, limited=held
            )
        elif lost:
            # Another session won the window between our read and our claim.
            plan = _decide(
                events,
                todo,
                stored,
                marks or {},
                book,
                contents,
                now,
                lost,
                region=region,
                limited=held,
            )
        writes = []
        for sid, session in plan.sessions.items():
            writes.append(
                (
                    session,
                    stored[sid].version if sid in stored else 0,
                    _outbox(
                        _prev_of(stored, sid),
                        session,
                        contents,
                        now_ms,
                        addr,
                        tiers.get(session.viewer_key, Tier.TRUSTED),
                    ),
                )
            )
        conflicts = await views.sessions.save_many(writes)
        for session, _, outbox in writes:
            if session.session_id not in conflicts:
                to_log.extend(outbox)
        for i in todo:
            if events[i].session_id not in conflicts:
                decided[i] = plan.steps[i]
                if i in plan.deduped:
                    deduped.append(plan.deduped[i])
                repeated += i in plan.repeated
                if i in plan.applied:
                    to_log.append(
                        _raw_event(events[i], plan.steps[i].session, now_ms, plan.accepted[i], addr)
                    )
                elif i in plan.replayed and addr is not None:
                    # In the batch's one append: no round trip of its own.
                    to_log.append(_replayed_event(events[i], plan.steps[i].session, now_ms, addr))
        # Sessions changed by a concurrent request: read them again and redo.
        todo = [i for i in todo if events[i].session_id in conflicts]
        if not todo:
            break
    else:
        raise Conflict("view sessions were changed concurrently too often; retry the batch")

    try:
        await deps.log.append(to_log)
    except Exception:
        # Counted views are safe in the sessions' outbox; the relay republishes them.
        log.warning("view event append failed; outbox relay will republish", exc_info=True)
    results = [
        ViewResult(events[i].content_id, events[i].session_id, decided[i].decision)
        for i in range(len(events))
    ]
    _observe(started, len(events), deduped, repeated)
    return results


def _observe(started: float, n: int, deduped: Sequence[str], repeated: int) -> None:
    elapsed = time.perf_counter() - started
    VIEW_BATCH_SECONDS.observe(elapsed)
    VIEW_EVENT_SECONDS.observe(elapsed / n)
    VIEW_EVENTS.inc(n)
    for scope in deduped:
        VIEW_DEDUPED[scope].inc()
    if repeated:
        VIEW_EVENTS_REPEATED.inc(repeated)


async def _tiers(deps: Deps, events: Sequence[ViewEvent]) -> Mapping[str, Tier]:
    """The integrity tier of each viewer of the batch (absent: trusted)."""
    return await tiers_of(deps, list(dict.fromkeys(e.viewer_key for e in events)))


async def _first_read(
    views: ViewPorts,
    events: Sequence[ViewEvent],
    now: datetime,
    addr: str | None,
    limiter: RateLimiter | None,
) -> tuple[Mapping[str, StoredSession], set[int]]:
    """The sessions of the batch and, at the same time, the batch's abuse limits:
    the indexes of the events over one."""
    read = views.sessions.get_many(list(dict.fromkeys(e.session_id for e in events)))
    if limiter is None or not limiter.enabled:
        return await read, set()
    requests = [
        subjects(
            Action.VIEW,
            user_id=ev.viewer_key[2:] if ev.viewer_key.startswith("u:") else None,
            device_id=ev.device_id,
            addr=addr,
        )
        for ev in events
    ]
    stored, verdicts = await asyncio.gather(read, limiter.check(now, requests))
    return stored, {i for i, v in enumerate(verdicts) if not v.allowed}


def _outbox(
    before: ViewSession | None,
    session: ViewSession,
    contents: Mapping[str, Content],
    now_ms: int,
    addr: str | None = None,
    tier: Tier = Tier.TRUSTED,
) -> list[EngagementEvent]:
    """The events a session's write carries in its outbox: its count and its end,
    each in the write that made it so (durable with the state that says so)."""
    out = []
    if session.counted and not (before is not None and before.counted):
        out.append(counted_event(session, now_ms, addr, tier))
    if session.ended and not (before is not None and before.ended):
        out.append(end_event(session, contents[session.content_id].duration_ms, "final"))
    return out


def _prev(stored: Mapping[str, StoredSession], ev: ViewEvent) -> ViewSession | None:
    return _prev_of(stored, ev.session_id)


def _prev_of(stored: Mapping[str, StoredSession], session_id: str) -> ViewSession | None:
    return stored[session_id].session if session_id in stored else None


async def view_session(deps: Deps, actor: Actor | None, session_id: str) -> ViewSession:
    """A session, to its own viewer or an admin; NotFound for anyone else (no leak)."""
    user = require_user(actor)
    assert deps.views is not None
    found = (await deps.views.sessions.get_many([session_id])).get(session_id)
    if found is None:
        raise NotFound(f"no view session {session_id!r}")
    if found.session.viewer_key != f"u:{user.user_id}" and "admin" not in user.roles:
        raise NotFound(f"no view session {session_id!r}")
    return found.session
