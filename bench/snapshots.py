"""Counter snapshots: restoring a content's counters after a Redis loss, from its
snapshot plus the events after it, against the recount it replaces, in one run.

    python -m bench.snapshots [--size N] [--after K] [--hll-size M] [--json PATH]

A private redis-server; MongoDB is mongomock in process (no real server here).

Part 1, end to end: one content with N reactions and N counted unique viewers
(bulk inserted as documents), then K events through the domain (likes, views;
half before the snapshot, half after it). Each restore starts from FLUSHALL and is
one summary read: via the snapshot (median of 3), and via the recount (snapshots
turned off). The restored counters must equal the recount exactly.

mongomock's aggregation is superlinear (about 1 s of CPU for 10,000 documents
and 10 s for 40,000 on the bench machine), so the recount path cannot run at a
million documents in process; the default N is what completes, and the Redis
half is measured at full size apart:

Part 2, the Redis side at M members (default 1,000,000): the recount path's
install (every member sent and added to a fresh HyperLogLog) against the
snapshot's (the registers SET, then K members added).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import Redis

Timed = tuple[float, float]  # (wall ms, this process's CPU ms)


async def timed(step: Callable[[], Awaitable[Any]]) -> tuple[Timed, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = await step()
    return ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000), result


async def bulk(col: Any, docs: Callable[[int], dict[str, Any]], n: int) -> None:
    chunk = 20_000
    for start in range(0, n, chunk):
        await col.insert_many([docs(i) for i in range(start, min(n, start + chunk))])


async def part_one(redis_url: str, size: int, after: int, recount: bool) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from domain import reads
    from domain.catalog import register_content
    from domain.contents import ContentKind
    from domain.counter_snapshots import Outcome
    from domain.counter_snapshots import take_snapshot as take
    from domain.counters import drift
    from domain.identity import Actor
    from domain.likes import set_reaction
    from domain.reactions import ReactionType
    from domain.view_recording import record_views
    from main import Settings, build_workers, open_runtime
    from storage.embedded_mongo import open_embedded_client
    from storage.mongo_reactions import reaction_id
    from storage.redis_counter_snapshots import RedisCounterSnapshots

    cid = "big"
    db = open_embedded_client()["bench_snapshots"]
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    settings = Settings(redis_url=redis_url, jwt_secret="b" * 32, rate_limits=False)
    out: dict[str, Any] = {"size": size, "after": after}
    async with open_runtime(settings, db=db, redis=client) as rt:
        deps, workers = rt.deps, build_workers(rt, "bench")
        await register_content(
            deps,
            Actor("ingest", frozenset({"service"})),
            cid,
            "creator",
            ContentKind.VIDEO,
            600_000,
        )
        started = time.perf_counter()
        now = datetime.now(UTC)
        await bulk(
            db["reactions"],
            lambda i: {
                "_id": reaction_id(cid, f"r{i}"),
                "content_id": cid,
                "user_id": f"r{i}",
                "reaction": "LIKE",
                "status": "active",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
            size,
        )
        await bulk(
            db["view_sessions"],
            lambda i: {
                "_id": f"s{i}",
                "content_id": cid,
                "viewer_key": f"u:v{i}",
                "counted": True,
                "ended": True,
                "version": 1,
            },
            size,
        )
        out["build_s"] = round(time.perf_counter() - started, 1)

        async def events(n: int, tag: str) -> None:
            for i in range(n // 2):
                await set_reaction(deps, Actor(f"{tag}{i}"), cid, ReactionType.WOW)
                (r,) = await record_views(
                    deps,
                    Actor(f"{tag}{i}"),
                    [{"content_id": cid, "session_id": f"{tag}s{i}", "watched_ms": 31_000}],
                )
                assert r.decision.counted
            await workers["aggregator"].run_once()

        async def read() -> Any:
            (s,) = await reads.summaries(deps, None, [cid])
            return s

        # Registration installed zeroed counters: the bulk insert went round them. The
        # first read recounts and installs the counters the snapshotter captures;
        # without the recount, what it would install is known from the build.
        await client.flushall()
        if recount:
            await read()
        else:
            members = [f"u:v{i}" for i in range(size)]
            asof = int(deps.clock.now().timestamp() * 1000)
            built = {"likes": size, "r:LIKE": size, "views": size}
            await deps.counters.install(cid, built, members, asof, replace=True)
        await events(after, "a")
        ports = deps.snapshots
        assert ports is not None, "a shared Redis wires counter snapshots"
        # mongomock scans whole collections for the outbox entries: at a million
        # documents that read can outlast the default capture window.
        ports.capture = RedisCounterSnapshots(client, rt.services.keys, window_ms=3_600_000)
        snap_t, outcome = await timed(lambda: take(ports, deps.clock, cid))
        assert outcome is Outcome.TAKEN, outcome
        out["take_snapshot_ms"] = round(snap_t[0], 1)
        await events(after, "b")
        await workers["archiver"].run_once()
        expected_uniques = (await read()).unique_viewers

        via_snapshot: list[Timed] = []
        for _ in range(3):
            await client.flushall()
            t, s = await timed(read)
            via_snapshot.append(t)
        restored = (await deps.counters.read([cid]))[cid]
        assert restored is not None
        # The build plus the events: `after` WOW reactions and `after` views.
        known = {"likes": size + after, "r:LIKE": size, "r:WOW": after, "views": size + after}
        assert drift(restored.counters, known) == {}, drift(restored.counters, known)
        assert s.unique_viewers == expected_uniques
        out["likes"], out["views"], out["unique_viewers"] = s.likes, s.views, s.unique_viewers
        out["snapshot_wall_ms"] = round(statistics.median(t[0] for t in via_snapshot), 1)
        out["snapshot_cpu_ms"] = round(statistics.median(t[1] for t in via_snapshot), 1)
        if not recount:
            await client.aclose()
            return out
        truth = (await reads.recount(deps, [cid]))[cid]
        assert drift(restored.counters, truth.counters) == {}
        deps.snapshots = None
        await client.flushall()
        via_recount, s2 = await timed(read)
        deps.snapshots = ports
        assert (s2.likes, s2.views) == (s.likes, s.views)
        out["recount_wall_ms"] = round(via_recount[0], 1)
        out["recount_cpu_ms"] = round(via_recount[1], 1)
        out["ratio_wall"] = round(out["recount_wall_ms"] / out["snapshot_wall_ms"], 1)
    await client.aclose()
    return out


async def part_two(redis_url: str, members: int, after: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from storage.keys import Keys
    from storage.redis_counter_snapshots import RedisCounterSnapshots
    from storage.redis_counters import RedisCounters

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    keys = Keys()
    counters = RedisCounters(client, keys, 3_600_000)
    snaps = RedisCounterSnapshots(client, keys)
    everyone = [f"u:v{i}" for i in range(members)]
    fields = {"likes": members, "r:LIKE": members, "views": members}
    recount_t, _ = await timed(lambda: counters.install("big", fields, everyone, 1, replace=True))
    captured = await snaps.capture("big")
    assert captured is not None
    await snaps.finish("big", captured.token, [])
    late = [f"u:late{i}" for i in range(after)]
    snap_t, uniques = await timed(
        lambda: snaps.install("big", fields, captured.registers, late, 2, replace=True)
    )
    await client.aclose()
    return {
        "members": members,
        "registers_bytes": len(captured.registers),
        "unique_viewers": uniques,
        "recount_install_wall_ms": round(recount_t[0], 1),
        "snapshot_install_wall_ms": round(snap_t[0], 1),
        "ratio_wall": round(recount_t[0] / snap_t[0], 1),
    }


async def measure(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    return {
        "part1": await part_one(redis_url, args.size, args.after, not args.no_recount),
        "part2": await part_two(redis_url, args.hll_size, args.after),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.snapshots", description=__doc__)
    p.add_argument("--size", type=int, default=20_000, help="reactions, and unique viewers")
    p.add_argument("--after", type=int, default=1_000, help="events around the snapshot")
    p.add_argument(
        "--no-recount",
        action="store_true",
        help="part 1 without the recount path (mongomock cannot recount a million)",
    )
    p.add_argument("--hll-size", type=int, default=1_000_000, help="part 2's members")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    redis = Redis(Path(tempfile.mkdtemp(prefix="likeview-snapshots-")))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        result = asyncio.run(measure(args, redis.url))
    finally:
        redis.stop()
    for part, rows in result.items():
        print(part, " ".join(f"{k}={v}" for k, v in rows.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
