"""Creator notifications as GraphQL types (docs/NOTIFICATIONS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry

from domain import notifications as nt
from domain.contents import Content as DomainContent
from domain.notifications import Notification as DomainNotification
from domain.notifications import NotificationKind
from domain.notifications import Preferences as DomainPreferences
from domain.trending import TrendWindow
from schema.contents import Content

strawberry.enum(
    NotificationKind,
    description=(
        "FIRST_LIKE: a content's first like ever. REACTIONS_DIGEST: the reactions of "
        "a digest window, and updates a rate limit held back. MILESTONE: likes or views "
        "crossing 10, 100, 1k ... 10M. VIRAL: views far above their usual rate. "
        "TRENDING: in the top 20 of its kind for a window."
    ),
)


@strawberry.type(description="First like of a content.")
class FirstLikePayload:
    actor: str = strawberry.field(description="The user whose like was the first.")


@strawberry.type(description="Likes or views crossed a threshold.")
class MilestonePayload:
    metric: str = strawberry.field(description="'likes' or 'views'.")
    threshold: int
    value: int = strawberry.field(description="The trusted count when it was checked.")


@strawberry.type(description="An update a rate limit held back, carried by a digest.")
class FoldedUpdate:
    id: strawberry.ID
    kind: NotificationKind
    text: str
    created_at: datetime


@strawberry.type(description="Who reacted in a digest window, and held-back updates.")
class DigestPayload:
    actors: list[str] = strawberry.field(
        description="The most recent distinct reactors (at most 3), newest first."
    )
    count: int = strawberry.field(description="Distinct reactors in the window.")
    window_start: datetime | None = strawberry.field(
        description="When the window's first reaction came; null for held-back updates alone."
    )
    folded: list[FoldedUpdate] = strawberry.field(
        description="Updates a rate limit held back (the first 20), oldest first."
    )
    folded_count: int = strawberry.field(description="How many updates were held back.")


@strawberry.type(description="A place in a trending list.")
class TrendPayload:
    window: TrendWindow
    rank: int


@strawberry.type(description="Views far above their usual rate.")
class ViralPayload:
    velocity_ratio: float = strawberry.field(
        description="Views per minute of the last 5 minutes over those of the hour before."
    )


NotificationPayload = Annotated[
    FirstLikePayload | MilestonePayload | DigestPayload | TrendPayload | ViralPayload,
    strawberry.union("NotificationPayload"),
]


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def payload_of(kind: NotificationKind, p: Mapping[str, Any]) -> Any:
    if kind is NotificationKind.FIRST_LIKE:
        return FirstLikePayload(actor=str(p.get("actor", "")))
    if kind is NotificationKind.MILESTONE:
        return MilestonePayload(
            metric=str(p.get("metric", "")),
            threshold=int(p.get("threshold", 0)),
            value=int(p.get("value", 0)),
        )
    if kind is NotificationKind.TRENDING:
        return TrendPayload(window=TrendWindow(p.get("window")), rank=int(p.get("rank", 0)))
    if kind is NotificationKind.VIRAL:
        return ViralPayload(velocity_ratio=float(p.get("velocity_ratio", 0.0)))
    folded = [
        FoldedUpdate(
            id=strawberry.ID(str(f.get("id"))),
            kind=NotificationKind(f.get("kind")),
            text=str(f.get("text", "")),
            created_at=_at(int(f.get("created_at_ms", 0))) or datetime.now(UTC),
        )
        for f in p.get("folded") or []
    ]
    return DigestPayload(
        actors=[str(a) for a in p.get("actors") or []],
        count=int(p.get("count", 0)),
        window_start=_at(p.get("window_start_ms")),
        folded=folded,
        folded_count=int(p.get("folded_count", len(folded))),
    )


@strawberry.type
class Notification:
    id: strawberry.ID
    kind: NotificationKind
    content: Content
    created_at: datetime
    read_at: datetime | None
    payload: NotificationPayload
    text: str

    @classmethod
    def from_domain(cls, n: DomainNotification, content: DomainContent) -> Notification:
        return cls(
            id=strawberry.ID(n.id),
            kind=n.kind,
            content=Content.from_domain(content),
            created_at=n.created_at,
            read_at=n.read_at,
            payload=payload_of(n.kind, n.payload),
            text=n.text,
        )


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type
class NotificationConnection:
    edges: list[NotificationEdge]
    has_next_page: bool
    end_cursor: str | None


@strawberry.input
class MarkNotificationsReadInput:
    ids: list[strawberry.ID] | None = None
    up_to: strawberry.ID | None = strawberry.field(
        default=None, description="Every one of yours at or older than this one."
    )


@strawberry.type
class NotificationPreferences:
    muted_kinds: list[NotificationKind]
    muted_content_ids: list[strawberry.ID]

    @classmethod
    def from_domain(cls, p: DomainPreferences) -> NotificationPreferences:
        return cls(
            muted_kinds=sorted(p.muted_kinds, key=lambda k: k.value),
            muted_content_ids=[strawberry.ID(c) for c in sorted(p.muted_contents)],
        )


@strawberry.input
class NotificationPreferencesInput:
    muted_kinds: list[NotificationKind] | None = strawberry.field(
        default=None, description="Replaces the muted kinds; null leaves them."
    )
    muted_content_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description=f"Replaces the muted contents (at most {nt.MAX_MUTED_CONTENTS})."
    )
