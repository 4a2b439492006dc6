"""Creator analytics (pure): what each event adds to the time buckets it falls in,
and what a dashboard reads back from summed buckets.

Events are rolled up into additive buckets per scope ("c:<content id>" and
"u:<creator id>") and granularity (UTC minute, hour, day starts). A bucket's
counters are flat dotted paths (``likes_added``, ``platform.IOS.views``,
``completion.h3``...), the same in the fold and in the store (one ``$inc``
each). The store reads them back nested by their parts, as documents hold them:
a dashboard sums them so (domain/analytics_sums.py) and flattens the one sum.

Distinct people (unique viewers, reacting users) are not additive: they live in
sketches per bucket (storage/redis_analytics.py) and are counted over a range
from the fewest buckets that cover it (``cover``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from domain.counters import LIKES as PUBLIC_LIKES
from domain.counters import VIEWS as PUBLIC_VIEWS
from domain.errors import BadUserInput
from domain.events import RAW_VIEW, REACTION, VIEW, VIEW_END, EngagementEvent
from domain.integrity import SUSPECT_LIKES, SUSPECT_VIEWS
from domain.reactions import ReactionType


class Granularity(enum.Enum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime  # aware, UTC, [start, end)


@dataclass(frozen=True, slots=True)
class Totals:
    likes_added: int
    likes_removed: int
    net_likes: int
    views: int
    unique_viewers: int
    watch_time_ms: int
    average_watch_ms: float | None
    like_to_view_ratio: float | None
    engagement_rate: float | None


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: datetime
    likes_added: int
    likes_removed: int
    net_likes: int
    views: int
    watch_time_ms: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    key: str
    views: int
    watch_time_ms: int
    likes_added: int


@dataclass(frozen=True, slots=True)
class ReactionChange:
    reaction: ReactionType
    net: int


@dataclass(frozen=True, slots=True)
class Completion:
    sessions: int
    average: float | None
    histogram: tuple[int, ...]  # 10 bins


@dataclass(frozen=True, slots=True)
class ContentAnalytics:
    content_id: str
    range: TimeRange
    granularity: Granularity
    totals: Totals
    series: tuple[SeriesPoint, ...]
    reactions: tuple[ReactionChange, ...]
    by_platform: tuple[Breakdown, ...]
    by_source: tuple[Breakdown, ...]
    by_region: tuple[Breakdown, ...]
    completion: Completion | None  # None: no duration
    time_to_first_like_ms: int | None


@dataclass(frozen=True, slots=True)
class TopContent:
    content_id: str
    views: int
    likes_added: int


@dataclass(frozen=True, slots=True)
class CreatorAnalytics:
    creator_id: str
    range: TimeRange
    granularity: Granularity
    totals: Totals
    series: tuple[SeriesPoint, ...]
    top_by_views: tuple[TopContent, ...]
    top_by_likes: tuple[TopContent, ...]


# --- time: buckets, ranges, limits ----------------------------------------------

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

BUCKET_MS: dict[Granularity, int] = {
    Granularity.MINUTE: MINUTE_MS,
    Granularity.HOUR: HOUR_MS,
    Granularity.DAY: DAY_MS,
}
# Longest range one query may ask for, per granularity, and how it is said.
MAX_RANGE: dict[Granularity, tuple[timedelta, str]] = {
    Granularity.MINUTE: (timedelta(hours=48), "a MINUTE range is at most 48 hours"),
    Granularity.HOUR: (timedelta(days=400), "an HOUR range is at most 400 days"),
    Granularity.DAY: (timedelta(days=1826), "a DAY range is at most 1826 days (5 years)"),
}
# How long buckets (and their sketches) are kept after their start; None: forever.
RETENTION_MS: dict[Granularity, int | None] = {
    Granularity.MINUTE: 48 * HOUR_MS,
    Granularity.HOUR: 400 * DAY_MS,
    Granularity.DAY: None,
}
COARSEST_FIRST = (Granularity.DAY, Granularity.HOUR, Granularity.MINUTE)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def ms_of(moment: datetime) -> int:
    """Exact milliseconds since the epoch (floor), from an aware datetime of any offset.
    ``timestamp() * 1000`` goes through a float and can be a millisecond off."""
    return (moment - _EPOCH) // _ONE_MS


def at_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def bucket_start(ms: int, granularity: Granularity) -> int:
    return ms - ms % BUCKET_MS[granularity]


def bucket_end(ms: int, granularity: Granularity) -> int:
    """The first bucket start at or after ``ms`` (a range's end, ceiled)."""
    size = BUCKET_MS[granularity]
    return -(-ms // size) * size


def _aware(moment: object, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise BadUserInput(f"range.{name} must be a date-time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadUserInput(
            f"range.{name} must have a time zone offset (e.g. 2026-01-02T03:04:05Z); "
            f"got {moment.isoformat()}"
        )
    return moment


def check_range(time_range: TimeRange, granularity: Granularity) -> TimeRange:
    """The range as asked, checked, then widened to whole buckets (UTC).

    The length limit applies to the range as asked: "the last 48 hours" at
    MINUTE is allowed even though widening adds part of a minute to it.
    """
    start = _aware(time_range.start, "from")
    end = _aware(time_range.end, "to")
    if not start < end:
        raise BadUserInput(
            f"range.from must be before range.to; got {start.isoformat()} .. {end.isoformat()}"
        )
    limit, message = MAX_RANGE[granularity]
    if end - start > limit:
        raise BadUserInput(f"{message}; got {end - start}")
    return TimeRange(
        at_ms(bucket_start(ms_of(start), granularity)),
        at_ms(bucket_end(ms_of(end), granularity)),
    )


def bucket_starts(widened: TimeRange, granularity: Granularity) -> list[int]:
    """Every bucket start of a widened range, oldest first."""
    size = BUCKET_MS[granularity]
    return list(range(ms_of(widened.start), ms_of(widened.end), size))


class CoverPiece(NamedTuple):
    granularity: Granularity
    starts: tuple[int, ...]


def cover(start_ms: int, end_ms: int) -> list[CoverPiece]:
    """The fewest buckets whose union is [start, end) (minute-aligned bounds): whole
    days in the middle, hours and then minutes at the edges. Distinct counts and
    creator top lists read these instead of every bucket of the asked granularity
    (a 400-day HOUR range: at most 398 days and 46 hours, not 9,600 hours)."""
    if start_ms % MINUTE_MS or end_ms % MINUTE_MS:
        raise ValueError("cover needs minute-aligned bounds")
    pieces: dict[Granularity, list[int]] = {g: [] for g in COARSEST_FIRST}

    def fill(lo: int, hi: int, level: int) -> None:
        if lo >= hi:
            return
        g = COARSEST_FIRST[level]
        size = BUCKET_MS[g]
        first, last = bucket_end(lo, g), bucket_start(hi, g)
        if g is Granularity.MINUTE or first < last:
            pieces[g].extend(range(first, last, size))
            fill(lo, first, level + 1)
            fill(last, hi, level + 1)
        else:
            fill(lo, hi, level + 1)

    fill(start_ms, end_ms, 0)
    return [CoverPiece(g, tuple(sorted(s))) for g, s in pieces.items() if s]


# --- scopes and what an event adds ----------------------------------------------

SUSPECT_COUNTERS = (SUSPECT_LIKES, SUSPECT_VIEWS)

CONTENT_SCOPE = "c:"
CREATOR_SCOPE = "u:"

LIKES_ADDED = "likes_added"
LIKES_REMOVED = "likes_removed"
VIEWS = "views"
WATCH_MS = "watch_ms"
REACTIONS = "reactions"
COMPLETION = "completion"
# Dimensions of the breakdowns, as stored (platform.<key>.views ...).
PLATFORM, SOURCE, REGION = "platform", "source", "region"
BREAKDOWN_FIELDS = (VIEWS, WATCH_MS, LIKES_ADDED)
UNKNOWN = "unknown"
HISTOGRAM_BINS = 10
# Completion sums are kept in millionths: an integer sum is the same whatever the
# order of the additions, so a rebuild gives back exactly the same buckets.
PPM = 1_000_000


def content_scope(content_id: str) -> str:
    return CONTENT_SCOPE + content_id


def creator_scope(creator_id: str) -> str:
    return CREATOR_SCOPE + creator_id


def dimension_key(value: object) -> str:
    """A breakdown key: the value's string ("IOS", "FEED", "US"), or "unknown" for
    a missing one or one that cannot be a stored field name."""
    if value is None:
        return UNKNOWN
    key = str(value)  # enum members are StrEnums: their value
    if not key or len(key) > 64 or "." in key or key.startswith("$"):
        return UNKNOWN
    return key


def completion_of(position_ms: int | None, duration_ms: int) -> tuple[int, int]:
    """(completion in millionths, histogram bin) of a session that ended at
    ``position_ms`` of ``duration_ms`` (> 0). Integer arithmetic: 0.3 is bin 3."""
    seen = min(max(position_ms or 0, 0), duration_ms)
    return seen * PPM // duration_ms, min(seen * HISTOGRAM_BINS // duration_ms, HISTOGRAM_BINS - 1)


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


# Creator scopes also count views and likes added per content, under
# "content.<key>.<counter>": the top lists then read the creator's own buckets
# (one per bucket of the range) instead of every content's.
CONTENTS = "content"
TOP_COUNTERS = (VIEWS, LIKES_ADDED)


def content_key(content_id: str) -> str:
    """A content id as one field name: a MongoDB field name holds no '.' and does
    not start with '$' ('%' is escaped first, so the mapping reverses exactly)."""
    return content_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def content_of_key(key: str) -> str:
    return key.replace("%2E", ".").replace("%24", "$").replace("%25", "%")


def _breakdowns(data: Mapping[str, object], name: str, n: int, into: dict[str, int]) -> None:
    into[f"{PLATFORM}.{dimension_key(data.get('platform'))}.{name}"] = n
    into[f"{SOURCE}.{dimension_key(data.get('source'))}.{name}"] = n
    into[f"{REGION}.{dimension_key(data.get('region'))}.{name}"] = n


def event_counters(event: EngagementEvent) -> dict[str, int]:
    """What one event adds to every bucket it falls in (the same for each scope and
    granularity); empty when it adds nothing."""
    data = event.data
    out: dict[str, int] = {}
    kind = event.kind
    if kind == REACTION:
        for name, delta in event.deltas.items():
            if name.startswith("r:") and delta:
                key = f"{REACTIONS}.{dimension_key(name[2:])}"
                out[key] = out.get(key, 0) + delta
        # What the reaction changed in the public count: an excluded actor's like
        # (domain/integrity.py) adds none, so it is not a like added here either.
        likes = event.deltas.get(PUBLIC_LIKES, 0)
        if likes > 0:
            out[LIKES_ADDED] = 1
            # Likes have no platform or source; their region is the reaction's.
            _breakdowns({"region": data.get("region")}, LIKES_ADDED, 1, out)
        elif likes < 0:
            out[LIKES_REMOVED] = 1
    elif kind == VIEW:
        if _public_view(event):
            out[VIEWS] = 1
            _breakdowns(data, VIEWS, 1, out)
    elif kind == RAW_VIEW:
        accepted = _int(data.get("accepted_ms"))
        if accepted > 0:
            out[WATCH_MS] = accepted
            _breakdowns(data, WATCH_MS, accepted, out)
    elif kind == VIEW_END:
        duration = _int(data.get("duration_ms"))
        if duration > 0:
            ppm, bin_ = completion_of(_int(data.get("position_ms")), duration)
            out[f"{COMPLETION}.n"] = 1
            if ppm:
                out[f"{COMPLETION}.sum_ppm"] = ppm
            out[f"{COMPLETION}.h{bin_}"] = 1
    return {k: v for k, v in out.items() if v}


def _public_view(event: EngagementEvent) -> bool:
    """A counted view in the public count (an excluded viewer's is not)."""
    return event.deltas.get(PUBLIC_VIEWS, 0) > 0


def _counts_publicly(event: EngagementEvent) -> bool:
    """A reaction whose actor's engagement counts (an excluded actor's changes only
    the suspect counter)."""
    return not any(k in event.deltas for k in SUSPECT_COUNTERS)


def viewer_of(event: EngagementEvent) -> str | None:
    """The viewer a counted view adds to its buckets' distinct viewers."""
    return event.actor if event.kind == VIEW and _public_view(event) else None


def reactor_of(event: EngagementEvent) -> str | None:
    """The user a reaction adds to its buckets' reacting users (engagement rate)."""
    if event.kind == REACTION and event.data.get("after") is not None and _counts_publicly(event):
        return event.actor
    return None


def first_like_ms(event: EngagementEvent) -> int | None:
    """When a like was added, if this event added one (time to first like)."""
    if event.kind == REACTION and event.deltas.get(PUBLIC_LIKES, 0) > 0:
        return event.occurred_at_ms
    return None


# --- folding a batch into per-bucket increments ----------------------------------


class BucketKey(NamedTuple):
    scope: str
    granularity: Granularity
    start_ms: int


@dataclass(slots=True)
class BucketDelta:
    """What a batch adds to one bucket."""

    counters: dict[str, int] = field(default_factory=dict)
    # What each guard token (an event id, or the log entry of raw view events)
    # contributed: the store's guard against applying anything twice, and what it
    # redoes token by token when the bucket saw some of them already.
    parts: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    viewers: set[str] = field(default_factory=set)
    reactors: set[str] = field(default_factory=set)
    creator: str | None = None  # of a content scope's content


@dataclass(slots=True)
class Fold:
    buckets: dict[BucketKey, BucketDelta] = field(default_factory=dict)
    # Earliest like added per content in the batch.
    first_likes: dict[str, int] = field(default_factory=dict)
    events: int = 0  # events that changed something

    def only(self, scopes: Iterable[str]) -> Fold:
        """The part of this fold for some scopes (a partial rebuild)."""
        wanted = set(scopes)
        return Fold(
            {k: d for k, d in self.buckets.items() if k.scope in wanted},
            {cid: ms for cid, ms in self.first_likes.items() if content_scope(cid) in wanted},
            self.events,
        )


ANALYTICS_KINDS = frozenset({REACTION, VIEW, RAW_VIEW, VIEW_END})


@dataclass(slots=True)
class _Cell:
    """What a batch adds in one minute of one content, for its own scope and (with
    ``creator_parts``) its creator's: the minute is summed once, and each coarser
    bucket and the creator's add up minutes, not events."""

    delta: BucketDelta
    creator_counters: dict[str, int] = field(default_factory=dict)
    creator_parts: dict[str, list[dict[str, int]]] = field(default_factory=dict)


def _merge(into: BucketDelta, counters: Mapping[str, int], cell: _Cell, creator: bool) -> None:
    acc = into.counters
    for name, n in counters.items():
        acc[name] = acc.get(name, 0) + n
    parts = into.parts
    for token, adds in (cell.creator_parts if creator else cell.delta.parts).items():
        mine = parts.get(token)
        if mine is None:
            parts[token] = list(adds)
        else:
            mine.extend(adds)
    into.viewers |= cell.delta.viewers
    into.reactors |= cell.delta.reactors


def fold(
    events: Iterable[EngagementEvent],
    creators: Mapping[str, str],
    token: Callable[[EngagementEvent], str] | None = None,
) -> Fold:
    """Per-bucket increments of a batch, for the content scope of each event and the
    creator scope of its content (``creators``: content id -> creator id; a content
    missing there gets its own scope only), at every granularity. ``token`` names
    what guards each event's increments in the store (default: its id).

    Each event is folded as given: dropping events applied before is the caller's.
    """
    out = Fold()
    cells: dict[tuple[str, int], _Cell] = {}
    for event in events:
        counters = event_counters(event)
        viewer = viewer_of(event)
        reactor = reactor_of(event)
        if not counters and viewer is None and reactor is None:
            continue
        out.events += 1
        cid = event.content_id
        ms = event.occurred_at_ms
        creator = creators.get(cid)
        at = (cid, ms - ms % MINUTE_MS)
        cell = cells.get(at)
        if cell is None:
            cell = cells[at] = _Cell(BucketDelta(creator=creator))
        delta = cell.delta
        if counters:
            guard = event.event_id if token is None else token(event)
            acc = delta.counters
            for name, n in counters.items():
                acc[name] = acc.get(name, 0) + n
            delta.parts.setdefault(guard, []).append(counters)
            if creator is not None:
                adds = dict(counters)
                for name in TOP_COUNTERS:
                    if name in counters:
                        adds[f"{CONTENTS}.{content_key(cid)}.{name}"] = counters[name]
                cc = cell.creator_counters
                for name, n in adds.items():
                    cc[name] = cc.get(name, 0) + n
                cell.creator_parts.setdefault(guard, []).append(adds)
        if viewer is not None:
            delta.viewers.add(viewer)
        if reactor is not None:
            delta.reactors.add(reactor)
        liked = first_like_ms(event)
        if liked is not None and liked < out.first_likes.get(cid, liked + 1):
            out.first_likes[cid] = liked
    buckets = out.buckets
    coarser = [(g, BUCKET_MS[g]) for g in (Granularity.DAY, Granularity.HOUR)]
    for (cid, minute), cell in cells.items():
        delta = cell.delta
        creator = delta.creator
        scopes = [(content_scope(cid), delta.counters, False)]
        if creator is not None:
            scopes.append((creator_scope(creator), cell.creator_counters, True))
        for scope, counters, for_creator in scopes:
            for g, size in coarser:
                key = BucketKey(scope, g, minute - minute % size)
                into = buckets.get(key)
                if into is None:
                    into = buckets[key] = BucketDelta(creator=None if for_creator else creator)
                _merge(into, counters, cell, for_creator)
            key = BucketKey(scope, Granularity.MINUTE, minute)
            if not for_creator:
                buckets[key] = delta  # the cell is the content's minute bucket
                continue
            into = buckets.get(key)
            if into is None:
                into = buckets[key] = BucketDelta()
            _merge(into, counters, cell, True)
    return out


# --- reading summed buckets back ------------------------------------------------


def add_counters(into: dict[str, int], counters: Mapping[str, int]) -> dict[str, int]:
    for name, n in counters.items():
        into[name] = into.get(name, 0) + n
    return into


def _ratio(numerator: int, divisor: int) -> float | None:
    return numerator / divisor if divisor else None


def totals(counters: Mapping[str, int], unique_viewers: int, reacting_users: int) -> Totals:
    added, removed = counters.get(LIKES_ADDED, 0), counters.get(LIKES_REMOVED, 0)
    views, watch = counters.get(VIEWS, 0), counters.get(WATCH_MS, 0)
    return Totals(
        likes_added=added,
        likes_removed=removed,
        net_likes=added - removed,
        views=views,
        unique_viewers=unique_viewers,
        watch_time_ms=watch,
        average_watch_ms=_ratio(watch, views),
        like_to_view_ratio=_ratio(added - removed, views),
        engagement_rate=_ratio(reacting_users, unique_viewers),
    )


def series(
    starts: Sequence[int], buckets: Mapping[int, Mapping[str, int]]
) -> tuple[SeriesPoint, ...]:
    """One point per bucket start, oldest first; a bucket with no document is zeros."""
    points = []
    empty: Mapping[str, int] = {}
    for start in starts:
        c = buckets.get(start, empty)
        added, removed = c.get(LIKES_ADDED, 0), c.get(LIKES_REMOVED, 0)
        points.append(
            SeriesPoint(
                start=at_ms(start),
                likes_added=added,
                likes_removed=removed,
                net_likes=added - removed,
                views=c.get(VIEWS, 0),
                watch_time_ms=c.get(WATCH_MS, 0),
            )
        )
    return tuple(points)


def breakdown(counters: Mapping[str, int], dimension: str) -> tuple[Breakdown, ...]:
    """Rows of one dimension, largest first: by views, then watch time, then likes
    added, then key (ascending). Keys whose numbers are all zero are left out."""
    rows: dict[str, dict[str, int]] = {}
    prefix = dimension + "."
    for name, n in counters.items():
        if name.startswith(prefix):
            key, _, measure = name[len(prefix) :].rpartition(".")
            if key and measure in BREAKDOWN_FIELDS:
                rows.setdefault(key, {})[measure] = n
    out = [
        Breakdown(key, r.get(VIEWS, 0), r.get(WATCH_MS, 0), r.get(LIKES_ADDED, 0))
        for key, r in rows.items()
        if any(r.values())
    ]
    out.sort(key=lambda b: (-b.views, -b.watch_time_ms, -b.likes_added, b.key))
    return tuple(out)


def reaction_changes(counters: Mapping[str, int]) -> tuple[ReactionChange, ...]:
    """Net change per reaction type, in the types' order; types with none left out."""
    return tuple(
        ReactionChange(r, counters[f"{REACTIONS}.{r.value}"])
        for r in ReactionType
        if counters.get(f"{REACTIONS}.{r.value}", 0)
    )


def completion(counters: Mapping[str, int]) -> Completion:
    n = counters.get(f"{COMPLETION}.n", 0)
    total = counters.get(f"{COMPLETION}.sum_ppm", 0)
    return Completion(
        sessions=n,
        average=total / n / PPM if n else None,
        histogram=tuple(counters.get(f"{COMPLETION}.h{i}", 0) for i in range(HISTOGRAM_BINS)),
    )


# What a creator's totals and series read of each bucket.
SERIES_FIELDS = (LIKES_ADDED, LIKES_REMOVED, VIEWS, WATCH_MS)


def content_totals(counters: Mapping[str, int]) -> list[TopContent]:
    """Views and likes added per content, from a creator scope's summed counters."""
    per: dict[str, dict[str, int]] = {}
    prefix = f"{CONTENTS}."
    for name, n in counters.items():
        if name.startswith(prefix):
            key, _, counter = name[len(prefix) :].rpartition(".")
            per.setdefault(key, {})[counter] = n
    return [
        TopContent(content_of_key(key), c.get(VIEWS, 0), c.get(LIKES_ADDED, 0))
        for key, c in per.items()
    ]


def top_contents(
    rows: Iterable[TopContent], top: int
) -> tuple[tuple[TopContent, ...], tuple[TopContent, ...]]:
    """(by views, by likes added), each at most ``top`` long, largest first, ties by
    the other number and then content id; a content with none of the measure is
    not in that list."""
    rows = list(rows)
    by_views = sorted(
        (r for r in rows if r.views), key=lambda r: (-r.views, -r.likes_added, r.content_id)
    )
    by_likes = sorted(
        (r for r in rows if r.likes_added),
        key=lambda r: (-r.likes_added, -r.views, r.content_id),
    )
    return tuple(by_views[:top]), tuple(by_likes[:top])


# --- the ports the read use cases need -------------------------------------------


class RollupReader(Protocol):
    async def documents(
        self,
        scope: str,
        granularity: Granularity,
        starts: Sequence[int],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """The counters of a scope's buckets at these starts (absent: no activity),
        nested by the parts of their dotted paths (domain.analytics_sums); with
        ``fields``, only those top-level names (e.g. ``views``, or ``content``
        for every ``content.*`` counter). The documents may be shared with a
        cache of the store's: read them, never modify them."""

    async def first_like_ms(self, content_id: str) -> int | None: ...


class SketchReader(Protocol):
    async def distinct(self, scope: str, pieces: Sequence[CoverPiece]) -> tuple[int, int]:
        """(distinct viewers, distinct reacting users) of a scope over the pieces."""


@dataclass(slots=True)
class AnalyticsPorts:
    rollups: RollupReader
    sketches: SketchReader
