"""The ranking reads (domain/ranking.py) over a fake store: argument checks, order,
dense ranks, and the heat a stored frame score stands for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from domain import ranking
from domain.contents import Content, ContentKind
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.page_cache import PageCache, StampedCache
from domain.signals import Minute, RawSignals, SharedSignals, Sums, sums
from domain.trending import WINDOWS, Page, PageKey, Ranked, TrendWindow, frame_score

NOW = 1_790_000_000_000


class FakeStore:
    def __init__(self, top: list[Ranked], raw: dict[str, RawSignals] | None = None) -> None:
        self._top = top
        self._raw = raw or {}
        self.asked: list[tuple[Any, ...]] = []

    async def top(self, window: TrendWindow, kind: str, region: str, first: int) -> list[Ranked]:
        self.asked.append((window, kind, region, first))
        return self._top[:first]

    async def raw_signals(self, content_ids: Sequence[str]) -> dict[str, RawSignals]:
        self.asked.append(tuple(content_ids))
        return {c: self._raw[c] for c in content_ids if c in self._raw}

    async def signal_sums(self, content_ids: Sequence[str], now_ms: int) -> dict[str, Sums]:
        self.asked.append(tuple(content_ids))
        return {c: sums(self._raw[c], now_ms) for c in content_ids if c in self._raw}


class FakeContents:
    def __init__(self, known: Sequence[str]) -> None:
        self._known = {
            c: Content(c, "creator", ContentKind.VIDEO, datetime(2026, 1, 1, tzinfo=UTC), None)
            for c in known
        }

    async def get_many(self, content_ids: Sequence[str]) -> dict[str, Content]:
        return {c: self._known[c] for c in content_ids if c in self._known}


def deps(known: Sequence[str]) -> Deps:
    return cast(Deps, SimpleNamespace(contents=FakeContents(known)))


@pytest.mark.parametrize(
    ("region", "expected"),
    [(None, "all"), ("US", "US"), ("unknown", "unknown"), ("GB", "GB")],
)
def test_regions_accepted(region: str | None, expected: str) -> None:
    assert ranking.check_region(region) == expected


@pytest.mark.parametrize("region", ["us", "USA", "U", "", "all", "U1", "ÜS", "US "])
def test_regions_refused(region: str) -> None:
    with pytest.raises(BadUserInput, match="alpha-2"):
        ranking.check_region(region)


@pytest.mark.parametrize(("first", "ok"), [(0, False), (1, True), (100, True), (101, False)])
def test_first_bounds(first: int, ok: bool) -> None:
    if ok:
        assert ranking.check_first(first) == first
    else:
        with pytest.raises(BadUserInput, match="first"):
            ranking.check_first(first)


async def test_trending_skips_unknown_contents_and_ranks_densely() -> None:
    spec = WINDOWS[TrendWindow.HOUR]
    top = [
        Ranked("a", frame_score(8.0, NOW, spec)),
        Ranked("gone", frame_score(4.0, NOW, spec)),
        Ranked("b", frame_score(2.0, NOW - 60_000, spec)),
    ]
    store = FakeStore(top)
    got = await ranking.trending(
        deps(["a", "b"]), store, NOW, TrendWindow.HOUR, ContentKind.SHORT, "FR", 3
    )
    assert [(e.rank, e.content.content_id) for e in got] == [(1, "a"), (2, "b")]
    assert got[0].score == pytest.approx(8.0, rel=1e-12)
    # b's heat of 2 was reached a minute ago and has decayed since.
    assert got[1].score == pytest.approx(2.0 * 2.718281828459045 ** (-spec.decay_per_s * 60))
    assert store.asked == [(TrendWindow.HOUR, "SHORT", "FR", 3)]


async def test_trending_of_every_kind_and_region() -> None:
    store = FakeStore([])
    assert await ranking.trending(deps([]), store, NOW, TrendWindow.DAY, None, None, 20) == []
    assert store.asked == [(TrendWindow.DAY, "ALL", "all", 20)]


async def test_a_shared_page_is_read_once_within_its_time_and_still_decays() -> None:
    spec = WINDOWS[TrendWindow.HOUR]
    store = FakeStore([Ranked("a", frame_score(8.0, NOW, spec))])
    clock = [0.0]
    pages: PageCache[PageKey, Page] = PageCache(1.0, lambda: clock[0])
    args = (TrendWindow.HOUR, ContentKind.SHORT, None, 20)
    first = await ranking.trending(deps(["a"]), store, NOW, *args, pages)
    later = await ranking.trending(deps(["a"]), store, NOW + 60_000, *args, pages)
    assert len(store.asked) == 1
    assert [e.content.content_id for e in later] == ["a"]
    assert first[0].score == pytest.approx(8.0, rel=1e-12)
    assert later[0].score == pytest.approx(8.0 * math.exp(-spec.decay_per_s * 60), rel=1e-12)
    # Another page (another `first`) is its own read; past the time to live, a new read.
    await ranking.trending(
        deps(["a"]), store, NOW, TrendWindow.HOUR, ContentKind.SHORT, None, 5, pages
    )
    clock[0] = 1.0
    await ranking.trending(deps(["a"]), store, NOW, *args, pages)
    assert len(store.asked) == 3


async def test_bad_arguments_are_refused_before_the_shared_page() -> None:
    pages: PageCache[PageKey, Page] = PageCache(1.0, lambda: 0.0)
    with pytest.raises(BadUserInput, match="first"):
        await ranking.trending(deps([]), FakeStore([]), NOW, TrendWindow.HOUR, None, None, 0, pages)
    assert len(pages) == 0


async def test_signals_keep_the_asked_order_and_read_each_id_once() -> None:
    minute = NOW // 60_000
    raw = RawSignals({minute - 1: Minute(views=6, likes=3)}, 3, 6, 4, 2, 600, NOW - 5)
    store = FakeStore([], {"a": raw})
    got = await ranking.ranking_signals(store, NOW, ["b", "a", "b"])
    assert [s.content_id for s in got] == ["b", "a", "b"]
    assert store.asked == [("b", "a")]
    a = got[1]
    assert a.likes_per_minute.fifteen_minutes == pytest.approx(3 / 15)
    assert a.engagement_ratio == pytest.approx(0.5)
    assert a.view_to_like_conversion == pytest.approx(0.5)
    assert a.average_watch_ms == pytest.approx(100.0)
    assert got[0].unique_viewers == 0 and got[0].updated_at_ms is None


async def test_at_most_100_signals() -> None:
    with pytest.raises(BadUserInput, match="at most 100"):
        await ranking.ranking_signals(FakeStore([]), NOW, [f"c{i}" for i in range(101)])


async def test_cached_signals_are_reused_within_their_time_and_only_the_rest_read() -> None:
    minute = NOW // 60_000
    raw = RawSignals({minute - 1: Minute(views=6, likes=3)}, 3, 6, 4, 2, 600, NOW - 5)
    store = FakeStore([], {"a": raw, "b": raw})
    cache: ranking.SignalsCache = StampedCache(1_000, 100)
    first = await ranking.ranking_signals(store, NOW, ["a", "b", "a"], cache)
    assert store.asked == [("a", "b")]
    assert all(isinstance(s, SharedSignals) for s in first)
    uncached = FakeStore([], {"a": raw, "b": raw})
    assert first == await ranking.ranking_signals(uncached, NOW, ["a", "b", "a"])

    again = await ranking.ranking_signals(store, NOW + 999, ["b", "c", "a"], cache)
    assert store.asked == [("a", "b"), ("c",)]  # one read, of the one not kept
    assert again[0] is first[1] and again[2] is first[0]  # as of when computed
    assert again[1].unique_viewers == 0

    later = await ranking.ranking_signals(store, NOW + 1_000, ["a"], cache)
    assert store.asked[-1] == ("a",)
    assert later[0] is not first[0]
