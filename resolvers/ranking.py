from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable

import orjson
import strawberry
from strawberry.types.nodes import SelectedField, Selection

from domain import ranking
from domain.contents import ContentKind
from domain.errors import DomainError
from domain.ports import TrendingStore
from domain.trending import ALL_KINDS, WINDOWS, TrendWindow
from resolvers.context import Context, Info
from schema.ranking import RankingSignals, TrendingItem

# A trendingUpdated push is the top of region "all", as the trending worker
# publishes it (workers/trending.py), and comes at most once a second.
PUSHED = 20
PUSH_INTERVAL_S = 1.0


def _store(ctx: Context) -> TrendingStore:
    store = ctx.deps.trending
    if store is None:
        raise DomainError("trending is not configured on this server")
    return store


def _now_ms(ctx: Context) -> int:
    return int(ctx.deps.clock.now().timestamp() * 1000)


async def ranking_signals(info: Info, content_ids: list[strawberry.ID]) -> list[RankingSignals]:
    ctx = info.context
    found = await ranking.ranking_signals(
        _store(ctx), _now_ms(ctx), [str(c) for c in content_ids], ctx.deps.ranking_signals
    )
    return [RankingSignals.from_domain(s) for s in found]


def _asks_for(selections: Iterable[Selection], name: str) -> bool:
    """Whether a selection (fragments looked into) names a field."""
    for s in selections:
        if isinstance(s, SelectedField):
            if s.name == name:
                return True
        elif _asks_for(s.selections, name):
            return True
    return False


async def _items(
    ctx: Context,
    window: TrendWindow,
    kind: ContentKind | None,
    region: str | None,
    first: int,
    with_signals: bool,
    shared: bool,
) -> list[TrendingItem]:
    store = _store(ctx)
    now = _now_ms(ctx)
    # A query may take a page another reader just read; a subscription may not,
    # because it re-reads to see whether the list it was told about changed.
    pages = ctx.deps.trending_pages if shared else None
    entries = await ranking.trending(ctx.deps, store, now, window, kind, region, first, pages)
    ids = [e.content.content_id for e in entries]
    if not with_signals or not ids:
        return [TrendingItem.from_domain(e, None) for e in entries]
    # The signals cost one more Redis round trip, so only when the query asks; a
    # subscription re-reads them, like its page.
    cache = ctx.deps.ranking_signals if shared else None
    found = await ranking.signals_of(store, now, ids, cache)
    return [TrendingItem.from_domain(e, s) for e, s in zip(entries, found, strict=True)]


async def trending(
    info: Info,
    kind: ContentKind | None = None,
    window: TrendWindow = TrendWindow.HOUR,
    region: str | None = None,
    first: int | None = 20,
) -> list[TrendingItem]:
    with_signals = any(_asks_for(f.selections, "signals") for f in info.selected_fields)
    return await _items(
        info.context, window, kind, region, 20 if first is None else first, with_signals, True
    )


async def trending_updated(
    info: Info, window: TrendWindow, kind: ContentKind | None = None
) -> AsyncGenerator[list[TrendingItem], None]:
    ctx = info.context
    _store(ctx)
    channel = ctx.services.keys.trend_channel(
        WINDOWS[window].code, kind.value if kind else ALL_KINDS
    )
    # Listen before reading, so a change published in between is not missed.
    async with ctx.services.hub.subscribe([channel]) as updates:
        items = await _items(ctx, window, kind, None, PUSHED, True, False)
        shown = [str(i.content.content_id) for i in items]
        yield items
        last = time.monotonic()
        async for update in updates:
            if update.message is not None and _ids(update.message) == shown:
                continue  # the scores moved, the list did not
            wait = PUSH_INTERVAL_S - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            items = await _items(ctx, window, kind, None, PUSHED, True, False)
            ids = [str(i.content.content_id) for i in items]
            if ids != shown:
                shown = ids
                last = time.monotonic()
                yield items


def _ids(message: str) -> list[str] | None:
    try:
        return [str(pair[0]) for pair in orjson.loads(message)]
    except (orjson.JSONDecodeError, TypeError, IndexError, KeyError):
        return None
