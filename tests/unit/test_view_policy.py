"""The view policy engine: rules per kind, sessions, dedupe, impossible input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest

import domain.view_policy as view_policy
from domain.contents import ContentKind
from domain.errors import BadUserInput
from domain.view_policy import (
    DEFAULT_POLICY_FILE,
    ClientPlatform,
    DedupeScope,
    ViewPolicy,
    ViewSource,
    parse_policy_book,
)
from domain.view_sessions import (
    FLAG_NEGATIVE_POSITION,
    FLAG_NEGATIVE_WATCH,
    FLAG_POSITION_PAST_DURATION,
    FLAG_WATCH_EXCEEDS_WALL_TIME,
    RECENT_EVENT_IDS,
    SessionStatus,
    ViewEvent,
    ViewSession,
    ViewStep,
    check_view_event,
    check_visible_fraction,
    dedupe_key,
    end_idle,
    step,
    viewer_key,
)

BOOK = parse_policy_book(
    Path(view_policy.__file__).with_name(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
)
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def policy(kind: ContentKind, platform: ClientPlatform | None = None) -> ViewPolicy:
    return BOOK.for_content(kind, platform)


def event(**kw: Any) -> ViewEvent:
    raw: dict[str, Any] = {
        "content_id": "c1",
        "session_id": "s1",
        "user_id": "alice",
        "device_id": "ph1",
        "watched_ms": 0,
    }
    raw.update(kw)
    return check_view_event(**raw)


def play(
    pol: ViewPolicy,
    events: Sequence[tuple[float, Mapping[str, Any]]],
    *,
    duration_ms: int | None = None,
    last_counted_at: datetime | None = None,
    session: ViewSession | None = None,
) -> list[ViewStep]:
    """Feed events at T0 + seconds; returns every step."""
    steps = []
    for seconds, kw in events:
        s = step(
            pol,
            session,
            event(**kw),
            duration_ms=duration_ms,
            now=T0 + timedelta(seconds=seconds),
            last_counted_at=last_counted_at,
        )
        session = s.session
        steps.append(s)
    return steps


def one(pol: ViewPolicy, **kw: Any) -> ViewStep:
    duration = kw.pop("duration_ms", None)
    last = kw.pop("last_counted_at", None)
    return play(pol, [(0, kw)], duration_ms=duration, last_counted_at=last)[0]


# ------------------------------------------------------------------ every kind's rule

KIND_CASES = [
    # kind, event fields, counted, reason
    (ContentKind.VIDEO, {"watched_ms": 29_999}, False, "watched 30.0 s < 30 s"),
    (ContentKind.VIDEO, {"watched_ms": 12_000}, False, "watched 12.0 s < 30 s"),
    (ContentKind.VIDEO, {"watched_ms": 30_000}, True, "watched 30.0 s >= 30 s"),
    (ContentKind.VIDEO, {"watched_ms": 31_200}, True, "watched 31.2 s >= 30 s"),
    (ContentKind.SHORT, {"watched_ms": 1_999}, False, "watched 2.0 s < 2 s"),
    (ContentKind.SHORT, {"watched_ms": 2_000}, True, "watched 2.0 s >= 2 s"),
    (ContentKind.SHORT, {"watched_ms": 2_500}, True, "watched 2.5 s >= 2 s"),
    (
        ContentKind.POST,
        {"watched_ms": 999, "visible_fraction": 0.5},
        False,
        "visible >= 0.50 for 1.0 s < 1 s",
    ),
    (
        ContentKind.POST,
        {"watched_ms": 1_000, "visible_fraction": 0.5},
        True,
        "visible >= 0.50 for 1.0 s >= 1 s",
    ),
    (
        ContentKind.POST,
        {"watched_ms": 5_000, "visible_fraction": 1.0},
        True,
        "visible >= 0.50 for 5.0 s >= 1 s",
    ),
    (
        ContentKind.POST,
        {"watched_ms": 5_000, "visible_fraction": 0.3},
        False,
        "visible 0.30 < 0.50",
    ),
    (
        ContentKind.POST,
        {"watched_ms": 5_000, "visible_fraction": 0.49},
        False,
        "visible 0.49 < 0.50",
    ),
    (
        ContentKind.POST,
        {"watched_ms": 5_000},
        False,
        "visibleFraction missing (need >= 0.50)",
    ),
    (ContentKind.STORY, {"watched_ms": 0}, True, "opened"),
    (ContentKind.STORY, {"watched_ms": 100}, True, "opened"),
    (ContentKind.LIVE, {"watched_ms": 9_999}, False, "watched 10.0 s < 10 s"),
    (ContentKind.LIVE, {"watched_ms": 10_000}, True, "watched 10.0 s >= 10 s"),
    (ContentKind.LIVE, {"watched_ms": 60_000}, True, "watched 60.0 s >= 10 s"),
    (
        ContentKind.PRODUCT,
        {"watched_ms": 900, "visible_fraction": 0.9},
        False,
        "visible >= 0.50 for 0.9 s < 1 s",
    ),
    (
        ContentKind.PRODUCT,
        {"watched_ms": 1_000, "visible_fraction": 0.5},
        True,
        "visible >= 0.50 for 1.0 s >= 1 s",
    ),
    (
        ContentKind.PRODUCT,
        {"watched_ms": 3_000, "visible_fraction": 0.2},
        False,
        "visible 0.20 < 0.50",
    ),
    (ContentKind.TRACK, {"watched_ms": 29_000}, False, "watched 29.0 s < 30 s"),
    (ContentKind.TRACK, {"watched_ms": 30_000}, True, "watched 30.0 s >= 30 s"),
    (ContentKind.TRACK, {"watched_ms": 45_000}, True, "watched 45.0 s >= 30 s"),
    (ContentKind.EPISODE, {"watched_ms": 59_900}, False, "watched 59.9 s < 60 s"),
    (ContentKind.EPISODE, {"watched_ms": 60_000}, True, "watched 60.0 s >= 60 s"),
    (ContentKind.EPISODE, {"watched_ms": 61_000}, True, "watched 61.0 s >= 60 s"),
]


def _kind_id(case: tuple[Any, ...]) -> str:
    kind, kw, counted, _ = case
    extra = f"-vis{kw['visible_fraction']}" if "visible_fraction" in kw else ""
    return f"{kind}-{kw['watched_ms']}ms{extra}-{'counts' if counted else 'not'}"


@pytest.mark.parametrize(
    ("kind", "fields", "counted", "reason"), KIND_CASES, ids=[_kind_id(c) for c in KIND_CASES]
)
def test_default_rule_per_kind(kind, fields, counted, reason):
    s = one(policy(kind), **fields)
    assert s.decision.counted is counted
    assert s.newly_counted is counted
    assert s.decision.rule == f"{kind}.default"
    assert s.decision.reason == reason
    assert s.session.counted is counted
    assert s.session.counted_at == (T0 if counted else None)
    assert s.session.status is (SessionStatus.COUNTED if counted else SessionStatus.WATCHING)


@pytest.mark.parametrize(
    ("duration_ms", "watched_ms", "counted", "reason"),
    [
        (10_000, 8_999, False, "watched 9.0 s < 9 s (90% of 10.0 s)"),
        (10_000, 9_000, True, "watched 9.0 s >= 9 s (90% of 10.0 s)"),
        (10_000, 9_500, True, "watched 9.5 s >= 9 s (90% of 10.0 s)"),
        (15_000, 13_499, False, "watched 13.5 s < 13.5 s (90% of 15.0 s)"),
        (15_000, 13_500, True, "watched 13.5 s >= 13.5 s (90% of 15.0 s)"),
        (30_000, 29_000, False, "watched 29.0 s < 30 s"),
        (600_000, 30_000, True, "watched 30.0 s >= 30 s"),
        (None, 29_000, False, "watched 29.0 s < 30 s"),
    ],
    ids=[
        "10s-below",
        "10s-at",
        "10s-above",
        "15s-below",
        "15s-at",
        "30s-video-uses-30s",
        "long-video",
        "unknown-duration",
    ],
)
def test_short_video_counts_after_90_percent(duration_ms, watched_ms, counted, reason):
    s = one(policy(ContentKind.VIDEO), watched_ms=watched_ms, duration_ms=duration_ms)
    assert (s.decision.counted, s.decision.reason) == (counted, reason)


# ------------------------------------------------------------------ platform specialisation

TV_BOOK = parse_policy_book(
    Path(view_policy.__file__).with_name(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
    + '\n[VIDEO.platforms.TV]\nmin_watch_ms = 60_000\ndedupe = "device"\nwindow_hours = 6\n'
)


@pytest.mark.parametrize(
    ("platform", "watched_ms", "counted", "rule", "reason"),
    [
        (ClientPlatform.TV, 59_000, False, "VIDEO.TV", "watched 59.0 s < 60 s"),
        (ClientPlatform.TV, 60_000, True, "VIDEO.TV", "watched 60.0 s >= 60 s"),
        (ClientPlatform.IOS, 30_000, True, "VIDEO.default", "watched 30.0 s >= 30 s"),
        (None, 30_000, True, "VIDEO.default", "watched 30.0 s >= 30 s"),
    ],
    ids=["tv-below", "tv-at", "ios-default", "no-platform-default"],
)
def test_platform_specialisation(platform, watched_ms, counted, rule, reason):
    pol = TV_BOOK.for_content(ContentKind.VIDEO, platform)
    s = one(pol, watched_ms=watched_ms, platform=platform)
    assert (s.decision.counted, s.decision.rule, s.decision.reason) == (counted, rule, reason)
    assert s.session.platform == platform


def test_tv_specialisation_dedupes_per_device_for_six_hours():
    pol = TV_BOOK.for_content(ContentKind.VIDEO, ClientPlatform.TV)
    ev = event(watched_ms=60_000, platform="TV", device_id="tv1")
    assert dedupe_key(pol, ev) == "device:d:tv1"
    inside = one(pol, watched_ms=60_000, device_id="tv1", last_counted_at=T0 - timedelta(hours=5))
    outside = one(pol, watched_ms=60_000, device_id="tv1", last_counted_at=T0 - timedelta(hours=6))
    assert inside.decision.reason == "duplicate: already counted for this device within 6 h"
    assert outside.newly_counted


# ------------------------------------------------------------------ dedupe scopes and windows


def _with(kind: ContentKind, **changes: Any) -> ViewPolicy:
    return replace(policy(kind), **changes)


@pytest.mark.parametrize(
    ("scope", "user_id", "device_id", "key"),
    [
        (DedupeScope.VIEWER, "alice", "ph1", "viewer:u:alice"),
        (DedupeScope.VIEWER, None, "ph1", "viewer:d:ph1"),
        (DedupeScope.DEVICE, "alice", "ph1", "device:d:ph1"),
        (DedupeScope.DEVICE, None, "ph1", "device:d:ph1"),
        (DedupeScope.DEVICE, "alice", None, "device:u:alice"),
        (DedupeScope.SESSION, "alice", "ph1", None),
        (DedupeScope.SESSION, None, "ph1", None),
    ],
    ids=[
        "viewer-signed-in",
        "viewer-anonymous",
        "device-signed-in",
        "device-anonymous",
        "device-signed-in-no-device",
        "session-signed-in",
        "session-anonymous",
    ],
)
def test_dedupe_key(scope, user_id, device_id, key):
    pol = _with(ContentKind.VIDEO, dedupe=scope)
    ev = event(user_id=user_id, device_id=device_id, watched_ms=30_000)
    assert dedupe_key(pol, ev) == key
    s = one(pol, user_id=user_id, device_id=device_id, watched_ms=30_000)
    assert s.dedupe_key == key
    assert dedupe_key(pol, s.session) == key


@pytest.mark.parametrize(
    ("scope", "window_h", "ago", "counted", "reason"),
    [
        (DedupeScope.VIEWER, 24, None, True, "watched 30.0 s >= 30 s"),
        (
            DedupeScope.VIEWER,
            24,
            timedelta(hours=1),
            False,
            "duplicate: already counted for this viewer within 24 h",
        ),
        (
            DedupeScope.VIEWER,
            24,
            timedelta(hours=24) - timedelta(milliseconds=1),
            False,
            "duplicate: already counted for this viewer within 24 h",
        ),
        (DedupeScope.VIEWER, 24, timedelta(hours=24), True, "watched 30.0 s >= 30 s"),
        (DedupeScope.VIEWER, 24, timedelta(days=3), True, "watched 30.0 s >= 30 s"),
        (
            DedupeScope.VIEWER,
            24,
            -timedelta(minutes=5),
            False,
            "duplicate: already counted for this viewer within 24 h",
        ),
        (
            DedupeScope.VIEWER,
            6,
            timedelta(hours=5, minutes=59),
            False,
            "duplicate: already counted for this viewer within 6 h",
        ),
        (DedupeScope.VIEWER, 6, timedelta(hours=6, minutes=1), True, "watched 30.0 s >= 30 s"),
        (
            DedupeScope.VIEWER,
            0.5,
            timedelta(minutes=29),
            False,
            "duplicate: already counted for this viewer within 0.5 h",
        ),
        (DedupeScope.VIEWER, 0.5, timedelta(minutes=30), True, "watched 30.0 s >= 30 s"),
        (
            DedupeScope.DEVICE,
            24,
            timedelta(hours=2),
            False,
            "duplicate: already counted for this device within 24 h",
        ),
        (DedupeScope.DEVICE, 24, timedelta(hours=25), True, "watched 30.0 s >= 30 s"),
        (DedupeScope.SESSION, 24, timedelta(seconds=1), True, "watched 30.0 s >= 30 s"),
        (DedupeScope.SESSION, 24, None, True, "watched 30.0 s >= 30 s"),
    ],
    ids=[
        "viewer-never-counted",
        "viewer-1h-ago",
        "viewer-just-inside-24h",
        "viewer-exactly-24h",
        "viewer-3d-ago",
        "viewer-mark-in-future",
        "every-6h-inside",
        "every-6h-outside",
        "every-30min-inside",
        "every-30min-outside",
        "device-inside",
        "device-outside",
        "session-ignores-marks",
        "session-no-mark",
    ],
)
def test_dedupe_window(scope, window_h, ago, counted, reason):
    pol = _with(ContentKind.VIDEO, dedupe=scope, window=timedelta(hours=window_h))
    last = None if ago is None else T0 - ago
    s = one(pol, watched_ms=30_000, last_counted_at=last)
    assert (s.decision.counted, s.newly_counted, s.decision.reason) == (counted, counted, reason)
    assert s.session.status is (SessionStatus.COUNTED if counted else SessionStatus.DUPLICATE)


def test_duplicate_session_keeps_saying_duplicate_without_counting():
    pol = policy(ContentKind.VIDEO)
    steps = play(
        pol,
        [
            (10, {"watched_ms": 10_000, "event_id": "e1"}),
            (31, {"watched_ms": 21_000, "event_id": "e2"}),
            (50, {"watched_ms": 19_000, "event_id": "e3"}),
            (60, {"watched_ms": 10_000, "event_id": "e4", "final": True}),
        ],
        last_counted_at=T0 - timedelta(hours=1),
    )
    assert [s.decision.counted for s in steps] == [False] * 4
    assert not any(s.newly_counted for s in steps)
    dup = "duplicate: already counted for this viewer within 24 h"
    assert [s.decision.reason for s in steps[1:]] == [dup, dup, dup + "; session ended"]
    assert steps[-1].session.status is SessionStatus.DUPLICATE
    assert steps[-1].session.watched_ms == 60_000


def test_a_mark_inside_the_window_does_not_matter_before_the_rule_passes():
    s = one(policy(ContentKind.VIDEO), watched_ms=5_000, last_counted_at=T0)
    assert s.decision.reason == "watched 5.0 s < 30 s"
    assert s.session.status is SessionStatus.WATCHING


def test_a_session_that_lost_the_mark_race_is_a_duplicate_from_then_on():
    # The use case decides a session that lost its dedupe claim again, with the
    # winner's mark at the same instant.
    pol = policy(ContentKind.VIDEO)
    lost = one(pol, watched_ms=30_000, last_counted_at=T0)
    assert not lost.newly_counted and not lost.decision.counted
    assert lost.session.status is SessionStatus.DUPLICATE
    assert lost.session.counted_at is None
    assert lost.decision.reason == "duplicate: already counted for this viewer within 24 h"
    later = step(
        pol,
        lost.session,
        event(watched_ms=1_000),
        duration_ms=None,
        now=T0 + timedelta(seconds=1),
        last_counted_at=None,
    )
    assert not later.decision.counted and later.decision.reason == lost.decision.reason


# ------------------------------------------------------------------ sessions


def test_session_accumulates_watch_time_and_keeps_the_furthest_position():
    pol = policy(ContentKind.VIDEO)
    steps = play(
        pol,
        [
            (10, {"watched_ms": 10_000, "position_ms": 10_000, "event_id": "e1", "source": "FEED"}),
            (20, {"watched_ms": 10_000, "position_ms": 20_000, "event_id": "e2"}),
            (25, {"watched_ms": 5_000, "position_ms": 5_000, "event_id": "e3"}),  # seek back
            (30, {"watched_ms": 5_000, "position_ms": 10_000, "event_id": "e4"}),
            (40, {"watched_ms": 10_000, "position_ms": 20_000, "event_id": "e5"}),
        ],
        duration_ms=120_000,
    )
    assert [s.decision.counted for s in steps] == [False, False, False, True, True]
    assert [s.newly_counted for s in steps] == [False, False, False, True, False]
    assert [s.decision.reason for s in steps] == [
        "watched 10.0 s < 30 s",
        "watched 20.0 s < 30 s",
        "watched 25.0 s < 30 s",
        "watched 30.0 s >= 30 s",
        "already counted in this session",
    ]
    last = steps[-1].session
    assert (last.watched_ms, last.position_ms, last.events) == (40_000, 20_000, 5)
    assert last.started_at == T0  # first event at T0+10 s credited with 10 s
    assert last.last_event_at == T0 + timedelta(seconds=40)
    assert last.counted_at == T0 + timedelta(seconds=30)
    assert last.source is ViewSource.FEED
    assert last.recent_event_ids == ("e1", "e2", "e3", "e4", "e5")
    assert last.flags == ()


def test_session_counts_once_even_when_the_window_has_passed_since():
    pol = policy(ContentKind.SHORT)
    steps = play(
        pol,
        [(2, {"watched_ms": 2_000}), (4, {"watched_ms": 2_000}), (6, {"watched_ms": 2_000})],
    )
    assert [s.newly_counted for s in steps] == [True, False, False]
    assert all(s.decision.counted for s in steps)
    assert steps[-1].session.counted_at == T0 + timedelta(seconds=2)


def test_visible_time_only_accumulates_while_visible_enough():
    pol = policy(ContentKind.POST)
    steps = play(
        pol,
        [
            (1, {"watched_ms": 800, "visible_fraction": 0.9}),
            (3, {"watched_ms": 2_000, "visible_fraction": 0.3}),
            (3.1, {"watched_ms": 100, "visible_fraction": 0.6}),
            (3.3, {"watched_ms": 200, "visible_fraction": 0.5}),
        ],
    )
    assert [s.decision.reason for s in steps] == [
        "visible >= 0.50 for 0.8 s < 1 s",
        "visible 0.30 < 0.50",
        "visible >= 0.50 for 0.9 s < 1 s",
        "visible >= 0.50 for 1.1 s >= 1 s",
    ]
    assert [s.newly_counted for s in steps] == [False, False, False, True]
    assert steps[-1].session.watched_ms == 3_100
    assert steps[-1].session.qualified_ms == 1_100


def test_events_after_final_are_ignored():
    pol = policy(ContentKind.VIDEO)
    steps = play(
        pol,
        [
            (10, {"watched_ms": 10_000, "event_id": "e1"}),
            (12, {"watched_ms": 2_000, "event_id": "e2", "final": True}),
            (60, {"watched_ms": 40_000, "event_id": "e3"}),
            (61, {"watched_ms": 0, "event_id": "e4", "final": True}),
        ],
    )
    assert steps[1].decision.reason == "watched 12.0 s < 30 s; session ended"
    assert steps[1].session.ended
    for s in steps[2:]:
        assert s.decision.reason == "session ended: event ignored"
        assert not s.decision.counted and not s.newly_counted
        assert s.session is steps[1].session  # unchanged
    assert steps[-1].session.watched_ms == 12_000


def test_events_after_final_of_a_counted_session_still_say_counted():
    pol = policy(ContentKind.SHORT)
    steps = play(pol, [(3, {"watched_ms": 3_000, "final": True}), (4, {"watched_ms": 1_000})])
    assert steps[0].newly_counted
    assert steps[0].decision.reason == "watched 3.0 s >= 2 s; session ended"
    assert steps[1].decision.counted and not steps[1].newly_counted
    assert steps[1].decision.reason == "session ended: event ignored"


def test_repeated_event_id_is_ignored():
    pol = policy(ContentKind.VIDEO)
    steps = play(
        pol,
        [
            (20, {"watched_ms": 20_000, "event_id": "e1"}),
            (21, {"watched_ms": 20_000, "event_id": "e1"}),  # replay: would reach 40 s
            (30, {"watched_ms": 10_000, "event_id": "e2"}),
            (31, {"watched_ms": 10_000, "event_id": "e2", "final": True}),
        ],
    )
    assert steps[1].decision.reason == "repeated event 'e1': ignored"
    assert steps[1].session is steps[0].session
    assert steps[2].newly_counted
    assert steps[3].decision == replace(steps[2].decision, reason="repeated event 'e2': ignored")
    assert steps[3].decision.counted and not steps[3].newly_counted
    assert not steps[3].session.ended
    assert steps[3].session.watched_ms == 30_000


def test_events_without_event_id_are_never_deduplicated():
    steps = play(
        policy(ContentKind.VIDEO), [(10, {"watched_ms": 10_000}), (20, {"watched_ms": 10_000})]
    )
    assert steps[-1].session.watched_ms == 20_000
    assert steps[-1].session.recent_event_ids == ()


def test_recent_event_ids_are_bounded():
    pol = policy(ContentKind.LIVE)
    events = [
        (i + 1, {"watched_ms": 1_000, "event_id": f"e{i}"}) for i in range(RECENT_EVENT_IDS + 6)
    ]
    steps = play(pol, events)
    ids = steps[-1].session.recent_event_ids
    assert len(ids) == RECENT_EVENT_IDS
    assert ids[0] == "e6" and ids[-1] == f"e{RECENT_EVENT_IDS + 5}"
    # an id that fell out of the list is accepted again (the bound is the trade-off)
    again = step(
        pol,
        steps[-1].session,
        event(watched_ms=0, event_id="e0"),
        duration_ms=None,
        now=T0 + timedelta(seconds=100),
        last_counted_at=None,
    )
    assert again.session.events == steps[-1].session.events + 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"content_id": "c2"}, "is for content 'c1', not 'c2'"),
        ({"user_id": "bob"}, "belongs to another viewer"),
        ({"user_id": None}, "belongs to another viewer"),
        ({"device_id": "ph2"}, "belongs to another device"),
        ({"session_id": "s2"}, "event for session 's2' applied to 's1'"),
    ],
    ids=["other-content", "other-user", "signed-out", "other-device", "other-session"],
)
def test_events_must_match_their_session(changes, message):
    pol = policy(ContentKind.VIDEO)
    first = one(pol, watched_ms=1_000)
    with pytest.raises(BadUserInput, match=message):
        step(
            pol,
            first.session,
            event(watched_ms=1_000, **changes),
            duration_ms=None,
            now=T0 + timedelta(seconds=1),
            last_counted_at=None,
        )


def test_signed_in_session_may_omit_device_id_later():
    pol = policy(ContentKind.VIDEO)
    steps = play(pol, [(1, {"watched_ms": 1_000}), (2, {"watched_ms": 1_000, "device_id": None})])
    assert steps[-1].session.device_id == "ph1"


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        step(
            policy(ContentKind.VIDEO),
            None,
            event(watched_ms=1),
            duration_ms=None,
            now=datetime(2026, 3, 1, 12),
            last_counted_at=None,
        )


# ------------------------------------------------------------------ impossible input

IMPOSSIBLE = [
    (
        "watch-longer-than-wall-time",
        [(10, {"watched_ms": 10_000}), (15, {"watched_ms": 20_000})],
        None,
        FLAG_WATCH_EXCEEDS_WALL_TIME,
        "impossible input: watched 30.0 s in 15.0 s of wall time (+5.0 s slack)",
    ),
    (
        "watch-beyond-slack",
        [(10, {"watched_ms": 10_000}), (15, {"watched_ms": 10_001})],
        None,
        FLAG_WATCH_EXCEEDS_WALL_TIME,
        "impossible input: watched 20.0 s in 15.0 s of wall time (+5.0 s slack)",
    ),
    (
        "negative-watch",
        [(1, {"watched_ms": 1_000}), (2, {"watched_ms": -500})],
        None,
        FLAG_NEGATIVE_WATCH,
        "impossible input: negative watchedMs -500",
    ),
    (
        "negative-watch-first-event",
        [(1, {"watched_ms": -1})],
        None,
        FLAG_NEGATIVE_WATCH,
        "impossible input: negative watchedMs -1",
    ),
    (
        "negative-position",
        [(1, {"watched_ms": 1_000, "position_ms": -3})],
        None,
        FLAG_NEGATIVE_POSITION,
        "impossible input: negative positionMs -3",
    ),
    (
        "position-past-duration",
        [(1, {"watched_ms": 1_000, "position_ms": 62_001})],
        60_000,
        FLAG_POSITION_PAST_DURATION,
        "impossible input: position 62.0 s past duration 60.0 s",
    ),
]


@pytest.mark.parametrize(
    ("events", "duration_ms", "flag", "reason"),
    [c[1:] for c in IMPOSSIBLE],
    ids=[c[0] for c in IMPOSSIBLE],
)
def test_impossible_input_is_not_counted_and_flags_the_session(events, duration_ms, flag, reason):
    pol = policy(ContentKind.VIDEO)
    steps = play(pol, events, duration_ms=duration_ms)
    bad = steps[-1]
    assert not bad.decision.counted and not bad.newly_counted
    assert bad.decision.reason == reason
    assert bad.session.flags == (flag,)
    assert bad.session.status is SessionStatus.REJECTED
    assert bad.session.events == len(events)  # kept, not dropped
    # the impossible event's numbers are not applied
    assert bad.session.watched_ms == sum(max(kw["watched_ms"], 0) for _, kw in events[:-1])
    # ...and the session never counts afterwards, however long it goes on
    later = step(
        pol,
        bad.session,
        event(watched_ms=40_000),
        duration_ms=duration_ms,
        now=T0 + timedelta(minutes=10),
        last_counted_at=None,
    )
    assert not later.decision.counted and not later.newly_counted
    assert later.decision.reason == f"session rejected: {reason}"
    assert later.session.flags == (flag,)


@pytest.mark.parametrize(
    ("second_ms", "ok"),
    [(15_000, True), (15_001, False), (0, True)],
    ids=["within-slack", "just-past-slack", "no-watch"],
)
def test_wall_time_slack_boundary(second_ms, ok):
    # first event credited fully: 10 s at T0+10 s means the session started at T0;
    # at T0+20 s at most 20 s + 5 s slack may have been watched
    steps = play(
        policy(ContentKind.TRACK),
        [(10, {"watched_ms": 10_000}), (20, {"watched_ms": second_ms})],
    )
    assert (FLAG_WATCH_EXCEEDS_WALL_TIME not in steps[-1].session.flags) is ok


def test_first_event_is_credited_fully():
    s = one(policy(ContentKind.EPISODE), watched_ms=3_600_000)
    assert s.newly_counted
    assert s.session.started_at == T0 - timedelta(hours=1)


def test_position_within_tolerance_is_fine():
    s = one(policy(ContentKind.VIDEO), watched_ms=30_000, position_ms=61_999, duration_ms=60_000)
    assert s.newly_counted and s.session.flags == ()


def test_slack_is_configurable():
    pol = _with(ContentKind.VIDEO, clock_slack_ms=0)
    steps = play(pol, [(10, {"watched_ms": 10_000}), (15, {"watched_ms": 5_001})])
    assert steps[-1].session.flags == (FLAG_WATCH_EXCEEDS_WALL_TIME,)


def test_impossible_input_after_counting_keeps_the_count_and_flags():
    pol = policy(ContentKind.SHORT)
    steps = play(
        pol,
        [
            (2, {"watched_ms": 2_000}),
            (3, {"watched_ms": -1, "position_ms": -1}),
            (4, {"watched_ms": -1}),
        ],
    )
    assert steps[1].decision.counted and not steps[1].newly_counted
    assert steps[1].decision.reason == (
        "impossible input: negative watchedMs -1; negative positionMs -1 "
        "(already counted in this session)"
    )
    assert steps[-1].session.flags == (FLAG_NEGATIVE_WATCH, FLAG_NEGATIVE_POSITION)
    assert steps[-1].session.status is SessionStatus.COUNTED


def test_impossible_final_event_still_ends_the_session():
    steps = play(policy(ContentKind.VIDEO), [(1, {"watched_ms": -5, "final": True})])
    assert steps[0].session.ended
    assert steps[0].decision.reason == "impossible input: negative watchedMs -5; session ended"


# ------------------------------------------------------------------ input validation


@pytest.mark.parametrize("fraction", [-0.01, 1.01, 2, float("nan"), float("inf"), True], ids=str)
def test_visible_fraction_out_of_range_is_bad_input(fraction):
    with pytest.raises(BadUserInput, match="visibleFraction must be between 0 and 1"):
        check_visible_fraction(fraction)
    with pytest.raises(BadUserInput, match="visibleFraction"):
        event(watched_ms=1, visible_fraction=fraction)


@pytest.mark.parametrize("fraction", [0, 0.0, 0.5, 1, 1.0, None], ids=str)
def test_visible_fraction_in_range(fraction):
    assert check_visible_fraction(fraction) == fraction


def test_anonymous_without_device_id_is_bad_input():
    with pytest.raises(BadUserInput, match="deviceId is required when not signed in"):
        viewer_key(None, None)
    with pytest.raises(BadUserInput, match="deviceId is required when not signed in"):
        event(user_id=None, device_id=None, watched_ms=1)


@pytest.mark.parametrize(
    ("user_id", "device_id", "key"),
    [("alice", "ph1", "u:alice"), ("alice", None, "u:alice"), (None, "ph1", "d:ph1")],
    ids=["signed-in", "signed-in-no-device", "anonymous"],
)
def test_viewer_key(user_id, device_id, key):
    assert viewer_key(user_id, device_id) == key
    assert event(user_id=user_id, device_id=device_id, watched_ms=1).viewer_key == key


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"content_id": ""}, "contentId must be a non-empty string"),
        ({"session_id": " "}, "sessionId must be a non-empty string"),
        ({"device_id": "x" * 129}, "deviceId is 129 characters long"),
        ({"event_id": ""}, "eventId must be a non-empty string"),
        ({"user_id": None, "device_id": ""}, "deviceId must be a non-empty string"),
        ({"watched_ms": "10"}, "watchedMs must be an integer"),
        ({"watched_ms": 1.5}, "watchedMs must be an integer"),
        ({"position_ms": True}, "positionMs must be an integer"),
        ({"source": "TIKTOK"}, "unknown view source 'TIKTOK'"),
        ({"platform": "CAR"}, "unknown client platform 'CAR'"),
    ],
    ids=[
        "empty-content",
        "blank-session",
        "long-device",
        "empty-event",
        "empty-anonymous-device",
        "string-watch",
        "float-watch",
        "bool-position",
        "unknown-source",
        "unknown-platform",
    ],
)
def test_bad_raw_input(changes, message):
    with pytest.raises(BadUserInput, match=message):
        event(**{"watched_ms": 1, **changes})


def test_check_view_event_builds_the_event():
    ev = event(
        watched_ms=1_500,
        position_ms=-1,  # impossible, not invalid: step() records it
        visible_fraction=1,
        source="AUTOPLAY",
        platform=ClientPlatform.WEB,
        event_id="e1",
        final=True,
    )
    assert ev == ViewEvent(
        content_id="c1",
        session_id="s1",
        viewer_key="u:alice",
        device_id="ph1",
        event_id="e1",
        watched_ms=1_500,
        position_ms=-1,
        visible_fraction=1.0,
        source=ViewSource.AUTOPLAY,
        platform=ClientPlatform.WEB,
        final=True,
    )


# ------------------------------------------------------------------ edges found by mutation testing


@pytest.mark.parametrize(
    ("position_ms", "flags"),
    [
        (0, ()),
        (-1, (FLAG_NEGATIVE_POSITION,)),
        (62_000, ()),  # exactly durationMs + position_tolerance_ms
        (62_001, (FLAG_POSITION_PAST_DURATION,)),
    ],
    ids=["start", "before-start", "at-tolerance", "past-tolerance"],
)
def test_position_boundaries(position_ms, flags):
    s = one(
        policy(ContentKind.VIDEO), watched_ms=1_000, position_ms=position_ms, duration_ms=60_000
    )
    assert s.session.flags == flags


@pytest.mark.parametrize(
    ("tolerance_ms", "position_ms", "ok"),
    [(0, 60_000, True), (0, 60_001, False), (500, 60_500, True), (500, 60_501, False)],
    ids=["none-at-end", "none-past-end", "500-at", "500-past"],
)
def test_position_tolerance_is_configurable(tolerance_ms, position_ms, ok):
    pol = _with(ContentKind.VIDEO, position_tolerance_ms=tolerance_ms)
    s = one(pol, watched_ms=1_000, position_ms=position_ms, duration_ms=60_000)
    assert (s.session.flags == ()) is ok


def test_one_millisecond_of_watch_can_be_impossible():
    pol = _with(ContentKind.VIDEO, clock_slack_ms=0)
    steps = play(pol, [(10, {"watched_ms": 10_000}), (10, {"watched_ms": 1})])
    assert steps[-1].session.flags == (FLAG_WATCH_EXCEEDS_WALL_TIME,)


def test_an_event_without_watch_time_is_never_more_than_wall_time():
    # The server clock stepped back 8 s between two events: nothing was watched in
    # the second one, so it claims nothing impossible.
    steps = play(
        policy(ContentKind.VIDEO),
        [(10, {"watched_ms": 10_000}), (2, {"watched_ms": 0, "final": True})],
    )
    assert steps[-1].session.flags == ()
    assert steps[-1].decision.reason == "watched 10.0 s < 30 s; session ended"


@pytest.mark.parametrize("watched_ms", [0, -5])
def test_a_session_without_credited_watch_starts_now(watched_ms):
    s = one(policy(ContentKind.VIDEO), watched_ms=watched_ms)
    assert s.session.started_at == T0


def test_a_session_adopts_a_later_device_id():
    pol = policy(ContentKind.VIDEO)
    steps = play(
        pol,
        [(1, {"watched_ms": 1_000, "device_id": None}), (2, {"watched_ms": 1_000})],
    )
    assert steps[0].session.device_id is None
    assert steps[-1].session.device_id == "ph1"
    # ...and from then on it belongs to that device
    with pytest.raises(BadUserInput, match="belongs to another device"):
        step(
            pol,
            steps[-1].session,
            event(watched_ms=1_000, device_id="ph2"),
            duration_ms=None,
            now=T0 + timedelta(seconds=3),
            last_counted_at=None,
        )


def test_the_session_keeps_the_rule_of_its_last_decision():
    first = one(policy(ContentKind.VIDEO), watched_ms=1_000)
    later = step(
        TV_BOOK.for_content(ContentKind.VIDEO, ClientPlatform.TV),
        first.session,
        event(watched_ms=1_000),
        duration_ms=None,
        now=T0 + timedelta(seconds=1),
        last_counted_at=None,
    )
    assert (first.session.rule, later.session.rule) == ("VIDEO.default", "VIDEO.TV")
    assert later.decision.rule == "VIDEO.TV"


def _steps_of_every_path() -> list[tuple[str, ViewStep]]:
    pol = policy(ContentKind.VIDEO)
    hour_ago = T0 - timedelta(hours=1)
    watching = play(pol, [(1, {"watched_ms": 1_000, "event_id": "e1"})])
    counted = play(pol, [(31, {"watched_ms": 30_000})])
    duplicate = play(pol, [(31, {"watched_ms": 30_000})], last_counted_at=hour_ago)
    impossible = play(pol, [(1, {"watched_ms": -1})])
    ended = play(pol, [(1, {"watched_ms": 1_000, "final": True}), (2, {"watched_ms": 1_000})])
    repeated = play(
        pol,
        [
            (1, {"watched_ms": 1_000, "event_id": "e1"}),
            (2, {"watched_ms": 1_000, "event_id": "e1"}),
        ],
    )
    later = play(
        pol,
        [(31, {"watched_ms": 30_000}), (32, {"watched_ms": 1_000})],
        last_counted_at=hour_ago,
    )
    return [
        ("watching", watching[-1]),
        ("counted", counted[-1]),
        ("duplicate", duplicate[-1]),
        ("impossible", impossible[-1]),
        ("ended", ended[-1]),
        ("repeated", repeated[-1]),
        ("after-duplicate", later[-1]),
    ]


@pytest.mark.parametrize(
    ("path", "newly_counted"),
    [
        ("watching", False),
        ("counted", True),
        ("duplicate", False),
        ("impossible", False),
        ("ended", False),
        ("repeated", False),
        ("after-duplicate", False),
    ],
)
def test_every_path_names_its_rule_and_dedupe_key(path, newly_counted):
    s = dict(_steps_of_every_path())[path]
    assert s.decision.rule == "VIDEO.default"
    assert s.dedupe_key == "viewer:u:alice"
    # a real bool: callers store it and compare it with `is`
    assert s.newly_counted is newly_counted


def test_a_duplicate_session_keeps_saying_duplicate_after_impossible_input():
    steps = play(
        policy(ContentKind.VIDEO),
        [(31, {"watched_ms": 30_000}), (32, {"watched_ms": -1}), (40, {"watched_ms": 1_000})],
        last_counted_at=T0 - timedelta(hours=1),
    )
    dup = "duplicate: already counted for this viewer within 24 h"
    assert [s.decision.reason for s in steps] == [
        dup,
        "impossible input: negative watchedMs -1",
        dup,
    ]
    assert steps[-1].session.status is SessionStatus.DUPLICATE


@pytest.mark.parametrize(
    ("window", "shown"),
    [
        (timedelta(hours=24), "24 h"),
        (timedelta(minutes=90), "1.5 h"),
        (timedelta(minutes=20), "0.33 h"),
        (timedelta(minutes=7, seconds=30), "0.12 h"),  # 0.125: two decimals at most
    ],
    ids=["whole", "one-decimal", "rounded", "three-decimals"],
)
def test_window_in_the_reason(window, shown):
    s = one(_with(ContentKind.VIDEO, window=window), watched_ms=30_000, last_counted_at=T0)
    assert s.decision.reason == f"duplicate: already counted for this viewer within {shown}"


def test_a_threshold_of_a_fraction_of_a_second():
    s = one(_with(ContentKind.VIDEO, min_watch_ms=59_500), watched_ms=1_000)
    assert s.decision.reason == "watched 1.0 s < 59.5 s"


@pytest.mark.parametrize(
    ("fraction", "duration_ms", "watched_ms", "counted", "reason"),
    [
        # 1 ms of content needs 1 ms of watch, shown rounded to tenths of a second
        (0.9, 1, 0, False, "watched 0.0 s < 0.0 s (90% of 0.0 s)"),
        (0.0, 10_000, 0, True, "watched 0.0 s >= 0 s (0% of 10.0 s)"),
    ],
    ids=["one-ms-content", "zero-fraction"],
)
def test_short_content_extremes(fraction, duration_ms, watched_ms, counted, reason):
    pol = _with(ContentKind.VIDEO, short_content_fraction=fraction)
    assert pol.threshold_ms(duration_ms) == (1 if fraction else 0)
    s = one(pol, watched_ms=watched_ms, duration_ms=duration_ms)
    assert (s.decision.counted, s.decision.reason) == (counted, reason)


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: the datetime is naive after all."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_now_with_a_tzinfo_but_no_offset_is_refused():
    with pytest.raises(ValueError) as excinfo:
        step(
            policy(ContentKind.VIDEO),
            None,
            event(watched_ms=1),
            duration_ms=None,
            now=datetime(2026, 3, 1, 12, tzinfo=_NoOffset()),
            last_counted_at=None,
        )
    assert str(excinfo.value) == "now must be a timezone-aware datetime"


@pytest.mark.parametrize(
    ("user_id", "device_id", "message"),
    [
        ("", "ph1", "userId must be a non-empty string"),
        (None, "", "deviceId must be a non-empty string"),
        (None, None, "deviceId is required when not signed in"),
    ],
    ids=["empty-user", "empty-device", "neither"],
)
def test_viewer_key_errors(user_id, device_id, message):
    with pytest.raises(BadUserInput) as excinfo:
        viewer_key(user_id, device_id)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"watched_ms": None}, "watchedMs must be an integer, got None"),
        ({"final": "yes"}, "final must be a boolean, got 'yes'"),
        ({"visible_fraction": "0.5"}, "visibleFraction must be between 0 and 1, got '0.5'"),
    ],
    ids=["missing-watch", "string-final", "string-fraction"],
)
def test_bad_raw_input_messages(changes, message):
    with pytest.raises(BadUserInput) as excinfo:
        event(**{"watched_ms": 1, **changes})
    assert str(excinfo.value) == message


# ------------------------------------------------------------------ region and idle end


@pytest.mark.parametrize(
    ("regions", "kept"),
    [
        (["US"], "US"),
        (["US", "FR", "unknown"], "US"),  # the first event's, whatever later requests say
        (["unknown", "FR"], "unknown"),
        ([None], "unknown"),  # not given: unknown
    ],
)
def test_the_session_keeps_the_region_of_its_first_event(regions, kept):
    pol = policy(ContentKind.VIDEO)
    session = None
    for i, region in enumerate(regions):
        more = {} if region is None else {"region": region}
        s = step(
            pol,
            session,
            event(watched_ms=1_000, event_id=f"e{i}"),
            duration_ms=None,
            now=T0 + timedelta(seconds=i + 1),
            last_counted_at=None,
            **more,
        )
        assert s.session.region == kept
        session = s.session


@pytest.mark.parametrize(
    ("first", "later", "counted"),
    [
        ({"watched_ms": 10_000}, {"watched_ms": 40_000}, False),  # would have counted now
        ({"watched_ms": 40_000}, {"watched_ms": 1_000}, True),  # counted: stays counted
    ],
)
def test_an_idle_ended_session_ignores_later_events(first, later, counted):
    pol = policy(ContentKind.VIDEO)
    (opened,) = play(pol, [(40, first)])
    ended = end_idle(opened.session)
    assert ended.ended and not opened.session.ended
    # Nothing else changes: the end is said at the last event's time, with its totals.
    assert replace(ended, ended=False) == opened.session
    (after,) = play(pol, [(4000, later)], session=ended)
    assert after.session is ended
    assert after.decision.reason == "session ended: event ignored"
    assert after.decision.counted is counted and not after.newly_counted
