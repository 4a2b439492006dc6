from __future__ import annotations

from domain.catalog import Registration
from domain.catalog import register_content as register
from domain.catalog import register_contents as register_many
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


async def register_contents(info: Info, inputs: list[RegisterContentInput]) -> list[Content]:
    ctx = info.context
    contents = await register_many(
        ctx.deps,
        ctx.user(),
        [
            Registration(str(i.content_id), str(i.creator_id), ContentKind(i.kind), i.duration_ms)
            for i in inputs
        ],
    )
    return [Content.from_domain(c) for c in contents]
