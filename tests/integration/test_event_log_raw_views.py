"""Raw view events travel apart in the event log; the archive stores them as before."""

from __future__ import annotations

import orjson

from domain.events import RAW_VIEW, VIEW, EngagementEvent
from storage.mongo_events import MongoEventArchive
from storage.redis_stream import (
    RedisEventConsumer,
    decode,
    encode,
    events_of,
    raw_views_of,
)


def raw(i: int, cid: str = "c1") -> EngagementEvent:
    return EngagementEvent(
        event_id=f"rv-{i}",
        kind=RAW_VIEW,
        content_id=cid,
        actor="u:alice",
        occurred_at_ms=1_000 + i,
        deltas={},
        data={"session_id": f"s{i}", "watched_ms": 10, "visible_fraction": 0.5, "source": None},
    )


COUNTED = EngagementEvent("v-1", VIEW, "c1", "u:alice", 1_000, {"views": 1}, "u:alice")


def test_encode_keeps_raw_views_apart_and_decode_restores_them() -> None:
    events = [raw(1), COUNTED, raw(2)]
    fields = encode(events)
    assert set(fields) == {"b", "r", "n"}
    d = decode(0, "1-0", {k: v.decode() for k, v in fields.items()})
    assert d.events == (COUNTED,) and d.raw_view_count == 2 and d.size == 3
    assert raw_views_of([d]) == [raw(1).to_dict(), raw(2).to_dict()]
    only_raw = decode(0, "2-0", encode([raw(3)]))
    assert only_raw.events == () and raw_views_of([only_raw]) == [raw(3).to_dict()]
    nothing_raw = encode([COUNTED])
    assert set(nothing_raw) == {"b"} and decode(0, "3-0", nothing_raw).raw_views is None


def test_entries_written_before_the_split_still_decode() -> None:
    old = {"b": orjson.dumps([raw(1).to_dict(), COUNTED.to_dict()]).decode()}
    d = decode(1, "1-0", old)
    assert d.events == (raw(1), COUNTED) and d.size == 2 and raw_views_of([d]) == []


async def test_archive_document_is_the_same_from_dicts_or_events(mongo_db) -> None:
    archive = MongoEventArchive(mongo_db)
    batch = [raw(i) for i in range(5)]
    assert await archive.store(batch) == 5
    (by_events,) = [d async for d in mongo_db["view_events"].find({})]
    await mongo_db["view_events"].delete_many({})
    assert await archive.store_raw_views([e.to_dict() for e in batch]) == 5
    (by_dicts,) = [d async for d in mongo_db["view_events"].find({})]
    # archived_at is when each was stored (for ARCHIVE_TTL_S), the rest is the same.
    assert by_dicts.pop("archived_at") >= by_events.pop("archived_at")
    assert by_dicts == by_events
    # Redelivered: skipped, either way.
    assert await archive.store_raw_views([e.to_dict() for e in batch]) == 0
    assert await archive.store(batch) == 0


async def test_aggregator_skips_and_archiver_stores_raw_views(runtime, workers) -> None:
    consumer = RedisEventConsumer(runtime.redis, runtime.services.keys, "probe", "p")
    await consumer.ensure_groups()
    await runtime.deps.log.append([raw(1), COUNTED, raw(2)])
    await runtime.deps.log.append([raw(3)])
    seen = await consumer.read(10, None)
    assert events_of(seen) == [COUNTED] and len(raw_views_of(seen)) == 3
    assert await workers["aggregator"].run_once() == 4
    assert await workers["archiver"].run_once() == 4
    docs = [d async for d in runtime.db["view_events"].find({})]
    archived = sorted(e["event_id"] for d in docs for e in d["events"])
    assert archived == ["rv-1", "rv-2", "rv-3"]
    assert await runtime.db["events"].count_documents({"_id": "v-1"}) == 1
