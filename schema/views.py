from __future__ import annotations

from datetime import datetime

import strawberry

from domain.view_policy import ClientPlatform, ViewSource
from domain.view_recording import ViewResult
from domain.view_sessions import ViewSession
from schema.inputs import leaf_input

strawberry.enum(ViewSource)
strawberry.enum(ClientPlatform)


@leaf_input
@strawberry.input
class ViewInput:
    content_id: strawberry.ID
    session_id: strawberry.ID = strawberry.field(
        description="Client-made, one per playback or impression."
    )
    device_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required when the caller is anonymous."
    )
    event_id: str | None = strawberry.field(
        default=None, description="Client event id: a repeated one is ignored."
    )
    watched_ms: int = strawberry.field(
        description="Watch or dwell time since the previous event of this session, >= 0."
    )
    position_ms: int | None = strawberry.field(
        default=None, description="Furthest playback position reached."
    )
    visible_fraction: float | None = strawberry.field(
        default=None, description="0..1, for feed impressions."
    )
    source: ViewSource | None = None
    platform: ClientPlatform | None = None
    final: bool = strawberry.field(default=False, description="The session ended.")

    def to_raw(self) -> dict[str, object]:
        return {
            "content_id": str(self.content_id),
            "session_id": str(self.session_id),
            "device_id": None if self.device_id is None else str(self.device_id),
            "event_id": self.event_id,
            "watched_ms": self.watched_ms,
            "position_ms": self.position_ms,
            "visible_fraction": self.visible_fraction,
            "source": self.source,
            "platform": self.platform,
            "final": self.final,
        }


@strawberry.type
class ViewDecision:
    counted: bool = strawberry.field(
        description="This event made the session count, or it had counted already."
    )
    rule: str = strawberry.field(description="The policy applied, e.g. VIDEO.default.")
    reason: str


@strawberry.type
class ViewPayload:
    content_id: strawberry.ID
    session_id: strawberry.ID
    decision: ViewDecision

    @classmethod
    def from_domain(cls, r: ViewResult) -> ViewPayload:
        d = r.decision
        return cls(
            content_id=strawberry.ID(r.content_id),
            session_id=strawberry.ID(r.session_id),
            decision=ViewDecision(counted=d.counted, rule=d.rule, reason=d.reason),
        )


@strawberry.type
class ViewSessionInfo:
    session_id: strawberry.ID
    content_id: strawberry.ID
    device_id: strawberry.ID | None
    started_at: datetime
    last_event_at: datetime
    watched_ms: int
    position_ms: int | None
    source: ViewSource | None
    platform: ClientPlatform | None
    events: int
    ended: bool
    flags: list[str] = strawberry.field(description="Impossible input seen (anti-abuse).")
    decision: ViewDecision

    @classmethod
    def from_domain(cls, s: ViewSession) -> ViewSessionInfo:
        return cls(
            session_id=strawberry.ID(s.session_id),
            content_id=strawberry.ID(s.content_id),
            device_id=None if s.device_id is None else strawberry.ID(s.device_id),
            started_at=s.started_at,
            last_event_at=s.last_event_at,
            watched_ms=s.watched_ms,
            position_ms=s.position_ms,
            source=s.source,
            platform=s.platform,
            events=s.events,
            ended=s.ended,
            flags=list(s.flags),
            decision=ViewDecision(counted=s.counted, rule=s.rule, reason=s.reason),
        )
