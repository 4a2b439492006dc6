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


@dataclass(frozen=True, slots=True)
class Rates:
    one_minute: float
    fifteen_minutes: float
    one_hour: float


@dataclass(frozen=True, slots=True)
class Signals:
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


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def compute(content_id: str, raw: RawSignals, now_ms: int) -> Signals:
    """The signals at ``now_ms``: ``window_sum``'s windows, taken over the minutes by
    how long ago they were (k = 0 is the current minute), which runs for every
    content of a read (a list of 100 is 100 of these)."""
    current, into = divmod(now_ms, MINUTE_MS)
    views = [0] * _SPAN
    likes = [0] * _SPAN
    for minute, c in raw.minutes.items():
        k = current - minute
        if 0 <= k < _SPAN:
            views[k] = c.views
            likes[k] = c.likes
    older = 1.0 - into / MINUTE_MS  # the share of the oldest minute inside a window
    if not into:
        # A minute that began just now has spread nothing yet (window_sum's rule).
        views[0] = likes[0] = 0

    def last(a: list[int], w: int) -> float:
        """Events in the last ``w`` minutes: this minute and the w - 1 before in
        full, and the part of the w-th before that the window still covers."""
        return sum(a[:w]) + older * a[w]

    def rates(a: list[int]) -> Rates:
        return Rates(last(a, 1), last(a, 15) / 15, last(a, 60) / 60)

    recent = last(views, VELOCITY_RECENT) / VELOCITY_RECENT
    # [now - 65 min, now - 5 min): the part of minute 5 before now the window covers,
    # minutes 6 to 64 in full, the rest of minute 65.
    far = VELOCITY_RECENT + VELOCITY_BASELINE
    baseline = (
        (1.0 - older) * views[VELOCITY_RECENT]
        + sum(views[VELOCITY_RECENT + 1 : far])
        + older * views[far]
    ) / VELOCITY_BASELINE
    reacting = min(max(raw.reacting_viewers, 0), raw.unique_viewers)
    return Signals(
        content_id=content_id,
        likes_per_minute=rates(likes),
        views_per_minute=rates(views),
        # The complete minutes before the current one, oldest first.
        growth_slope=slope([float(v) for v in views[SLOPE_MINUTES:0:-1]]),
        velocity_ratio=_ratio(recent, baseline),
        engagement_ratio=_ratio(raw.likes, raw.views),
        view_to_like_conversion=_ratio(reacting, raw.unique_viewers),
        unique_viewers=raw.unique_viewers,
        average_watch_ms=_ratio(raw.watch_ms, raw.views),
        updated_at_ms=raw.updated_at_ms,
    )


# Minutes a read looks at: the current one and the 65 before (velocity's baseline).
_SPAN = VELOCITY_RECENT + VELOCITY_BASELINE + 1
assert max(RATE_WINDOWS) < _SPAN and SLOPE_MINUTES < _SPAN <= RING_MINUTES


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
