from __future__ import annotations

from typing import Annotated

import strawberry

from domain import analytics_reads as reads
from domain.analytics import Granularity
from resolvers.context import Info
from schema.analytics import ContentAnalytics, CreatorAnalytics, TimeRange
from schema.engagement import EngagementSummary

RangeArg = Annotated[TimeRange, strawberry.argument(name="range")]


async def content_analytics(
    info: Info,
    content_id: strawberry.ID,
    time_range: RangeArg,
    granularity: Granularity = Granularity.HOUR,
) -> ContentAnalytics:
    ctx = info.context
    result = await reads.content_analytics(
        ctx.deps,
        ctx.deps.analytics,
        ctx.user(),
        str(content_id),
        time_range.to_domain(),
        granularity,
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
    result = await reads.creator_analytics(
        ctx.deps,
        ctx.deps.analytics,
        ctx.user(),
        str(creator_id),
        time_range.to_domain(),
        granularity,
        10 if top is None else top,
    )
    return CreatorAnalytics.from_domain(result)
