"""Trending (pure): what an event weighs, how a content's heat is scored, and how
scores decay without ever being rewritten.

Per (content, window, region) two exponentially decayed sums of event weights
are kept: ``recent`` (time constant ``recent_s``, the window) and ``baseline``
(``baseline_s``, much longer). A steady rate λ gives recent = λ·recent_s and
baseline = λ·baseline_s, so ``expected = baseline·recent_s/baseline_s`` is what
``recent`` would be if nothing had changed. Heat is the excess over that,
squared, over the expected (Mastodon's observed-vs-expected score)::

    heat = (recent - expected)² / max(expected, PRIOR)   if recent > expected else 0

(``expected`` is floored at 0: unlikes can take the baseline below zero.)

A big content at its usual rate has no excess and no heat, however big; a small
one that takes off has a large excess over a small expectation. ``PRIOR`` keeps
a handful of events on a new content from looking like a rise of infinity.

Decay without rewrites (the trick of Reddit's hot rank, in log space): after its
last event at ``t`` a content's heat is taken to decay as ``exp(-k·(now - t))``
with ``k = 2/recent_s - 1/baseline_s`` (how recent²/expected decays when nothing
happens). Sorted sets store the frame score ``ln(heat) + k·(t - EPOCH)``: every
member decays at the same rate, so their order never changes by itself and an
untouched member is never rewritten. Reading converts back with
``current_heat``. The frame term grows by k per second; a double keeps it to
about 1e-11 for decades, so it is never renormalised.

The Lua script in storage/redis_trending.py applies the same arithmetic; the
simulation test holds the two to 1e-9.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from domain.analytics import UNKNOWN
from domain.contents import Content
from domain.counters import LIKES, VIEWS
from domain.events import INTEGRITY, REACTION, VIEW, EngagementEvent


class TrendWindow(enum.Enum):
    FIVE_MINUTES = "FIVE_MINUTES"
    HOUR = "HOUR"
    DAY = "DAY"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    code: str  # in key names
    recent_s: float
    baseline_s: float

    @property
    def decay_per_s(self) -> float:
        return 2.0 / self.recent_s - 1.0 / self.baseline_s


WINDOWS: dict[TrendWindow, WindowSpec] = {
    TrendWindow.FIVE_MINUTES: WindowSpec("5m", 300.0, 3_600.0),
    TrendWindow.HOUR: WindowSpec("1h", 3_600.0, 86_400.0),
    TrendWindow.DAY: WindowSpec("1d", 86_400.0, 604_800.0),
}

VIEW_WEIGHT = 1.0
# A like is a deliberate act; a view is also made by autoplay and scrolling.
LIKE_WEIGHT = 5.0
PRIOR = 10.0
# The frame's origin, 2026-01-01T00:00:00Z.
EPOCH_MS = 1_767_225_600_000
# Below this heat a member leaves its sorted sets (with at most MAX_MEMBERS kept).
MIN_HEAT = 1e-3
MAX_MEMBERS = 5_000

ALL_REGIONS = "all"
ALL_KINDS = "ALL"


def weight(event: EngagementEvent) -> float:
    """What one event adds to its content's sums, from what it changed in the public
    counts: a counted view 1, a like added +LIKE_WEIGHT, a like removed
    -LIKE_WEIGHT; a switch of reaction nothing. So an excluded actor's engagement
    (out of the public counts, domain/integrity.py) moves nothing, and an integrity
    event takes back (or restores) what its documents had added."""
    if event.kind not in MOVING:
        return 0.0
    deltas = event.deltas
    return LIKE_WEIGHT * deltas.get(LIKES, 0) + VIEW_WEIGHT * deltas.get(VIEWS, 0)


MOVING = frozenset({VIEW, REACTION, INTEGRITY})


def moment(event: EngagementEvent) -> int:
    """When an event weighs: an integrity event at the time of what it moves, so an
    exclusion cancels the original weight exactly instead of adding a negative now."""
    if event.kind == INTEGRITY:
        at = event.data.get("original_at_ms")
        if isinstance(at, int):
            return at
    return event.occurred_at_ms


_REGION = re.compile(r"[A-Z]{2}")


def region_of(event: EngagementEvent) -> str:
    """An ISO 3166-1 alpha-2 code (as the trusted edge header gave it) or "unknown":
    never anything that could clash with ALL_REGIONS or bend a key name."""
    region = event.data.get("region")
    if isinstance(region, str) and _REGION.fullmatch(region):
        return region
    return UNKNOWN


def heat(recent: float, baseline: float, spec: WindowSpec) -> float:
    # Unlikes can take the baseline below zero: nothing is expected then, and a
    # negative expectation must not inflate the excess.
    expected = max(baseline * spec.recent_s / spec.baseline_s, 0.0)
    excess = recent - expected
    if excess <= 0:
        return 0.0
    return excess * excess / max(expected, PRIOR)


def frame_score(heat_: float, t_ms: int, spec: WindowSpec) -> float:
    """The stored score of a heat reached at ``t_ms`` (heat > 0)."""
    return math.log(heat_) + spec.decay_per_s * (t_ms - EPOCH_MS) / 1000.0


def current_heat(frame: float, now_ms: int, spec: WindowSpec) -> float:
    """The heat a stored frame score stands for at ``now_ms``."""
    return math.exp(frame - spec.decay_per_s * (now_ms - EPOCH_MS) / 1000.0)


def prune_below(now_ms: int, spec: WindowSpec) -> float:
    """Frame scores under this have decayed below MIN_HEAT by ``now_ms``."""
    return frame_score(MIN_HEAT, now_ms, spec)


class State(NamedTuple):
    """Decayed sums as of ``t_ms``, the latest event applied."""

    recent: float
    baseline: float
    t_ms: int


def advance(state: State | None, delta: State, spec: WindowSpec) -> State:
    """``state`` with ``delta`` (sums of the same kind, as of ``delta.t_ms``) added;
    the result is as of the later of the two times (out-of-order events decay
    into the newer state instead of moving it back)."""
    if state is None:
        return delta
    if delta.t_ms >= state.t_ms:
        dt = (delta.t_ms - state.t_ms) / 1000.0
        return State(
            state.recent * math.exp(-dt / spec.recent_s) + delta.recent,
            state.baseline * math.exp(-dt / spec.baseline_s) + delta.baseline,
            delta.t_ms,
        )
    dt = (state.t_ms - delta.t_ms) / 1000.0
    return State(
        state.recent + delta.recent * math.exp(-dt / spec.recent_s),
        state.baseline + delta.baseline * math.exp(-dt / spec.baseline_s),
        state.t_ms,
    )


class Integrity(Protocol):
    """The anti-abuse seam: how much an event's actor is trusted (0 drops the
    event, 1 counts it in full) and which contents may not trend at all."""

    def trust(self, event: EngagementEvent) -> float: ...

    def excluded(self, content_id: str) -> bool: ...


class TrustAll:
    def trust(self, event: EngagementEvent) -> float:
        return 1.0

    def excluded(self, content_id: str) -> bool:
        return False


TRUST_ALL = TrustAll()


class StateKey(NamedTuple):
    content_id: str
    window: TrendWindow
    region: str  # a region code, "unknown", or ALL_REGIONS


def fold(
    events: Iterable[EngagementEvent], integrity: Integrity = TRUST_ALL
) -> dict[StateKey, State]:
    """A batch as one delta per (content, window, region), region ALL_REGIONS
    included: each event's weight decayed to the latest event of its group.

    Sums are taken in a fixed order (event time, then id), so a batch folds to the
    same floats whatever order its events came in; split into other batches, the
    same events agree to rounding (advance() merges in another order)."""
    weighted = []
    for e in events:
        w = weight(e)
        if w == 0.0 or integrity.excluded(e.content_id):
            continue
        w *= integrity.trust(e)
        if w == 0.0:
            continue
        weighted.append((moment(e), e.event_id, e.content_id, region_of(e), w))
    weighted.sort()
    latest: dict[tuple[str, str], int] = {}
    for t, _, cid, region, _w in weighted:
        for r in (region, ALL_REGIONS):
            if t > latest.get((cid, r), -(2**62)):
                latest[(cid, r)] = t
    out: dict[StateKey, State] = {}
    for window, spec in WINDOWS.items():
        sums: dict[tuple[str, str], list[float]] = {}
        for t, _, cid, region, w in weighted:
            for r in (region, ALL_REGIONS):
                dt = (latest[(cid, r)] - t) / 1000.0
                acc = sums.setdefault((cid, r), [0.0, 0.0])
                acc[0] += w * math.exp(-dt / spec.recent_s)
                acc[1] += w * math.exp(-dt / spec.baseline_s)
        for (cid, r), (recent, baseline) in sums.items():
            out[StateKey(cid, window, r)] = State(recent, baseline, latest[(cid, r)])
    return out


class SetKey(NamedTuple):
    window: TrendWindow
    kind: str  # a ContentKind value or ALL_KINDS
    region: str


def set_keys(window: TrendWindow, kind: str, region: str) -> tuple[SetKey, ...]:
    """The sorted sets one (content of ``kind``, window, region) state scores in."""
    return (SetKey(window, kind, region), SetKey(window, ALL_KINDS, region))


@dataclass(frozen=True, slots=True)
class Ranked:
    content_id: str
    frame: float


# One trending page as readers share it (domain/ranking.py): each listed content with
# its score's frame (the heat now is computed from the frame at every read, so a kept
# page still decays), keyed by (window, kind code, region code, first).
Page = list[tuple[float, Content]]
PageKey = tuple[TrendWindow, str, str, int]


def rank(scores: Mapping[str, float], first: int) -> list[Ranked]:
    """Highest frame score first; ties by content id, so every reader agrees."""
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Ranked(cid, s) for cid, s in ordered[:first]]


def brute_force(
    events: Iterable[EngagementEvent],
    kinds: Mapping[str, str],
    integrity: Integrity = TRUST_ALL,
) -> dict[SetKey, dict[str, float]]:
    """Every sorted set recomputed from raw events in one pass per state (the
    reference the incremental path is tested against): member -> frame score.
    ``kinds``: content id -> ContentKind value."""
    states = fold(events, integrity)
    out: dict[SetKey, dict[str, float]] = {}
    for key, state in states.items():
        spec = WINDOWS[key.window]
        h = heat(state.recent, state.baseline, spec)
        if h <= 0:
            continue
        kind = kinds.get(key.content_id)
        if kind is None:
            continue
        for sk in set_keys(key.window, kind, key.region):
            out.setdefault(sk, {})[key.content_id] = frame_score(h, state.t_ms, spec)
    return out
