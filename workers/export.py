"""``main.py export events``: the archive as hive-partitioned Parquet (docs/EXPORT.md).

Dates are exported one at a time, in order. A date's events are read from both
archive collections sorted by (occurred_at, event_id) and merged, so a raw view
event archived twice (a log batch handed over again in another grouping, or an
older entry in ``events``) lands next to itself and is written once, with no set
of seen ids growing over the run. Rows go out in bounded row groups and parts.

Resume: ``_export_state.json`` in the output directory records the range and the
instant before which every date is on disk. A run skips the dates that end by
then and writes the others from scratch, so an interrupted date never keeps half
its rows and a finished export is left as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from domain.clock import to_ms
from domain.errors import BadUserInput
from domain.events import EngagementEvent
from domain.export_schema import (
    COLUMNS,
    Column,
    DayWindow,
    day_windows,
    event_row,
    format_time,
    parse_time,
)
from domain.ports import Clock
from storage.clock import SystemClock

log = logging.getLogger(__name__)

STATE_FILE = "_export_state.json"
STATE_FORMAT = 1
# A part file holds at most this many rows; a row group (what a reader reads at
# once, and what this process buffers) at most ROW_GROUP_ROWS of them.
PART_ROWS = 1_000_000
ROW_GROUP_ROWS = 50_000
READ_BATCH = 5_000

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "timestamp_ms_utc": pa.timestamp("ms", tz="UTC"),
}


def arrow_schema(columns: Iterable[Column] = COLUMNS) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable) for c in columns])


SCHEMA = arrow_schema()


# --- reading the archive ----------------------------------------------------------


def _key(raw: dict[str, Any]) -> tuple[int, str]:
    return int(raw["occurred_at_ms"]), str(raw["event_id"])


class ArchiveReader:
    """The archived events of one time window, from MongoDB (both collections)."""

    def __init__(self, db: Any, *, batch: int = READ_BATCH) -> None:
        self._events = db["events"]
        self._raw_views = db["view_events"]
        self._batch = batch

    def _from_events(self, lo_ms: int, hi_ms: int) -> Any:
        # allow_disk_use: without an index on occurred_at_ms a server sorts a whole
        # date, past the 100 MB it sorts in memory.
        return self._events.find(
            {"occurred_at_ms": {"$gte": lo_ms, "$lt": hi_ms}},
            {"archived_at": 0},
            sort=[("occurred_at_ms", 1), ("_id", 1)],
            batch_size=self._batch,
            allow_disk_use=True,
        )

    def _from_raw_views(self, lo_ms: int, hi_ms: int) -> Any:
        window = {"$gte": lo_ms, "$lt": hi_ms}
        # A batch document holds events from first_ms on, possibly past midnight: it
        # is picked by its events' times and only those inside the window are kept.
        pipeline = [
            {
                "$match": {
                    "first_ms": {"$lt": hi_ms},
                    "events": {"$elemMatch": {"occurred_at_ms": window}},
                }
            },
            {"$unwind": "$events"},
            {"$replaceRoot": {"newRoot": "$events"}},
            {"$match": {"occurred_at_ms": window}},
            {"$sort": {"occurred_at_ms": 1, "event_id": 1}},
        ]
        return self._raw_views.aggregate(pipeline, allowDiskUse=True, batchSize=self._batch)

    async def events(self, lo_ms: int, hi_ms: int) -> AsyncGenerator[EngagementEvent, None]:
        """Sorted by (occurred_at, event_id); an event archived more than once, once."""
        cursors = [self._from_events(lo_ms, hi_ms), self._from_raw_views(lo_ms, hi_ms)]
        heads: list[tuple[tuple[int, str], int, dict[str, Any]]] = []

        async def advance(i: int) -> None:
            with contextlib.suppress(StopAsyncIteration):
                raw = await anext(cursors[i])
                heapq.heappush(heads, (_key(raw), i, raw))

        try:
            for i in range(len(cursors)):
                await advance(i)
            last: tuple[int, str] | None = None
            while heads:
                key, i, raw = heapq.heappop(heads)
                await advance(i)
                if key == last:
                    continue
                last = key
                yield EngagementEvent.from_dict(raw)
        finally:
            # A run that stops early frees the server's cursors now, not at their timeout.
            for cursor in cursors:
                with contextlib.suppress(Exception):
                    await cursor.close()


# --- writing files ----------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _part_name(n: int) -> str:
    return f"part-{n}.parquet"


def _temp_name(n: int) -> str:
    # Hidden and not *.parquet: no reader's glob or directory scan takes it.
    return f".part-{n}.parquet.tmp"


def clear_date_dir(path: Path) -> None:
    """Remove what an interrupted run left of one date (its parts and temp files)."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        name = child.name
        ours = (name.startswith("part-") and name.endswith(".parquet")) or (
            name.startswith(".part-") and name.endswith(".tmp")
        )
        if ours and child.is_file():
            child.unlink()
    with contextlib.suppress(OSError):
        # Only when empty: anything else in it is not ours to delete.
        path.rmdir()


class DateWriter:
    """One date's part files: row groups of bounded size, each part written under a
    temporary name and renamed when complete."""

    def __init__(
        self, directory: Path, *, part_rows: int = PART_ROWS, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self._dir = directory
        self._part_rows = part_rows
        self._row_group_rows = min(row_group_rows, part_rows)
        self._buffer: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._part = 0
        self._rows_in_part = 0
        self.rows = 0
        self.files = 0

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        self.rows += 1
        if self._rows_in_part + len(self._buffer) >= self._part_rows:
            self._flush()
            self._finish_part()
        elif len(self._buffer) >= self._row_group_rows:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._finish_part()
        if self.files:
            _fsync_dir(self._dir)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            (self._dir / _temp_name(self._part)).unlink(missing_ok=True)

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                self._dir / _temp_name(self._part), SCHEMA, compression="snappy"
            )
        table = pa.Table.from_pylist(self._buffer, schema=SCHEMA)
        self._writer.write_table(table, row_group_size=self._row_group_rows)
        self._rows_in_part += len(self._buffer)
        self._buffer = []

    def _finish_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        temp = self._dir / _temp_name(self._part)
        with open(temp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temp, self._dir / _part_name(self._part))
        self._part += 1
        self._rows_in_part = 0
        self.files += 1


# --- the state file ---------------------------------------------------------------


@dataclass
class ExportState:
    since_ms: int
    until_ms: int
    # Dates complete in order: every event before this instant is on disk.
    done_ms: int
    # {"rows", "files"} of each completed date that had events.
    dates: dict[str, dict[str, int]] = field(default_factory=dict)

    def done(self, window: DayWindow) -> bool:
        # A date's window only grows (a later --until), never moves: a window that
        # ends past done_ms is unfinished or longer now, and is written again.
        return window.hi_ms <= self.done_ms

    def complete(self, window: DayWindow, rows: int, files: int) -> None:
        self.done_ms = window.hi_ms
        if rows:
            self.dates[window.date] = {"rows": rows, "files": files}
        else:
            self.dates.pop(window.date, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "since": format_time(self.since_ms),
            "until": format_time(self.until_ms),
            "done_through": format_time(self.done_ms),
            "complete": self.done_ms >= self.until_ms,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "done_ms": self.done_ms,
            "dates": dict(sorted(self.dates.items())),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportState:
        if raw.get("format") != STATE_FORMAT:
            raise BadUserInput(f"{STATE_FILE} has an unknown format: {raw.get('format')!r}")
        state = cls(
            int(raw["since_ms"]),
            int(raw["until_ms"]),
            int(raw["done_ms"]),
            {str(d): {k: int(v[k]) for k in ("rows", "files")} for d, v in raw["dates"].items()},
        )
        if not state.since_ms <= state.done_ms <= state.until_ms:
            raise ValueError("done_ms is outside [since_ms, until_ms]")
        return state


def load_state(out: Path) -> ExportState | None:
    path = out / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ExportState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadUserInput(f"{path} is not a readable export state ({exc})") from None


def save_state(out: Path, state: ExportState) -> None:
    """Temp file, fsync, rename: a crash leaves the old state or the new, whole."""
    fd, temp = tempfile.mkstemp(prefix=".export_state.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state.to_json(), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, out / STATE_FILE)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(out)


def _has_partitions(out: Path) -> bool:
    return any(p.name.startswith("date=") for p in out.iterdir())


# --- the export -------------------------------------------------------------------


@dataclass
class ExportSummary:
    since_ms: int
    until_ms: int
    dates_exported: list[str]
    dates_skipped: int
    rows: int
    files: int


class EventExport:
    """Exports the archived events with occurred_at in [since, until) to ``out``.

    ``until_ms`` None: the recorded end of the export already in ``out``, or now
    for a new one.
    """

    def __init__(
        self,
        reader: ArchiveReader,
        out: Path,
        since_ms: int,
        until_ms: int | None = None,
        *,
        clock: Clock | None = None,
        part_rows: int = PART_ROWS,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        if part_rows < 1 or row_group_rows < 1:
            raise BadUserInput("part and row group sizes must be at least 1 row")
        self._reader = reader
        self._out = out
        self._since_ms = since_ms
        self._until_ms = until_ms
        self._clock = clock or SystemClock()
        self._part_rows = part_rows
        self._row_group_rows = row_group_rows

    def _open_state(self) -> tuple[ExportState, bool]:
        """The state to continue, and whether it is new (not yet on disk)."""
        out = self._out
        if out.exists() and not out.is_dir():
            raise BadUserInput(f"--out {out} exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        state = load_state(out)
        if state is None:
            if _has_partitions(out):
                raise BadUserInput(
                    f"--out {out} holds date= directories but no {STATE_FILE}: "
                    "not an export this command can continue; use an empty directory"
                )
            until = self._until_ms
            if until is None:
                until = to_ms(self._clock.now())
            self._check_range(self._since_ms, until)
            return ExportState(self._since_ms, until, self._since_ms), True
        recorded = f"[{format_time(state.since_ms)}, {format_time(state.until_ms)})"
        if self._since_ms != state.since_ms:
            raise BadUserInput(
                f"--out {out} holds the export of {recorded}: continue it with the same "
                "--since, or use another directory"
            )
        until = state.until_ms if self._until_ms is None else self._until_ms
        if until < state.until_ms:
            raise BadUserInput(
                f"--out {out} holds the export of {recorded}: --until may extend it, "
                "not shorten it; use another directory"
            )
        self._check_range(self._since_ms, until)
        extended = until != state.until_ms
        state.until_ms = until
        return state, extended

    @staticmethod
    def _check_range(since_ms: int, until_ms: int) -> None:
        if until_ms <= since_ms:
            raise BadUserInput(
                f"--until ({format_time(until_ms)}) must be after --since ({format_time(since_ms)})"
            )

    async def run_once(self) -> ExportSummary:
        state, changed = self._open_state()
        if changed:
            # On disk before any part: date= directories always come with a state.
            save_state(self._out, state)
        summary = ExportSummary(state.since_ms, state.until_ms, [], 0, 0, 0)
        windows = day_windows(state.since_ms, state.until_ms)
        for window in windows:
            if state.done(window):
                summary.dates_skipped += 1
                continue
            rows, files = await self._export_date(window)
            state.complete(window, rows, files)
            # An empty date is cheap to redo: no fsync'd state write for each of them.
            if rows or window is windows[-1]:
                save_state(self._out, state)
            summary.dates_exported.append(window.date)
            summary.rows += rows
            summary.files += files
            if rows:
                log.info("exported %s: %d events in %d files", window.date, rows, files)
        return summary

    async def _export_date(self, window: DayWindow) -> tuple[int, int]:
        directory = self._out / f"date={window.date}"
        # Interrupted before, or covering a shorter window then: from scratch.
        clear_date_dir(directory)
        writer = DateWriter(
            directory, part_rows=self._part_rows, row_group_rows=self._row_group_rows
        )
        try:
            async with contextlib.aclosing(
                self._reader.events(window.lo_ms, window.hi_ms)
            ) as events:
                async for event in events:
                    writer.add(event_row(event))
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return writer.rows, writer.files


# --- CLI --------------------------------------------------------------------------


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``export events --since T [--until T] --out DIR`` on main.py's subcommands."""
    export = subparsers.add_parser("export", help="export the archive (docs/EXPORT.md)")
    what = export.add_subparsers(dest="export_what", required=True)
    events = what.add_parser(
        "events",
        help="archived engagement events as hive-partitioned Parquet",
        description="Archived events with occurred_at in [--since, --until) as "
        "DIR/date=YYYY-MM-DD/part-N.parquet. Re-run with the same arguments to "
        "continue an interrupted export (docs/EXPORT.md).",
    )
    events.add_argument(
        "--since", required=True, help="ISO 8601 date or date-time, inclusive (UTC unless given)"
    )
    events.add_argument(
        "--until",
        help="ISO 8601, exclusive; default: the end recorded in DIR, or now for a new export",
    )
    events.add_argument("--out", required=True, type=Path, help="output directory")
    events.add_argument(
        "--part-rows", type=int, default=PART_ROWS, help=f"rows per file (default {PART_ROWS})"
    )
    return export


async def run_export(args: argparse.Namespace, db: Any) -> int:
    """Runs the parsed command against ``db``; the process exit code."""
    try:
        since = parse_time(args.since, "--since")
        until = None if args.until is None else parse_time(args.until, "--until")
        export = EventExport(
            ArchiveReader(db),
            Path(args.out),
            since,
            until,
            part_rows=args.part_rows,
        )
        summary = await export.run_once()
    except BadUserInput as exc:
        print(f"likeview: {exc.message}", file=sys.stderr)
        return 2
    print(
        f"exported [{format_time(summary.since_ms)}, {format_time(summary.until_ms)}) "
        f"to {args.out}: {summary.rows} events in {summary.files} files, "
        f"{len(summary.dates_exported)} dates exported, "
        f"{summary.dates_skipped} already complete"
    )
    return 0
