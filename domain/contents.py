"""Contents: the things people engage with."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from domain.errors import BadUserInput, Conflict

MAX_ID_LENGTH = 128
# C0, DEL and C1: they end up in Redis keys, log lines and other people's screens.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ContentKind(enum.StrEnum):
    VIDEO = "VIDEO"
    SHORT = "SHORT"
    POST = "POST"
    STORY = "STORY"
    LIVE = "LIVE"
    PRODUCT = "PRODUCT"
    TRACK = "TRACK"
    EPISODE = "EPISODE"


@dataclass(frozen=True, slots=True)
class Content:
    content_id: str
    creator_id: str
    kind: ContentKind
    created_at: datetime
    duration_ms: int | None = None


def check_id(value: object, field: str) -> str:
    """Ids are opaque strings; we only bound them so keys and indexes stay sane."""
    if not isinstance(value, str) or not value.strip():
        raise BadUserInput(f"{field} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise BadUserInput(f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH}")
    if _CONTROL.search(value):
        raise BadUserInput(f"{field} must not contain control characters")
    return value


def check_registration(existing: Content, wanted: Content) -> Content:
    """Registering again is harmless when it says the same thing; otherwise a conflict."""
    if existing.creator_id != wanted.creator_id or existing.kind != wanted.kind:
        raise Conflict(
            f"content {wanted.content_id!r} is already registered as "
            f"{existing.kind} by creator {existing.creator_id!r}"
        )
    return existing
