"""Ranking reads: rankingSignals and trending, over the store the trending worker
keeps (storage/redis_trending.py). Redis only on the hot path; a trending page
adds one MongoDB query for its contents."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.analytics import UNKNOWN
from domain.contents import Content, ContentKind
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.page_cache import PageCache, StampedCache
from domain.ports import TrendingStore
from domain.reads import check_ids
from domain.signals import MAX_IDS, ZERO_SUMS, SharedSignals, Signals, from_sums
from domain.trending import (
    ALL_KINDS,
    ALL_REGIONS,
    WINDOWS,
    Page,
    PageKey,
    TrendWindow,
    current_heat,
)

MAX_FIRST = 100
_new = tuple.__new__
_REGION = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class TrendingEntry:
    rank: int
    score: float  # the heat now
    content: Content


def check_region(region: str | None) -> str:
    """None is every region; otherwise an ISO 3166-1 alpha-2 code or "unknown"."""
    if region is None:
        return ALL_REGIONS
    if region == UNKNOWN or _REGION.fullmatch(region):
        return region
    raise BadUserInput(
        f"region must be an ISO 3166-1 alpha-2 code (for example US) or {UNKNOWN!r}; "
        f"got {region[:20]!r}"
    )


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInput(f"first must be between 1 and {MAX_FIRST}; got {first}")
    return first


SignalsCache = StampedCache[str, Signals]


async def ranking_signals(
    store: TrendingStore,
    now_ms: int,
    content_ids: Sequence[str],
    cache: SignalsCache | None = None,
) -> list[Signals]:
    """Same order as asked (a repeated id is answered each time); at most MAX_IDS."""
    ids = check_ids(content_ids)
    if len(ids) > MAX_IDS:  # check_ids' bound is the feed's; this one is ours
        raise BadUserInput(f"contentIds has {len(ids)} ids; at most {MAX_IDS}")
    return await signals_of(store, now_ms, ids, cache)


async def signals_of(
    store: TrendingStore, now_ms: int, ids: Sequence[str], cache: SignalsCache | None
) -> list[Signals]:
    """The signals of checked ``ids``, in order. With ``cache``, a content's signals
    computed within its time to live are reused (as of when they were computed) and
    only the others are read, in the one round trip."""
    known: dict[str, Signals] = {}
    missing: list[str] = []
    for cid in dict.fromkeys(ids):
        hit = None if cache is None else cache.get(cid, now_ms)
        if hit is None:
            missing.append(cid)
        else:
            known[cid] = hit
    if missing:
        found = await store.signal_sums(missing, now_ms)
        for cid in missing:
            computed = from_sums(cid, found.get(cid, ZERO_SUMS), now_ms)
            if cache is not None:
                computed = _new(SharedSignals, computed)
                cache.put(cid, now_ms, computed)
            known[cid] = computed
    return [known[cid] for cid in ids]


async def trending(
    deps: Deps,
    store: TrendingStore,
    now_ms: int,
    window: TrendWindow,
    kind: ContentKind | None,
    region: str | None,
    first: int,
    pages: PageCache[PageKey, Page] | None = None,
) -> list[TrendingEntry]:
    """The list, highest heat first. A content the catalog no longer has is left
    out, and the ranks stay dense. With ``pages``, a page read within its time to
    live is answered without Redis or MongoDB (same order, heat as of now)."""
    key = (window, kind.value if kind else ALL_KINDS, check_region(region), check_first(first))
    page = pages.get(key) if pages is not None else None
    if page is None:
        page = await _page(deps, store, key)
        if pages is not None:
            pages.put(key, page)
    spec = WINDOWS[window]
    return [
        TrendingEntry(i, current_heat(frame, now_ms, spec), content)
        for i, (frame, content) in enumerate(page, start=1)
    ]


async def _page(deps: Deps, store: TrendingStore, key: PageKey) -> Page:
    window, kind, region, first = key
    top = await store.top(window, kind, region, first)
    if not top:
        return []
    found = await deps.contents.get_many([r.content_id for r in top])
    return [(r.frame, found[r.content_id]) for r in top if r.content_id in found]
