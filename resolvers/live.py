"""The live-counter subscription: current state first, then coalesced pushes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import lru_cache

import orjson
import strawberry

from domain import reads
from domain.reactions import ReactionType
from domain.summary import Summary, summarize
from resolvers.context import Info
from schema.engagement import EngagementSummary


async def engagement_updated(
    info: Info, content_ids: list[strawberry.ID]
) -> AsyncGenerator[EngagementSummary, None]:
    ids = list(dict.fromkeys(reads.check_ids([str(c) for c in content_ids])))
    ctx = info.context
    actor = ctx.user()
    keys = ctx.services.keys
    channels = {keys.channel(cid): cid for cid in ids}
    # A signed-in subscriber also hears when its own reactions change (from any
    # API process), so viewerReaction in pushes stays true.
    mine_channel = keys.user_channel(actor.user_id) if actor else None
    # First: on a tie the hub serves the earliest channel, and this one should win.
    wanted = [*([mine_channel] if mine_channel else []), *channels]
    # Listen before reading, so nothing published in between is missed.
    async with ctx.services.hub.subscribe(wanted) as updates:
        # Loaders per operation: a WebSocket context lives as long as the socket.
        latest: dict[str, Summary] = {
            s.content_id: s for s in await ctx.fresh_loaders().summaries.load(tuple(ids))
        }
        for cid in ids:
            yield EngagementSummary.from_domain(latest[cid])
        async for update in updates:
            if update.channel == mine_channel:
                mine = await reads.viewer_reactions(ctx.deps, actor, ids)
                for cid in ids:
                    if mine.get(cid) != latest[cid].viewer_reaction:
                        latest[cid] = latest[cid].for_viewer(mine.get(cid))
                        yield EngagementSummary.from_domain(latest[cid])
                continue
            cid = channels[update.channel]
            if update.message is None:
                # Pub/sub may have dropped messages while reconnecting: re-read.
                latest[cid] = await ctx.fresh_loaders().summary(cid)
                yield EngagementSummary.from_domain(latest[cid])
            else:
                latest[cid], pushed = _pushed(cid, update.message, latest[cid].viewer_reaction)
                yield pushed


@lru_cache(maxsize=4096)
def _pushed(
    content_id: str, message: str, viewer_reaction: ReactionType | None
) -> tuple[Summary, EngagementSummary]:
    """One decoded summary per (message, viewer state), shared by every subscriber.

    All local subscribers of a channel receive the same message; sharing the
    object decodes it once and lets the executor reuse one execution result
    for all of them (schema.execution, subscription events).
    """
    data = orjson.loads(message)
    summary = summarize(content_id, data["n"], data["u"], viewer_reaction)
    return summary, EngagementSummary.from_domain(summary)
