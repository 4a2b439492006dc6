"""Read use cases of creator analytics: a content's, and a creator's over all theirs.

They read rollups and sketches only (never raw events): a fixed number of
queries whatever the range, answered from the buckets of the asked granularity
(series, totals, breakdowns) and from the fewest buckets covering the range
(distinct people, creator top lists).
"""

from __future__ import annotations

import asyncio

from domain.analytics import (
    CONTENTS,
    PLATFORM,
    REGION,
    SERIES_FIELDS,
    SOURCE,
    AnalyticsPorts,
    ContentAnalytics,
    CreatorAnalytics,
    Granularity,
    TimeRange,
    add_counters,
    breakdown,
    bucket_starts,
    check_range,
    completion,
    content_scope,
    content_totals,
    cover,
    creator_scope,
    ms_of,
    reaction_changes,
    series,
    top_contents,
    totals,
)
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


async def content_analytics(
    deps: Deps,
    ports: AnalyticsPorts | None,
    actor: Actor | None,
    content_id: str,
    time_range: TimeRange,
    granularity: Granularity,
) -> ContentAnalytics:
    require_user(actor)
    check_id(content_id, "contentId")
    widened = check_range(time_range, granularity)
    content = (await deps.contents.get_many([content_id])).get(content_id)
    if content is None:
        raise ContentNotFound(f"no content registered with id {content_id!r}")
    authorize(actor, content.creator_id)
    p = _ports(ports)

    scope = content_scope(content_id)
    starts = bucket_starts(widened, granularity)
    buckets, (viewers, reactors), first_like = await asyncio.gather(
        p.rollups.buckets(scope, granularity, starts),
        p.sketches.distinct(scope, cover(ms_of(widened.start), ms_of(widened.end))),
        p.rollups.first_like_ms(content_id),
    )
    summed: dict[str, int] = {}
    for counters in buckets.values():
        add_counters(summed, counters)
    return ContentAnalytics(
        content_id=content_id,
        range=widened,
        granularity=granularity,
        totals=totals(summed, viewers, reactors),
        series=series(starts, buckets),
        reactions=reaction_changes(summed),
        by_platform=breakdown(summed, PLATFORM),
        by_source=breakdown(summed, SOURCE),
        by_region=breakdown(summed, REGION),
        completion=completion(summed) if content.duration_ms else None,
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
) -> CreatorAnalytics:
    require_user(actor)
    check_id(creator_id, "creatorId")
    if not 0 <= top <= MAX_TOP:
        raise BadUserInput(f"top must be between 0 and {MAX_TOP}; got {top}")
    widened = check_range(time_range, granularity)
    authorize(actor, creator_id)
    p = _ports(ports)

    scope = creator_scope(creator_id)
    starts = bucket_starts(widened, granularity)
    covering = cover(ms_of(widened.start), ms_of(widened.end))
    pieces = covering if top else []
    # One read per granularity: the series' buckets and the top lists' cover are
    # often the same documents (a range of whole days by DAY), read once, and only
    # the counters each needs (the series' four; "content.*" for the top lists).
    in_series = set(starts)
    wanted: dict[Granularity, set[int]] = {granularity: set(in_series)}
    fields: dict[Granularity, set[str]] = {granularity: set(SERIES_FIELDS)}
    for piece in pieces:
        wanted.setdefault(piece.granularity, set()).update(piece.starts)
        fields.setdefault(piece.granularity, set()).add(CONTENTS)
    grans = list(wanted)
    found, (viewers, reactors) = await asyncio.gather(
        asyncio.gather(
            *(p.rollups.buckets(scope, g, sorted(wanted[g]), sorted(fields[g])) for g in grans)
        ),
        p.sketches.distinct(scope, covering),
    )
    read = dict(zip(grans, found, strict=True))
    buckets = {s: c for s, c in read[granularity].items() if s in in_series}
    summed: dict[str, int] = {name: 0 for name in SERIES_FIELDS}
    for counters in buckets.values():
        for name in SERIES_FIELDS:
            summed[name] += counters.get(name, 0)
    per_content: dict[str, int] = {}
    for piece in pieces:
        got = read[piece.granularity]
        for start in piece.starts:
            doc = got.get(start)
            if doc is not None:
                add_counters(per_content, doc)
    by_views, by_likes = top_contents(content_totals(per_content), top)
    return CreatorAnalytics(
        creator_id=creator_id,
        range=widened,
        granularity=granularity,
        totals=totals(summed, viewers, reactors),
        series=series(starts, buckets),
        top_by_views=by_views,
        top_by_likes=by_likes,
    )
