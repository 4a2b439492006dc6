from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from domain import analytics_reads as reads
from domain.analytics import Granularity
from resolvers.context import Info
from schema.analytics import ContentAnalytics, CreatorAnalytics, TimeRange
from schema.engagement import EngagementSummary

RangeArg = Annotated[TimeRange, strawberry.argument(name="range")]

# The GraphQL fields that are parts of the answer (domain.analytics_reads'
# CONTENT_PARTS and CREATOR_PARTS): only the selected ones are read.
PARTS = {
    "totals": "totals",
    "series": "series",
    "reactions": "reactions",
    "byPlatform": "by_platform",
    "bySource": "by_source",
    "byRegion": "by_region",
    "completion": "completion",
    "timeToFirstLikeMs": "time_to_first_like_ms",
    "topByViews": "top_by_views",
    "topByLikes": "top_by_likes",
}


def _names(selections: Iterable[Selection], into: set[str]) -> set[str]:
    """The field names a selection asks for at its first level (fragments looked
    into; a field under @skip/@include counts as asked: reading more is safe)."""
    for s in selections:
        if isinstance(s, SelectedField):
            into.add(s.name)
        else:
            _names(s.selections, into)
    return into


def _selected(info: Info) -> set[str]:
    """The parts of the answer (domain names) selected under this field."""
    names: set[str] = set()
    for field in info.selected_fields:
        _names(field.selections, names)
    return {PARTS[n] for n in names if n in PARTS}


async def content_analytics(
    info: Info,
    content_id: strawberry.ID,
    time_range: RangeArg,
    granularity: Granularity = Granularity.HOUR,
) -> ContentAnalytics:
    ctx = info.context
    parts = _selected(info)
    result = await reads.content_analytics(
        ctx.deps,
        ctx.deps.analytics,
        ctx.user(),
        str(content_id),
        time_range.to_domain(),
        granularity,
        parts,
    )
    lifetime = EngagementSummary.from_domain(await ctx.loaders.summary(str(content_id)))
    return ContentAnalytics.from_domain(result, lifetime)


async def creator_analytics(
    info: Info,
    creator_id: strawberry.ID,
    time_range: RangeArg,
    granularity: Granularity = Granularity.DAY,
    top: int | None = 10,
) -> CreatorAnalytics:
    ctx = info.context
    parts = _selected(info)
    result = await reads.creator_analytics(
        ctx.deps,
        ctx.deps.analytics,
        ctx.user(),
        str(creator_id),
        time_range.to_domain(),
        granularity,
        10 if top is None else top,
        parts,
    )
    return CreatorAnalytics.from_domain(result)
