"""Thin resolvers for likes and summaries: parse, call one use case, map."""

from __future__ import annotations

import strawberry

from domain import reads
from domain.contents import check_id
from domain.likes import set_reaction
from domain.reactions import ReactionType
from resolvers.context import Info
from schema.engagement import (
    EngagementSummary,
    LikeInput,
    LikePayload,
    PageInfo,
    Reactor,
    ReactorConnection,
    ReactorEdge,
    UnlikeInput,
)


async def engagement_summary(info: Info, content_id: strawberry.ID) -> EngagementSummary:
    check_id(content_id, "contentId")
    ctx = info.context
    ctx.user()
    return EngagementSummary.from_domain(await ctx.loaders.summary(str(content_id)))


async def engagement_summaries(
    info: Info, content_ids: list[strawberry.ID]
) -> list[EngagementSummary]:
    ids = reads.check_ids([str(c) for c in content_ids])
    info.context.user()
    found = await info.context.loaders.summaries.load(tuple(ids))
    return [EngagementSummary.from_domain(s) for s in found]


async def reactors(
    info: Info,
    content_id: strawberry.ID,
    reaction: ReactionType | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> ReactorConnection:
    info.context.user()  # a bad token is reported, not silently ignored
    rows, has_next = await reads.reactors(
        info.context.deps, str(content_id), reaction, 20 if first is None else first, after
    )
    edges = [ReactorEdge(cursor=reads.encode_cursor(r), node=Reactor.from_domain(r)) for r in rows]
    return ReactorConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
    )


async def like(info: Info, input: LikeInput) -> LikePayload:
    ctx = info.context
    result = await set_reaction(
        ctx.deps,
        ctx.user(),
        str(input.content_id),
        ReactionType(input.reaction),
        input.request_id,
        region=ctx.region,
        device_id=None if input.device_id is None else str(input.device_id),
        addr=await ctx.client_address(),
        limiter=ctx.services.rate_limiter,
    )
    return LikePayload.from_domain(result)


async def unlike(info: Info, input: UnlikeInput) -> LikePayload:
    ctx = info.context
    result = await set_reaction(
        ctx.deps,
        ctx.user(),
        str(input.content_id),
        None,
        input.request_id,
        region=ctx.region,
        device_id=None if input.device_id is None else str(input.device_id),
        addr=await ctx.client_address(),
        limiter=ctx.services.rate_limiter,
    )
    return LikePayload.from_domain(result)
