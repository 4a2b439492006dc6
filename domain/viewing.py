"""The recordView(s) use case: policy decisions for batches of view events.

A batch costs a constant number of round trips whatever its size: one read of
the sessions, one read and one claim of the dedupe marks, one bulk write, one
pipelined append to the event log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.contents import Content
from domain.counters import VIEWS
from domain.deps import Deps
from domain.errors import BadUserInput, Conflict, ContentNotFound, NotFound
from domain.events import VIEW, EngagementEvent, view_event_id
from domain.identity import Actor, require_user
from domain.ports import DedupeMark, StoredSession
from domain.reads import to_ms
from domain.views import (
    PolicyBook,
    ViewDecision,
    ViewEvent,
    ViewPolicy,
    ViewSession,
    ViewStep,
    check_view_event,
    dedupe_key,
    step,
)

log = logging.getLogger(__name__)

MAX_VIEW_BATCH = 500
MAX_ATTEMPTS = 3
RAW_VIEW = "view_event"


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


def _raw_event(ev: ViewEvent, session: ViewSession, now_ms: int) -> EngagementEvent:
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
        },
    )


def counted_event(session: ViewSession, now_ms: int) -> EngagementEvent:
    return EngagementEvent(
        event_id=view_event_id(session.content_id, session.session_id, session.viewer_key),
        kind=VIEW,
        content_id=session.content_id,
        actor=session.viewer_key,
        occurred_at_ms=now_ms,
        deltas={VIEWS: 1},
        unique=session.viewer_key,
        data={"session_id": session.session_id},
    )


async def record_views(
    deps: Deps, actor: Actor | None, inputs: Sequence[Mapping[str, Any]]
) -> list[ViewResult]:
    events = parse_inputs(actor, inputs)
    if not events:
        return []
    views = deps.views
    assert views is not None, "views are not wired"
    contents = await deps.contents.get_many(list(dict.fromkeys(e.content_id for e in events)))
    unknown = sorted({e.content_id for e in events} - set(contents))
    if unknown:
        raise ContentNotFound(f"no content registered with id(s) {', '.join(map(repr, unknown))}")

    now = deps.clock.now()
    now_ms = to_ms(now)
    todo = list(range(len(events)))
    steps: dict[int, ViewStep] = {}
    raw_log: list[EngagementEvent] = []
    counted: list[EngagementEvent] = []
    for _attempt in range(MAX_ATTEMPTS):
        session_ids = list(dict.fromkeys(events[i].session_id for i in todo))
        stored = await views.sessions.get_many(session_ids)
        state: dict[str, ViewSession | None] = {
            sid: (stored[sid].session if sid in stored else None) for sid in session_ids
        }
        # Every (content, key) a step may consult, read in one round trip.
        wanted: set[tuple[str, str]] = set()
        for i in todo:
            ev = events[i]
            key = dedupe_key(
                _policy(views.policies, contents[ev.content_id], state[ev.session_id], ev),
                state[ev.session_id] or ev,
            )
            if key is not None:
                wanted.add((ev.content_id, key))
        marks = await views.marks.get_many(sorted(wanted))
        attempt_steps: dict[int, ViewStep] = {}
        firsts: dict[str, tuple[str, str, ViewPolicy]] = {}
        for i in todo:
            ev = events[i]
            session = state[ev.session_id]
            policy = _policy(views.policies, contents[ev.content_id], session, ev)
            key = dedupe_key(policy, session or ev)
            mark = marks.get((ev.content_id, key)) if key else None
            # A mark this very session set is its own count, not a duplicate.
            last = mark.counted_at if mark and mark.session_id != ev.session_id else None
            s = step(
                policy,
                session,
                ev,
                duration_ms=contents[ev.content_id].duration_ms,
                now=now,
                last_counted_at=last,
            )
            if s.newly_counted and key is not None:
                marks[(ev.content_id, key)] = DedupeMark(now, ev.session_id)
                firsts[ev.session_id] = (ev.content_id, key, policy)
            state[ev.session_id] = s.session
            attempt_steps[i] = s
        lost = await views.marks.claim_many(
            [(cid, key, ev_sid, now, pol.window) for ev_sid, (cid, key, pol) in firsts.items()]
        )
        if lost:
            # Another session won the window between our read and our claim.
            attempt_steps, state = _replay_as_duplicates(
                events, todo, attempt_steps, stored, state, lost, views.policies, contents, now
            )
        writes = []
        attempt_raw: list[EngagementEvent] = []
        attempt_counted: list[EngagementEvent] = []
        for sid in session_ids:
            final = state[sid]
            assert final is not None
            outbox = []
            if final.counted and not (sid in stored and stored[sid].session.counted):
                outbox.append(counted_event(final, now_ms))
            attempt_counted.extend(outbox)
            writes.append((final, stored[sid].version if sid in stored else 0, outbox))
        for i in todo:
            s = attempt_steps[i]
            if not s.decision.reason.endswith("ignored"):
                attempt_raw.append(_raw_event(events[i], s.session, now_ms))
        conflicts = await views.sessions.save_many(writes)
        done = [i for i in todo if events[i].session_id not in conflicts]
        for i in done:
            steps[i] = attempt_steps[i]
        raw_log.extend(e for e in attempt_raw if e.data["session_id"] not in conflicts)
        counted.extend(e for e in attempt_counted if e.data["session_id"] not in conflicts)
        todo = [i for i in todo if events[i].session_id in conflicts]
        if not todo:
            break
    else:
        raise Conflict("view sessions were changed concurrently too often; retry the batch")

    try:
        await deps.log.append([*counted, *raw_log])
    except Exception:
        # Counted views are safe in the sessions' outbox; the relay republishes them.
        log.warning("view event append failed; outbox relay will republish", exc_info=True)
    return [
        ViewResult(events[i].content_id, events[i].session_id, steps[i].decision)
        for i in range(len(events))
    ]


def _prev(stored: Mapping[str, StoredSession], ev: ViewEvent) -> ViewSession | None:
    return stored[ev.session_id].session if ev.session_id in stored else None


def _replay_as_duplicates(
    events: Sequence[ViewEvent],
    todo: Sequence[int],
    steps: dict[int, ViewStep],
    stored: Mapping[str, StoredSession],
    state: dict[str, ViewSession | None],
    lost: set[str],
    book: PolicyBook,
    contents: Mapping[str, Content],
    now: Any,
) -> tuple[dict[int, ViewStep], dict[str, ViewSession | None]]:
    """Recompute the sessions that lost their mark, as if counted by another just now."""
    steps = dict(steps)
    state = dict(state)
    for sid in lost:
        state[sid] = _prev(stored, events[next(i for i in todo if events[i].session_id == sid)])
    for i in todo:
        ev = events[i]
        if ev.session_id not in lost:
            continue
        session = state[ev.session_id]
        policy = _policy(book, contents[ev.content_id], session, ev)
        s = step(
            policy,
            session,
            ev,
            duration_ms=contents[ev.content_id].duration_ms,
            now=now,
            last_counted_at=now,
        )
        state[ev.session_id] = s.session
        steps[i] = s
    return steps, state


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
