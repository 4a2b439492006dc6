"""Ranking signals (pure): per-minute counts and lifetime totals in, the features
a ranking system reads out.

The store keeps, per content, views and likes added per UTC minute for the last
``RING_MINUTES`` minutes, and lifetime totals. Rates are read from those minutes
at the time of the read, so a content that went quiet reads as quiet without any
write.

Windows ending now are sliding: each complete minute's events are taken as spread
evenly over it, and the current minute's over its elapsed part, so a window of W
minutes takes its oldest minute in proportion to its overlap (the sliding-window
counter; no jump at each minute's turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from domain.counters import LIKES, REACTION_PREFIX, VIEWS
from domain.events import INTEGRITY, RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.trending import moment

MINUTE_MS = 60_000
# 65 minutes for velocityRatio (5 + the 60 before), the current one, and a margin.
RING_MINUTES = 70
SLOPE_MINUTES = 15
VELOCITY_RECENT = 5
VELOCITY_BASELINE = 60
RATE_WINDOWS = (1, 15, 60)
MAX_IDS = 100


class Minute(NamedTuple):
    # A tuple: a read of 100 contents decodes thousands of these.
    views: int = 0
    likes: int = 0  # likes added (none -> some)


@dataclass(frozen=True, slots=True)
class RawSignals:
    """What the store holds for one content."""

    minutes: Mapping[int, Minute]  # minute index (epoch ms // MINUTE_MS) -> counts
    likes: int  # lifetime, the live counters
    views: int
    unique_viewers: int
    reacting_viewers: int  # unique viewers who also reacted (estimated)
    watch_ms: int  # lifetime accepted watch time
    updated_at_ms: int | None  # when the worker last changed them


EMPTY = RawSignals({}, 0, 0, 0, 0, 0, None)


class Rates(NamedTuple):
    # NamedTuples, as Minute: a read of 100 contents builds 300 of these, and a
    # frozen dataclass costs about four times as much to build.
    one_minute: float
    fifteen_minutes: float
    one_hour: float


class Signals(NamedTuple):
    content_id: str
    likes_per_minute: Rates
    views_per_minute: Rates
    growth_slope: float
    velocity_ratio: float | None
    engagement_ratio: float | None
    view_to_like_conversion: float | None
    unique_viewers: int
    average_watch_ms: float | None
    updated_at_ms: int | None

    @property
    def updated_at(self) -> datetime | None:
        # The GraphQL type reads its fields off this object (schema/ranking.py).
        ms = self.updated_at_ms
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class SharedSignals(Signals):
    """Signals that many readers are handed, as the same object (a cache's): never
    changed, so what is made of them once may be reused (schema/execution.py)."""

    __slots__ = ()


def window_sum(counts: Mapping[int, int], now_ms: int, newer_min: float, older_min: float) -> float:
    """Events in [now - older_min, now - newer_min) minutes, each minute's events
    spread evenly over it (the current minute's over its elapsed part)."""
    current = now_ms // MINUTE_MS
    lo = now_ms - older_min * MINUTE_MS
    hi = now_ms - newer_min * MINUTE_MS
    total = 0.0
    for minute, n in counts.items():
        if not n:
            continue
        start = minute * MINUTE_MS
        end = now_ms if minute == current else start + MINUTE_MS
        if minute > current or end <= start:
            continue
        overlap = min(end, hi) - max(start, lo)
        if overlap > 0:
            total += n * overlap / (end - start)
    return total


def slope(values: list[float]) -> float:
    """Least-squares slope of values at x = 0, 1, 2, ..."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


# Every window compute() takes is a difference of two prefix sums of a content's
# per-minute counts by age (0: the current minute): sum(a[:c]) for c in CUTS. A
# read asks the store for these few integers per content, not for its whole ring
# (storage/redis_trending.py computes them in Redis by sums() below).
_WINDOW_ENDS = (*RATE_WINDOWS, VELOCITY_RECENT, VELOCITY_RECENT + VELOCITY_BASELINE)
CUTS = tuple(sorted({c for w in _WINDOW_ENDS for c in (w, w + 1)}))
# Minutes a read looks at: the current one and the 65 before (velocity's baseline).
SPAN = CUTS[-1]
# growthSlope over the SLOPE_MINUTES complete minutes (ages SLOPE_MINUTES..1, x =
# 0, 1, ...): the least-squares slope is sum((x - mean x) * y) / sum((x - mean x)^2),
# with an odd count an integer weight per age, so its numerator is a sum of integers.
assert SLOPE_MINUTES % 2 == 1
SLOPE_WEIGHTS = tuple(
    (SLOPE_MINUTES - age) - (SLOPE_MINUTES - 1) // 2 for age in range(1, SLOPE_MINUTES + 1)
)  # by age, from age 1
_SLOPE_DEN = sum(w * w for w in SLOPE_WEIGHTS)
assert max(RATE_WINDOWS) < SPAN and SLOPE_MINUTES < SPAN <= RING_MINUTES


class Sums(NamedTuple):
    """What compute() needs of one content at one moment: its lifetime totals and
    the prefix sums (at CUTS) of its views and likes by age, plus the slope's
    weighted sum of views."""

    updated_at_ms: int | None
    watch_ms: int
    likes: int
    views: int
    unique_viewers: int
    reacting_viewers: int
    # sum(SLOPE_WEIGHTS[age - 1] * views[age]) over ages 1..SLOPE_MINUTES; then
    # sum(views[:c]) for c in CUTS; then sum(likes[:c]) for c in CUTS.
    ring: tuple[int, ...]


ZERO_SUMS = Sums(None, 0, 0, 0, 0, 0, (0,) * (1 + 2 * len(CUTS)))


def sums(raw: RawSignals, now_ms: int) -> Sums:
    """The definition of what a read of ``raw`` at ``now_ms`` carries (the store's
    script computes the same; a differential test holds them equal)."""
    current, into = divmod(now_ms, MINUTE_MS)
    views = [0] * SPAN
    likes = [0] * SPAN
    for minute, c in raw.minutes.items():
        k = current - minute
        # A minute that began just now has spread nothing yet (window_sum's rule).
        if 0 <= k < SPAN and (k or into):
            views[k] = c.views
            likes[k] = c.likes
    return Sums(
        raw.updated_at_ms,
        raw.watch_ms,
        raw.likes,
        raw.views,
        raw.unique_viewers,
        raw.reacting_viewers,
        (
            sum(w * v for w, v in zip(SLOPE_WEIGHTS, views[1:], strict=False)),
            *(sum(views[:c]) for c in CUTS),
            *(sum(likes[:c]) for c in CUTS),
        ),
    )


# from_sums unpacks Sums.ring by this layout (1, 15, 60: the rates; 5 and 65: velocity).
assert CUTS == (1, 2, 5, 6, 15, 16, 60, 61, 65, 66) and RATE_WINDOWS == (1, 15, 60)
assert VELOCITY_RECENT == 5 and VELOCITY_RECENT + VELOCITY_BASELINE == 65
_new = tuple.__new__  # a NamedTuple without its keyword-handling __new__


def from_sums(content_id: str, s: Sums, now_ms: int) -> Signals:
    """The signals at ``now_ms``: ``window_sum``'s windows over minutes by age. A
    window of the last ``w`` minutes takes this minute and the w - 1 before in full,
    and the part of the w-th before that it still covers (``older``); a list of 100
    is 100 of these, so the sums are written out."""
    older = 1.0 - (now_ms % MINUTE_MS) / MINUTE_MS
    # Prefix sums at ages 1, 2, 5, ...: v5 = views of ages 0-4, v6 - v5 = views at age 5.
    (slope_sum, v1, v2, v5, v6, v15, v16, v60, v61, v65, v66) = s.ring[:11]
    (l1, l2, _, _, l15, l16, l60, l61, _, _) = s.ring[11:]
    recent = (v5 + older * (v6 - v5)) / VELOCITY_RECENT
    # [now - 65 min, now - 5 min): the part of minute 5 before now the window covers,
    # minutes 6 to 64 in full, the rest of minute 65.
    baseline = ((1.0 - older) * (v6 - v5) + (v65 - v6) + older * (v66 - v65)) / VELOCITY_BASELINE
    uniques = s.unique_viewers
    reacting = min(max(s.reacting_viewers, 0), uniques)
    views = s.views
    return _new(
        Signals,
        (
            content_id,
            _new(
                Rates,
                (
                    l1 + older * (l2 - l1),
                    (l15 + older * (l16 - l15)) / 15,
                    (l60 + older * (l61 - l60)) / 60,
                ),
            ),
            _new(
                Rates,
                (
                    v1 + older * (v2 - v1),
                    (v15 + older * (v16 - v15)) / 15,
                    (v60 + older * (v61 - v60)) / 60,
                ),
            ),
            slope_sum / _SLOPE_DEN,
            recent / baseline if baseline else None,
            s.likes / views if views else None,
            reacting / uniques if uniques else None,
            uniques,
            s.watch_ms / views if views else None,
            s.updated_at_ms,
        ),
    )


def compute(content_id: str, raw: RawSignals, now_ms: int) -> Signals:
    """The signals of ``raw`` at ``now_ms``."""
    return from_sums(content_id, sums(raw, now_ms), now_ms)


# --- what an event adds to the store's minutes and lifetime totals ----------------


@dataclass(slots=True)
class ContentDelta:
    minutes: dict[int, list[int]]  # minute -> [views, likes added]
    watch_ms: int = 0
    reactors: set[str] | None = None  # viewer keys ("u:<id>") of users who reacted

    def add_minute(self, minute: int, views: int, likes: int) -> None:
        acc = self.minutes.setdefault(minute, [0, 0])
        acc[0] += views
        acc[1] += likes


def reactor_viewer_key(user_id: str) -> str:
    """A reacting user as the viewer key a signed-in viewer counts under, so the two
    sketches can be intersected."""
    return f"u:{user_id}"


def fold(events: Iterable[EngagementEvent]) -> dict[str, ContentDelta]:
    """Per content: minutes' views and likes added, reacting users, and the raw view
    events' accepted watch time (as creator analytics counts it)."""
    out: dict[str, ContentDelta] = {}

    def delta(cid: str) -> ContentDelta:
        d = out.get(cid)
        if d is None:
            d = out[cid] = ContentDelta({})
        return d

    for e in events:
        if e.kind in (VIEW, REACTION, INTEGRITY):
            # What changed in the public counts (an excluded actor's engagement
            # changes nothing; an integrity event moves it at its original minute).
            views = e.deltas.get(VIEWS, 0)
            likes = e.deltas.get(LIKES, 0)
            added = likes if e.kind == INTEGRITY else max(likes, 0)
            if views or added:
                delta(e.content_id).add_minute(moment(e) // MINUTE_MS, views, added)
            if (
                e.kind == REACTION
                and e.data.get("after") is not None
                and (likes > 0 or any(k.startswith(REACTION_PREFIX) for k in e.deltas))
            ):
                d = delta(e.content_id)
                if d.reactors is None:
                    d.reactors = set()
                d.reactors.add(reactor_viewer_key(e.actor))
        elif e.kind == RAW_VIEW:
            accepted = e.data.get("accepted_ms")
            if isinstance(accepted, int) and accepted > 0:
                delta(e.content_id).watch_ms += accepted
    return out
