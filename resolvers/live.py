"""The live-counter subscription: current state first, then coalesced pushes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson
import strawberry

from domain import reads
from domain.reactions import ReactionType
from domain.summary import summarize
from resolvers.context import Info
from schema.engagement import EngagementSummary


async def engagement_updated(
    info: Info, content_ids: list[strawberry.ID]
) -> AsyncGenerator[EngagementSummary, None]:
    ids = list(dict.fromkeys(reads.check_ids([str(c) for c in content_ids])))
    ctx = info.context
    ctx.user()
    channels = {ctx.services.keys.channel(cid): cid for cid in ids}
    # Listen before reading, so nothing published in between is missed.
    async with ctx.services.hub.subscribe(list(channels)) as updates:
        # Loaders per operation: a WebSocket context lives as long as the socket.
        loaders = ctx.fresh_loaders()
        current = await loaders.summary.load_many(ids)
        mine: dict[str, ReactionType | None] = {}
        for s in current:
            mine[s.content_id] = s.viewer_reaction
            yield EngagementSummary.from_domain(s)
        async for update in updates:
            cid = channels[update.channel]
            if update.message is None:
                # Pub/sub may have dropped messages while reconnecting: re-read.
                fresh = (await ctx.fresh_loaders().summary.load_many([cid]))[0]
                mine[cid] = fresh.viewer_reaction
                yield EngagementSummary.from_domain(fresh)
                continue
            data = orjson.loads(update.message)
            summary = summarize(cid, data["n"], data["u"], mine.get(cid))
            yield EngagementSummary.from_domain(summary)
