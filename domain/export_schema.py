"""The Parquet export's row shape, partition dates and time arguments (pure).

One archived event becomes one flat row (docs/EXPORT.md, "Schema"): the event's own
fields, a few typed columns pulled out of ``deltas`` and ``data`` for the queries
most readers make, and both dicts whole as JSON strings. A typed column holds a
value only when the archived one has that type; the JSON keeps it either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson

from domain.counters import LIKES, VIEWS
from domain.errors import BadUserInput
from domain.events import REACTION, EngagementEvent

ColumnType = Literal["string", "int64", "bool", "timestamp_ms_utc"]

DAY_MS = 86_400_000
# Parquet's and the readers' int64.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool


# The file schema, in file order. Append only: a reader's saved table definition
# keeps working when columns are added at the end, not when one is renamed.
# ``date`` is not here: the hive directory (``date=YYYY-MM-DD``) carries it.
COLUMNS: tuple[Column, ...] = (
    Column("event_id", "string", False),
    Column("kind", "string", False),
    Column("content_id", "string", False),
    Column("actor", "string", False),
    Column("occurred_at", "timestamp_ms_utc", False),
    Column("likes_delta", "int64", False),
    Column("views_delta", "int64", False),
    Column("deltas_json", "string", False),
    # Not "unique": a reserved word in DuckDB's (and PostgreSQL's) SQL, so every
    # query would have to quote it.
    Column("unique_member", "string", True),
    Column("session_id", "string", True),
    Column("platform", "string", True),
    Column("source", "string", True),
    Column("region", "string", True),
    Column("watched_ms", "int64", True),
    Column("accepted_ms", "int64", True),
    Column("position_ms", "int64", True),
    Column("final", "bool", True),
    Column("reaction_before", "string", True),
    Column("reaction_after", "string", True),
    Column("data_json", "string", False),
    # Identity signals (reactions and views; null in events written before them).
    Column("addr", "string", True),
    Column("device", "string", True),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def _text(value: Any) -> str | None:
    # str() turns a StrEnum member into its plain value.
    return str(value) if isinstance(value, str) else None


def _int64(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _json(value: Mapping[str, Any]) -> str:
    # Sorted keys: the same event always exports the same bytes.
    return orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS, default=str).decode()


def event_row(event: EngagementEvent) -> dict[str, Any]:
    """The export row of one event; ``occurred_at`` in epoch milliseconds."""
    data = event.data
    reaction = event.kind == REACTION
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "content_id": event.content_id,
        "actor": event.actor,
        "occurred_at": event.occurred_at_ms,
        "likes_delta": _int64(event.deltas.get(LIKES, 0)) or 0,
        "views_delta": _int64(event.deltas.get(VIEWS, 0)) or 0,
        "deltas_json": _json(event.deltas),
        "unique_member": _text(event.unique),
        "session_id": _text(data.get("session_id")),
        "platform": _text(data.get("platform")),
        "source": _text(data.get("source")),
        "region": _text(data.get("region")),
        "watched_ms": _int64(data.get("watched_ms")),
        "accepted_ms": _int64(data.get("accepted_ms")),
        "position_ms": _int64(data.get("position_ms")),
        "final": _bool(data.get("final")),
        "reaction_before": _text(data.get("before")) if reaction else None,
        "reaction_after": _text(data.get("after")) if reaction else None,
        "data_json": _json(data),
        "addr": _text(data.get("addr")),
        "device": _text(data.get("device")),
    }


_EPOCH = date(1970, 1, 1)


def partition_date(ms: int) -> str:
    """The UTC date of an epoch-milliseconds instant, as its directory names it."""
    return (_EPOCH + timedelta(days=ms // DAY_MS)).isoformat()


@dataclass(frozen=True, slots=True)
class DayWindow:
    """The part of the export's [since, until) inside one UTC date: [lo_ms, hi_ms)."""

    date: str
    lo_ms: int
    hi_ms: int


def day_windows(since_ms: int, until_ms: int) -> list[DayWindow]:
    """The export's range cut at UTC midnights, in date order."""
    windows = []
    lo = since_ms
    while lo < until_ms:
        hi = min((lo // DAY_MS + 1) * DAY_MS, until_ms)
        windows.append(DayWindow(partition_date(lo), lo, hi))
        lo = hi
    return windows


def parse_time(text: str, option: str = "time") -> int:
    """An ISO 8601 date or date-time as epoch milliseconds; no offset means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadUserInput(
            f"{option} must be an ISO 8601 date or date-time "
            f"(2024-05-01, 2024-05-01T12:00:00Z), got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    # Exact integer milliseconds (timestamp() goes through a float).
    return delta // timedelta(milliseconds=1)


def format_time(ms: int) -> str:
    """Epoch milliseconds as the ISO 8601 UTC text that parse_time reads back."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
