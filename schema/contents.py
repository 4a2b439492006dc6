from __future__ import annotations

from datetime import datetime

import strawberry

from domain.contents import Content as DomainContent
from schema.enums import ContentKind
from schema.inputs import leaf_input


@leaf_input
@strawberry.input
class RegisterContentInput:
    content_id: strawberry.ID
    creator_id: strawberry.ID
    kind: ContentKind
    duration_ms: int | None = None


@strawberry.type
class Content:
    content_id: strawberry.ID
    creator_id: strawberry.ID
    kind: ContentKind
    duration_ms: int | None
    created_at: datetime

    @classmethod
    def from_domain(cls, c: DomainContent) -> Content:
        return cls(
            content_id=strawberry.ID(c.content_id),
            creator_id=strawberry.ID(c.creator_id),
            kind=c.kind,
            duration_ms=c.duration_ms,
            created_at=c.created_at,
        )
