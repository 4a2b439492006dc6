"""Registering contents: the only way counters come to exist."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.contents import Content, ContentKind, check_id, check_registration
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.identity import Actor, require_role
from domain.outages import is_outage

log = logging.getLogger(__name__)

REGISTRAR_ROLES = ("service", "admin")
MAX_REGISTRATIONS = 500


@dataclass(frozen=True, slots=True)
class Registration:
    content_id: str
    creator_id: str
    kind: ContentKind
    duration_ms: int | None = None


def _check(r: Registration, prefix: str = "") -> None:
    try:
        check_id(r.content_id, "contentId")
        check_id(r.creator_id, "creatorId")
        if r.duration_ms is not None and r.duration_ms <= 0:
            raise BadUserInput(f"durationMs must be positive; got {r.duration_ms}")
    except BadUserInput as exc:
        raise BadUserInput(prefix + exc.message) from None


async def register_content(
    deps: Deps,
    actor: Actor | None,
    content_id: str,
    creator_id: str,
    kind: ContentKind,
    duration_ms: int | None,
) -> Content:
    require_role(actor, *REGISTRAR_ROLES)
    _check(Registration(content_id, creator_id, kind, duration_ms))
    now: datetime = deps.clock.now()
    wanted = Content(content_id, creator_id, kind, now, duration_ms)
    existing = await deps.contents.insert(wanted)
    if existing is not None:
        return check_registration(existing, wanted)
    # Zeroed counters now, so reads of a new content never fall back to a recount.
    # As of 0: no event can predate the content, so none may be skipped as included.
    await _zeroed(deps.counters.install(content_id, {}, [], 0, replace=False))
    return wanted


async def register_contents(
    deps: Deps, actor: Actor | None, registrations: Sequence[Registration]
) -> list[Content]:
    """Up to MAX_REGISTRATIONS at once, with the rules and idempotency of one: each
    answer is the registered content, a repeat that says the same thing included.

    All or nothing for bad input: every registration is checked (the index of a
    bad one is in the message) before any is written. A conflict with what was
    registered before is reported after the others are written, as one call each
    would have done.
    """
    require_role(actor, *REGISTRAR_ROLES)
    if len(registrations) > MAX_REGISTRATIONS:
        raise BadUserInput(f"inputs has {len(registrations)} contents; at most {MAX_REGISTRATIONS}")
    wanted: dict[str, Content] = {}
    now: datetime = deps.clock.now()
    for i, r in enumerate(registrations):
        _check(r, f"inputs[{i}]: ")
        content = Content(r.content_id, r.creator_id, r.kind, now, r.duration_ms)
        earlier = wanted.get(r.content_id)
        if earlier is not None:
            check_registration(earlier, content)  # the same id twice must agree
            continue
        wanted[r.content_id] = content
    existing = await deps.contents.insert_many(list(wanted.values()))
    new = [cid for cid in wanted if cid not in existing]
    # Zeroed counters now, as register_content does, in one round trip.
    await _zeroed(deps.counters.install_zeroed(new))
    return [
        check_registration(existing[r.content_id], wanted[r.content_id])
        if r.content_id in existing
        else wanted[r.content_id]
        for r in registrations
    ]


async def _zeroed(install: Awaitable[object]) -> None:
    """Zeroed counters are a shortcut, not the truth (MongoDB is): with Redis down
    the registration stands, and the first read after it recounts (zeros)."""
    try:
        await install
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("counters unavailable at registration; the first read recounts")
