"""Read and write use cases of creator notifications: a creator's own, or any
creator's for an admin; nobody else sees another creator's (FORBIDDEN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.contents import check_id
from domain.deps import Deps
from domain.errors import BadUserInput, DomainError, Forbidden
from domain.identity import Actor, require_user
from domain.notifications import (
    MAX_MUTED_CONTENTS,
    MAX_PAGE,
    Notification,
    NotificationKind,
    Preferences,
)
from domain.ports import NotificationStore

ADMIN = "admin"
MAX_CURSOR = 64


def store_of(deps: Deps) -> NotificationStore:
    if deps.notifications is None:
        raise DomainError("notifications are not configured on this server")
    return deps.notifications


def whose(actor: Actor | None, creator_id: str | None) -> str:
    """The creator whose notifications are asked for: the signed-in user's own, or,
    for an admin, any creator's."""
    user = require_user(actor)
    if creator_id is None or creator_id == user.user_id:
        return user.user_id
    if ADMIN not in user.roles:
        raise Forbidden("notifications are visible to their creator only (or an admin)")
    return check_id(creator_id, "creatorId")


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Notification]
    has_next_page: bool


async def notifications(
    deps: Deps,
    actor: Actor | None,
    first: int,
    after: str | None,
    unread_only: bool,
    creator_id: str | None = None,
) -> Page:
    creator = whose(actor, creator_id)
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
    if after is not None and (not after or len(after) > MAX_CURSOR):
        raise BadUserInput("after is not a cursor of this connection")
    rows = await store_of(deps).page(creator, first + 1, after, unread_only)
    return Page(rows[:first], len(rows) > first)


async def unread_count(deps: Deps, actor: Actor | None, creator_id: str | None = None) -> int:
    return await store_of(deps).unread_count(whose(actor, creator_id))


async def mark_read(
    deps: Deps, actor: Actor | None, ids: Sequence[str] | None, up_to: str | None
) -> int:
    """The signed-in creator's own: ``ids``, and every one at or older than ``up_to``;
    how many changed (already read ones do not)."""
    creator = require_user(actor).user_id
    wanted = list(dict.fromkeys(ids or ()))
    if len(wanted) > MAX_PAGE:
        raise BadUserInput(f"at most {MAX_PAGE} ids at once (use upTo for more)")
    for i in wanted:
        check_id(i, "ids")
    store = store_of(deps)
    up_to_seq = None
    if up_to is not None:
        check_id(up_to, "upTo")
        found = await store.get(up_to)
        # Another creator's id reads as unknown: nothing about it is disclosed.
        if found is None or found.creator_id != creator:
            raise BadUserInput("upTo is not one of your notifications")
        up_to_seq = found.seq
    return await store.mark_read(creator, wanted, up_to_seq, deps.clock.now())


async def preferences(deps: Deps, actor: Actor | None) -> Preferences:
    return await store_of(deps).preferences(require_user(actor).user_id)


async def update_preferences(
    deps: Deps,
    actor: Actor | None,
    muted_kinds: Sequence[NotificationKind] | None,
    muted_content_ids: Sequence[str] | None,
) -> Preferences:
    """Replaces the lists given; a list not given stays as it was."""
    creator = require_user(actor).user_id
    store = store_of(deps)
    current = await store.preferences(creator)
    kinds = current.muted_kinds if muted_kinds is None else frozenset(muted_kinds)
    contents = current.muted_contents
    if muted_content_ids is not None:
        if len(muted_content_ids) > MAX_MUTED_CONTENTS:
            raise BadUserInput(f"at most {MAX_MUTED_CONTENTS} muted contents")
        contents = frozenset(check_id(c, "mutedContentIds") for c in muted_content_ids)
    return await store.save_preferences(Preferences(creator, kinds, contents))
