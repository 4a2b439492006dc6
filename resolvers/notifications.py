"""Creator notifications: the connection, the unread count, marking read,
preferences, and the live subscription (docs/NOTIFICATIONS.md)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import strawberry

from domain import notification_reads as reads
from domain.contents import Content, ContentKind
from domain.deps import Deps
from domain.identity import require_user
from domain.notifications import Notification as DomainNotification
from resolvers.context import Info
from schema.notifications import (
    MarkNotificationsReadInput,
    Notification,
    NotificationConnection,
    NotificationEdge,
    NotificationPreferences,
    NotificationPreferencesInput,
)

# Notifications the subscription reads per wake-up (more wait for the next message).
CATCH_UP = 50


async def _with_contents(deps: Deps, rows: Sequence[DomainNotification]) -> list[Notification]:
    """Each with its content, one query for the page."""
    found = await deps.contents.get_many(sorted({n.content_id for n in rows}))
    out = []
    for n in rows:
        content = found.get(n.content_id)
        if content is None:  # contents are never removed; a stray id still reads
            content = Content(n.content_id, n.creator_id, ContentKind.VIDEO, n.created_at)
        out.append(Notification.from_domain(n, content))
    return out


async def notifications(
    info: Info,
    first: int | None = 20,
    after: str | None = None,
    unread_only: bool | None = False,
    creator_id: strawberry.ID | None = None,
) -> NotificationConnection:
    ctx = info.context
    page = await reads.notifications(
        ctx.deps,
        ctx.user(),
        20 if first is None else first,
        after,
        bool(unread_only),
        None if creator_id is None else str(creator_id),
    )
    nodes = await _with_contents(ctx.deps, page.items)
    edges = [
        NotificationEdge(cursor=n.seq, node=node) for n, node in zip(page.items, nodes, strict=True)
    ]
    return NotificationConnection(
        edges=edges,
        has_next_page=page.has_next_page,
        end_cursor=edges[-1].cursor if edges else None,
    )


async def unread_notification_count(info: Info, creator_id: strawberry.ID | None = None) -> int:
    ctx = info.context
    return await reads.unread_count(
        ctx.deps, ctx.user(), None if creator_id is None else str(creator_id)
    )


async def mark_notifications_read(info: Info, input: MarkNotificationsReadInput) -> int:
    ctx = info.context
    return await reads.mark_read(
        ctx.deps,
        ctx.user(),
        [str(i) for i in input.ids] if input.ids is not None else None,
        None if input.up_to is None else str(input.up_to),
    )


async def notification_preferences(info: Info) -> NotificationPreferences:
    ctx = info.context
    return NotificationPreferences.from_domain(await reads.preferences(ctx.deps, ctx.user()))


async def update_notification_preferences(
    info: Info, input: NotificationPreferencesInput
) -> NotificationPreferences:
    ctx = info.context
    prefs = await reads.update_preferences(
        ctx.deps,
        ctx.user(),
        input.muted_kinds,
        [str(c) for c in input.muted_content_ids] if input.muted_content_ids is not None else None,
    )
    return NotificationPreferences.from_domain(prefs)


async def notification_received(info: Info) -> AsyncGenerator[Notification, None]:
    """The signed-in creator's new notifications, as they are stored. The channel
    only says "something was stored": each message (or a resync) re-reads what is
    newer than the last one sent, so nothing is missed or sent twice, whatever the
    channel coalesced or dropped."""
    ctx = info.context
    creator = require_user(ctx.user()).user_id
    store = reads.store_of(ctx.deps)
    channel = ctx.services.keys.notify_channel(creator)
    # Listen before reading where we stand, so nothing stored in between is missed.
    async with ctx.services.hub.subscribe([], control=[channel]) as updates:
        last = await store.latest_seq(creator) or ""
        async for _ in updates:
            while True:
                rows = await store.after(creator, last, CATCH_UP)
                if not rows:
                    break
                last = rows[-1].seq
                for node in await _with_contents(ctx.deps, rows):
                    yield node
                if len(rows) < CATCH_UP:
                    break
