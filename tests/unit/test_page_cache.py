"""domain/page_cache.py: kept for its time to live, bounded, oldest stored first out."""

from __future__ import annotations

import pytest

from domain.page_cache import PageCache, StampedCache


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("elapsed", "kept"),
    [(0.0, True), (0.999, True), (1.0, False), (5.0, False)],
)
def test_an_entry_lives_for_its_ttl(elapsed: float, kept: bool) -> None:
    clock = Clock()
    cache: PageCache[str, int] = PageCache(1.0, clock)
    cache.put("k", 1)
    clock.t += elapsed
    assert (cache.get("k") == 1) is kept
    assert (len(cache) == 1) is kept


def test_a_new_put_restarts_the_time_and_replaces_the_value() -> None:
    clock = Clock()
    cache: PageCache[str, int] = PageCache(1.0, clock)
    cache.put("k", 1)
    clock.t += 0.8
    cache.put("k", 2)
    clock.t += 0.8
    assert cache.get("k") == 2


def test_the_oldest_stored_goes_first_when_full() -> None:
    cache: PageCache[int, int] = PageCache(10.0, Clock(), max_entries=3)
    for k in range(5):
        cache.put(k, k)
    assert len(cache) == 3
    assert [cache.get(k) for k in range(5)] == [None, None, 2, 3, 4]


def test_missing_and_cleared() -> None:
    cache: PageCache[str, int] = PageCache(1.0, Clock())
    assert cache.get("absent") is None
    cache.put("k", 1)
    cache.clear()
    assert cache.get("k") is None


@pytest.mark.parametrize(("ttl", "size"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_settings_are_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError):
        PageCache(ttl, Clock(), max_entries=size)


@pytest.mark.parametrize(
    ("read_at", "kept"),
    [(1_000, True), (1_999, True), (2_000, False), (9_000, False), (999, False)],
)
def test_a_stamped_entry_lives_for_its_ttl_of_the_callers_clock(read_at: int, kept: bool) -> None:
    cache: StampedCache[str, int] = StampedCache(1_000, 10)
    cache.put("k", 1_000, 1)
    assert (cache.get("k", read_at) == 1) is kept


def test_a_stamped_put_restarts_the_time_and_the_oldest_stored_goes_first() -> None:
    cache: StampedCache[int, int] = StampedCache(1_000, 3)
    for k in range(4):
        cache.put(k, 0, k)
    cache.put(1, 900, 10)  # stored again: now the newest
    cache.put(4, 900, 4)
    assert len(cache) == 3
    assert [cache.get(k, 1_500) for k in range(5)] == [None, 10, None, None, 4]


@pytest.mark.parametrize(("ttl", "size"), [(0, 1), (-1, 1), (1, 0)])
def test_bad_stamped_settings_are_refused(ttl: int, size: int) -> None:
    with pytest.raises(ValueError):
        StampedCache(ttl, size)
