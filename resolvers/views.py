from __future__ import annotations

import strawberry

from domain.errors import NotFound
from domain.view_recording import record_views as record
from domain.view_recording import view_session as find_session
from resolvers.context import Info
from schema.views import ViewInput, ViewPayload, ViewSessionInfo


async def record_view(info: Info, input: ViewInput) -> ViewPayload:
    ctx = info.context
    (result,) = await record(
        ctx.deps,
        ctx.user(),
        [input.to_raw()],
        ctx.region,
        addr=await ctx.client_address(),
        limiter=ctx.services.rate_limiter,
    )
    return ViewPayload.from_domain(result)


async def record_views(info: Info, inputs: list[ViewInput]) -> list[ViewPayload]:
    ctx = info.context
    results = await record(
        ctx.deps,
        ctx.user(),
        [i.to_raw() for i in inputs],
        ctx.region,
        addr=await ctx.client_address(),
        limiter=ctx.services.rate_limiter,
    )
    return [ViewPayload.from_domain(r) for r in results]


async def view_session(info: Info, session_id: strawberry.ID) -> ViewSessionInfo | None:
    ctx = info.context
    try:
        session = await find_session(ctx.deps, ctx.user(), str(session_id))
    except NotFound:
        return None
    return ViewSessionInfo.from_domain(session)
