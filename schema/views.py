from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition

from domain.view_policy import ClientPlatform, ViewSource
from domain.view_recording import ViewResult
from domain.view_sessions import ViewSession

strawberry.enum(ViewSource)
strawberry.enum(ClientPlatform)


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


# Strawberry converts input objects field by field through its generic type
# machinery (type resolution, name conversion, one recursive call per field): for
# a recordViews batch of 100 inputs that was a fifth of the request's CPU. Every
# ViewInput field is a leaf (ID, String, Int, Float, Boolean, enum), whose
# converted value is the value graphql-core coerced, so the object can be built
# straight from the input value. Required fields are always present (graphql-core
# validated them); omitted optional ones keep their defaults, as before.
_DEFINITION = get_object_definition(ViewInput, strict=True)
# (python name, GraphQL name) per schema config: the name converter is the schema's.
_NAMES: dict[int, tuple[object, list[tuple[str, str]]]] = {}


def _field_names(context: InputContext) -> list[tuple[str, str]]:
    config = context.config
    cached = _NAMES.get(id(config))
    if cached is None or cached[0] is not config:
        from_field = config.name_converter.from_field
        cached = (config, [(f.python_name, from_field(f)) for f in _DEFINITION.fields])
        _NAMES[id(config)] = cached
    return cached[1]


def _view_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    return cls(**{py: value[name] for py, name in _field_names(context) if name in value})


def use_view_input_hook(on: bool) -> None:
    """Process-wide: strawberry keeps the hook on the type's definition."""
    _DEFINITION.from_input = _view_input if on else None


use_view_input_hook(True)


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
