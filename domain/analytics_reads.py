"""Read use cases of creator analytics: a content's, and a creator's over all theirs.

They read rollups and sketches only (never raw events): a fixed number of
queries whatever the range. The series reads four counters of each bucket of the
asked granularity; every sum (totals, breakdowns, distinct people, creator top
lists) reads the fewest buckets covering the range; and a query reads only the
parts of the answer it selects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from domain.analytics import (
    COMPLETION,
    CONTENTS,
    PLATFORM,
    REACTIONS,
    REGION,
    SERIES_FIELDS,
    SOURCE,
    AnalyticsPorts,
    ContentAnalytics,
    CoverPiece,
    CreatorAnalytics,
    Granularity,
    TimeRange,
    breakdown,
    bucket_starts,
    check_range,
    completion,
    content_scope,
    cover,
    creator_scope,
    ms_of,
    reaction_changes,
    series,
    top_contents,
    totals,
)
from domain.analytics_sums import content_sums, flat, sum_nested
from domain.contents import check_id
from domain.deps import Deps
from domain.errors import BadUserInput, ContentNotFound, DomainError, Forbidden
from domain.identity import Actor, require_user

# Besides a creator reading their own: operators and internal services.
ANALYTICS_ROLES = ("admin", "service")
MAX_TOP = 100


def authorize(actor: Actor | None, creator_id: str) -> Actor:
    """The creator themselves, or an admin or a service; anonymous callers are
    Unauthenticated, as for every other guarded operation."""
    user = require_user(actor)
    if user.user_id != creator_id and not user.roles.intersection(ANALYTICS_ROLES):
        raise Forbidden(
            "analytics are visible to the content's creator only (or an admin or service)"
        )
    return user


def _ports(ports: AnalyticsPorts | None) -> AnalyticsPorts:
    if ports is None:
        raise DomainError("analytics are not configured on this server")
    return ports


# What each part of an answer sums over the fewest buckets that cover the range
# (top-level fields of a bucket); the series reads SERIES_FIELDS of each bucket
# of the asked granularity. A query that selects fewer parts reads less.
CONTENT_SUMS: dict[str, tuple[str, ...]] = {
    "totals": SERIES_FIELDS,
    "reactions": (REACTIONS,),
    "by_platform": (PLATFORM,),
    "by_source": (SOURCE,),
    "by_region": (REGION,),
    "completion": (COMPLETION,),
}
CONTENT_PARTS = (*CONTENT_SUMS, "series", "time_to_first_like_ms")
CREATOR_SUMS: dict[str, tuple[str, ...]] = {
    "totals": SERIES_FIELDS,
    "top_by_views": (CONTENTS,),
    "top_by_likes": (CONTENTS,),
}
CREATOR_PARTS = (*CREATOR_SUMS, "series")


class Read(NamedTuple):
    granularity: Granularity
    starts: tuple[int, ...]
    fields: tuple[str, ...]


def plan_reads(
    granularity: Granularity,
    series: Sequence[int],
    pieces: Sequence[CoverPiece],
    fields: Collection[str],
) -> list[Read]:
    """The reads of a dashboard: the series' buckets (``series``, of
    ``granularity``) with SERIES_FIELDS, and the cover's buckets (``pieces``)
    with the summed ``fields`` (none: no cover read). Each bucket is read once,
    with every field its uses need; buckets that need the same fields are read
    together. A range of whole days by DAY is one read of its days; 48 hours by
    HOUR sums its one or two whole days from their day buckets and its edge hours
    whole, and reads only the series' counters of the other hours."""
    summed = tuple(sorted(fields))
    both = tuple(sorted({*fields, *SERIES_FIELDS}))
    in_series = set(series)
    rest = set(in_series)
    reads: list[Read] = []
    for piece in pieces if fields else ():
        if piece.granularity is granularity:
            shared = tuple(s for s in piece.starts if s in in_series)
            alone = tuple(s for s in piece.starts if s not in in_series)
            rest.difference_update(shared)
            reads += [Read(granularity, shared, both), Read(granularity, alone, summed)]
        else:
            reads.append(Read(piece.granularity, piece.starts, summed))
    reads.append(Read(granularity, tuple(s for s in series if s in rest), SERIES_FIELDS))
    return [r for r in reads if r.starts]


async def _read(
    p: AnalyticsPorts, scope: str, reads: Sequence[Read]
) -> dict[Granularity, dict[int, dict[str, Any]]]:
    found = await asyncio.gather(
        *(p.rollups.documents(scope, r.granularity, r.starts, r.fields) for r in reads)
    )
    out: dict[Granularity, dict[int, dict[str, Any]]] = {}
    for r, docs in zip(reads, found, strict=True):
        out.setdefault(r.granularity, {}).update(docs)
    return out


def _covered(
    got: Mapping[Granularity, Mapping[int, dict[str, Any]]], pieces: Sequence[CoverPiece]
) -> Iterator[dict[str, Any]]:
    """The documents of the cover's buckets that exist."""
    for piece in pieces:
        docs = got.get(piece.granularity, {})
        for start in piece.starts:
            doc = docs.get(start)
            if doc is not None:
                yield doc


def _parts(known: Sequence[str], selected: Collection[str] | None) -> set[str]:
    return set(known) if selected is None else set(known).intersection(selected)


def _fields(known: Mapping[str, tuple[str, ...]], parts: Iterable[str]) -> set[str]:
    return {f for part in parts if part in known for f in known[part]}


async def _none() -> None:
    return None


async def _no_distinct() -> tuple[int, int]:
    return 0, 0


async def content_analytics(
    deps: Deps,
    ports: AnalyticsPorts | None,
    actor: Actor | None,
    content_id: str,
    time_range: TimeRange,
    granularity: Granularity,
    selected: Collection[str] | None = None,
) -> ContentAnalytics:
    """A content's analytics. ``selected`` names the parts wanted (of
    CONTENT_PARTS; None: all): the others are left empty (zeros, (), None) and
    cost no reads."""
    require_user(actor)
    check_id(content_id, "contentId")
    widened = check_range(time_range, granularity)
    content = (await deps.contents.get_many([content_id])).get(content_id)
    if content is None:
        raise ContentNotFound(f"no content registered with id {content_id!r}")
    authorize(actor, content.creator_id)
    p = _ports(ports)

    parts = _parts(CONTENT_PARTS, selected)
    if not content.duration_ms:
        parts.discard("completion")
    scope = content_scope(content_id)
    starts = bucket_starts(widened, granularity)
    pieces = cover(ms_of(widened.start), ms_of(widened.end))
    reads = plan_reads(
        granularity, starts if "series" in parts else (), pieces, _fields(CONTENT_SUMS, parts)
    )
    got, (viewers, reactors), first_like = await asyncio.gather(
        _read(p, scope, reads),
        p.sketches.distinct(scope, pieces) if "totals" in parts else _no_distinct(),
        p.rollups.first_like_ms(content_id) if "time_to_first_like_ms" in parts else _none(),
    )
    # One nested sum of the cover's buckets, flattened once for the definitions.
    summed = flat(sum_nested(_covered(got, pieces)))
    return ContentAnalytics(
        content_id=content_id,
        range=widened,
        granularity=granularity,
        totals=totals(summed, viewers, reactors),
        series=series(starts, got.get(granularity, {})) if "series" in parts else (),
        reactions=reaction_changes(summed),
        by_platform=breakdown(summed, PLATFORM),
        by_source=breakdown(summed, SOURCE),
        by_region=breakdown(summed, REGION),
        completion=completion(summed) if "completion" in parts else None,
        time_to_first_like_ms=None
        if first_like is None
        # A like can only follow registration; clocks of two machines may disagree.
        else max(0, first_like - ms_of(content.created_at)),
    )


async def creator_analytics(
    deps: Deps,
    ports: AnalyticsPorts | None,
    actor: Actor | None,
    creator_id: str,
    time_range: TimeRange,
    granularity: Granularity,
    top: int = 10,
    selected: Collection[str] | None = None,
) -> CreatorAnalytics:
    """A creator's analytics over all their contents. ``selected`` names the parts
    wanted (of CREATOR_PARTS; None: all): the others are left empty."""
    require_user(actor)
    check_id(creator_id, "creatorId")
    if not 0 <= top <= MAX_TOP:
        raise BadUserInput(f"top must be between 0 and {MAX_TOP}; got {top}")
    widened = check_range(time_range, granularity)
    authorize(actor, creator_id)
    p = _ports(ports)

    parts = _parts(CREATOR_PARTS, selected)
    if not top:
        parts -= {"top_by_views", "top_by_likes"}
    scope = creator_scope(creator_id)
    starts = bucket_starts(widened, granularity)
    pieces = cover(ms_of(widened.start), ms_of(widened.end))
    reads = plan_reads(
        granularity, starts if "series" in parts else (), pieces, _fields(CREATOR_SUMS, parts)
    )
    got, (viewers, reactors) = await asyncio.gather(
        _read(p, scope, reads),
        p.sketches.distinct(scope, pieces) if "totals" in parts else _no_distinct(),
    )
    covered = list(_covered(got, pieces))
    summed = {name: sum(doc.get(name, 0) for doc in covered) for name in SERIES_FIELDS}
    empty: dict[str, Any] = {}
    by_views, by_likes = top_contents(
        content_sums(doc.get(CONTENTS, empty) for doc in covered), top
    )
    return CreatorAnalytics(
        creator_id=creator_id,
        range=widened,
        granularity=granularity,
        totals=totals(summed, viewers, reactors),
        series=series(starts, got.get(granularity, {})) if "series" in parts else (),
        top_by_views=by_views if "top_by_views" in parts else (),
        top_by_likes=by_likes if "top_by_likes" in parts else (),
    )
