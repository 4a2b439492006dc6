"""Engagement events: the unit that flows through the event log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

REACTION = "reaction"
VIEW = "view"
# A raw view event: archived for audit and anti-abuse, counts nothing.
RAW_VIEW = "view_event"
# A view session ended (a final event, or idle too long): analytics only, counts nothing.
VIEW_END = "view_end"
# A session's event sent again verbatim (an eventId it had seen), from one address:
# evidence for the integrity worker only, counts nothing.
REPLAYED_VIEW = "view_replay"
# An actor's reaction or counted view moved to another integrity tier: its deltas
# take the old contribution out of the counters and put the new one in.
INTEGRITY = "integrity"


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    event_id: str
    kind: str
    content_id: str
    actor: str
    occurred_at_ms: int
    deltas: Mapping[str, int]
    # A member for the content's unique-viewer estimate (views only).
    unique: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    # The W3C traceparent of the request that made it, when tracing is on (tracing/);
    # None: not traced, and the field is not written.
    traceparent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "kind": self.kind,
            "content_id": self.content_id,
            "actor": self.actor,
            "occurred_at_ms": self.occurred_at_ms,
            "deltas": dict(self.deltas),
            "unique": self.unique,
            "data": dict(self.data),
        }
        if self.traceparent is not None:
            out["traceparent"] = self.traceparent
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EngagementEvent:
        return cls(
            event_id=str(raw["event_id"]),
            kind=str(raw["kind"]),
            content_id=str(raw["content_id"]),
            actor=str(raw["actor"]),
            occurred_at_ms=int(raw["occurred_at_ms"]),
            deltas={str(k): int(v) for k, v in dict(raw["deltas"]).items()},
            unique=raw.get("unique"),
            data=dict(raw.get("data") or {}),
            traceparent=_traceparent(raw.get("traceparent")),
        )


# Set by tracing/setup.py while tracing is on: the active span's traceparent. None
# (tracing off): nothing is computed and events carry none.
traceparent_source: Callable[[], str | None] | None = None


def current_traceparent() -> str | None:
    source = traceparent_source
    return None if source is None else source()


def _traceparent(raw: Any) -> str | None:
    # Data from the log: kept only when it is a string of a traceparent's length
    # (tracing/context.py parses it, and refuses what is not one).
    return raw if isinstance(raw, str) and len(raw) == 55 else None


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).hexdigest()


def reaction_event_id(content_id: str, user_id: str, version: int) -> str:
    """Deterministic: the n-th change of one viewer's reaction always has the same id,
    so a republished or redelivered event is recognised as the same event."""
    return f"r-{_digest(content_id, user_id)}-{version}"


def view_event_id(content_id: str, session_id: str, viewer_key: str) -> str:
    """A session counts at most once, so (content, session, viewer) names its view."""
    return f"v-{_digest(content_id, session_id, viewer_key)}"


def view_end_event_id(content_id: str, session_id: str, viewer_key: str) -> str:
    """A session ends once, whether by its final event or by the idle closer: both
    name its end the same, so the two can never both be counted."""
    return f"e-{_digest(content_id, session_id, viewer_key)}"


def replayed_view_event_id(content_id: str, session_id: str, viewer_key: str, addr: str) -> str:
    """One per session and address: what the evidence counts is the distinct
    addresses a session's events came again from, so more repeats from one address
    are the same event."""
    return f"p-{_digest(content_id, session_id, viewer_key, addr)}"


def integrity_view_event_id(content_id: str, session_id: str, viewer_key: str, version: int) -> str:
    """The re-tiering of a counted session that moves it to ``version``."""
    return f"i-{_digest(content_id, session_id, viewer_key, str(version))}"
