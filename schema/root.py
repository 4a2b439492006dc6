"""The root schema, assembled from each feature's fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from domain.reactions import ReactionType
from domain.reads import MAX_BATCH
from domain.viewing import MAX_VIEW_BATCH
from domain.views import MAX_FLAGS
from resolvers import contents, engagement, live, views
from resolvers.context import Info
from schema.contents import Content
from schema.documents import CachedDocuments, DocumentPolicy, DocumentRules
from schema.engagement import EngagementSummary, LikePayload, ReactorConnection
from schema.errors import log_client_errors
from schema.execution import CompiledExecutionContext
from schema.limits import PAGE, ListBound
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


# The most items each list field returns, for the cost limit (schema.limits):
# what the domain enforces, so the estimate is a bound, not a guess.
LIST_BOUNDS: dict[tuple[str, str], ListBound] = {
    ("Query", "engagementSummaries"): ("arg", "contentIds", MAX_BATCH),
    ("Mutation", "recordViews"): ("arg", "inputs", MAX_VIEW_BATCH),
    ("ReactorConnection", "edges"): PAGE,
    ("EngagementSummary", "reactions"): len(ReactionType),
    ("ViewSessionInfo", "flags"): MAX_FLAGS,
}


class LikeviewSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_client_errors(errors)
        for error in errors:
            if error.original_error is None:
                # A syntax error's traceback holds the parser's frames, and with
                # them the whole query text, in a cycle with the error: without
                # this, each refused megabyte waited for a full collection.
                error.__traceback__ = None


def build_schema(policy: DocumentPolicy | None = None) -> strawberry.Schema:
    """The schema, with its document rules (limits, caches) built once for it."""
    rules = DocumentRules(policy or DocumentPolicy(), list_bounds=LIST_BOUNDS)
    return LikeviewSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Two extensions, not five: each costs a hook context per operation and
        # per subscription push.
        extensions=[lambda: CachedDocuments(rules), ObservedErrorCodes],
        execution_context_class=CompiledExecutionContext,
    )
