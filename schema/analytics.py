"""Creator analytics as GraphQL types (the numbers come from domain.analytics_reads).

Sums of milliseconds are Floats: a content's watch time passes 2^31 ms (24.8 days)
quickly, past GraphQL's 32-bit Int. A Float holds every integer up to 2^53 exactly.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import analytics as a
from schema.engagement import EngagementSummary
from schema.enums import ReactionType

strawberry.enum(a.Granularity, description="Bucket size of a series; buckets start on UTC.")


@strawberry.input(description="[from, to), widened to whole buckets of the granularity.")
class TimeRange:
    from_: datetime = strawberry.field(name="from")
    to: datetime

    def to_domain(self) -> a.TimeRange:
        return a.TimeRange(self.from_, self.to)


@strawberry.type
class AnalyticsTotals:
    likes_added: int = strawberry.field(description="Reactions from none to some.")
    likes_removed: int = strawberry.field(description="Reactions from some to none.")
    net_likes: int
    views: int = strawberry.field(description="Counted views, by the time they counted.")
    unique_viewers: int = strawberry.field(
        description="Distinct viewers with a counted view in the range: exact below 100, "
        "within 2% above."
    )
    watch_time_ms: float = strawberry.field(
        description="Accepted watch time (impossible input excluded), in ms."
    )
    average_watch_ms: float | None = strawberry.field(description="watchTimeMs / views.")
    like_to_view_ratio: float | None = strawberry.field(description="netLikes / views.")
    engagement_rate: float | None = strawberry.field(
        description="Distinct users who reacted / uniqueViewers."
    )

    @classmethod
    def from_domain(cls, t: a.Totals) -> AnalyticsTotals:
        return cls(
            likes_added=t.likes_added,
            likes_removed=t.likes_removed,
            net_likes=t.net_likes,
            views=t.views,
            unique_viewers=t.unique_viewers,
            watch_time_ms=float(t.watch_time_ms),
            average_watch_ms=t.average_watch_ms,
            like_to_view_ratio=t.like_to_view_ratio,
            engagement_rate=t.engagement_rate,
        )


@strawberry.type
class AnalyticsPoint:
    start: datetime
    likes_added: int
    likes_removed: int
    net_likes: int
    views: int
    watch_time_ms: float

    @classmethod
    def from_domain(cls, p: a.SeriesPoint) -> AnalyticsPoint:
        return cls(
            start=p.start,
            likes_added=p.likes_added,
            likes_removed=p.likes_removed,
            net_likes=p.net_likes,
            views=p.views,
            watch_time_ms=float(p.watch_time_ms),
        )


@strawberry.type
class Breakdown:
    key: str = strawberry.field(description='A platform, source or region; "unknown" if unsaid.')
    views: int
    watch_time_ms: float
    likes_added: int

    @classmethod
    def from_domain(cls, b: a.Breakdown) -> Breakdown:
        return cls(
            key=b.key,
            views=b.views,
            watch_time_ms=float(b.watch_time_ms),
            likes_added=b.likes_added,
        )


@strawberry.type
class ReactionChange:
    reaction: ReactionType
    net: int


@strawberry.type
class Completion:
    sessions: int = strawberry.field(description="Sessions that ended in the range.")
    average: float | None = strawberry.field(
        description="Mean of min(position, duration) / duration at each session's end."
    )
    histogram: list[int] = strawberry.field(
        description="10 bins: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]."
    )


@strawberry.type
class ContentAnalytics:
    content_id: strawberry.ID
    from_: datetime = strawberry.field(name="from", description="The range, widened.")
    to: datetime
    granularity: a.Granularity
    totals: AnalyticsTotals
    series: list[AnalyticsPoint] = strawberry.field(
        description="One point per bucket, oldest first, zero-filled."
    )
    reactions: list[ReactionChange] = strawberry.field(
        description="Net change per reaction type in the range (types with none left out)."
    )
    by_platform: list[Breakdown] = strawberry.field(description="Largest first.")
    by_source: list[Breakdown] = strawberry.field(description="Largest first.")
    by_region: list[Breakdown] = strawberry.field(
        description="Largest first; ISO 3166-1 alpha-2 codes from a trusted edge, or unknown."
    )
    completion: Completion | None = strawberry.field(
        description="For contents with a duration; null otherwise."
    )
    time_to_first_like_ms: float | None = strawberry.field(
        description="From registration to the first like ever; null if none."
    )
    lifetime: EngagementSummary = strawberry.field(description="The live summary.")

    @classmethod
    def from_domain(cls, r: a.ContentAnalytics, lifetime: EngagementSummary) -> ContentAnalytics:
        c = r.completion
        return cls(
            content_id=strawberry.ID(r.content_id),
            from_=r.range.start,
            to=r.range.end,
            granularity=r.granularity,
            totals=AnalyticsTotals.from_domain(r.totals),
            series=[AnalyticsPoint.from_domain(p) for p in r.series],
            reactions=[ReactionChange(reaction=x.reaction, net=x.net) for x in r.reactions],
            by_platform=[Breakdown.from_domain(b) for b in r.by_platform],
            by_source=[Breakdown.from_domain(b) for b in r.by_source],
            by_region=[Breakdown.from_domain(b) for b in r.by_region],
            completion=None
            if c is None
            else Completion(sessions=c.sessions, average=c.average, histogram=list(c.histogram)),
            time_to_first_like_ms=None
            if r.time_to_first_like_ms is None
            else float(r.time_to_first_like_ms),
            lifetime=lifetime,
        )


@strawberry.type
class TopContent:
    content_id: strawberry.ID
    views: int
    likes_added: int


@strawberry.type
class CreatorAnalytics:
    creator_id: strawberry.ID
    from_: datetime = strawberry.field(name="from", description="The range, widened.")
    to: datetime
    granularity: a.Granularity
    totals: AnalyticsTotals = strawberry.field(description="Over all the creator's contents.")
    series: list[AnalyticsPoint]
    top_by_views: list[TopContent]
    top_by_likes: list[TopContent] = strawberry.field(description="By likesAdded in the range.")

    @classmethod
    def from_domain(cls, r: a.CreatorAnalytics) -> CreatorAnalytics:
        def top(rows: tuple[a.TopContent, ...]) -> list[TopContent]:
            return [
                TopContent(
                    content_id=strawberry.ID(t.content_id), views=t.views, likes_added=t.likes_added
                )
                for t in rows
            ]

        return cls(
            creator_id=strawberry.ID(r.creator_id),
            from_=r.range.start,
            to=r.range.end,
            granularity=r.granularity,
            totals=AnalyticsTotals.from_domain(r.totals),
            series=[AnalyticsPoint.from_domain(p) for p in r.series],
            top_by_views=top(r.top_by_views),
            top_by_likes=top(r.top_by_likes),
        )
