"""Abuse limits, pure: GCRA arithmetic, rates, scopes, verdicts, settings, and a view
event over a limit (recorded, not counted)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

import domain.view_policy as view_policy
from domain.contents import ContentKind
from domain.rate_limits import (
    DEFAULTS,
    Action,
    Rate,
    RateLimiter,
    Scope,
    Subject,
    gcra,
    parse_rate,
    subjects,
)
from domain.view_policy import DEFAULT_POLICY_FILE, parse_policy_book
from domain.view_sessions import NOT_COUNTED, SessionStatus, check_view_event, step

# --------------------------------------------------------------------------- GCRA

R = Rate(60, 3)  # T = 1000 ms, three at once


@pytest.mark.parametrize(
    ("tat", "now", "allowed", "new_tat", "wait"),
    [
        (None, 0, True, 1000, 0),  # idle
        (500, 1000, True, 2000, 0),  # TAT in the past counts from now
        (2000, 0, True, 3000, 0),  # the third of a burst
        (3000, 0, False, 3000, 1000),  # the fourth waits one interval
        (3000, 999, False, 3000, 1),
        (3000, 1000, True, 4000, 0),  # and then passes
        (2500, 0, False, 2500, 500),
    ],
)
def test_gcra_table(tat, now, allowed, new_tat, wait):
    s = gcra(tat, now, R)
    assert (s.allowed, s.tat, s.wait_ms) == (allowed, new_tat, wait)


def test_a_burst_then_one_per_interval():
    tat, passed = None, []
    for now in [0] * 5 + [1000, 1500, 2000]:
        s = gcra(tat, now, R)
        passed.append(s.allowed)
        tat = s.tat
    assert passed == [True, True, True, False, False, True, False, True]


def test_a_fractional_interval_rounds_the_wait_up():
    rate = Rate(7, 1)  # T = 8571.43 ms
    first = gcra(None, 0, rate)
    assert gcra(first.tat, 0, rate).wait_ms == 8572


# --------------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("text", "rate"),
    [("30:60", Rate(30, 60)), (" 0.5:1 ", Rate(0.5, 1)), ("6000:6000", Rate(6000, 6000))],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize("text", ["30", "30/60", "x:1", "30:x", "0:5", "-1:5", "30:0", "inf:1", ""])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="PER_MINUTE:BURST"):
        parse_rate(text)


def test_every_action_and_scope_has_a_default_no_person_reaches():
    assert set(DEFAULTS) == {(a, s) for a in Action for s in Scope}
    for (_, scope), rate in DEFAULTS.items():
        # A person: at least a like every 2 s sustained and a screenful at once.
        assert rate.per_minute >= 30 and rate.burst >= 60
        if scope is Scope.ADDRESS:
            # A NAT of thousands: never below 100 a second.
            assert rate.per_minute >= 6000


# --------------------------------------------------------------------------- scopes


def test_subjects_are_the_scopes_a_request_has():
    assert subjects(Action.LIKE, user_id="u", device_id="d", addr="a") == (
        (Action.LIKE, Scope.USER, "u"),
        (Action.LIKE, Scope.DEVICE, "d"),
        (Action.LIKE, Scope.ADDRESS, "a"),
    )
    # An anonymous viewer is its device.
    assert subjects(Action.VIEW, user_id=None, device_id="d", addr=None) == (
        (Action.VIEW, Scope.DEVICE, "d"),
    )


class MemoryStore:
    """The store contract in memory, with the reference arithmetic."""

    def __init__(self) -> None:
        self.tats: dict[tuple[str, str, str], float] = {}
        self.calls = 0

    async def acquire(
        self, now_ms: int, requests: Sequence[Sequence[tuple[Subject, Rate]]]
    ) -> list[list[int]]:
        self.calls += 1
        out = []
        for request in requests:
            steps = [(s, gcra(self.tats.get(s), now_ms, r)) for s, r in request]
            if all(st.allowed for _, st in steps):
                for s, st in steps:
                    self.tats[s] = st.tat
            out.append([st.wait_ms for _, st in steps])
        return out


NOW = datetime(2026, 5, 1, tzinfo=UTC)


async def test_a_request_passes_only_when_every_scope_allows_it_and_uses_nothing_otherwise():
    store = MemoryStore()
    limiter = RateLimiter(
        store, {(Action.LIKE, Scope.USER): Rate(60, 1), (Action.LIKE, Scope.ADDRESS): Rate(60, 5)}
    )
    alice = subjects(Action.LIKE, user_id="alice", device_id=None, addr="a1")
    bob = subjects(Action.LIKE, user_id="bob", device_id=None, addr="a1")
    first, second = await limiter.check(NOW, [alice, alice])
    assert first.allowed and not second.allowed
    assert second.waits == {Scope.USER: 1000, Scope.ADDRESS: 0}
    assert second.retry_after_ms == 1000
    # The refused request took nothing from the address: bob has 4 left there.
    verdicts = await limiter.check(NOW, [bob] * 5)
    assert [v.allowed for v in verdicts] == [True, False, False, False, False]
    assert store.calls == 2


async def test_limits_off_allow_everything_without_a_call():
    store = MemoryStore()
    limiter = RateLimiter(store, {(Action.LIKE, Scope.USER): Rate(1, 1)}, enabled=False)
    who = subjects(Action.LIKE, user_id="u", device_id=None, addr=None)
    assert all(v.allowed for v in await limiter.check(NOW, [who] * 10))
    assert store.calls == 0


# --------------------------------------------------------------------------- views

BOOK = parse_policy_book(
    Path(view_policy.__file__).with_name(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
)
VIDEO = BOOK.for_content(ContentKind.VIDEO, None)


def view(watched_ms: int, event_id: str) -> object:
    return check_view_event(
        content_id="c1",
        session_id="s1",
        user_id="alice",
        device_id=None,
        event_id=event_id,
        watched_ms=watched_ms,
    )


def test_a_view_event_over_a_limit_is_applied_but_cannot_count():
    s = step(
        VIDEO,
        None,
        view(31_000, "e1"),  # type: ignore[arg-type]
        duration_ms=600_000,
        now=NOW,
        last_counted_at=None,
        limited=True,
    )
    assert not s.newly_counted and s.decision.counted is False
    assert s.decision.reason == NOT_COUNTED
    assert s.session.watched_ms == 31_000 and s.session.status is SessionStatus.WATCHING
    # The next event within the limits counts the session.
    later = step(
        VIDEO,
        s.session,
        view(1_000, "e2"),  # type: ignore[arg-type]
        duration_ms=600_000,
        now=NOW + timedelta(seconds=1),
        last_counted_at=None,
    )
    assert later.newly_counted and later.decision.counted
    # Over a limit after that, the session stays counted.
    again = step(
        VIDEO,
        later.session,
        view(1_000, "e3"),  # type: ignore[arg-type]
        duration_ms=600_000,
        now=NOW + timedelta(seconds=2),
        last_counted_at=None,
        limited=True,
    )
    assert again.decision.counted and again.session.watched_ms == 33_000


# --------------------------------------------------------------------------- settings


def test_settings_carry_every_limit_and_refuse_a_bad_one(monkeypatch):
    from main import Settings

    monkeypatch.setenv("RATE_LIMIT_VIEW_ADDRESS", "120:7")
    table = Settings().rate_table()
    assert table[(Action.VIEW, Scope.ADDRESS)] == Rate(120, 7)
    assert table[(Action.LIKE, Scope.USER)] == DEFAULTS[(Action.LIKE, Scope.USER)]
    assert Settings().rate_limits is True
    monkeypatch.setenv("RATE_LIMIT_LIKE_USER", "thirty")
    with pytest.raises(ValidationError, match="PER_MINUTE:BURST"):
        Settings()


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, "127.0.0.1,::1"), ("10.0.0.0/8", "10.0.0.0/8")]
)
def test_the_app_takes_the_forwarded_allow_ips(monkeypatch, raw, expected):
    """The proxy-header middleware runs inside the app (transport/proxy_headers.py),
    with FORWARDED_ALLOW_IPS, and uvicorn's own is off."""
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    import main
    from transport.proxy_headers import ProxyHeaders

    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    if raw is not None:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", raw)
    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    assert main.main(["serve", "--port", "1"]) == 0
    assert seen["proxy_headers"] is False
    stack = [m for m in seen["app"].user_middleware if m.cls is ProxyHeaders]  # type: ignore[attr-defined]
    assert len(stack) == 1 and stack[0].kwargs == {"trusted_hosts": expected}
    inner = ProxyHeaders(lambda *a: None, trusted_hosts=expected)._inner
    assert isinstance(inner, ProxyHeadersMiddleware)
