"""mongomock 4.3 vs pymongo >= 4.11: ``bulk_write`` with UpdateOne/ReplaceOne.

pymongo 4.11 passes a new ``sort`` argument to the bulk builder, which mongomock
does not accept (mongomock issue 912), so every bulk update raised TypeError.
We accept ``sort=None`` (what UpdateOne/ReplaceOne without a sort send) and refuse
a real sort loudly instead of ignoring it. Applied only where mongomock is used.
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import mongomock.collection as mc
from packaging import version as packaging_version

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
        # (which recurse through this function again). Also the shape of
        # make_datetime_timezone_aware_in_document, which patch_find_copies wraps.
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


# mongomock compares the installed pymongo's version with a literal on many of
# its paths, parsing the literal each time: on every field an update sets, for
# one. Parsing the same few strings once gives the same comparisons.


class _ParsedOnce:
    parse = staticmethod(functools.lru_cache(maxsize=64)(packaging_version.parse))
    Version = packaging_version.Version


def patch_version_checks() -> None:
    """mongomock's modules that parse version literals get a parse that remembers."""
    import mongomock.aggregate
    import mongomock.codec_options
    import mongomock.database
    import mongomock.helpers
    import mongomock.mongo_client

    for module in (
        mc,
        mongomock.aggregate,
        mongomock.codec_options,
        mongomock.database,
        mongomock.helpers,
        mongomock.mongo_client,
    ):
        if getattr(module, "version", None) is packaging_version:
            module.version = _ParsedOnce  # type: ignore[attr-defined]


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
# thousands, so every pass would copy them all, a stall of the event loop in the
# embedded mode. Without a sort or a skip, the first n documents of the
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
            or (self._sort and _id_order(self.collection._store, self._spec, self._sort) is None)
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


# --- secondary indexes: {field: value} and {field: {"$in": [...]}} ------------
#
# Real MongoDB answers the recount's "content_id in this page" from the indexes
# declared in storage/mongo.py; mongomock scans the whole collection for it, so
# in the embedded mode every recount query (the reconciler's pages, a read that
# rebuilds missing counters) held the event loop for a time that grew with all
# the views ever stored. For the fields given to patch_secondary_indexes we keep
# value -> document keys, updated on every store write and after every update,
# take the candidates of the pinned values, and still run the complete filter on
# them in store order: the result is what the scan returns (tests compare them).

_ABSENT = object()
_ARRAY = object()  # an array matches a plain value it contains: always a candidate
_RECORDING = "_likeview_recording"


def _key_of(doc: Any) -> Any:
    from mongomock import helpers

    _id = doc["_id"]
    return helpers.hashdict(_id) if isinstance(_id, dict) else _id


class _FieldIndex:
    """Plain values -> keys (equality and $in), and datetimes kept sorted (ranges)."""

    def __init__(self, field: str, store: Any) -> None:
        self.field = field
        self.by_value: dict[Any, dict[Any, None]] = {}
        self.arrays: dict[Any, None] = {}
        self.dates: list[tuple[datetime, int]] = []
        self.value_of: dict[Any, Any] = {}
        # Store order: a key keeps its place when its document is replaced or updated.
        self.seq: dict[Any, int] = {}
        self.key_at: dict[int, Any] = {}
        self._next = 0
        for key, doc in store._documents.items():
            self.add(key, doc)

    def add(self, key: Any, doc: Any) -> None:
        if key in self.value_of and isinstance(doc, dict):
            value = doc.get(self.field, _ABSENT)
            known = self.value_of[key]
            # Rewritten with the same plain value (most updates leave the indexed
            # field alone): the entries stand as they are.
            if type(value) is type(known) and value == known and type(value) is not list:
                return
        self.discard(key, keep_place=True)
        if key not in self.seq:
            self.seq[key] = self._next
            self.key_at[self._next] = key
            self._next += 1
        value = doc.get(self.field, _ABSENT) if isinstance(doc, dict) else _ABSENT
        if type(value) in _PLAIN_ID:
            self.by_value.setdefault(value, {})[key] = None
        elif type(value) is datetime and value.tzinfo is None:
            bisect.insort(self.dates, (value, self.seq[key]))
        elif type(value) is list:
            value = _ARRAY
            self.arrays[key] = None
        else:
            # Absent, null, an object: never equal to, or in a range of, plain values.
            value = _ABSENT
        self.value_of[key] = value

    def discard(self, key: Any, *, keep_place: bool = False) -> None:
        value = self.value_of.pop(key, None)
        seq = self.seq.get(key) if keep_place else self.seq.pop(key, None)
        if not keep_place and seq is not None:
            del self.key_at[seq]
        if value is None or value is _ABSENT:
            return
        if value is _ARRAY:
            self.arrays.pop(key, None)
        elif type(value) is datetime:
            i = bisect.bisect_left(self.dates, (value, seq))
            if i < len(self.dates) and self.dates[i] == (value, seq):
                del self.dates[i]
        else:
            bucket = self.by_value.get(value)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.by_value[value]

    def candidates(self, values: list[Any]) -> list[Any]:
        keys: dict[Any, None] = dict(self.arrays)
        for value in values:
            keys.update(self.by_value.get(value, {}))
        return sorted(keys, key=self.seq.__getitem__)

    def in_range(self, bounds: dict[str, datetime]) -> Iterable[Any]:
        """Keys whose date is within ``bounds``, oldest first (a server's index
        order; no sort was asked for), then documents with arrays."""
        lo, hi = 0, len(self.dates)
        for op, v in bounds.items():
            if op == "$gt":
                lo = max(lo, bisect.bisect_right(self.dates, (v, _LAST)))
            elif op == "$gte":
                lo = max(lo, bisect.bisect_left(self.dates, (v, -1)))
            elif op == "$lt":
                hi = min(hi, bisect.bisect_left(self.dates, (v, -1)))
            else:
                hi = min(hi, bisect.bisect_right(self.dates, (v, _LAST)))
        # Lazily: a limited find (the embedded retention's pages) takes the first
        # few of what may be most of the collection. The slice is a copy, so a
        # write between two steps moves nothing under it.
        window, key_at = self.dates[lo:hi], self.key_at
        dated = (key_at.get(seq, _ABSENT) for _, seq in window)
        return itertools.chain((k for k in dated if k is not _ABSENT), list(self.arrays))


_LAST = float("inf")


def _pinned_range(filter: Any, field: str) -> dict[str, datetime] | None:
    bounds = filter.get(field) if isinstance(filter, dict) else None
    if not isinstance(bounds, dict) or not bounds or not set(bounds) <= _ID_RANGE:
        return None
    # Stored datetimes are naive UTC, and so are the filters mongomock hands us.
    if all(type(v) is datetime and v.tzinfo is None for v in bounds.values()):
        return bounds
    return None


# Keyset pages in _id order ({_id: {$gt: last}} sorted by _id, limited: the
# reconciler's sweep of contents) are an index range scan on a server; mongomock
# filters, copies and sorts the whole collection for each page. For collections
# whose name maps to "_id" in the fields given, we keep the string _ids sorted and
# walk from the page's start, lazily, still applying the full filter.

_ID_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
_EMULATED: dict[str, tuple[str, ...]] = {}
_SORTED_IDS = "_likeview_sorted_ids"


class _SortedIds:
    def __init__(self, store: Any) -> None:
        keys = list(store._documents)
        self.keys: list[str] | None = sorted(keys) if all(type(k) is str for k in keys) else None

    @staticmethod
    def of(store: Any, fields: dict[str, tuple[str, ...]]) -> _SortedIds:
        found: _SortedIds | None = store.__dict__.get(_SORTED_IDS)
        if found is None:
            found = _SortedIds(store) if "_id" in fields.get(store.name, ()) else _NO_ORDER
            setattr(store, _SORTED_IDS, found)
        return found

    def add(self, key: Any) -> None:
        if self.keys is None:
            return
        if type(key) is not str:
            self.keys = None  # mixed key types: mongomock's own sort from now on
            return
        bisect.insort(self.keys, key)

    def discard(self, key: Any) -> None:
        if self.keys is None:
            return
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]


_NO_ORDER = _SortedIds.__new__(_SortedIds)
_NO_ORDER.keys = None


def _id_order(store: Any, spec: Any, sort: Any) -> Any:
    """Documents matching ``spec`` in ``sort`` order, lazily, when that is a sort on
    _id alone and ``spec`` is empty or a range on _id; otherwise None."""
    if not sort:
        return None
    ordered = _SortedIds.of(store, _EMULATED)
    if ordered.keys is None:
        return None
    pairs = list(sort.items()) if isinstance(sort, dict) else list(sort)
    if len(pairs) != 1 or pairs[0][0] != "_id" or pairs[0][1] not in (1, -1):
        return None
    keys = ordered.keys
    lo, hi = 0, len(keys)
    if spec:
        bounds = spec.get("_id") if isinstance(spec, dict) and len(spec) == 1 else None
        if not isinstance(bounds, dict) or not bounds or not set(bounds) <= _ID_RANGE:
            return None
        if not all(type(v) is str for v in bounds.values()):
            return None
        for op, v in bounds.items():
            if op in ("$gt", "$gte"):
                cut = bisect.bisect_right if op == "$gt" else bisect.bisect_left
                lo = max(lo, cut(keys, v))
            else:
                cut = bisect.bisect_left if op == "$lt" else bisect.bisect_right
                hi = min(hi, cut(keys, v))
    window = keys[lo:hi] if pairs[0][1] == 1 else keys[lo:hi][::-1]
    from mongomock.filtering import filter_applies

    docs = store._documents
    return (
        doc
        for key in window
        if (doc := docs.get(key)) is not None and filter_applies(spec or {}, doc)
    )


def _pinned_values(filter: Any, field: str) -> list[Any] | None:
    wanted = filter.get(field) if isinstance(filter, dict) else None
    if type(wanted) in _PLAIN_ID:
        return [wanted]
    if isinstance(wanted, dict) and set(wanted) == {"$in"} and isinstance(wanted["$in"], list):
        values = wanted["$in"]
        if all(type(v) in _PLAIN_ID for v in values):
            return values
    return None


def _indexes_of(store: Any, fields: dict[str, tuple[str, ...]]) -> list[_FieldIndex]:
    found: list[_FieldIndex] | None = store.__dict__.get("_likeview_indexes")
    if found is None:
        found = [_FieldIndex(f, store) for f in fields.get(store.name, ()) if f != "_id"]
        store._likeview_indexes = found
    return found


def patch_secondary_indexes(fields: dict[str, tuple[str, ...]]) -> None:
    """Index ``fields`` per collection name (mongomock builds each index on first use)."""
    from mongomock.filtering import filter_applies
    from mongomock.store import CollectionStore

    if getattr(CollectionStore.__setitem__, _PATCHED, False):
        return
    _EMULATED.update(fields)
    set_item, del_item, drop = (
        CollectionStore.__setitem__,
        CollectionStore.__delitem__,
        CollectionStore.drop,
    )

    def __setitem__(self: Any, key: Any, val: Any) -> None:
        # Built (from the store as it is) before the write, which then adds to them.
        indexes, ordered = _indexes_of(self, fields), _SortedIds.of(self, fields)
        fresh = key not in self._documents
        set_item(self, key, val)
        for index in indexes:
            index.add(key, val)
        if fresh:
            ordered.add(key)

    def __delitem__(self: Any, key: Any) -> None:
        indexes, ordered = _indexes_of(self, fields), _SortedIds.of(self, fields)
        del_item(self, key)
        for index in indexes:
            index.discard(key)
        ordered.discard(key)

    def _drop(self: Any) -> None:
        drop(self)
        self.__dict__.pop("_likeview_indexes", None)
        self.__dict__.pop("_likeview_sorted_ids", None)

    for name, fn in (("__setitem__", __setitem__), ("__delitem__", __delitem__), ("drop", _drop)):
        setattr(fn, _PATCHED, True)
        setattr(CollectionStore, name, fn)

    collection = mc.Collection
    iter_documents, update = collection._iter_documents, collection._update
    get_dataset = collection._get_dataset

    def _get_dataset(self: Any, spec: Any, sort: Any, fields_: Any, as_class: Any) -> Any:
        docs = _id_order(self._store, spec, sort)
        if docs is None:
            yield from get_dataset(self, spec, sort, fields_, as_class)
            return
        for doc in docs:
            yield self._copy_only_fields(doc, fields_, as_class)

    setattr(_get_dataset, _PATCHED, True)
    setattr(collection, "_get_dataset", _get_dataset)  # noqa: B010 - mypy: method

    def _iter_documents(self: Any, filter: Any) -> Any:
        store = self._store
        docs: Any = None
        if _pinned_ids(filter) is None:
            for index in _indexes_of(store, fields):
                values = _pinned_values(filter, index.field)
                bounds = None if values is not None else _pinned_range(filter, index.field)
                if values is not None or bounds is not None:
                    store._remove_expired_documents()
                    keys = (
                        index.candidates(values)
                        if values is not None
                        else index.in_range(bounds or {})
                    )
                    by_key = store._documents
                    docs = (
                        doc
                        for k in keys
                        if (doc := by_key.get(k, _ABSENT)) is not _ABSENT
                        and filter_applies(filter, doc)
                    )
                    break
        if docs is None:
            docs = iter_documents(self, filter)
        recording = store.__dict__.get(_RECORDING)
        if recording is None:
            return docs
        return (recording.append(doc) or doc for doc in docs)

    def _update(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Updates change documents in place: re-index the ones the update visited.
        store = self._store
        if not _indexes_of(store, fields):
            return update(self, *args, **kwargs)
        visited: list[Any] = []
        store._likeview_recording = visited
        try:
            return update(self, *args, **kwargs)
        finally:
            store.__dict__.pop(_RECORDING, None)
            for doc in visited:
                key = _key_of(doc)
                if store._documents.get(key) is doc:
                    for index in _indexes_of(store, fields):
                        index.add(key, doc)

    for name, fn in (("_iter_documents", _iter_documents), ("_update", _update)):
        setattr(fn, _PATCHED, True)
        setattr(collection, name, fn)


# --- aggregate starts from its leading $match ----------------------------------
#
# mongomock's aggregate copies every document of the collection (a find() with
# no filter) before it runs the first stage, so a recount of 50 contents copied
# all view sessions ever stored. A server runs a leading $match from an index.
# We start from find(<that $match>) instead: the same documents in the same
# order, which the pipeline (its $match included) then processes as before.


def patch_aggregate_match() -> None:
    from mongomock import aggregate as mongomock_aggregate

    collection = mc.Collection
    original = collection.aggregate
    if getattr(original, _PATCHED, False):
        return

    def aggregate(self: Any, pipeline: Any, session: Any = None, **kwargs: Any) -> Any:
        first = pipeline[0] if isinstance(pipeline, list) and pipeline else None
        if not (isinstance(first, dict) and set(first) == {"$match"}) or session is not None:
            return original(self, pipeline, session, **kwargs)
        docs = list(self.find(first["$match"]))
        return mongomock_aggregate.process_pipeline(docs, self.database, pipeline, session)

    setattr(aggregate, _PATCHED, True)
    aggregate.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(collection, "aggregate", aggregate)  # noqa: B010 - mypy: method


# --- updates: the snapshot and $in/$nin ---------------------------------------
#
# mongomock deep-copies every document an update visits (a snapshot, to roll
# back on a unique-index violation and to count nModified), through
# copy.deepcopy's generic machinery: an analytics bucket with its guard of up to
# 1,000 tokens took most of a bucket write's time. And $in/$nin test each value
# of the document against a Python list, so a guard filter of 250 tokens over
# 1,000 was 250,000 comparisons; a server matches against a set. Both versions
# give the same results: documents are (ordered) dicts, lists and immutable values
# (anything else goes to copy.deepcopy as before), the snapshot differs from the
# document only where the update changes it (``path_copy``), and a set is used
# only when every searched value is a string.

_SNAPSHOT_PATCHED = "_likeview_fast_snapshot"
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, datetime})


def document_copy(value: Any) -> Any:
    """An exact deep copy of a document of plain values (what copy.deepcopy gives,
    without its per-value dispatch and memo)."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {k: v if type(v) in _IMMUTABLE else document_copy(v) for k, v in value.items()}
    if kind is OrderedDict:  # how mongomock stores a document
        return OrderedDict(
            (k, v if type(v) in _IMMUTABLE else document_copy(v)) for k, v in value.items()
        )
    if kind is list:
        return [v if type(v) in _IMMUTABLE else document_copy(v) for v in value]
    return copy.deepcopy(value)


# Update operators whose fields name exactly what they change; with only these
# (and no positional or array-index path), the snapshot copies the changed paths
# and shares the rest with the document: a creator's analytics bucket holds a
# counter per content, and an update touching a hundred of them copied all.
_PATH_OPERATORS = frozenset({"$inc", "$push", "$set", "$setOnInsert", "$min", "$max"})
_DICTS = (dict, OrderedDict)


def touched_paths(update: Any) -> list[list[str]] | None:
    """The dotted paths an update document changes, or None when that is not
    plain to see (other operators, positional or array-index paths)."""
    if type(update) not in _DICTS or not update:
        return None
    paths = []
    for op, fields in update.items():
        if op not in _PATH_OPERATORS or type(fields) not in _DICTS:
            return None
        for name in fields:
            if "$" in name:
                return None
            parts = name.split(".")
            for part in parts:
                if not part or part.isdigit():
                    return None
            paths.append(parts)
    return paths


def path_copy(doc: Any, paths: list[list[str]]) -> Any:
    """A snapshot of ``doc`` as an update of ``paths`` will find it changed: every
    dict on those paths copied, their values deep-copied, everything else shared
    (untouched by the update, so the same before and after)."""
    out = type(doc)(doc)
    for parts in paths:
        src, dst = doc, out
        last = len(parts) - 1
        for i, key in enumerate(parts):
            if key not in src:
                break  # created by the update: the snapshot has none
            value = src[key]
            if i == last or type(value) not in _DICTS:
                dst[key] = document_copy(value)
                break
            if dst[key] is value:
                dst[key] = type(value)(value)
            src, dst = value, dst[key]
    return out


class _CopyForUpdates:
    """Stands in for the ``copy`` module inside mongomock's update path: its one
    deep copy of a whole document is the snapshot (the others copy lists)."""

    update: Any = None  # the update document of the update under way
    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any) -> Any:
        update = _CopyForUpdates.update
        if update is not None and type(value) is OrderedDict:
            # Worked out here, not per update: an upsert that inserts copies nothing.
            paths = touched_paths(update)
            if paths is not None:
                return path_copy(value, paths)
        return document_copy(value)


def _in_strings(original: Any) -> Any:
    def in_op(doc_val: Any, search_val: Any) -> Any:
        if type(search_val) is list and len(search_val) > 4:
            wanted = set()
            for v in search_val:
                if type(v) is not str:
                    return original(doc_val, search_val)
                wanted.add(v)
            values = doc_val if isinstance(doc_val, list | tuple) else (doc_val,)
            try:
                # Only a string equals a string, and the set hashes like ==.
                return not wanted.isdisjoint(values)
            except TypeError:  # an unhashable value (a sub-document): one by one
                return any(isinstance(v, str) and v in wanted for v in values)
        return original(doc_val, search_val)

    return in_op


def patch_update_path() -> None:
    from mongomock import filtering

    collection = mc.Collection
    update = collection._update
    if getattr(update, _SNAPSHOT_PATCHED, False):
        return

    def _update(self: Any, *args: Any, **kwargs: Any) -> Any:
        # mongomock's update path is synchronous: nothing else runs in between.
        _CopyForUpdates.update = args[1] if len(args) > 1 else kwargs.get("document")
        mc.copy = _CopyForUpdates  # type: ignore[assignment]
        try:
            return update(self, *args, **kwargs)
        finally:
            mc.copy = copy
            _CopyForUpdates.update = None

    setattr(_update, _SNAPSHOT_PATCHED, True)
    setattr(collection, "_update", _update)  # noqa: B010 - mypy: method
    operators = filtering._filterer_inst._operator_map
    in_op = _in_strings(filtering._in_op)
    operators["$in"] = in_op
    operators["$nin"] = lambda dv, sv: not in_op(dv, sv)


# --- reads: the copies of what a find returns -----------------------------------
#
# mongomock copies every document a find returns twice in Python: once for the
# projection (``_copy_field``, copy.copy per value) and once to make its
# datetimes timezone-aware (the client is tz_aware), each testing isinstance
# against several types per value. A creator analytics bucket of 100 contents'
# counters is some 300 values: copying 31 of them was most of a dashboard read
# in the embedded mode. These versions take the exact common types directly
# (immutable values are shared, as a copy of them is equal and immutable) and
# hand anything else to mongomock's own function, so the results are the same
# (tests compare them on assorted documents). Only the embedded store's cost:
# a real server decodes BSON instead.

_SHARED = frozenset({str, int, float, bool, type(None), bytes, datetime})


def _fast_copy_field(original: Any) -> Any:
    def copy_field(obj: Any, container: Any) -> Any:
        kind = type(obj)
        if kind in _SHARED:
            return obj
        if kind is dict or kind is OrderedDict:
            if container is dict:
                return {
                    k: v if type(v) in _SHARED else copy_field(v, container) for k, v in obj.items()
                }
            new = container()
            for k, v in obj.items():
                new[k] = v if type(v) in _SHARED else copy_field(v, container)
            return new
        if kind is list:
            return [v if type(v) in _SHARED else copy_field(v, container) for v in obj]
        return original(obj, container)

    setattr(copy_field, _PATCHED, True)
    copy_field.__wrapped__ = original  # type: ignore[attr-defined]
    return copy_field


def _plain_projection(fields: Any) -> tuple[bool, Any, frozenset[str]] | None:
    """(include, the _id value, the other fields) of a projection naming top-level
    fields only, all included or all excluded; None for anything else (dotted
    paths, operators, a mix), which mongomock's own code takes (and refuses)."""
    if type(fields) is not dict or not fields:
        return None
    others = []
    for key, value in fields.items():
        if type(key) is not str or "." in key or key.startswith("$"):
            return None
        if type(value) is not int and type(value) is not bool:
            return None
        if key != "_id":
            others.append(value)
    if not others or len({bool(v) for v in others}) != 1:
        return None
    names = frozenset(k for k in fields if k != "_id")
    return bool(others[0]), fields.get("_id", 1), names


def _fast_copy_only_fields(original: Any) -> Any:
    def _copy_only_fields(self: Any, doc: Any, fields: Any, container: Any) -> Any:
        plain = _plain_projection(fields) if container is dict and type(doc) is dict else None
        if plain is None:
            return original(self, doc, fields, container)
        include, id_value, names = plain
        copy_field = mc._copy_field
        # As mongomock's projection: the kept fields in document order, then _id
        # put back (last, when fields were included) unless it was excluded.
        out = {
            k: v if type(v) in _SHARED else copy_field(v, container)
            for k, v in doc.items()
            if (k in names) is include
        }
        if id_value == 0:
            out.pop("_id", None)
        elif "_id" in doc:
            out["_id"] = doc["_id"]
        return out

    setattr(_copy_only_fields, _PATCHED, True)
    _copy_only_fields.__wrapped__ = original  # type: ignore[attr-defined]
    return _copy_only_fields


def _aware_in_place(original: Any) -> Any:
    """What mongomock's ``make_datetime_timezone_aware_in_document`` gives, made in
    the document handed in: it is only ever called on a cursor's own copies
    (``Cursor._compute_results``, ``patch_limited_find``), so the second full copy
    it made of every result bought nothing."""

    def aware(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            for k, v in value.items():
                if type(v) not in _ATOMS:
                    new = aware(v)
                    if new is not v:
                        value[k] = new
            return value
        if kind is list:
            for i, v in enumerate(value):
                if type(v) not in _ATOMS:
                    new = aware(v)
                    if new is not v:
                        value[i] = new
            return value
        if kind in _ATOMS:
            return value
        # datetime, tuples, OrderedDict and other types: mongomock's own rules.
        return original(value)

    setattr(aware, _PATCHED, True)
    aware.__wrapped__ = original  # type: ignore[attr-defined]
    return aware


def patch_find_copies() -> None:
    from mongomock import helpers

    if not getattr(mc._copy_field, _PATCHED, False):
        mc._copy_field = _fast_copy_field(mc._copy_field)
    current = helpers.make_datetime_timezone_aware_in_document
    if not getattr(current, _PATCHED, False):
        helpers.make_datetime_timezone_aware_in_document = _aware_in_place(current)
    only = mc.Collection._copy_only_fields
    if not getattr(only, _PATCHED, False):
        setattr(mc.Collection, "_copy_only_fields", _fast_copy_only_fields(only))  # noqa: B010
