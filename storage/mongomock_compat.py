"""mongomock 4.3 vs pymongo >= 4.11: ``bulk_write`` with UpdateOne/ReplaceOne.

pymongo 4.11 passes a new ``sort`` argument to the bulk builder, which mongomock
does not accept (mongomock issue 912), so every bulk update raised TypeError.
We accept ``sort=None`` (what UpdateOne/ReplaceOne without a sort send) and refuse
a real sort loudly instead of ignoring it. Applied only where mongomock is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mongomock.collection as mc

_PATCHED = "_likeview_sort_compat"


def _without_sort(original: Any) -> Any:
    def call(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        if sort is not None:
            raise NotImplementedError("mongomock cannot sort inside bulk updates")
        return original(self, *args, **kwargs)

    setattr(call, _PATCHED, True)
    return call


def patch_bulk_sort() -> None:
    builder = mc.BulkOperationBuilder
    for name in ("add_update", "add_replace"):
        method = getattr(builder, name)
        if not getattr(method, _PATCHED, False):
            setattr(builder, name, _without_sort(method))


# --- an _id "index" for mongomock ------------------------------------------------
#
# mongomock answers every query by scanning the whole collection, so in the
# embedded mode each lookup by _id cost O(documents) and the service slowed down
# as data grew. Real MongoDB answers these from the _id index. For filters that
# pin _id to plain values (equality or $in) we fetch those documents by key and
# still run the complete filter on them, so results are the same as a scan.

_PLAIN_ID = (str, int)


def _pinned_ids(filter: Any) -> list[Any] | None:
    if not isinstance(filter, dict) or "_id" not in filter:
        return None
    wanted = filter["_id"]
    if isinstance(wanted, _PLAIN_ID) and not isinstance(wanted, bool):
        return [wanted]
    if isinstance(wanted, dict) and set(wanted) == {"$in"} and isinstance(wanted["$in"], list):
        ids = wanted["$in"]
        if all(isinstance(i, _PLAIN_ID) and not isinstance(i, bool) for i in ids):
            return list(dict.fromkeys(ids))
    return None


# A range on one field (the outbox relay's "outbox.occurred_at_ms < cutoff") cannot
# match a document without that field's top-level key, and mongomock's generic
# filter costs microseconds per document: with one session document per view,
# the relay's periodic scan grew with every view ever recorded. Such documents
# are skipped before the filter; the rest get the complete filter. For a dotted
# path, so is a document whose top-level value is not a non-empty list or
# object (a pruned outbox is an empty list): no element, no match.

_RANGE_OPS = frozenset({"$lt", "$lte", "$gt", "$gte"})


def _range_head(filter: Any) -> tuple[str, bool] | None:
    if not isinstance(filter, dict) or len(filter) != 1:
        return None
    ((path, cond),) = filter.items()
    if not isinstance(path, str) or path.startswith("$") or not path:
        return None
    if not isinstance(cond, dict) or not cond or not set(cond) <= _RANGE_OPS:
        return None
    if not all(type(v) in (int, float) for v in cond.values()):
        return None
    head, dot, _ = path.partition(".")
    return head, bool(dot)


def _may_match(doc: Any, head: str, dotted: bool) -> bool:
    if head not in doc:
        return False
    if not dotted:
        return True
    # Only the certain cases are skipped; anything else gets the real filter.
    value = doc[head]
    return not (value == [] or type(value) in (str, int, float, bool, type(None)))


def patch_id_lookup() -> None:
    from mongomock.filtering import filter_applies

    collection = mc.Collection
    original = collection._iter_documents
    if getattr(original, _PATCHED, False):
        return

    def _iter_documents(self: Any, filter: Any) -> Any:
        ids = _pinned_ids(filter)
        if ids is None:
            range_head = _range_head(filter)
            if range_head is None:
                return original(self, filter)
            store = self._store
            if store.is_empty:
                filter_applies(filter, {})  # mongomock validates the filter even then
            return (
                doc
                for doc in list(store.documents)
                if _may_match(doc, *range_head) and filter_applies(filter, doc)
            )
        store = self._store
        # What CollectionStore's `in` and `[]` do per key, done once per lookup.
        store._remove_expired_documents()
        with store._rwlock.reader():
            docs = store._documents
            found = [(i, docs[i]) for i in ids if i in docs]
        if len(filter) == 1:
            # Nothing but the _id: a document stored under that very key, with an
            # _id of the same type, matches; anything odd still goes to the filter.
            return (
                doc
                for i, doc in found
                if (type(doc.get("_id")) is type(i) and doc["_id"] == i)
                or filter_applies(filter, doc)
            )
        return (doc for _, doc in found if filter_applies(filter, doc))

    setattr(_iter_documents, _PATCHED, True)
    setattr(collection, "_iter_documents", _iter_documents)  # noqa: B010 - mypy: method


# --- per-document helpers on mongomock's write path ---------------------------
#
# Every insert and update walks the whole document twice in Python: once to
# refuse field names with a NUL character, once to copy it while converting
# datetimes to naive UTC at millisecond precision. Both call isinstance against
# ABCs (Mapping, OrderedDict) for every value, which is most of their cost; the
# view path stores ~100 session documents per request. These versions take the
# common exact types (str, int, float, bool, None, bytes, dict, list) directly
# and hand anything else to mongomock's own function, so every value comes out
# exactly as before (tests compare them on assorted documents).

_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


def _fast_patch_datetimes(original: Any) -> Any:
    def patch(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return {k: v if type(v) in _ATOMS else patch(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [v if type(v) in _ATOMS else patch(v) for v in value]
        if kind in _ATOMS:
            return value
        # datetime, Timestamp, OrderedDict and subclasses: mongomock's own rules
        # (which recurse through this function again).
        return original(value)

    setattr(patch, _PATCHED, True)
    patch.__wrapped__ = original  # type: ignore[attr-defined]
    return patch


def _fast_key_check(original: Any) -> Any:
    from collections.abc import Mapping

    def check(data: Any) -> None:
        for key, value in data.items():
            if "\0" in key:
                # Let mongomock raise its own error.
                original({key: None})
            kind = type(value)
            if kind is dict or (
                kind not in _ATOMS and kind is not list and isinstance(value, Mapping)
            ):
                check(value)

    setattr(check, _PATCHED, True)
    check.__wrapped__ = original  # type: ignore[attr-defined]
    return check


def patch_document_helpers() -> None:
    from mongomock import helpers

    current = helpers.patch_datetime_awareness_in_document
    if not getattr(current, _PATCHED, False):
        helpers.patch_datetime_awareness_in_document = _fast_patch_datetimes(current)
    checker = mc._recursive_key_check_null_character
    if not getattr(checker, _PATCHED, False):
        mc._recursive_key_check_null_character = _fast_key_check(checker)


# --- find(...).limit(n) stops after n documents -------------------------------
#
# mongomock builds a cursor's whole result (filtering and copying every matching
# document) and only then cuts it to the limit; real MongoDB stops after n. The
# outbox relay asks for the oldest few hundred pending entries out of possibly
# thousands, so every pass copied them all: a 60-140 ms stall of the event loop
# in the embedded mode. Without a sort or a skip, the first n documents of the
# scan are exactly what the full result would start with, so we take only those.
# Everything else (sorts, skips, counts) is mongomock's own.


def patch_limited_find() -> None:
    from itertools import islice

    from mongomock import helpers

    cursor = mc.Cursor
    original = cursor._compute_results
    if getattr(original, _PATCHED, False):
        return

    def _compute_results(self: Any, with_limit_and_skip: bool = False) -> Any:
        limit = self._limit
        if (
            not with_limit_and_skip
            or not isinstance(limit, int)
            or limit <= 0
            or self._sort
            or self._skip
        ):
            return original(self, with_limit_and_skip)
        cached = getattr(self, "_likeview_limited", None)
        # Recomputed when the query changed, as mongomock does for its own cache.
        if cached is None or cached[0] is not self._factory or cached[1] != limit:
            docs: Iterable[Any] = islice(self._factory(), limit)
            if self.collection.codec_options.tz_aware:
                # What mongomock does to each document of a tz-aware client.
                aware = helpers.make_datetime_timezone_aware_in_document
                docs = (aware(doc) for doc in docs)
            cached = (self._factory, limit, list(docs))
            self._likeview_limited = cached
        return cached[2]

    setattr(_compute_results, _PATCHED, True)
    setattr(cursor, "_compute_results", _compute_results)  # noqa: B010 - mypy: method
