"""Ranking signals and trending as GraphQL types (the numbers come from
domain.signals and domain.ranking)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from domain import ranking, signals
from domain.signals import Signals as DomainSignals
from domain.trending import TrendWindow
from schema.contents import Content
from schema.execution import share_projections

strawberry.enum(
    TrendWindow,
    description="How far back a trend looks: the time constant of its recent activity.",
)


@strawberry.type(description="Events per minute over sliding windows ending now.")
class Rates:
    one_minute: float
    fifteen_minutes: float
    one_hour: float


# A cache hands the same signals to every reader within its time to live.
share_projections(signals.SharedSignals)


@strawberry.type
class RankingSignals:
    content_id: strawberry.ID
    likes_per_minute: Rates = strawberry.field(description="Likes added (none to some).")
    views_per_minute: Rates = strawberry.field(description="Counted views.")
    growth_slope: float = strawberry.field(
        description="Least-squares slope of views per minute over the last 15 complete "
        "minutes, in views per minute per minute."
    )
    velocity_ratio: float | None = strawberry.field(
        description="Views per minute of the last 5 minutes / the average of the 60 "
        "before; null when those 60 had none."
    )
    engagement_ratio: float | None = strawberry.field(
        description="Lifetime likes / lifetime views; null without views."
    )
    view_to_like_conversion: float | None = strawberry.field(
        description="Unique viewers who also reacted / unique viewers (HyperLogLog "
        "estimates); null without viewers."
    )
    unique_viewers: int
    average_watch_ms: float | None = strawberry.field(
        description="Lifetime accepted watch time / lifetime views."
    )
    updated_at: datetime | None = strawberry.field(
        description="When the trending worker last changed these; null if never."
    )

    @classmethod
    def from_domain(cls, s: signals.Signals) -> RankingSignals:
        # The domain Signals (and its Rates) have every field of these types under
        # the same names: GraphQL reads them off it, with no copy of each of a
        # hundred contents (a unit test keeps the two in step).
        return cast("RankingSignals", s)


@strawberry.type
class TrendingItem:
    rank: int = strawberry.field(description="1 for the first item.")
    score: float = strawberry.field(
        description="The content's heat now (see the README's trending formula)."
    )
    content: Content
    # A plain field (the compiled executor projects it with the rest of the item);
    # read from the store only when the query asks for it (resolvers/ranking.py),
    # None otherwise.
    signals: RankingSignals

    @classmethod
    def from_domain(cls, e: ranking.TrendingEntry, s: DomainSignals | None) -> TrendingItem:
        signals = cast("RankingSignals", s)  # None only where no query reads it
        return cls(
            rank=e.rank, score=e.score, content=Content.from_domain(e.content), signals=signals
        )
