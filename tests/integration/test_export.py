"""``export events``: the archive (both collections) -> hive-partitioned Parquet, read
back with DuckDB and pyarrow and compared with the events that were archived."""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from domain.events import (
    RAW_VIEW,
    REACTION,
    VIEW,
    VIEW_END,
    EngagementEvent,
    reaction_event_id,
    view_end_event_id,
    view_event_id,
)
from domain.export_schema import parse_time
from domain.reactions import ReactionType, transition
from storage.mongo_events import MongoEventArchive
from workers.export import (
    SCHEMA,
    STATE_FILE,
    ArchiveReader,
    EventExport,
    add_export_parser,
    run_export,
)

D = 86_400_000
DAY0 = parse_time("2024-02-28")  # a leap year: 02-29 is one of the dates
DATES = ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
# Every export below covers part of the first date and part of the last.
SINCE = "2024-02-28T06:00:00Z"
UNTIL = "2024-03-02T12:00:00Z"
SINCE_MS, UNTIL_MS = parse_time(SINCE), parse_time(UNTIL)


# --- the archived events ------------------------------------------------------------


def _raw_view(rng: random.Random, t: int, n: int) -> EngagementEvent:
    session = f"s{n % 7}"
    viewer = f"d:dev{n % 5}"
    return EngagementEvent(
        event_id=view_event_id(f"c{n % 3}", session, f"{viewer}/#{n}"),
        kind=RAW_VIEW,
        content_id=f"c{n % 3}",
        actor=viewer,
        occurred_at_ms=t,
        deltas={},
        data={
            "session_id": session,
            "watched_ms": rng.randrange(0, 30_000),
            "position_ms": rng.choice([None, rng.randrange(0, 120_000)]),
            "visible_fraction": rng.choice([None, 0.5, 1.0]),
            "source": rng.choice([None, "FEED", "SEARCH"]),
            "platform": rng.choice([None, "IOS", "WEB"]),
            "final": n % 4 == 0,
            "accepted_ms": rng.randrange(0, 30_000),
            "region": rng.choice([None, "FR", "BR"]),
        },
    )


def _others(rng: random.Random, day: int) -> list[EngagementEvent]:
    """Reactions (with their real transitions), counted views and view ends of one day."""
    start = DAY0 + day * D
    out = []
    state: dict[str, ReactionType | None] = {}
    for n in range(12):
        user = f"user{n % 4}"
        before = state.get(user)
        wanted = rng.choice([None, *ReactionType])
        step = transition(before, wanted)
        if not step.changed:
            continue
        state[user] = wanted
        out.append(
            EngagementEvent(
                event_id=reaction_event_id("c1", user, 100 * day + n),
                kind=REACTION,
                content_id="c1",
                actor=user,
                occurred_at_ms=start + rng.randrange(D),
                deltas=step.deltas,
                data={
                    "before": before.value if before else None,
                    "after": wanted.value if wanted else None,
                    "region": rng.choice(["FR", "US"]),
                },
            )
        )
    for n in range(4):
        viewer = f"u:user{n}"
        session = f"d{day}s{n}"
        out.append(
            EngagementEvent(
                event_id=view_event_id("c2", session, viewer),
                kind=VIEW,
                content_id="c2",
                actor=viewer,
                occurred_at_ms=start + rng.randrange(D),
                deltas={"views": 1},
                unique=viewer,
                data={"session_id": session, "platform": "ANDROID", "source": None, "region": "JP"},
            )
        )
        out.append(
            EngagementEvent(
                event_id=view_end_event_id("c2", session, viewer),
                kind=VIEW_END,
                content_id="c2",
                actor=viewer,
                occurred_at_ms=start + rng.randrange(D),
                deltas={},
                data={
                    "session_id": session,
                    "position_ms": 5_000 * n,
                    "duration_ms": 61_000,
                    "watched_ms": 4_000 * n,
                    "platform": "ANDROID",
                    "source": None,
                    "region": "JP",
                    "counted": n % 2 == 0,
                    "reason": "idle" if n % 2 else "final",
                },
            )
        )
    return out


class Archived:
    """What went into the archive: every distinct event, by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, EngagementEvent] = {}

    def add(self, events: list[EngagementEvent]) -> None:
        for e in events:
            assert self.by_id.setdefault(e.event_id, e) == e

    def between(self, since: int, until: int) -> dict[str, EngagementEvent]:
        return {i: e for i, e in self.by_id.items() if since <= e.occurred_at_ms < until}


async def archive_all(db: Any, seed: int = 7) -> Archived:
    rng = random.Random(seed)
    archive = MongoEventArchive(db)
    archived = Archived()
    # A day before and a day after the dates: outside every export here.
    for day in range(-1, len(DATES) + 1):
        others = _others(rng, day)
        await archive.store(others)
        archived.add(others)
    # Raw view events, a log batch per document, in time order like the archiver's.
    raw_times = sorted(
        [DAY0 + day * D + rng.randrange(D) for day in range(-1, 5) for _ in range(9)]
        + [
            SINCE_MS - 1,  # just before the range
            SINCE_MS,  # its first instant
            DAY0 + D,  # exactly midnight: the second date
            DAY0 + D - 1,  # the last instant of the first date
            UNTIL_MS - 1,  # the range's last instant
            UNTIL_MS,  # excluded
        ]
    )
    raws = [_raw_view(rng, t, n) for n, t in enumerate(raw_times)]
    batches = [raws[i : i + 5] for i in range(0, len(raws), 5)]
    # A batch whose events straddle a midnight: its document feeds two dates.
    assert any(b[0].occurred_at_ms // D != b[-1].occurred_at_ms // D for b in batches), (
        "no batch crosses midnight"
    )
    for batch in batches:
        assert await archive.store_raw_views([e.to_dict() for e in batch]) == len(batch)
    archived.add(raws)
    # The log handing deliveries over again in another grouping: a new document
    # holding events archived before.
    regrouped = batches[3][2:] + batches[4][:3]
    assert await archive.store_raw_views([e.to_dict() for e in regrouped]) == len(regrouped)
    # Older entries kept raw view events in ``events``: one new, one also in a batch.
    older = [_raw_view(rng, DAY0 + D + 12_345, 1000), raws[10]]
    now = datetime.now(UTC)
    await db["events"].insert_many(
        [{"_id": e.event_id, **e.to_dict(), "archived_at": now} for e in older]
    )
    archived.add(older)
    return archived


# --- running and reading back -------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="likeview")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["export", "events", *argv])


async def export(
    db: Any, out: Path, *extra: str, since: str = SINCE, until: str | None = UNTIL
) -> int:
    argv = ["--since", since, "--out", str(out), *extra]
    if until is not None:
        argv += ["--until", until]
    return await run_export(parse(*argv), db)


def read_back(out: Path) -> list[dict[str, Any]]:
    """Every row, through DuckDB's hive partitioning, ordered by (time, id)."""
    if not list(out.glob("*/*.parquet")):
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cur = con.execute(
        "SELECT * EXCLUDE (occurred_at), epoch_ms(occurred_at) AS occurred_at_ms "
        f"FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true) "
        "ORDER BY occurred_at_ms, event_id"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def snapshot(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each file under ``out``: (inode, mtime, content); a rewrite changes one of them."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def state_of(out: Path) -> dict[str, Any]:
    return json.loads((out / STATE_FILE).read_text())


def utc_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def assert_rows_are(rows: list[dict[str, Any]], events: dict[str, EngagementEvent]) -> None:
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)), "an event exported twice"
    assert set(ids) == set(events)
    for row in rows:
        e = events[row["event_id"]]
        data = e.data
        assert row == {
            "event_id": e.event_id,
            "kind": e.kind,
            "content_id": e.content_id,
            "actor": e.actor,
            "occurred_at_ms": e.occurred_at_ms,
            "likes_delta": e.deltas.get("likes", 0),
            "views_delta": e.deltas.get("views", 0),
            "deltas_json": row["deltas_json"],
            "unique_member": e.unique,
            "session_id": data.get("session_id"),
            "platform": data.get("platform"),
            "source": data.get("source"),
            "region": data.get("region"),
            "watched_ms": data.get("watched_ms"),
            "accepted_ms": data.get("accepted_ms"),
            "position_ms": data.get("position_ms"),
            "final": data.get("final"),
            "reaction_before": data.get("before"),
            "reaction_after": data.get("after"),
            "data_json": row["data_json"],
            "addr": data.get("addr"),
            "device": data.get("device"),
            "date": datetime.fromisoformat(utc_date(e.occurred_at_ms)).date(),
        }
        assert json.loads(row["deltas_json"]) == e.deltas
        assert json.loads(row["data_json"]) == e.data


@pytest.fixture
async def archived(mongo_db):
    return await archive_all(mongo_db)


# --- the export -----------------------------------------------------------------------


async def test_export_writes_every_archived_event_once(mongo_db, archived, tmp_path, capsys):
    out = tmp_path / "events"
    assert await export(mongo_db, out, "--part-rows", "4") == 0

    expected = archived.between(SINCE_MS, UNTIL_MS)
    kinds = {e.kind for e in expected.values()}
    assert kinds == {REACTION, VIEW, VIEW_END, RAW_VIEW}
    rows = read_back(out)
    assert_rows_are(rows, expected)
    # Both ends of the range and both sides of a midnight.
    times = {r["occurred_at_ms"] for r in rows}
    assert {SINCE_MS, UNTIL_MS - 1, DAY0 + D - 1, DAY0 + D} <= times
    assert SINCE_MS - 1 not in times and UNTIL_MS not in times

    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE] + [f"date={d}" for d in DATES]
    for date in DATES:
        files = sorted((out / f"date={date}").iterdir())
        count = sum(1 for e in expected.values() if utc_date(e.occurred_at_ms) == date)
        assert [p.name for p in files] == [f"part-{n}.parquet" for n in range(-(-count // 4))]
        # The hive directory carries the date; the files do not.
        for part in files:
            assert pq.read_schema(part).equals(SCHEMA)
            assert pq.ParquetFile(part).metadata.num_rows <= 4

    state = state_of(out)
    assert state["complete"] is True
    assert (state["since"], state["until"]) == (
        "2024-02-28T06:00:00.000Z",
        "2024-03-02T12:00:00.000Z",
    )
    assert {d: v["rows"] for d, v in state["dates"].items()} == {
        d: sum(1 for r in rows if r["date"].isoformat() == d) for d in DATES
    }
    assert f"{len(expected)} events" in capsys.readouterr().out


async def test_pyarrow_reads_the_same_dataset(mongo_db, archived, tmp_path):
    out = tmp_path / "events"
    assert await export(mongo_db, out) == 0
    # The state file is skipped by pyarrow's default (as by Spark's): leading "_".
    dataset = pads.dataset(out, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.schema.names == [*SCHEMA.names, "date"]
    assert table.schema.field("occurred_at").type == pa.timestamp("ms", tz="UTC")
    expected = archived.between(SINCE_MS, UNTIL_MS)
    assert sorted(table.column("event_id").to_pylist()) == sorted(expected)
    by_id = dict(
        zip(
            table.column("event_id").to_pylist(),
            table.column("occurred_at").cast(pa.int64()).to_pylist(),
            strict=True,
        )
    )
    assert by_id == {i: e.occurred_at_ms for i, e in expected.items()}


async def test_row_groups_and_parts_are_bounded(mongo_db, archived, tmp_path):
    out = tmp_path / "events"
    export_ = EventExport(
        ArchiveReader(mongo_db, batch=3), out, SINCE_MS, UNTIL_MS, part_rows=5, row_group_rows=2
    )
    summary = await export_.run_once()
    assert summary.rows == len(archived.between(SINCE_MS, UNTIL_MS))
    parts = sorted(out.glob("*/*.parquet"))
    assert len(parts) == summary.files > len(DATES)
    for part in parts:
        meta = pq.ParquetFile(part).metadata
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert 1 <= meta.num_rows <= 5
        assert all(g <= 2 for g in groups) and sum(groups) == meta.num_rows
    # Rows are in time order within a date: a reader can skip row groups by time.
    for date in DATES:
        table = pads.dataset(out / f"date={date}", format="parquet").to_table()
        times = table.column("occurred_at").cast(pa.int64()).to_pylist()
        assert times == sorted(times)


# --- resume ---------------------------------------------------------------------------


class Interrupted(Exception):
    pass


class FailingDB:
    """Reads from ``db`` until ``after`` documents at or past ``at_ms`` have come back,
    then fails: a crash part-way through the date that starts at ``at_ms``."""

    def __init__(self, db: Any, at_ms: int, after: int) -> None:
        self._db = db
        self.at_ms = at_ms
        self.left = after

    def __getitem__(self, name: str) -> Any:
        return _FailingCollection(self._db[name], self)


class _FailingCollection:
    def __init__(self, inner: Any, trip: FailingDB) -> None:
        self._inner = inner
        self._trip = trip

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return _FailingCursor(self._inner.find(*args, **kwargs), self._trip)

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        return _FailingCursor(self._inner.aggregate(*args, **kwargs), self._trip)


class _FailingCursor:
    def __init__(self, inner: Any, trip: FailingDB) -> None:
        self._inner = inner
        self._trip = trip

    def __aiter__(self) -> _FailingCursor:
        return self

    async def __anext__(self) -> Any:
        doc = await anext(self._inner)
        if doc["occurred_at_ms"] >= self._trip.at_ms:
            if self._trip.left == 0:
                raise Interrupted("injected failure")
            self._trip.left -= 1
        return doc

    async def close(self) -> None:
        await self._inner.close()


async def test_an_interrupted_export_continues_without_duplicates(mongo_db, archived, tmp_path):
    full = tmp_path / "uninterrupted"
    assert await export(mongo_db, full, "--part-rows", "2") == 0

    out = tmp_path / "events"
    # Parts of 3 rows written a row group (one row) at a time: the crash comes with a
    # part open under its temporary name.
    failing = FailingDB(mongo_db, at_ms=DAY0 + D, after=7)
    interrupted = EventExport(
        ArchiveReader(failing), out, SINCE_MS, UNTIL_MS, part_rows=3, row_group_rows=1
    )
    with pytest.raises(Interrupted):
        await interrupted.run_once()
    # The first date is complete; the second has parts on disk but is not.
    assert list(state_of(out)["dates"]) == [DATES[0]]
    assert state_of(out)["done_through"] == "2024-02-29T00:00:00.000Z"
    assert state_of(out)["complete"] is False
    second = out / f"date={DATES[1]}"
    assert list(second.glob("part-*.parquet")), "no part of the second date was written"
    assert not list(second.glob(".*.tmp")), "the failed part's temp file is left behind"
    first = snapshot(out / f"date={DATES[0]}")
    # What a kill -9 in the middle of writing a part leaves.
    (second / ".part-7.parquet.tmp").write_bytes(b"PAR1 half a file")

    # The part size is not part of the range: bigger parts now, so a part file of
    # the interrupted run that was not rewritten would show.
    assert await export(mongo_db, out, "--part-rows", "1000") == 0

    assert snapshot(out / f"date={DATES[0]}") == first, "a completed date was written again"
    assert [p.name for p in second.iterdir()] == ["part-0.parquet"]
    rows = read_back(out)
    assert_rows_are(rows, archived.between(SINCE_MS, UNTIL_MS))
    assert rows == read_back(full)
    assert state_of(out)["complete"] is True


async def test_an_export_interrupted_in_its_first_date_continues(mongo_db, archived, tmp_path):
    out = tmp_path / "events"
    with pytest.raises(Interrupted):
        await export(FailingDB(mongo_db, at_ms=SINCE_MS, after=5), out, "--part-rows", "2")
    # The state is on disk before the first part: the directory is known as ours.
    assert list((out / f"date={DATES[0]}").glob("part-*.parquet"))
    assert state_of(out)["dates"] == {}

    assert await export(mongo_db, out) == 0

    assert_rows_are(read_back(out), archived.between(SINCE_MS, UNTIL_MS))


async def test_a_rerun_after_completion_changes_nothing(mongo_db, archived, tmp_path, capsys):
    out = tmp_path / "events"
    assert await export(mongo_db, out) == 0
    before = snapshot(out)
    capsys.readouterr()

    assert await export(mongo_db, out) == 0

    assert snapshot(out) == before
    assert "0 events in 0 files, 0 dates exported, 4 already complete" in capsys.readouterr().out


async def test_without_until_it_exports_to_now_and_a_rerun_keeps_that_end(
    mongo_db, archived, tmp_path
):
    out = tmp_path / "events"
    assert await export(mongo_db, out, until=None) == 0
    state = state_of(out)
    latest = max(e.occurred_at_ms for e in archived.by_id.values())
    assert state["until_ms"] > latest and state["complete"] is True
    assert_rows_are(read_back(out), archived.between(SINCE_MS, state["until_ms"]))
    before = snapshot(out)
    # An event archived since, inside the recorded range: a re-run does not reopen it.
    late = _raw_view(random.Random(1), DAY0 + 2 * D + 5, 5000)
    await MongoEventArchive(mongo_db).store_raw_views([late.to_dict()])

    assert await export(mongo_db, out, until=None) == 0

    assert snapshot(out) == before


async def test_a_later_until_extends_an_export(mongo_db, archived, tmp_path):
    out = tmp_path / "events"
    middle = "2024-03-01T12:00:00Z"
    assert await export(mongo_db, out, until=middle) == 0
    assert_rows_are(read_back(out), archived.between(SINCE_MS, parse_time(middle)))
    kept = snapshot(out / f"date={DATES[1]}")

    assert await export(mongo_db, out, until=UNTIL) == 0

    # Dates inside the old range stay; the old last date covers more now.
    assert snapshot(out / f"date={DATES[1]}") == kept
    rows = read_back(out)
    assert_rows_are(rows, archived.between(SINCE_MS, UNTIL_MS))
    assert any(
        r["occurred_at_ms"] >= parse_time(middle) and r["date"].isoformat() == DATES[2]
        for r in rows
    )
    assert state_of(out)["until"] == "2024-03-02T12:00:00.000Z"


# --- ranges and refusals --------------------------------------------------------------


async def test_until_bounds_the_export(mongo_db, archived, tmp_path):
    out = tmp_path / "events"
    until = DAY0 + D  # midnight: the second date is not in the range at all
    assert await export(mongo_db, out, since="2024-02-28", until="2024-02-29") == 0
    rows = read_back(out)
    assert_rows_are(rows, archived.between(DAY0, until))
    assert {r["date"].isoformat() for r in rows} == {DATES[0]}
    assert max(r["occurred_at_ms"] for r in rows) == until - 1
    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE, f"date={DATES[0]}"]


async def test_a_range_without_events_writes_no_partition(mongo_db, archived, tmp_path, capsys):
    out = tmp_path / "events"
    assert await export(mongo_db, out, since="2023-01-01", until="2023-01-03T05:00:00Z") == 0
    assert [p.name for p in out.iterdir()] == [STATE_FILE]
    assert read_back(out) == []
    state = state_of(out)
    assert state["complete"] is True
    assert state["dates"] == {}
    assert state["done_through"] == state["until"] == "2023-01-03T05:00:00.000Z"
    assert "0 events in 0 files, 3 dates exported, 0 already complete" in capsys.readouterr().out


async def test_an_empty_archive_exports_nothing(mongo_db, tmp_path):
    out = tmp_path / "events"
    assert await export(mongo_db, out) == 0
    assert read_back(out) == []
    assert state_of(out)["complete"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--since", "2024-03-01", "--until", "2024-03-01"],
            "--until (2024-03-01T00:00:00.000Z) must be after",
        ),
        (["--since", "2024-03-02", "--until", "2024-03-01"], "must be after --since"),
        (["--since", "last week"], "--since must be an ISO 8601"),
        (["--since", "2024-03-01", "--until", "soon"], "--until must be an ISO 8601"),
        (["--since", "2024-03-01", "--part-rows", "0"], "at least 1 row"),
    ],
)
async def test_bad_arguments_are_refused(mongo_db, tmp_path, capsys, argv, message):
    out = tmp_path / "events"
    assert await run_export(parse(*argv, "--out", str(out)), mongo_db) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


async def test_another_range_into_the_same_directory_is_refused(
    mongo_db, archived, tmp_path, capsys
):
    out = tmp_path / "events"
    assert await export(mongo_db, out) == 0
    before = snapshot(out)
    capsys.readouterr()

    assert await export(mongo_db, out, since="2024-02-28T07:00:00Z") == 2
    assert "with the same --since" in capsys.readouterr().err
    assert await export(mongo_db, out, until="2024-03-01") == 2
    assert "not shorten it" in capsys.readouterr().err
    assert snapshot(out) == before


async def test_a_directory_of_other_partitions_is_refused(mongo_db, archived, tmp_path, capsys):
    out = tmp_path / "events"
    (out / "date=2024-02-28").mkdir(parents=True)
    (out / "date=2024-02-28" / "part-0.parquet").write_bytes(b"someone else's")
    assert await export(mongo_db, out) == 2
    assert f"no {STATE_FILE}" in capsys.readouterr().err
    assert (out / "date=2024-02-28" / "part-0.parquet").read_bytes() == b"someone else's"
