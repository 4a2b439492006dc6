from __future__ import annotations

from domain.catalog import register_content as register
from domain.contents import ContentKind
from resolvers.context import Info
from schema.contents import Content, RegisterContentInput


async def register_content(info: Info, input: RegisterContentInput) -> Content:
    ctx = info.context
    content = await register(
        ctx.deps,
        ctx.user(),
        str(input.content_id),
        str(input.creator_id),
        ContentKind(input.kind),
        input.duration_ms,
    )
    return Content.from_domain(content)
