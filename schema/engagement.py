from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from domain.likes import LikeResult
from domain.ports import ReactionRecord
from domain.summary import Summary
from schema.enums import ReactionType
from schema.inputs import leaf_input
from schema.integrity import CountIntegrity


@strawberry.type
class ReactionCount:
    reaction: ReactionType
    count: int


@strawberry.type
class EngagementSummary:
    content_id: strawberry.ID
    likes: int = strawberry.field(description="Active reactions of every type.")
    reactions: list[ReactionCount] = strawberry.field(
        description="One entry per reaction type whose count is above zero."
    )
    viewer_reaction: ReactionType | None = strawberry.field(
        description="The caller's active reaction, or null (always null when anonymous)."
    )
    views: int = strawberry.field(description="Counted views.")
    unique_viewers: int = strawberry.field(
        description="Distinct viewers with at least one counted view (HyperLogLog estimate)."
    )
    integrity: CountIntegrity = strawberry.field(
        description=(
            "How trustworthy these counts are: what excluded actors did (kept out of "
            "likes and views) and the share from actors above the confidence bar."
        )
    )

    @classmethod
    def from_domain(cls, s: Summary) -> EngagementSummary:
        # The domain Summary has every field of this type under the same name
        # (and its reactions every field of ReactionCount), so GraphQL reads
        # them off it: no copy of each card of a feed or push. A unit test keeps
        # the two in step.
        return cast("EngagementSummary", s)


@leaf_input
@strawberry.input
class LikeInput:
    content_id: strawberry.ID
    reaction: ReactionType = ReactionType.LIKE
    request_id: str | None = strawberry.field(
        default=None,
        description="Idempotency key, per user, kept at least 24 h.",
    )
    device_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The client's device id, as in ViewInput: a signal for abuse limits.",
    )


@leaf_input
@strawberry.input
class UnlikeInput:
    content_id: strawberry.ID
    request_id: str | None = None
    device_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The client's device id, as in ViewInput: a signal for abuse limits.",
    )


@strawberry.type
class LikePayload:
    content_id: strawberry.ID
    viewer_reaction: ReactionType | None
    changed: bool
    summary: EngagementSummary

    @classmethod
    def from_domain(cls, r: LikeResult) -> LikePayload:
        return cls(
            content_id=strawberry.ID(r.content_id),
            viewer_reaction=r.viewer_reaction,
            changed=r.changed,
            summary=EngagementSummary.from_domain(r.summary),
        )


@strawberry.type
class Reactor:
    user_id: strawberry.ID
    reaction: ReactionType
    reacted_at: datetime

    @classmethod
    def from_domain(cls, r: ReactionRecord) -> Reactor:
        assert r.reaction is not None  # only active reactions are listed
        return cls(user_id=strawberry.ID(r.user_id), reaction=r.reaction, reacted_at=r.updated_at)


@strawberry.type
class ReactorEdge:
    cursor: str
    node: Reactor


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ReactorConnection:
    edges: list[ReactorEdge]
    page_info: PageInfo
