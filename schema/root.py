"""The root schema, assembled from each feature's fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import timedelta
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
)
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from domain.analytics import BUCKET_MS, HISTOGRAM_BINS, MAX_RANGE
from domain.analytics_reads import MAX_TOP
from domain.catalog import MAX_REGISTRATIONS
from domain.contents import ContentKind
from domain.enforcement import MAX_CASES
from domain.notifications import (
    DIGEST_FOLDED_LISTED,
    DIGEST_NAMED,
    MAX_MUTED_CONTENTS,
    NotificationKind,
)
from domain.ranking import MAX_FIRST
from domain.reactions import ReactionType
from domain.reads import MAX_BATCH
from domain.signals import MAX_IDS
from domain.trending import TrendWindow
from domain.view_policy import ClientPlatform, ViewSource
from domain.view_recording import MAX_VIEW_BATCH
from domain.view_sessions import MAX_FLAGS
from domain.webhooks import MAX_ENDPOINTS
from resolvers import (
    analytics,
    contents,
    engagement,
    integrity,
    live,
    ranking,
    views,
    webhooks,
)
from resolvers import notifications as notify
from resolvers.context import Info
from resolvers.ranking import PUSHED
from schema.analytics import ContentAnalytics, CreatorAnalytics
from schema.contents import Content
from schema.documents import CachedDocuments, DocumentPolicy, DocumentRules
from schema.engagement import EngagementSummary, LikePayload, ReactorConnection
from schema.errors import log_client_errors
from schema.execution import CompiledExecutionContext
from schema.inputs import use_input_hooks
from schema.integrity import ActorRisk, IntegrityCaseConnection
from schema.limits import PAGE, ListBound, Points
from schema.metrics import ObservedErrorCodes
from schema.notifications import Notification, NotificationConnection, NotificationPreferences
from schema.prepared import PreparedExecution
from schema.ranking import RankingSignals, TrendingItem
from schema.views import ViewPayload, ViewSessionInfo
from schema.webhooks import WebhookEndpoint


@strawberry.type
class Query:
    engagement_summary: EngagementSummary = strawberry.field(
        resolver=engagement.engagement_summary,
        description=(
            "An id that was never registered reads as zeros, as in a feed that holds ids "
            "not yet registered; mutations refuse it (CONTENT_NOT_FOUND)."
        ),
    )
    engagement_summaries: list[EngagementSummary] = strawberry.field(
        resolver=engagement.engagement_summaries,
        description=("Same order as asked; at most 100 ids. Ids never registered read as zeros."),
    )
    reactors: ReactorConnection = strawberry.field(
        resolver=engagement.reactors, description="Newest first; first <= 100."
    )
    content_analytics: ContentAnalytics = strawberry.field(
        resolver=analytics.content_analytics,
        description=(
            "A content's dashboard over a range, from the analytics rollups. The "
            "content's creator, or roles admin or service (FORBIDDEN otherwise)."
        ),
    )
    creator_analytics: CreatorAnalytics = strawberry.field(
        resolver=analytics.creator_analytics,
        description=(
            "The same totals and series summed over a creator's contents, and the top "
            "contents of the range (top <= 100). The creator, or roles admin or service."
        ),
    )
    ranking_signals: list[RankingSignals] = strawberry.field(
        resolver=ranking.ranking_signals,
        description=(
            "Engagement features for ranking, fresh to the minute, from Redis alone. "
            "Same order as asked; at most 100 ids. Unknown ids read as zeros."
        ),
    )
    trending: list[TrendingItem] = strawberry.field(
        resolver=ranking.trending,
        description=(
            "Contents rising now, hottest first (the README's trending formula). "
            "kind null: every kind; region null: every region, or an ISO 3166-1 "
            "alpha-2 code or 'unknown'. first <= 100."
        ),
    )
    actor_risk: ActorRisk = strawberry.field(
        resolver=integrity.actor_risk,
        description=(
            "An actor's trust score, tier, verdict and the reasons (role admin). An "
            "actor nothing was held against reads as trust 1, TRUSTED, AUTO."
        ),
    )
    integrity_cases: IntegrityCaseConnection = strawberry.field(
        resolver=integrity.integrity_cases,
        description="The integrity audit log, newest first; first <= 100 (role admin).",
    )
    notifications: NotificationConnection = strawberry.field(
        resolver=notify.notifications,
        description=(
            "The signed-in creator's notifications, newest first; first <= 100. An admin "
            "may read another creator's with creatorId (anyone else: FORBIDDEN)."
        ),
    )
    unread_notification_count: int = strawberry.field(
        resolver=notify.unread_notification_count,
        description="The signed-in creator's unread notifications (creatorId: admins only).",
    )
    notification_preferences: NotificationPreferences = strawberry.field(
        resolver=notify.notification_preferences,
        description="The signed-in creator's muted kinds and contents.",
    )
    webhook_endpoints: list[WebhookEndpoint] = strawberry.field(
        resolver=webhooks.webhook_endpoints,
        description="The signed-in creator's webhook endpoints, oldest first (secrets not shown).",
    )
    view_session: ViewSessionInfo | None = strawberry.field(
        resolver=views.view_session,
        description=(
            "Needs a token (UNAUTHENTICATED without one): the session to its own viewer "
            "or an admin; null for anyone else and for an unknown session."
        ),
    )


@strawberry.type
class Mutation:
    like: LikePayload = strawberry.mutation(resolver=engagement.like)
    unlike: LikePayload = strawberry.mutation(resolver=engagement.unlike)
    register_content: Content = strawberry.mutation(
        resolver=contents.register_content, description="Roles service or admin."
    )
    register_contents: list[Content] = strawberry.mutation(
        resolver=contents.register_contents,
        description=(
            "Up to 500 at once, for catalog imports: the rules and idempotency of "
            "registerContent, in the same order. Roles service or admin."
        ),
    )
    set_actor_verdict: ActorRisk = strawberry.mutation(
        resolver=integrity.set_actor_verdict,
        description=(
            "BOT excludes an actor's likes and views from public counts, HUMAN restores "
            "them, AUTO returns to the automatic score; retroactive, audited (role admin)."
        ),
    )
    mark_notifications_read: int = strawberry.mutation(
        resolver=notify.mark_notifications_read,
        description=(
            "Marks the signed-in creator's notifications read: ids (at most 100), and "
            "with upTo every one at or older than that one. Returns how many changed."
        ),
    )
    update_notification_preferences: NotificationPreferences = strawberry.mutation(
        resolver=notify.update_notification_preferences,
        description=(
            "Mutes kinds and contents for the signed-in creator: a muted notification is "
            "not created at all. Each list given replaces the stored one."
        ),
    )
    register_webhook_endpoint: WebhookEndpoint = strawberry.mutation(
        resolver=webhooks.register_webhook_endpoint,
        description=(
            "A new endpoint for the signed-in creator's notifications (Standard Webhooks, "
            "docs/WEBHOOKS.md): https:// to a public host, at most 10. The answer holds the "
            "signing secret, shown only this once."
        ),
    )
    delete_webhook_endpoint: bool = strawberry.mutation(
        resolver=webhooks.delete_webhook_endpoint,
        description="False when the signed-in creator has no endpoint of this id.",
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

    @strawberry.subscription(
        description=(
            "The top 20 of every region for a window and kind (null: every kind): "
            "the current list first, then the list whenever its members or their "
            "order change, at most once a second."
        )
    )
    async def trending_updated(
        self, info: Info, window: TrendWindow, kind: ContentKind | None = None
    ) -> AsyncGenerator[list[TrendingItem], None]:
        async for items in ranking.trending_updated(info, window, kind):
            yield items

    @strawberry.subscription(
        description=("The signed-in creator's notifications as they are stored (none of before).")
    )
    async def notification_received(self, info: Info) -> AsyncGenerator[Notification, None]:
        async for n in notify.notification_received(info):
            yield n


# The longest series a range may ask for: every granularity's longest range, in
# buckets, plus one for the widening to whole buckets.
SERIES_POINTS = Points(
    max(limit // timedelta(milliseconds=BUCKET_MS[g]) for g, (limit, _) in MAX_RANGE.items()) + 1
)

# The most items each list field returns, for the cost limit (schema.limits):
# what the domain enforces, so the estimate is a bound, not a guess.
LIST_BOUNDS: dict[tuple[str, str], ListBound] = {
    ("Query", "engagementSummaries"): ("arg", "contentIds", MAX_BATCH),
    ("Mutation", "recordViews"): ("arg", "inputs", MAX_VIEW_BATCH),
    ("Mutation", "registerContents"): ("arg", "inputs", MAX_REGISTRATIONS),
    ("ReactorConnection", "edges"): PAGE,
    ("EngagementSummary", "reactions"): len(ReactionType),
    ("ViewSessionInfo", "flags"): MAX_FLAGS,
    # A series has one point per bucket of its range (Points: no `first` can shrink
    # it, so it counts toward the result size only).
    ("ContentAnalytics", "series"): SERIES_POINTS,
    ("CreatorAnalytics", "series"): SERIES_POINTS,
    ("ContentAnalytics", "reactions"): len(ReactionType),
    ("ContentAnalytics", "byPlatform"): len(ClientPlatform) + 1,
    ("ContentAnalytics", "bySource"): len(ViewSource) + 1,
    ("ContentAnalytics", "byRegion"): 26 * 26 + 1,  # two letters, or unknown
    ("Completion", "histogram"): HISTOGRAM_BINS,
    ("CreatorAnalytics", "topByViews"): MAX_TOP,
    ("CreatorAnalytics", "topByLikes"): MAX_TOP,
    ("Query", "rankingSignals"): ("arg", "contentIds", MAX_IDS),
    ("Query", "trending"): MAX_FIRST,
    ("IntegrityCaseConnection", "edges"): MAX_CASES,
    ("Query", "webhookEndpoints"): MAX_ENDPOINTS,
    ("Subscription", "trendingUpdated"): PUSHED,
    ("NotificationConnection", "edges"): PAGE,
    ("DigestPayload", "actors"): DIGEST_NAMED,
    ("DigestPayload", "folded"): DIGEST_FOLDED_LISTED,
    ("NotificationPreferences", "mutedKinds"): len(NotificationKind),
    ("NotificationPreferences", "mutedContentIds"): MAX_MUTED_CONTENTS,
}


class LikeviewSchema(strawberry.Schema):
    document_rules: DocumentRules
    # The fast path for valid cached documents (schema.prepared); None with
    # FAST_PATHS=false.
    prepared: PreparedExecution | None = None

    def is_valid(self, query: str) -> bool:
        """Whether ``query`` parses and validates, as execute() would decide it
        (and leaving it in the document cache for execute())."""
        rules = self.document_rules
        try:
            document = rules.cache.document(query, rules.parse_options)
        except GraphQLError:
            return False
        return not rules.validate(self._schema, document, tuple(specified_rules))

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # execute() answers once; subscriptions are served by subscribe()/stream()
        # (WebSocket). Strawberry's HTTP view allows them in execute() for its
        # streaming transports, and graphql-core then runs the subscription field
        # as a query and fails inside it: refused up front instead (HTTP 400).
        allowed = allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES
        if not isinstance(allowed, set | frozenset):
            allowed = frozenset(allowed)
        if OperationType.SUBSCRIPTION in allowed:
            # Not on the lean path, which already passes queries and mutations only.
            allowed = set(allowed) - {OperationType.SUBSCRIPTION}
        if self.prepared is not None and query is not None:
            ready = self.prepared.operation(query, operation_name, allowed)
            if ready is not None:
                return await self.prepared.run(
                    ready,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    operation_extensions,
                )
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

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


def build_schema(
    policy: DocumentPolicy | None = None,
    *,
    fast_paths: bool = True,
    introspection: bool = True,
) -> LikeviewSchema:
    """The schema, with its document rules (limits, caches) built once for it.

    ``fast_paths=False`` (the FAST_PATHS setting) runs it on stock strawberry and
    graphql-core: graphql-core's executor instead of the compiled one, and
    strawberry's own input conversion for ViewInput. The fast paths lean on
    graphql-core's internals; with them off, a dependency upgrade that breaks
    them is a setting away from working.

    ``introspection=False`` refuses ``__schema`` and ``__type`` and hides
    graphql-core's "Did you mean ...?" suggestions, which leak the schema too.
    """
    extra_rules: tuple[type[ASTValidationRule], ...] = (
        () if introspection else (NoSchemaIntrospectionCustomRule,)
    )
    rules = DocumentRules(
        policy or DocumentPolicy(), extra_rules=extra_rules, list_bounds=LIST_BOUNDS
    )
    hide = not introspection
    use_input_hooks(fast_paths)
    schema = LikeviewSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Two extensions, not five: each costs a hook context per operation and
        # per subscription push.
        extensions=[
            lambda: CachedDocuments(rules),
            lambda: ObservedErrorCodes(hide_suggestions=hide),
        ],
        execution_context_class=CompiledExecutionContext if fast_paths else None,
    )
    schema.document_rules = rules
    if fast_paths:
        schema.prepared = PreparedExecution(
            schema._schema,
            rules,
            ObservedErrorCodes(hide_suggestions=hide),
            schema.process_errors,
            CompiledExecutionContext,
        )
    return schema
