"""A bounded LRU of parsed analytics bucket parts, valid while the bucket's version is.

Every write of a bucket sets its ``v`` to a token unique to that write
(storage/mongo_analytics.py), so a cached part whose token equals the bucket's
current one holds exactly what the store holds. A dashboard's range is mostly
closed buckets (past days and hours) that rarely change: reading only ``{_id, v}``
of them and re-reading in full only those whose token moved cuts what crosses the
wire and is decoded per request. A counter would not do as a token: after a
rebuild it restarts and could equal a stale entry's.

The cached parts are shared by every reader that gets them: readers must not
modify them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

# (collection, bucket _id, the fields read: None for all counters)
CacheKey = tuple[str, str, tuple[str, ...] | None]


class BucketCache:
    def __init__(self, entries: int) -> None:
        self._max = entries
        self._items: OrderedDict[CacheKey, tuple[Hashable, dict[str, Any]]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._max > 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: CacheKey, version: Hashable) -> dict[str, Any] | None:
        """The cached part if it was read at this very version; None otherwise
        (a version of None, a bucket written before versions existed, never
        matches)."""
        item = self._items.get(key)
        if item is None or version is None or item[0] != version:
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: CacheKey, version: Hashable, doc: dict[str, Any]) -> None:
        if version is None or not self._max:
            return
        self._items[key] = (version, doc)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
