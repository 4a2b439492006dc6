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


@dataclass(frozen=True, slots=True)
class Minute:
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
    views = {m: c.views for m, c in raw.minutes.items()}
    likes = {m: c.likes for m, c in raw.minutes.items()}

    def rates(counts: Mapping[int, int]) -> Rates:
        r = [window_sum(counts, now_ms, 0, w) / w for w in RATE_WINDOWS]
        return Rates(r[0], r[1], r[2])

    current = now_ms // MINUTE_MS
    # The complete minutes before the current one, oldest first.
    last = [float(views.get(m, 0)) for m in range(current - SLOPE_MINUTES, current)]
    recent = window_sum(views, now_ms, 0, VELOCITY_RECENT) / VELOCITY_RECENT
    baseline = (
        window_sum(views, now_ms, VELOCITY_RECENT, VELOCITY_RECENT + VELOCITY_BASELINE)
        / VELOCITY_BASELINE
    )
    reacting = min(max(raw.reacting_viewers, 0), raw.unique_viewers)
    return Signals(
        content_id=content_id,
        likes_per_minute=rates(likes),
        views_per_minute=rates(views),
        growth_slope=slope(last),
        velocity_ratio=_ratio(recent, baseline),
        engagement_ratio=_ratio(raw.likes, raw.views),
        view_to_like_conversion=_ratio(reacting, raw.unique_viewers),
        unique_viewers=raw.unique_viewers,
        average_watch_ms=_ratio(raw.watch_ms, raw.views),
        updated_at_ms=raw.updated_at_ms,
    )


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
