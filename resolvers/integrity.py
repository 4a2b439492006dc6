from __future__ import annotations

import strawberry

from domain import enforcement
from domain.errors import DomainError
from domain.ports import IntegrityPorts
from resolvers.context import Context, Info
from schema.integrity import (
    ActorRisk,
    ActorVerdictInput,
    IntegrityCase,
    IntegrityCaseConnection,
    IntegrityCaseEdge,
)


def _ports(ctx: Context) -> IntegrityPorts:
    ports = ctx.deps.integrity
    if ports is None:
        raise DomainError("count integrity is not configured on this server")
    return ports


async def actor_risk(info: Info, actor: strawberry.ID) -> ActorRisk:
    ctx = info.context
    return ActorRisk.from_domain(await enforcement.actor_risk(_ports(ctx), ctx.user(), str(actor)))


async def integrity_cases(
    info: Info, first: int | None = 20, after: str | None = None
) -> IntegrityCaseConnection:
    ctx = info.context
    rows, more = await enforcement.cases(
        _ports(ctx), ctx.user(), 20 if first is None else first, after
    )
    edges = [IntegrityCaseEdge(cursor=e.entry_id, node=IntegrityCase.from_domain(e)) for e in rows]
    return IntegrityCaseConnection(
        edges=edges, has_next_page=more, end_cursor=edges[-1].cursor if edges else None
    )


async def set_actor_verdict(info: Info, input: ActorVerdictInput) -> ActorRisk:
    ctx = info.context
    record = await enforcement.set_verdict(
        ctx.deps, _ports(ctx), ctx.user(), str(input.actor), input.verdict, input.note
    )
    return ActorRisk.from_domain(record)
