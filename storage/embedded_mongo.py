"""MongoDB in process, for the embedded mode and the tests: mongomock-motor with the
patches of storage/mongomock_compat.py. Nothing here runs against a real server.

One patch is needed for behaviour: bulk writes of UpdateOne/ReplaceOne, which
mongomock 4.3 refuses under pymongo >= 4.11 (mongomock issue 912). The others make
the in-process store answer in the time a server would, so that the embedded mode
and the benchmarks run on it measure our code rather than mongomock's scans:
lookups by ``_id`` and by the leading fields of real indexes (EMULATED_INDEXES),
a limited find that stops at its limit, an aggregate that starts from its first
``$match``, lighter document copies. Each is tested against mongomock's own answer
(tests/integration/test_mongomock_compat.py, test_mongomock_indexes.py).
"""

from __future__ import annotations

from typing import Any

# Leading fields of storage.mongo.INDEXES that the in-process store answers from an index of its
# own (storage/mongomock_compat.py), as a server does: the ones the recounts, the
# reactor pages and the integrity enforcer's re-tiering pin. Others would cost
# memory per document and answer no query.
EMULATED_INDEXES: dict[str, tuple[str, ...]] = {
    # user_id: an excluded or restored user's reactions, a page at a time.
    "reactions": ("content_id", "user_id"),
    # last_event_at: the embedded retention's "idle since" (see ttl_indexes too).
    # viewer_key: an excluded or restored viewer's counted sessions; without it each
    # re-tiered actor scanned every session (seconds per actor under load).
    "view_sessions": ("content_id", "last_event_at", "viewer_key"),
    # _id order: the reconciler's sweep pages through contents by _id.
    "contents": ("_id",),
    # The embedded retention's "stored before" (the TTL field on a server).
    "events": ("archived_at",),
    "view_events": ("archived_at",),
    # The embedded retention's expired minute and hour buckets (the TTL field on a
    # server): without it every pass scanned every bucket of 48 hours or 400 days.
    "analytics_minute": ("start",),
    "analytics_hour": ("start",),
}


def open_embedded_client() -> Any:
    from mongomock_motor import AsyncMongoMockClient

    from storage.mongomock_compat import (
        patch_aggregate_match,
        patch_bulk_sort,
        patch_document_helpers,
        patch_find_copies,
        patch_id_lookup,
        patch_limited_find,
        patch_secondary_indexes,
        patch_update_path,
        patch_version_checks,
    )

    patch_bulk_sort()
    patch_id_lookup()
    patch_secondary_indexes(EMULATED_INDEXES)
    patch_document_helpers()
    patch_find_copies()
    patch_update_path()
    patch_limited_find()
    patch_aggregate_match()
    patch_version_checks()
    return AsyncMongoMockClient(tz_aware=True)
