"""Scenario 7, creator analytics: the worker's apply rate and the dashboard queries' latency.

    .venv/bin/python -m bench.analytics [--events 500000] [--contents 200] [--days 30]
                                        [--clients 10] [--requests 200] [--json PATH]
                                        [--apply-only]

In one process, as the embedded mode runs (mongomock, so MongoDB's work is on this
process's core): starts a private redis-server, opens the app, registers the
contents (two creators, half each; even ones VIDEO with a duration, odd ones POST),
generates ``--events`` engagement events spread over the last ``--days`` days (the
loader: a seeded generator of sessions and reactions, shaped as the write paths
shape them, see ``generate``), and applies them through the analytics worker's own
``process()``, in log-sized deliveries, timing it. Then ``--clients`` concurrent
clients send ``--requests`` requests each of three dashboard queries through the
ASGI app (no sockets): contentAnalytics over 30 days by DAY with every breakdown,
over 48 hours by HOUR, and creatorAnalytics over one creator's 100 contents and 30
days. Latencies are per request, from when its client is ready to send (its
previous answer came) to the answer, so they include waiting for the other clients
on the one event loop (as 10 clients of one API process would).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.inprocess import call, closed_loop, post
from bench.procs import Redis

CONTENT_QUERY = """query($id: ID!, $r: TimeRange!, $g: Granularity!) {
  contentAnalytics(contentId: $id, range: $r, granularity: $g) {
    totals { likesAdded likesRemoved netLikes views uniqueViewers watchTimeMs
             averageWatchMs likeToViewRatio engagementRate }
    series { start likesAdded likesRemoved netLikes views watchTimeMs }
    reactions { reaction net }
    byPlatform { key views watchTimeMs likesAdded }
    bySource { key views watchTimeMs likesAdded }
    byRegion { key views watchTimeMs likesAdded }
    completion { sessions average histogram }
    timeToFirstLikeMs
    lifetime { likes views }
  } }"""
CREATOR_QUERY = """query($c: ID!, $r: TimeRange!) {
  creatorAnalytics(creatorId: $c, range: $r, granularity: DAY, top: 10) {
    totals { likesAdded likesRemoved netLikes views uniqueViewers watchTimeMs
             averageWatchMs likeToViewRatio engagementRate }
    series { start likesAdded likesRemoved netLikes views watchTimeMs }
    topByViews { contentId views likesAdded }
    topByLikes { contentId views likesAdded }
  } }"""

PLATFORMS = ["IOS", "ANDROID", "WEB", "TV", None]
SOURCES = ["FEED", "SEARCH", "PROFILE", "EXTERNAL", None]
REGIONS = ["US", "GB", "SE", "DE", "IN", "BR", "JP", "unknown"]
REACTIONS = ["LIKE", "LOVE", "WOW", "LAUGH"]
DURATION_MS = 60_000
EVENTS_PER_DELIVERY = 50


def cid(i: int) -> str:
    return f"a{i:04d}"


def creator_of(i: int, contents: int) -> str:
    return "creator-a" if i < contents // 2 else "creator-b"


def generate(
    args: argparse.Namespace, now_ms: int, span_ms: int, count: int, tag: str = ""
) -> list[dict[str, Any]]:
    """Events as ``EngagementEvent.to_dict()`` dicts, shaped as the write paths shape
    them: per view session two raw view events (with accepted watch time), a counted
    view for about 60% of them, and an end; reactions (likes, switches, unlikes) of
    consistent per-user state, about a sixth of all events. Times are uniform over
    the last ``span_ms``; ids are deterministic (``tag`` keeps two runs apart)."""
    rng = random.Random(7 if not tag else 8)
    span = span_ms
    out: list[dict[str, Any]] = []
    state: dict[tuple[int, int], str | None] = {}
    session = 0
    while len(out) < count:
        c = rng.randrange(args.contents)
        at = now_ms - rng.randrange(span)
        if rng.random() < 0.15:
            user = rng.randrange(20_000)
            before = state.get((c, user))
            after: str | None
            if before is None:
                after = rng.choice(REACTIONS)
            elif rng.random() < 0.5:
                after = None
            else:
                after = rng.choice([r for r in REACTIONS if r != before])
            state[(c, user)] = after
            deltas: dict[str, int] = {}
            if before:
                deltas[f"r:{before}"] = -1
            if after:
                deltas[f"r:{after}"] = deltas.get(f"r:{after}", 0) + 1
            likes = (after is not None) - (before is not None)
            if likes:
                deltas["likes"] = likes
            out.append(
                _event(f"{tag}r{len(out)}", "reaction", c, f"u{user}", at, deltas, None,
                       {"before": before, "after": after, "region": rng.choice(REGIONS)})
            )  # fmt: skip
            continue
        session += 1
        sid = f"{tag}s{session}"
        viewer = f"v{rng.randrange(60_000)}"
        platform, source, region = rng.choice(PLATFORMS), rng.choice(SOURCES), rng.choice(REGIONS)
        watched = 0
        for k in range(2):
            step = rng.randrange(1_000, 30_000)
            watched += step
            out.append(
                _event(f"w{sid}-{k}", "view_event", c, viewer, at + k * 1_000, {}, None,
                       {"session_id": sid, "watched_ms": step, "accepted_ms": step,
                        "position_ms": watched, "platform": platform, "source": source,
                        "region": region, "final": k == 1})
            )  # fmt: skip
        counted = rng.random() < 0.6
        if counted:
            out.append(
                _event(f"v{sid}", "view", c, viewer, at + 1_000, {"views": 1}, viewer,
                       {"session_id": sid, "platform": platform, "source": source,
                        "region": region})
            )  # fmt: skip
        out.append(
            _event(f"e{sid}", "view_end", c, viewer, at + 1_000, {}, None,
                   {"session_id": sid, "position_ms": watched,
                    "duration_ms": DURATION_MS if c % 2 == 0 else None, "watched_ms": watched,
                    "platform": platform, "source": source, "region": region,
                    "counted": counted, "reason": "final"})
        )  # fmt: skip
    return out[:count]


def _event(
    eid: str,
    kind: str,
    c: int,
    actor: str,
    at: int,
    deltas: dict[str, int],
    unique: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "event_id": eid,
        "kind": kind,
        "content_id": cid(c),
        "actor": actor,
        "occurred_at_ms": at,
        "deltas": deltas,
        "unique": unique,
        "data": data,
    }


def deliveries(events: list[dict[str, Any]], partition_of: Any) -> list[Any]:
    """The events as log entries: per partition, in time order (a log is appended as
    things happen), entries of up to 50 events, raw view events encoded apart as the
    log carries them (domain.log.Delivery)."""
    from domain.events import EngagementEvent
    from domain.log import Delivery

    by_partition: dict[int, list[dict[str, Any]]] = {}
    for e in sorted(events, key=lambda e: e["occurred_at_ms"]):
        by_partition.setdefault(partition_of(e["content_id"]), []).append(e)
    out: list[Any] = []
    n = 0
    for partition, items in by_partition.items():
        for i in range(0, len(items), EVENTS_PER_DELIVERY):
            chunk = items[i : i + EVENTS_PER_DELIVERY]
            raw = [e for e in chunk if e["kind"] == "view_event"]
            rest = tuple(EngagementEvent.from_dict(e) for e in chunk if e["kind"] != "view_event")
            n += 1
            out.append(
                Delivery(
                    partition,
                    f"{n}-0",
                    rest,
                    orjson.dumps(raw) if raw else None,
                    len(raw),
                )
            )
    return out


def reads(entries: list[Any], count: int) -> list[list[Any]]:
    """The entries as the worker reads them under a backlog: XREADGROUP with COUNT
    ``count`` over every partition's stream returns up to ``count`` entries of each,
    oldest first."""
    by_partition: dict[int, list[Any]] = {}
    for d in entries:
        by_partition.setdefault(d.partition, []).append(d)
    longest = max((len(v) for v in by_partition.values()), default=0)
    return [
        [d for items in by_partition.values() for d in items[i : i + count]]
        for i in range(0, longest, count)
    ]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import main
    from domain.catalog import Registration, register_contents
    from domain.contents import ContentKind
    from domain.identity import Actor
    from resolvers.auth import issue_token
    from storage.mongo_retention import MongoRetention

    settings = main.Settings()
    app = main.create_app(settings)
    secret = settings.jwt_secret or main.DEV_JWT_SECRET
    out: dict[str, Any] = {"events": args.events, "contents": args.contents, "days": args.days}
    keys = main.Keys(settings.key_prefix, settings.stream_partitions)
    # Generated before the app starts: it holds the event loop for seconds.
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    history = deliveries(
        generate(args, now_ms, args.days * 86_400_000, args.events), keys.partition
    )
    # Live traffic: the same mix within the last five minutes (few buckets each).
    live = deliveries(generate(args, now_ms, 5 * 60_000, args.live_events, tag="L"), keys.partition)
    out["generate_s"] = round(time.perf_counter() - t0, 1)
    print(f"  generated {args.events:,} events in {out['generate_s']} s", flush=True)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        deps = runtime.deps
        service = Actor("bench", frozenset({"service"}))
        regs = [
            Registration(
                cid(i),
                creator_of(i, args.contents),
                ContentKind.VIDEO if i % 2 == 0 else ContentKind.POST,
                DURATION_MS if i % 2 == 0 else None,
            )
            for i in range(args.contents)
        ]
        for i in range(0, len(regs), 500):
            await register_contents(deps, service, regs[i : i + 500])
        worker = main.build_workers(runtime, "bench-loader")["analytics"]
        for name, batches in (("history", history), ("live", live)):
            wall, cpu = time.perf_counter(), time.process_time()
            applied = 0
            # As the worker reads under a backlog (its ``batch`` per partition).
            for read in reads(batches, worker.batch):
                applied += await worker.process(read)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            out[f"{name}_applied"] = applied
            out[f"{name}_events_per_s"] = round(applied / wall)
            # This process's CPU only (Redis is a process of its own): what the
            # rate would be with a core to itself, on a machine shared with others.
            out[f"{name}_events_per_cpu_s"] = round(applied / cpu)
            print(
                f"  {name}: applied {applied:,} events in {wall:.1f} s ({cpu:.1f} s of CPU)",
                flush=True,
            )
            if name == "history":
                # Minute buckets live 48 hours (TTL indexes; the embedded retention):
                # drop the loader's older ones, as a service running for 30 days would
                # hold. Left in place, the retention worker would be deleting a month
                # of them, page by page, while the live traffic is measured.
                expired = await MongoRetention(runtime.db).expire_analytics(
                    datetime.now(UTC), 10**9
                )
                out["minute_buckets_expired"] = expired
        out["apply_events_per_s"] = out["live_events_per_s"]
        out["applied"] = out["live_applied"]
        if args.apply_only:
            return out
        now = datetime.now(UTC)
        month = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}
        two_days = {"from": (now - timedelta(hours=48)).isoformat(), "to": now.isoformat()}
        tokens = {c: issue_token(secret, c) for c in ("creator-a", "creator-b")}
        rng = random.Random(11)

        def content_request(r: dict[str, str], g: str) -> Any:
            i = rng.randrange(args.contents)
            token = tokens[creator_of(i, args.contents)]
            return post(CONTENT_QUERY, {"id": cid(i), "r": r, "g": g}, token)

        def creator_request() -> Any:
            c = rng.choice(["creator-a", "creator-b"])
            return post(CREATOR_QUERY, {"c": c, "r": month}, tokens[c])

        kinds = {
            "content_30d_day": lambda: content_request(month, "DAY"),
            "content_48h_hour": lambda: content_request(two_days, "HOUR"),
            "creator_30d_day": creator_request,
        }
        for name, make in kinds.items():
            sample = await call(app, make())
            if b'"errors"' in sample:
                raise SystemExit(f"{name} failed: {sample[:400]!r}")
            full_gcs = gc.get_stats()[2]["collections"]
            wall, cpu = time.perf_counter(), time.process_time()
            latencies = await closed_loop(app, make, args.clients, args.requests)
            wall = time.perf_counter() - wall
            full_gcs = gc.get_stats()[2]["collections"] - full_gcs
            # This process's CPU per request (the in-process workers' included): on
            # a shared machine the latencies stretch with the other load, this not.
            cpu_ms = 1000 * (time.process_time() - cpu) / len(latencies)
            print(
                f"  {name}: p99 {pct(latencies, 99):.1f} ms, {cpu_ms:.2f} ms CPU,"
                f" {full_gcs} full GCs",
                flush=True,
            )
            out[name] = {
                "requests": len(latencies),
                "per_s": round(len(latencies) / wall),
                "p50_ms": round(statistics.median(latencies), 1),
                "p99_ms": round(pct(latencies, 99), 1),
                "answer_bytes": len(sample),
                "cpu_ms_per_request": round(cpu_ms, 2),
                # Full collections during the phase: each walks the whole heap.
                "full_gcs": full_gcs,
            }
    return out


TARGETS = {
    "content_30d_day": 50.0,
    "content_48h_hour": 50.0,
    "creator_30d_day": 100.0,
    "apply_events_per_s": 20_000,
}


def report(result: dict[str, Any]) -> list[dict[str, str]]:
    rows = [
        {
            "metric": "analytics worker apply rate, live traffic (one process, mongomock)",
            "value": f"{result['apply_events_per_s']:,} events/s ({result['applied']:,} events; "
            f"{result['live_events_per_cpu_s']:,} per s of this process's CPU; "
            f"the 30-day history load: {result['history_events_per_s']:,}/s)",
            "target": f">= {TARGETS['apply_events_per_s']:,}",
            "verdict": "PASS"
            if result["apply_events_per_s"] >= TARGETS["apply_events_per_s"]
            else "MISS",
        }
    ]
    names = {
        "content_30d_day": "contentAnalytics, 30 days by DAY, every breakdown",
        "content_48h_hour": "contentAnalytics, 48 h by HOUR, every breakdown",
        "creator_30d_day": "creatorAnalytics, 100 contents, 30 days",
    }
    for key, what in names.items():
        if key not in result:  # --apply-only
            continue
        r = result[key]
        rows.append(
            {
                "metric": f"{what}, 10 clients",
                "value": f"p50 {r['p50_ms']} / p99 {r['p99_ms']} ms ({r['per_s']} req/s, "
                f"{r['cpu_ms_per_request']} ms CPU per request)",
                "target": f"p99 <= {TARGETS[key]:g} ms",
                "verdict": "PASS" if r["p99_ms"] <= TARGETS[key] else "MISS",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    p.add_argument("--events", type=int, default=500_000, help="history, over --days")
    p.add_argument("--live-events", type=int, default=100_000, help="within 5 minutes")
    p.add_argument("--contents", type=int, default=200)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--requests", type=int, default=20, help="per client and query")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--apply-only", action="store_true", help="measure the apply rates, not the queries"
    )
    args = p.parse_args(argv)
    redis = Redis(Path(tempfile.mkdtemp(prefix="likeview-analytics-")))
    os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("ACCESS_LOG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        import uvloop

        result = uvloop.run(measure(args))
    finally:
        redis.stop()
    result["rows"] = report(result)
    for row in result["rows"]:
        print(f"  {row['metric']}: {row['value']}  (target {row['target']}: {row['verdict']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
