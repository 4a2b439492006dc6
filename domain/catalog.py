"""Registering contents: the only way counters come to exist."""

from __future__ import annotations

from datetime import datetime

from domain.contents import Content, ContentKind, check_id, check_registration
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.identity import Actor, require_role

REGISTRAR_ROLES = ("service", "admin")


async def register_content(
    deps: Deps,
    actor: Actor | None,
    content_id: str,
    creator_id: str,
    kind: ContentKind,
    duration_ms: int | None,
) -> Content:
    require_role(actor, *REGISTRAR_ROLES)
    check_id(content_id, "contentId")
    check_id(creator_id, "creatorId")
    if duration_ms is not None and duration_ms <= 0:
        raise BadUserInput(f"durationMs must be positive; got {duration_ms}")
    now: datetime = deps.clock.now()
    wanted = Content(content_id, creator_id, kind, now, duration_ms)
    existing = await deps.contents.insert(wanted)
    if existing is not None:
        return check_registration(existing, wanted)
    # Zeroed counters now, so reads of a new content never fall back to a recount.
    # As of 0: no event can predate the content, so none may be skipped as included.
    await deps.counters.install(content_id, {}, [], 0, replace=False)
    return wanted
