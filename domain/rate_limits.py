"""Abuse limits on likes, unlikes and views: the rules, pure (docs/SECURITY.md, Abuse limits).

Every (action, scope) pair has a :class:`Rate`: a sustained rate per minute and a
burst. The arithmetic is GCRA (the generic cell rate algorithm): a subject's state
is one number, its theoretical arrival time (TAT). A request is allowed when
``max(TAT, now) + T - burst * T <= now`` (``T`` the emission interval, 60 s / rate),
and then moves the TAT on by ``T``; from idle, exactly ``burst`` requests pass at
once, then one per ``T``. A refused request changes nothing and is told how long
to wait. :func:`gcra` is the reference the Redis script (storage/redis_rate_limits.py)
follows; a test runs both on the same table.

Scopes: the signed-in user, the device (``deviceId``; an anonymous viewer is its
device), and the client address (hashed, domain/identity.py). A request checks every
scope it has, at once: it passes when all of them allow it, and only then does it use
up anything. No rule blocks on the address alone being busy at a human rate: the
address limits are set for a campus NAT of thousands of people (see DEFAULTS).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.clock import to_ms


class Action(enum.StrEnum):
    LIKE = "like"
    UNLIKE = "unlike"
    VIEW = "view"


class Scope(enum.StrEnum):
    USER = "user"
    DEVICE = "device"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_minute`` sustained, ``burst`` at once from idle."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_minute) and self.per_minute > 0):
            raise ValueError(f"a rate per minute must be a positive number, got {self.per_minute}")
        if self.burst < 1:
            raise ValueError(f"a burst must be at least 1, got {self.burst}")

    @property
    def interval_ms(self) -> float:
        """GCRA's emission interval T: one request's share of the sustained rate."""
        return 60_000.0 / self.per_minute

    def __str__(self) -> str:
        return f"{self.per_minute:g}:{self.burst}"


def parse_rate(text: str) -> Rate:
    """``"PER_MINUTE:BURST"``, e.g. ``"30:60"``; ValueError naming what is wrong."""
    rate, sep, burst = text.strip().partition(":")
    try:
        if not sep:
            raise ValueError
        return Rate(float(rate), int(burst))
    except ValueError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise ValueError(
            f"a rate limit is 'PER_MINUTE:BURST' (e.g. '30:60'), got {text!r}{detail}"
        ) from None


# Defaults no person reaches; why each, in docs/SECURITY.md (Abuse limits).
# - A person: a like every 2 s for minutes on end is already a script; 60 at once
#   covers liking a whole screen of cards quickly. Unlikes the same.
# - A device: twice a person's, for a family tablet with two accounts.
# - An address: a campus or carrier NAT of 10,000 people, each liking once every two
#   minutes without pause (far above any real crowd), is 5,000 a minute; the limit is
#   6,000 a minute with a burst of 6,000 (the whole crowd at one goal in a match).
# - Views are events, not views: a player's heartbeat every 10 s plus feed impressions
#   while scrolling is well under 60 a minute; 600 a minute with a burst of 1,200 takes
#   an offline client's buffered batches. The address: 10,000 people at 6 a minute.
DEFAULTS: Mapping[tuple[Action, Scope], Rate] = {
    (Action.LIKE, Scope.USER): Rate(30, 60),
    (Action.LIKE, Scope.DEVICE): Rate(60, 120),
    (Action.LIKE, Scope.ADDRESS): Rate(6_000, 6_000),
    (Action.UNLIKE, Scope.USER): Rate(30, 60),
    (Action.UNLIKE, Scope.DEVICE): Rate(60, 120),
    (Action.UNLIKE, Scope.ADDRESS): Rate(6_000, 6_000),
    (Action.VIEW, Scope.USER): Rate(600, 1_200),
    (Action.VIEW, Scope.DEVICE): Rate(600, 1_200),
    (Action.VIEW, Scope.ADDRESS): Rate(60_000, 60_000),
}


@dataclass(frozen=True, slots=True)
class Step:
    """One GCRA decision: ``wait_ms`` 0 when allowed (then ``tat`` is the new state)."""

    allowed: bool
    tat: float
    wait_ms: int


def gcra(tat: float | None, now_ms: float, rate: Rate) -> Step:
    """The reference arithmetic (the Lua script does the same per key)."""
    t = rate.interval_ms
    start = now_ms if tat is None or tat < now_ms else tat
    allow_at = start + t - rate.burst * t
    if allow_at > now_ms:
        return Step(False, start, math.ceil(allow_at - now_ms))
    return Step(True, start + t, 0)


# A subject of a limit: (action, scope, who): the user id, the device id, or the
# hashed address.
Subject = tuple[Action, Scope, str]


def subjects(
    action: Action, *, user_id: str | None, device_id: str | None, addr: str | None
) -> tuple[Subject, ...]:
    """Every scope a request has. An anonymous viewer is its device, so its views are
    limited by the device scope (and the address), a signed-in one by both."""
    found: list[Subject] = []
    if user_id is not None:
        found.append((action, Scope.USER, user_id))
    if device_id is not None:
        found.append((action, Scope.DEVICE, device_id))
    if addr is not None:
        found.append((action, Scope.ADDRESS, addr))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The wait each scope asked for (0: it allowed the request)."""

    waits: Mapping[Scope, int]

    @property
    def allowed(self) -> bool:
        return not any(self.waits.values())

    @property
    def retry_after_ms(self) -> int:
        return max(self.waits.values(), default=0)


ALLOWED = Verdict({})


class RateLimitStore(Protocol):
    async def acquire(
        self, now_ms: int, requests: Sequence[Sequence[tuple[Subject, Rate]]]
    ) -> list[list[int]]:
        """Decide each request in order, atomically: for each, the wait per subject
        (0: allowed). A request uses up its subjects' rates only when all allow it."""
        ...


class RateLimiter:
    """The configured limits over a store; ``enabled`` False allows everything."""

    def __init__(
        self,
        store: RateLimitStore,
        limits: Mapping[tuple[Action, Scope], Rate] = DEFAULTS,
        *,
        enabled: bool = True,
    ) -> None:
        self._store = store
        self.limits = dict(DEFAULTS) | dict(limits)
        self.enabled = enabled

    async def check(self, now: datetime, requests: Sequence[Sequence[Subject]]) -> list[Verdict]:
        """One verdict per request, in one store call (one Redis round trip)."""
        if not self.enabled or not any(requests):
            return [ALLOWED] * len(requests)
        rated = [[(s, self.limits[(s[0], s[1])]) for s in request] for request in requests]
        waits = await self._store.acquire(to_ms(now), rated)
        return [
            Verdict({s[1]: w for s, w in zip(request, row, strict=True)})
            for request, row in zip(requests, waits, strict=True)
        ]

    async def check_one(self, now: datetime, request: Sequence[Subject]) -> Verdict:
        (verdict,) = await self.check(now, [request])
        return verdict
