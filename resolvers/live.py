"""The live-counter subscription: current state first, then coalesced pushes.

Every push is one snapshot (subscriptions/ordering.py): counters of one
version with the viewer's reaction as of those counters, never older than a
push already sent, never the same twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from functools import lru_cache

import strawberry

from domain import reads
from domain.deps import Deps
from domain.identity import Actor
from domain.reactions import ReactionType
from domain.snapshots import snapshots
from domain.summary import Summary, summarize
from resolvers.context import Info
from schema.engagement import EngagementSummary
from subscriptions.messages import LiveChannels, counts_version, decode_counts, decode_mine
from subscriptions.ordering import Shown, Step, accepts_read, advance, on_counts
from subscriptions.retry import until_available


async def engagement_updated(
    info: Info, content_ids: list[strawberry.ID]
) -> AsyncGenerator[EngagementSummary, None]:
    ids = list(dict.fromkeys(reads.check_ids([str(c) for c in content_ids])))
    ctx = info.context
    actor = ctx.user()
    deps = ctx.deps
    channels = LiveChannels(ctx.services.keys)
    by_channel = {channels.content(cid): cid for cid in ids}
    # A signed-in subscriber also hears when its own reactions are about to
    # change (from any API process), so viewerReaction in pushes stays true.
    mine_channel = channels.user(actor.user_id) if actor else None
    control = [mine_channel] if mine_channel else []
    # Listen before reading, so nothing published in between is missed; what
    # arrives older than the read is dropped by its version.
    async with ctx.services.hub.subscribe(
        list(by_channel), control=control, rank=counts_version
    ) as updates:
        shown: dict[str, Shown] = {}
        # Opened during an outage: wait for the store rather than error and complete.
        first = await until_available(lambda: snapshots(deps, actor, ids), what="live snapshot")
        for snap in first:
            shown[snap.summary.content_id] = Shown(snap.version, snap.summary, snap.own_pending)
            yield EngagementSummary.from_domain(snap.summary)
        async for update in updates:
            if update.channel == mine_channel:
                # None: messages may have been missed (or several collapsed): all of them.
                wanted = ids if update.message is None else decode_mine(update.message)
                for pushed in await _reread(deps, actor, wanted, shown):
                    yield pushed
                continue
            cid = by_channel[update.channel]
            if update.message is None:
                # Pub/sub may have dropped messages while reconnecting: re-read.
                for pushed in await _reread(deps, actor, [cid], shown):
                    yield pushed
                continue
            current = shown[cid]
            version, summary, pushed = _pushed(cid, update.message, current.summary.viewer_reaction)
            step = on_counts(current, version)
            if step is Step.SHOW:
                shown[cid], changed = advance(current, version, summary)
                if changed:
                    yield pushed
            elif step is Step.REREAD:
                for pushed in await _reread(deps, actor, [cid], shown):
                    yield pushed


async def _reread(
    deps: Deps, actor: Actor | None, content_ids: Sequence[str], shown: dict[str, Shown]
) -> list[EngagementSummary]:
    """Fresh snapshots of the subscribed ones among ``content_ids``; what to push."""
    wanted = [cid for cid in content_ids if cid in shown]
    if not wanted:
        return []
    pushes: list[EngagementSummary] = []
    fresh = await until_available(lambda: snapshots(deps, actor, wanted), what="live resync")
    for snap in fresh:
        cid = snap.summary.content_id
        if not accepts_read(shown[cid], snap.version):
            continue
        shown[cid], changed = advance(shown[cid], snap.version, snap.summary, snap.own_pending)
        if changed:
            pushes.append(EngagementSummary.from_domain(snap.summary))
    return pushes


@lru_cache(maxsize=4096)
def _pushed(
    content_id: str, message: str, viewer_reaction: ReactionType | None
) -> tuple[int, Summary, EngagementSummary]:
    """One decoded summary per (message, viewer state), shared by every subscriber.

    All local subscribers of a channel receive the same message; sharing the
    object decodes it once and lets the executor reuse one execution result
    for all of them (schema.execution, subscription events).
    """
    counts = decode_counts(message)
    summary = summarize(content_id, counts.counters, counts.unique_viewers, viewer_reaction)
    return counts.version, summary, EngagementSummary.from_domain(summary)
