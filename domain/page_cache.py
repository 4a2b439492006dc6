"""Answers that every reader shares, kept for a short time.

A trending page is the same for everyone who asks for it, and the trending worker
changes it at most about once per read of the event log, so a page read by many
clients within a second can be read once. Pure: the caller supplies the time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class PageCache(Generic[K, V]):
    """At most ``max_entries`` answers, each for ``ttl_s`` seconds of ``now()``.

    The least recently stored entry goes first when it is full: the keys are the
    pages' arguments, so a reader sending many different ones cannot grow it.
    """

    __slots__ = ("_entries", "_now", "max_entries", "ttl_s")

    def __init__(self, ttl_s: float, now: Callable[[], float], max_entries: int = 256) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive; leave the cache out to turn it off")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = now
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self._now() >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._now() + self.ttl_s, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class StampedCache(Generic[K, V]):
    """Values computed at a time of the service's clock, each good for ``ttl_ms`` of
    that clock from then (a clock that jumps, as tests make it, ages them too).

    At most ``max_entries``; the oldest stored goes first. Pure: the caller passes
    the time, so a hundred lookups of one request cost no clock reads.
    """

    __slots__ = ("_entries", "max_entries", "ttl_ms")

    def __init__(self, ttl_ms: int, max_entries: int) -> None:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive; leave the cache out to turn it off")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._entries: dict[K, tuple[int, V]] = {}

    def get(self, key: K, now_ms: int) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        at, value = found
        # Before its time too: a value computed "later" than now is not now's.
        return value if at <= now_ms < at + self.ttl_ms else None

    def put(self, key: K, now_ms: int, value: V) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (now_ms, value)
        if len(entries) > self.max_entries:
            del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)
