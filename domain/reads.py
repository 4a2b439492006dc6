"""Read use cases: summaries for one or many contents, reactors, counter rebuilds."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.clock import to_ms
from domain.contents import check_id
from domain.counter_snapshots import restore
from domain.counters import add
from domain.deps import Deps
from domain.errors import BadUserInput
from domain.identity import Actor
from domain.ports import CounterReading, ReactionRecord
from domain.reactions import ReactionType
from domain.summary import Summary, summarize
from workers.metrics import COUNTER_READS_RECOUNT, COUNTER_READS_REDIS, COUNTER_READS_SNAPSHOT

MAX_BATCH = 100
MAX_PAGE = 100


def check_ids(content_ids: Sequence[str], field: str = "contentIds") -> list[str]:
    if len(content_ids) > MAX_BATCH:
        raise BadUserInput(f"{field} has {len(content_ids)} ids; at most {MAX_BATCH}")
    return [check_id(cid, f"{field}[{i}]") for i, cid in enumerate(content_ids)]


@dataclass(frozen=True, slots=True)
class Recount:
    counters: dict[str, int]
    unique_members: list[str]


async def recount(deps: Deps, content_ids: Sequence[str]) -> dict[str, Recount]:
    """The truth from MongoDB: every source's counters and unique viewers.

    Unknown content ids are left out: counters exist only for registered
    content, or anyone could create them.
    """
    known = await deps.contents.get_many(content_ids)
    ids = [cid for cid in content_ids if cid in known]
    totals: dict[str, dict[str, int]] = {cid: {} for cid in ids}
    members: dict[str, set[str]] = {cid: set() for cid in ids}
    for source in deps.sources:
        for cid, counts in (await source.recount(ids)).items():
            totals[cid] = add(totals[cid], counts)
        for cid, keys in (await source.unique_members(ids)).items():
            members[cid].update(keys)
    return {cid: Recount(totals[cid], sorted(members[cid])) for cid in ids}


async def rebuild(
    deps: Deps, content_ids: Sequence[str], *, replace: bool
) -> dict[str, CounterReading]:
    """Recount from MongoDB and install in Redis; a miss (``replace=False``) is
    restored from its counter snapshot instead where it has a usable one."""
    if not content_ids:
        return {}
    out: dict[str, CounterReading] = {}
    if not replace:
        out = await restore(deps, content_ids)
        COUNTER_READS_SNAPSHOT.inc(len(out))
        content_ids = [cid for cid in content_ids if cid not in out]
        if not content_ids:
            return out
    # Taken before the recount: events up to here are in it, later ones apply on top.
    asof = to_ms(deps.clock.now())
    recounted = 0
    for cid, truth in (await recount(deps, content_ids)).items():
        await deps.counters.install(
            cid, truth.counters, truth.unique_members, asof, replace=replace
        )
        out[cid] = CounterReading(truth.counters, len(truth.unique_members))
        recounted += 1
    COUNTER_READS_RECOUNT.inc(recounted)
    return out


async def counter_readings(deps: Deps, content_ids: Sequence[str]) -> dict[str, CounterReading]:
    """Counters for many contents: one Redis round trip, plus a recount for misses."""
    readings = await deps.counters.read(content_ids)
    missing = [cid for cid, r in readings.items() if r is None]
    COUNTER_READS_REDIS.inc(len(readings) - len(missing))
    rebuilt = await rebuild(deps, missing, replace=False) if missing else {}
    empty = CounterReading({}, 0)
    return {cid: readings.get(cid) or rebuilt.get(cid) or empty for cid in content_ids}


async def viewer_reactions(
    deps: Deps, viewer: Actor | None, content_ids: Sequence[str]
) -> dict[str, ReactionType]:
    if viewer is None or not content_ids:
        return {}
    return await deps.reactions.viewer_reactions(viewer.user_id, content_ids)


async def summaries(deps: Deps, viewer: Actor | None, content_ids: Sequence[str]) -> list[Summary]:
    return await load_summaries(deps, viewer, check_ids(content_ids))


async def load_summaries(deps: Deps, viewer: Actor | None, ids: Sequence[str]) -> list[Summary]:
    """Summaries for already-validated ids: one counters round trip, one reactions query."""
    unique = list(dict.fromkeys(ids))
    readings = await counter_readings(deps, unique)
    mine = await viewer_reactions(deps, viewer, unique)
    return [
        summarize(cid, readings[cid].counters, readings[cid].unique_viewers, mine.get(cid))
        for cid in ids
    ]


# --- reactors: newest first, keyset pagination ---------------------------------


def encode_cursor(record: ReactionRecord) -> str:
    raw = f"{to_ms(record.updated_at)}:{record.user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ms, user_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":", 1)
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC), user_id
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise BadUserInput("after is not a cursor this API returned") from exc


async def reactors(
    deps: Deps,
    content_id: str,
    reaction: ReactionType | None,
    first: int,
    after: str | None,
) -> tuple[list[ReactionRecord], bool]:
    check_id(content_id, "contentId")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}; got {first}")
    before = decode_cursor(after) if after else None
    rows = await deps.reactions.reactors(content_id, reaction, first + 1, before)
    return rows[:first], len(rows) > first
