"""The root schema, assembled from each feature's fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from resolvers import contents, engagement, live, views
from resolvers.context import Info
from schema.contents import Content
from schema.documents import CachedDocuments
from schema.engagement import EngagementSummary, LikePayload, ReactorConnection
from schema.execution import CompiledExecutionContext
from schema.metrics import ObservedErrorCodes
from schema.views import ViewPayload, ViewSessionInfo


@strawberry.type
class Query:
    engagement_summary: EngagementSummary = strawberry.field(resolver=engagement.engagement_summary)
    engagement_summaries: list[EngagementSummary] = strawberry.field(
        resolver=engagement.engagement_summaries,
        description="Same order as asked; at most 100 ids.",
    )
    reactors: ReactorConnection = strawberry.field(
        resolver=engagement.reactors, description="Newest first; first <= 100."
    )
    view_session: ViewSessionInfo | None = strawberry.field(
        resolver=views.view_session,
        description="To the session's own viewer, or an admin; null otherwise.",
    )


@strawberry.type
class Mutation:
    like: LikePayload = strawberry.mutation(resolver=engagement.like)
    unlike: LikePayload = strawberry.mutation(resolver=engagement.unlike)
    register_content: Content = strawberry.mutation(
        resolver=contents.register_content, description="Roles service or admin."
    )
    record_view: ViewPayload = strawberry.mutation(resolver=views.record_view)
    record_views: list[ViewPayload] = strawberry.mutation(
        resolver=views.record_views, description="Up to 500 events, for SDKs and edge collectors."
    )


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def engagement_updated(
        self, info: Info, content_ids: list[strawberry.ID]
    ) -> AsyncGenerator[EngagementSummary, None]:
        async for summary in live.engagement_updated(info, content_ids):
            yield summary


def _limit_rules() -> tuple[type, ...]:
    # Built once: rule classes made per request would defeat the validation
    # cache (strawberry issue 4635).
    rules: list[type] = []
    for ext in (QueryDepthLimiter(max_depth=10), MaxAliasesLimiter(max_alias_count=30)):
        rules.extend(ext.validation_rules)
    return tuple(rules)


RULES = _limit_rules()


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Two extensions, not five: each costs a hook context per operation and
        # per subscription push.
        extensions=[lambda: CachedDocuments(RULES), ObservedErrorCodes],
        execution_context_class=CompiledExecutionContext,
    )
