"""view_sessions documents: compact first writes, whole updates, both read back the same."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

from domain.events import EngagementEvent
from domain.view_policy import ClientPlatform, ViewSource
from domain.view_sessions import SessionStatus, ViewSession
from storage.embedded_mongo import open_embedded_client
from storage.mongo_view_sessions import MongoViewSessions, from_doc, new_doc, to_doc

AT = datetime(2026, 11, 24, 1, 2, 3, 456000, tzinfo=UTC)

MINIMAL = ViewSession(
    session_id="s-min",
    content_id="c1",
    viewer_key="u:alice",
    device_id=None,
    started_at=AT - timedelta(seconds=5),
    last_event_at=AT,
    watched_ms=5000,
    position_ms=None,
    source=None,
    platform=None,
    ended=False,
    counted=False,
    counted_at=None,
    rule="VIDEO.default",
    reason="watched 5.0 s < 30 s",
    flags=(),
    recent_event_ids=(),
    events=1,
)
FULL = replace(
    MINIMAL,
    session_id="s-full",
    device_id="d1",
    position_ms=4000,
    source=ViewSource.FEED,
    platform=ClientPlatform.IOS,
    ended=True,
    counted=True,
    counted_at=AT,
    flags=("negative_watch",),
    recent_event_ids=("e1", "e2"),
    events=2,
    status=SessionStatus.COUNTED,
    qualified_ms=5000,
    rejected_reason="impossible input: x",
    region="BR",
)


def test_to_doc_has_every_field() -> None:
    assert set(to_doc(FULL)) == {f.name for f in fields(ViewSession)}


def test_documents_round_trip() -> None:
    for session in (MINIMAL, FULL):
        assert from_doc({"_id": session.session_id, **to_doc(session)}) == session
        assert from_doc(new_doc(session, 1, "w", [])) == session


def test_new_doc_leaves_out_unset_fields_only() -> None:
    doc = new_doc(MINIMAL, 1, "w", [])
    assert "session_id" not in doc and doc["_id"] == "s-min"
    for absent in ("device_id", "position_ms", "source", "platform", "counted_at", "flags"):
        assert absent not in doc
    assert "region" not in doc  # "unknown", as a document from before regions reads
    assert "outbox" not in doc and "recent_event_ids" not in doc
    # Falsy values that are set stay: counted False is queried by the recount.
    assert doc["counted"] is False and doc["ended"] is False and doc["version"] == 1
    assert set(new_doc(FULL, 1, "w", [{"e": 1}])) >= set(to_doc(FULL)) - {"session_id"}


async def test_compact_first_write_then_updates_read_back() -> None:
    db = open_embedded_client()["docs_test"]
    repo = MongoViewSessions(db)
    event = EngagementEvent("v-1", "view", "c1", "u:alice", 1, {"views": 1}, "u:alice")
    assert await repo.save_many([(MINIMAL, 0, [])]) == set()
    got = await repo.get_many(["s-min"])
    assert got["s-min"].session == MINIMAL and got["s-min"].version == 1
    counted = replace(FULL, session_id="s-min")
    assert await repo.save_many([(counted, 1, [event])]) == set()
    got = await repo.get_many(["s-min"])
    assert got["s-min"].session == counted and got["s-min"].version == 2
    raw = await db["view_sessions"].find_one({"_id": "s-min"})
    assert raw is not None and [e["event_id"] for e in raw["outbox"]] == ["v-1"]
    # A stale version is a conflict, as before.
    assert await repo.save_many([(MINIMAL, 1, [])]) == {"s-min"}
    assert (await repo.recount(["c1"]))["c1"] == {"views": 1}


async def test_documents_of_the_old_whole_layout_still_read() -> None:
    db = open_embedded_client()["docs_test_old"]
    old = {"_id": "s-min", **to_doc(MINIMAL), "version": 1, "write_id": "w", "outbox": []}
    await db["view_sessions"].insert_one(old)
    got = await MongoViewSessions(db).get_many(["s-min"])
    assert got["s-min"].session == MINIMAL


async def test_racing_first_writes_report_the_loser_in_either_bulk_form() -> None:
    db = open_embedded_client()["docs_race"]
    repo = MongoViewSessions(db)
    other = replace(MINIMAL, session_id="s-other")
    assert await repo.save_many([(MINIMAL, 0, [])]) == set()
    # Only inserts (insert_many): the taken one is a conflict, the new one is written.
    assert await repo.save_many([(MINIMAL, 0, []), (other, 0, [])]) == {"s-min"}
    assert set(await repo.get_many(["s-min", "s-other"])) == {"s-min", "s-other"}
    # Inserts with updates (bulk_write): the same answer.
    third = replace(MINIMAL, session_id="s-third")
    moved = replace(other, watched_ms=9000)
    assert await repo.save_many([(MINIMAL, 0, []), (moved, 1, []), (third, 0, [])]) == {"s-min"}
    got = await repo.get_many(["s-other", "s-third"])
    assert got["s-other"].session == moved and got["s-other"].version == 2
    assert got["s-third"].version == 1


async def test_documents_from_before_regions_read_as_unknown() -> None:
    db = open_embedded_client()["docs_test_no_region"]
    for session in (MINIMAL, FULL):
        old = {"_id": session.session_id, **to_doc(session), "version": 1}
        del old["region"]
        await db["view_sessions"].insert_one(old)
    got = await MongoViewSessions(db).get_many(["s-min", "s-full"])
    assert got["s-min"].session == MINIMAL
    assert got["s-full"].session == replace(FULL, region="unknown")


IDLE_SINCE = AT - timedelta(minutes=30)


async def test_idle_finds_open_sessions_last_seen_before_the_cutoff() -> None:
    db = open_embedded_client()["docs_idle"]
    repo = MongoViewSessions(db)
    await repo.ensure_idle_index()
    before = IDLE_SINCE - timedelta(seconds=1)
    sessions = [
        replace(MINIMAL, session_id="old-open", last_event_at=before),
        replace(MINIMAL, session_id="old-ended", last_event_at=before, ended=True),
        replace(MINIMAL, session_id="at-cutoff", last_event_at=IDLE_SINCE),
        replace(MINIMAL, session_id="recent", last_event_at=AT),
        replace(FULL, session_id="old-full", last_event_at=before, ended=False),
    ]
    assert await repo.save_many([(s, 0, []) for s in sessions]) == set()
    found = {s.session.session_id: s for s in await repo.idle(IDLE_SINCE, 10)}
    assert sorted(found) == ["old-full", "old-open"]
    assert found["old-full"].session == sessions[4] and found["old-full"].version == 1
    assert len(await repo.idle(IDLE_SINCE, 1)) == 1  # bounded
    indexes = await db["view_sessions"].index_information()
    assert list(indexes["idle_open"]["key"]) == [("ended", 1), ("last_event_at", 1)]
