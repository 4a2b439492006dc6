"""View sessions: the state machine that decides, event by event, whether a session
counts as a view under its policy (domain.view_policy).

Pure domain code: no I/O, no clock. The caller reads the policy file
(``DEFAULT_POLICY_FILE`` next to this module, or a path from the settings) and
hands its text to :func:`parse_policy_book`; every function that needs the time
takes ``now`` (a tz-aware datetime, UTC) explicitly.

Flow for one view event (the storage/API layer)::

    event = check_view_event(...raw input...)           # BadUserInput on hard input errors
    session = load(event.session_id)                      # None for the first event
    policy = book.for_content(kind, session.platform if session else event.platform)
    key = dedupe_key(policy, session or event)           # None for the "session" scope
    last = load_mark(content_id, key) if key else None    # kept for policy.window
    s = step(policy, session, event, duration_ms=content.duration_ms, now=now,
             last_counted_at=last)
    save(s.session)
    if s.newly_counted: record mark (content_id, s.dedupe_key) = now; emit "view counted"

Semantics (decisions the issue left open):

* Policies. One per :class:`ContentKind`, optionally specialised per
  :class:`ClientPlatform`; the rule is named ``"KIND.default"`` or
  ``"KIND.PLATFORM"``. The session keeps the platform of its first event, so the
  caller should pick the policy with ``session.platform`` once a session exists.
* Threshold. ``count_on_open`` policies count at any accepted event. Otherwise a
  session counts when its *qualifying* watch time reaches
  ``policy.threshold_ms(duration_ms)``: ``min_watch_ms``, or, when
  ``short_content_fraction`` is set and the content is shorter than
  ``min_watch_ms``, ``ceil(duration_ms * short_content_fraction)``. With
  ``min_visible_fraction`` set, only events whose ``visibleFraction`` is at least
  that fraction add qualifying time (an event without ``visibleFraction`` does
  not); otherwise all watch time qualifies.
* Sessions. Watch time adds up, position keeps its maximum. A session counts at
  most once, at the event where it first passes its rule. Source and platform
  are those of the first event, and so is the region (``step(region=...)``, the
  request's). Events of a session must carry the session's
  content id, viewer and (when both are given) device id, else BadUserInput.
* Dedupe (rolling window). When a session passes its rule, it is a duplicate if
  a view of this content was counted under the same :func:`dedupe_key` less than
  ``policy.window`` before ``now`` (``now - last_counted_at < window``; exactly
  one window later counts again; a ``last_counted_at`` in the future is inside).
  Scopes: ``viewer`` - ``"viewer:u:<user>"`` or ``"viewer:d:<device>"`` when
  anonymous; ``device`` - ``"device:d:<device>"`` even when signed in (a signed-in
  event without deviceId falls back to ``"device:u:<user>"``); ``session`` -
  no key, every session may count once. "Every N hours" is the viewer scope
  with ``window_hours = N``. Keys do not contain the content id: the storage
  keeps marks per (content, key). A session that passed its rule as a duplicate
  never counts later, even if the window expires while it goes on; later events
  keep saying duplicate. If two sessions race, the caller that loses the atomic
  mark write decides that session again with ``last_counted_at=now``.
* Ignored events (the session is returned unchanged, so replays are idempotent):
  events after a ``final`` event or after the session was closed for being
  idle (:func:`end_idle`; "session ended: event ignored") and events
  whose ``eventId`` is among the session's last ``RECENT_EVENT_IDS`` (64) ids.
  Their decision still reports whether the session counted.
* Impossible input (negative watchedMs/positionMs; positionMs past durationMs +
  ``position_tolerance_ms``; accumulated watch longer than the wall time since
  the session started + ``clock_slack_ms``) is not applied, adds a flag to the
  session (``FLAG_*`` codes) and the decision says why. The first event is
  credited fully: the session is taken to have started at
  ``now - first watchedMs``. A session that sent impossible input before it
  counted is rejected for good (status ``"rejected"``, never counts); one that
  had already counted stays counted and is only flagged. A ``final`` event that
  is impossible still ends the session. ``visibleFraction`` outside 0..1 is not
  "impossible" but a hard input error (BadUserInput from
  :func:`check_visible_fraction`/:func:`check_view_event`).
* Reasons: measured seconds with one decimal ("watched 12.0 s"), thresholds in
  whole seconds when whole ("< 30 s", else "< 1.5 s"), fractions with two
  decimals ("visible 0.30 < 0.50"), windows in hours ("within 24 h").
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from domain.contents import check_id
from domain.errors import BadUserInput
from domain.view_policy import (
    ClientPlatform,
    DedupeScope,
    ViewPolicy,
    ViewSource,
)

RECENT_EVENT_IDS = 64
# The reason of an event over an abuse limit (step(limited=True)): generic on purpose.
NOT_COUNTED = "not counted"


class SessionStatus(enum.StrEnum):
    WATCHING = "watching"  # has not passed its rule yet
    COUNTED = "counted"  # passed its rule and counted
    DUPLICATE = "duplicate"  # passed its rule inside the dedupe window: never counts
    REJECTED = "rejected"  # sent impossible input before counting: never counts


FLAG_NEGATIVE_WATCH = "negative_watched_ms"
FLAG_NEGATIVE_POSITION = "negative_position_ms"
FLAG_POSITION_PAST_DURATION = "position_past_duration"
FLAG_WATCH_EXCEEDS_WALL_TIME = "watch_exceeds_wall_time"
# A session keeps each flag once: it has at most this many.
MAX_FLAGS = len(
    {
        FLAG_NEGATIVE_WATCH,
        FLAG_NEGATIVE_POSITION,
        FLAG_POSITION_PAST_DURATION,
        FLAG_WATCH_EXCEEDS_WALL_TIME,
    }
)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ViewEvent:
    content_id: str
    session_id: str
    viewer_key: str  # "u:<user_id>" or "d:<device_id>"
    device_id: str | None
    event_id: str | None
    watched_ms: int
    position_ms: int | None = None
    visible_fraction: float | None = None
    source: ViewSource | None = None
    platform: ClientPlatform | None = None
    final: bool = False


def viewer_key(user_id: str | None, device_id: str | None) -> str:
    """``"u:<user_id>"`` when signed in, else ``"d:<device_id>"``; BadUserInput without either."""
    if user_id is not None:
        return "u:" + check_id(user_id, "userId")
    if device_id is None:
        raise BadUserInput("deviceId is required when not signed in")
    return "d:" + check_id(device_id, "deviceId")


def check_visible_fraction(value: float | None) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise BadUserInput(f"visibleFraction must be between 0 and 1, got {value!r}")
    return float(value)


def _check_int(value: Any, name: str, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadUserInput(f"{name} must be an integer, got {value!r}")
    return value


def check_view_event(
    *,
    content_id: str,
    session_id: str,
    user_id: str | None,
    device_id: str | None,
    event_id: str | None = None,
    watched_ms: int,
    position_ms: int | None = None,
    visible_fraction: float | None = None,
    source: ViewSource | str | None = None,
    platform: ClientPlatform | str | None = None,
    final: bool = False,
) -> ViewEvent:
    """Validate raw input into a :class:`ViewEvent`; BadUserInput on hard input errors.

    ``user_id`` is the authenticated user (None when anonymous). Negative
    watchedMs/positionMs are *not* rejected here: they are impossible input
    that :func:`step` records on the session.
    """
    check_id(content_id, "contentId")
    check_id(session_id, "sessionId")
    if device_id is not None:
        check_id(device_id, "deviceId")
    if event_id is not None:
        check_id(event_id, "eventId")
    key = viewer_key(user_id, device_id)
    watched = _check_int(watched_ms, "watchedMs", optional=False)
    assert watched is not None
    position = _check_int(position_ms, "positionMs", optional=True)
    fraction = check_visible_fraction(visible_fraction)
    try:
        src = None if source is None else ViewSource(source)
    except ValueError:
        raise BadUserInput(f"unknown view source {source!r}") from None
    try:
        plat = None if platform is None else ClientPlatform(platform)
    except ValueError:
        raise BadUserInput(f"unknown client platform {platform!r}") from None
    if not isinstance(final, bool):
        raise BadUserInput(f"final must be a boolean, got {final!r}")
    return ViewEvent(
        content_id=content_id,
        session_id=session_id,
        viewer_key=key,
        device_id=device_id,
        event_id=event_id,
        watched_ms=watched,
        position_ms=position,
        visible_fraction=fraction,
        source=src,
        platform=plat,
        final=final,
    )


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class ViewSession:
    session_id: str
    content_id: str
    viewer_key: str
    device_id: str | None
    started_at: datetime  # now - first watchedMs at the first event
    last_event_at: datetime
    watched_ms: int  # all accepted watch time
    position_ms: int | None  # furthest position reported
    source: ViewSource | None
    platform: ClientPlatform | None
    ended: bool
    counted: bool
    counted_at: datetime | None
    rule: str  # rule of the last decision
    reason: str  # reason of the last decision
    flags: tuple[str, ...]  # FLAG_* codes of impossible input, each once
    recent_event_ids: tuple[str, ...]  # last RECENT_EVENT_IDS event ids, oldest first
    events: int  # events applied (ignored ones excluded, impossible ones included)
    status: SessionStatus = SessionStatus.WATCHING
    qualified_ms: int = 0  # watch time that counts toward the rule (visible enough)
    rejected_reason: str | None = None  # why the session was rejected
    # The viewer's region (ISO 3166-1 alpha-2 or "unknown") when the session opened.
    region: str = "unknown"


@dataclass(frozen=True, slots=True)
class ViewDecision:
    counted: bool
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class ViewStep:
    session: ViewSession
    decision: ViewDecision
    newly_counted: bool
    dedupe_key: str | None


def dedupe_key(policy: ViewPolicy, event_or_session: ViewEvent | ViewSession) -> str | None:
    """Whose views of a content are deduplicated together; None for the session scope."""
    if policy.dedupe is DedupeScope.SESSION:
        return None
    if policy.dedupe is DedupeScope.DEVICE:
        device = event_or_session.device_id
        return "device:" + (f"d:{device}" if device is not None else event_or_session.viewer_key)
    return "viewer:" + event_or_session.viewer_key


def _secs(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def _threshold_secs(ms: int) -> str:
    return f"{ms // 1000} s" if ms % 1000 == 0 else f"{ms / 1000:.1f} s"


def _hours(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours == round(hours, 2) else f"{hours:.2f} h"


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _impossible(
    policy: ViewPolicy,
    session: ViewSession | None,
    event: ViewEvent,
    duration_ms: int | None,
    now: datetime,
) -> list[tuple[str, str]]:
    """(flag, reason) for each impossible thing in this event."""
    found: list[tuple[str, str]] = []
    if event.watched_ms < 0:
        found.append((FLAG_NEGATIVE_WATCH, f"negative watchedMs {event.watched_ms}"))
    if event.position_ms is not None and event.position_ms < 0:
        found.append((FLAG_NEGATIVE_POSITION, f"negative positionMs {event.position_ms}"))
    if (
        event.position_ms is not None
        and duration_ms is not None
        and event.position_ms > duration_ms + policy.position_tolerance_ms
    ):
        found.append(
            (
                FLAG_POSITION_PAST_DURATION,
                f"position {_secs(event.position_ms)} past duration {_secs(duration_ms)}",
            )
        )
    if session is not None and event.watched_ms > 0:
        total = session.watched_ms + event.watched_ms
        wall_ms = (now - session.started_at) / timedelta(milliseconds=1)
        if total > wall_ms + policy.clock_slack_ms:
            found.append(
                (
                    FLAG_WATCH_EXCEEDS_WALL_TIME,
                    f"watched {_secs(total)} in {_secs(max(wall_ms, 0))} of wall time "
                    f"(+{_secs(policy.clock_slack_ms)} slack)",
                )
            )
    return found


def _rule_reason(
    policy: ViewPolicy,
    watched_ms: int,
    qualified_ms: int,
    event: ViewEvent,
    duration_ms: int | None,
) -> tuple[bool, str]:
    """Whether the session passes the policy now, and why (not) in words."""
    if policy.count_on_open:
        return True, "opened"
    threshold = policy.threshold_ms(duration_ms)
    if threshold != policy.min_watch_ms and duration_ms is not None:
        pct = f"{policy.short_content_fraction or 0:.0%}"
        need = f"{_threshold_secs(threshold)} ({pct} of {_secs(duration_ms)})"
    else:
        need = _threshold_secs(threshold)
    passed = qualified_ms >= threshold
    op = ">=" if passed else "<"
    if policy.min_visible_fraction is None:
        return passed, f"watched {_secs(watched_ms)} {op} {need}"
    minimum = f"{policy.min_visible_fraction:.2f}"
    if not passed:
        if event.visible_fraction is None:
            return False, f"visibleFraction missing (need >= {minimum})"
        if event.visible_fraction < policy.min_visible_fraction:
            return False, f"visible {event.visible_fraction:.2f} < {minimum}"
    return passed, f"visible >= {minimum} for {_secs(qualified_ms)} {op} {need}"


def _remember(ids: tuple[str, ...], event_id: str | None) -> tuple[str, ...]:
    if event_id is None:
        return ids
    return (*ids, event_id)[-RECENT_EVENT_IDS:]


def step(
    policy: ViewPolicy,
    session: ViewSession | None,
    event: ViewEvent,
    *,
    duration_ms: int | None,
    now: datetime,
    last_counted_at: datetime | None,
    region: str = "unknown",
    limited: bool = False,
) -> ViewStep:
    """Apply one view event to its session (None for the first event); see the module doc.

    ``region`` is the viewer's when the event arrived; only a first event's is kept.
    ``limited``: the event was over an abuse limit (domain/rate_limits.py). It is
    applied (watch time and all) but cannot make the session count; its decision says
    only :data:`NOT_COUNTED`, never which limit. A session that counted before stays
    counted.
    """
    _check_now(now)
    if session is not None:
        _check_belongs(session, event)
        key = dedupe_key(policy, session)
        if session.ended:
            return _ignored(policy, session, key, "session ended: event ignored")
        if event.event_id is not None and event.event_id in session.recent_event_ids:
            return _ignored(policy, session, key, f"repeated event {event.event_id!r}: ignored")
    else:
        key = dedupe_key(policy, event)

    problems = _impossible(policy, session, event, duration_ms, now)
    if session is None:
        session = _first_session(policy, event, now, region)
    changes = _every_event_changes(policy, session, event, now)
    suffix = "; session ended" if event.final else ""
    if problems:
        return _flagged(policy, session, changes, problems, suffix, key)
    watched_ms, qualified_ms = _add_watch_time(policy, session, event, changes)
    return _decide(
        policy,
        session,
        event,
        changes,
        suffix,
        key,
        watched_ms=watched_ms,
        qualified_ms=qualified_ms,
        duration_ms=duration_ms,
        now=now,
        last_counted_at=last_counted_at,
        limited=limited,
    )


def end_idle(session: ViewSession) -> ViewSession:
    """The session ended without a final event (idle too long): from now on it
    ignores events as after a final one, so its end is said once."""
    return _evolve(session, {"ended": True})


def _check_belongs(session: ViewSession, event: ViewEvent) -> None:
    """An event names its session; the session must be that content's, that
    viewer's and (when both say) that device's."""
    if event.session_id != session.session_id:
        raise BadUserInput(
            f"event for session {event.session_id!r} applied to {session.session_id!r}"
        )
    if event.content_id != session.content_id:
        raise BadUserInput(
            f"session {session.session_id!r} is for content {session.content_id!r}, "
            f"not {event.content_id!r}"
        )
    if event.viewer_key != session.viewer_key:
        raise BadUserInput(f"session {session.session_id!r} belongs to another viewer")
    if (
        event.device_id is not None
        and session.device_id is not None
        and event.device_id != session.device_id
    ):
        raise BadUserInput(f"session {session.session_id!r} belongs to another device")


def _first_session(policy: ViewPolicy, event: ViewEvent, now: datetime, region: str) -> ViewSession:
    """The session a first event opens, credited in full: it is taken to have
    started ``watchedMs`` before now. The event's own changes come on top."""
    first_ms = max(event.watched_ms, 0)
    return ViewSession(
        session_id=event.session_id,
        content_id=event.content_id,
        viewer_key=event.viewer_key,
        device_id=event.device_id,
        started_at=now - timedelta(milliseconds=first_ms),
        last_event_at=now,
        watched_ms=0,
        position_ms=None,
        source=event.source,
        platform=event.platform,
        ended=False,
        counted=False,
        counted_at=None,
        rule=policy.rule,
        reason="",
        flags=(),
        recent_event_ids=(),
        events=0,
        region=region,
    )


def _every_event_changes(
    policy: ViewPolicy, session: ViewSession, event: ViewEvent, now: datetime
) -> dict[str, Any]:
    # The new state is collected as changes and built once (_evolve): building a
    # session per step was most of the policy's cost in a batch.
    return {
        "device_id": session.device_id if session.device_id is not None else event.device_id,
        "last_event_at": max(session.last_event_at, now),
        "recent_event_ids": _remember(session.recent_event_ids, event.event_id),
        "events": session.events + 1,
        "ended": event.final,
        "rule": policy.rule,
    }


def _flagged(
    policy: ViewPolicy,
    session: ViewSession,
    changes: dict[str, Any],
    problems: list[tuple[str, str]],
    suffix: str,
    key: str | None,
) -> ViewStep:
    """Impossible input: not applied, flagged; a session that had not counted
    yet is rejected for good."""
    flags = list(session.flags)
    flags.extend(f for f, _ in problems if f not in flags)
    what = "impossible input: " + "; ".join(r for _, r in problems)
    changes["flags"] = tuple(flags)
    status = session.status
    if status is SessionStatus.WATCHING:
        status = changes["status"] = SessionStatus.REJECTED
        changes["rejected_reason"] = what
    if status is SessionStatus.COUNTED:
        what += " (already counted in this session)"
    new = _evolve(session, changes, reason=what + suffix)
    return ViewStep(new, ViewDecision(new.counted, policy.rule, new.reason), False, key)


def _add_watch_time(
    policy: ViewPolicy, session: ViewSession, event: ViewEvent, changes: dict[str, Any]
) -> tuple[int, int]:
    """Watch time adds up (and qualifying time, when the event is visible
    enough), the position keeps its maximum. Returns (watched, qualified)."""
    qualifies = policy.min_visible_fraction is None or (
        event.visible_fraction is not None and event.visible_fraction >= policy.min_visible_fraction
    )
    positions = [p for p in (session.position_ms, event.position_ms) if p is not None]
    watched_ms = changes["watched_ms"] = session.watched_ms + event.watched_ms
    qualified_ms = changes["qualified_ms"] = session.qualified_ms + (
        event.watched_ms if qualifies else 0
    )
    changes["position_ms"] = max(positions) if positions else None
    return watched_ms, qualified_ms


def _decide(
    policy: ViewPolicy,
    session: ViewSession,
    event: ViewEvent,
    changes: dict[str, Any],
    suffix: str,
    key: str | None,
    *,
    watched_ms: int,
    qualified_ms: int,
    duration_ms: int | None,
    now: datetime,
    last_counted_at: datetime | None,
    limited: bool = False,
) -> ViewStep:
    """The decision for a possible event: a session that has not passed its rule
    yet counts when it passes now, unless a view was counted under its dedupe
    key within the window; the others keep what they were."""
    status = session.status
    if limited and status is SessionStatus.WATCHING:
        # Over an abuse limit: the watch time is kept, the session may still count at
        # a later event, and the reason says nothing about the rule or the limit.
        new = _evolve(session, changes, reason=NOT_COUNTED + suffix)
        return ViewStep(new, ViewDecision(False, policy.rule, new.reason), False, key)
    if status is SessionStatus.COUNTED:
        reason = "already counted in this session"
    elif status is SessionStatus.DUPLICATE:
        # Said again rather than copied from session.reason, which a later
        # impossible event overwrites with its own reason.
        reason = _duplicate_reason(policy)
    elif status is SessionStatus.REJECTED:
        reason = f"session rejected: {session.rejected_reason}"
    else:
        passed, reason = _rule_reason(policy, watched_ms, qualified_ms, event, duration_ms)
        if passed:
            if _inside_window(policy, last_counted_at, now):
                new = _evolve(
                    session,
                    changes,
                    status=SessionStatus.DUPLICATE,
                    reason=_duplicate_reason(policy) + suffix,
                )
                return ViewStep(new, ViewDecision(False, policy.rule, new.reason), False, key)
            new = _evolve(
                session,
                changes,
                status=SessionStatus.COUNTED,
                counted=True,
                counted_at=now,
                reason=reason + suffix,
            )
            return ViewStep(new, ViewDecision(True, policy.rule, new.reason), True, key)
    new = _evolve(session, changes, reason=reason + suffix)
    return ViewStep(new, ViewDecision(new.counted, policy.rule, new.reason), False, key)


_SESSION_FIELDS = tuple(f.name for f in fields(ViewSession))


def _evolve(session: ViewSession, changes: Mapping[str, Any], **more: Any) -> ViewSession:
    """``dataclasses.replace`` for a session, without its per-call field introspection."""
    changes = {**changes, **more}
    return ViewSession(
        *[changes[n] if n in changes else getattr(session, n) for n in _SESSION_FIELDS]
    )


def _duplicate_reason(policy: ViewPolicy) -> str:
    who = "device" if policy.dedupe is DedupeScope.DEVICE else "viewer"
    return f"duplicate: already counted for this {who} within {_hours(policy.window)}"


def _inside_window(policy: ViewPolicy, last_counted_at: datetime | None, now: datetime) -> bool:
    if policy.dedupe is DedupeScope.SESSION or last_counted_at is None:
        return False
    return now - last_counted_at < policy.window


def _ignored(policy: ViewPolicy, session: ViewSession, key: str | None, why: str) -> ViewStep:
    return ViewStep(session, ViewDecision(session.counted, policy.rule, why), False, key)
