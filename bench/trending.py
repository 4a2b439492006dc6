"""Scenario 8, trending and ranking signals: the trending worker's apply rate, the
two reads' latency, and how long a rising content takes to enter the list.

    .venv/bin/python -m bench.trending [--events 100000] [--contents 200] [--clients 20]
                                       [--requests 100] [--spikes 30] [--json PATH]
                                       [--reads-only]   # phases 1 (without the reads of
                                                        # 10) and 2 only, to iterate

In one process, as the embedded mode runs (mongomock and the workers in the
process, a private redis-server): opens the app, registers ``--contents``
contents (VIDEO, SHORT and POST in turn), then

1. applies generated events (bench.analytics.generate: view sessions with raw
   view events, counted views, ends, and reactions) through the trending
   worker's own ``process()``, as log entries of 50 events (bench.analytics.
   deliveries) read the way the worker reads a backlog: up to its ``batch``
   (200) entries of every partition per call. First ``--hour-events`` over the
   last 70 minutes (so every content's minute ring is full, as a service running
   for an hour holds it; information), then the measured ``--events`` within the
   last 5 minutes, then (information) ``--events`` / 2 more read 10 entries per
   partition at a time, as a worker that keeps up reads;
2. ``--clients`` concurrent clients send ``--requests`` requests each through the
   ASGI app (no sockets): trending(window: HOUR, first: 20) without and with
   ``signals``, and rankingSignals over 100 ids with every field (then again
   with the signals cache off, for information: each request picks 100 of the
   ``--contents``, so with it on most contents are shared). A latency is
   per request, from when its client is ready to send (its previous answer came)
   to the answer, so it includes waiting for the other clients on the one event
   loop (as 20 clients of one API process would);
3. under a background load of real mutations through the ASGI app (likes of
   random users, and anonymous recordViews batches, which the embedded workers
   carry: mutation -> outbox and event log -> the trending worker), ``--spikes``
   spikes one after another: a fresh content gets likes from new users through
   the ``like`` mutation, ``--spike-rate`` a second until it is listed (at most
   ``--spike-likes``), and trending(window: FIVE_MINUTES, first: 20) is polled
   every 50 ms from the first like's acknowledgement until it lists the content.
   How many likes it takes depends on the 20th item's heat (the bar); each
   spike also reports the bar, the likes that beat it, and the time from that
   like's acknowledgement to the listing (the pipeline's part).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.analytics import deliveries, generate, pct
from bench.inprocess import Request, call, closed_loop, from_own_address, post
from bench.procs import Redis

RATES = "{ oneMinute fifteenMinutes oneHour }"
SIGNAL_FIELDS = (
    f"contentId likesPerMinute {RATES} viewsPerMinute {RATES} growthSlope velocityRatio "
    "engagementRatio viewToLikeConversion uniqueViewers averageWatchMs updatedAt"
)
TRENDING = """query($w: TrendWindow!, $n: Int) {
  trending(window: $w, first: $n) { rank score content { contentId kind } } }"""
TRENDING_WITH_SIGNALS = (
    """query($w: TrendWindow!, $n: Int) {
  trending(window: $w, first: $n) { rank score content { contentId kind } signals { """
    + SIGNAL_FIELDS
    + " } } }"
)
SIGNALS = "query($ids: [ID!]!) { rankingSignals(contentIds: $ids) { " + SIGNAL_FIELDS + " } }"
LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed } }"
VIEWS = "mutation($v: [ViewInput!]!) { recordViews(inputs: $v) { decision { counted } } }"
REGISTER = (
    "mutation($id: ID!) { registerContent(input: "
    '{contentId: $id, creatorId: "spike-creator", kind: SHORT}) { contentId } }'
)
KINDS = ("VIDEO", "SHORT", "POST")
DURATIONS = {"VIDEO": 60_000, "SHORT": 20_000, "POST": None}
VIEWS_PER_REQUEST = 50
POLL_S = 0.05
ENTRY_TIMEOUT_S = 30.0
SMALL_READ = 10  # entries per partition, for the information figure

TARGETS = {
    "apply_events_per_s": 20_000,
    "trending_hour": 10.0,  # p99 ms at 20 clients
    "signals_100": 15.0,  # p99 ms at 20 clients
}


def cid(i: int) -> str:
    """The ids bench.analytics.generate names its events' contents by."""
    return f"a{i:04d}"


def kind_of(i: int) -> str:
    return KINDS[i % len(KINDS)]


def relabel(entries: Sequence[Any], tag: int) -> list[Any]:
    """The entries with stream ids of their own (``<n>-<tag>``): bench.analytics.
    deliveries numbers every set from 1, and the worker applies a raw view event
    under its entry's id (workers.analytics.log_token), so two sets with the same
    ids would be refused as applied before."""
    return [dataclasses.replace(d, message_id=f"{n}-{tag}") for n, d in enumerate(entries, start=1)]


def reads(entries: Sequence[Any], count: int) -> list[list[Any]]:
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


def logged_events(entries: Sequence[Any]) -> int:
    """Events the entries carry, raw view events and view ends included."""
    return sum(len(d.events) + d.raw_view_count for d in entries)


def summary(latencies: list[float], wall: float) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / wall),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(pct(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
    }


def pct_or_none(values: list[float], p: float) -> float | None:
    return round(pct(values, p), 1) if values else None


def anonymous(query: str, variables: dict[str, Any]) -> Request:
    body, headers = post(query, variables, "")
    return body, [h for h in headers if h[0] != b"authorization"]


async def apply_rate(
    worker: Any, name: str, entries: list[Any], per_partition: int, out: dict[str, Any]
) -> None:
    calls = reads(entries, per_partition)
    wall = time.perf_counter()
    cpu = time.process_time()
    applied = 0
    for read in calls:
        applied += await worker.process(read)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    logged = logged_events(entries)
    out[name] = {
        "entries": len(entries),
        "calls": len(calls),
        "entries_per_partition_per_call": per_partition,
        "events_in_log": logged,
        "applied": applied,
        "applied_per_s": round(applied / wall),
        "read_per_s": round(logged / wall),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
    }
    print(
        f"  {name}: applied {applied:,} of {logged:,} logged events in {wall:.2f} s "
        f"({applied / wall:,.0f}/s; {len(calls)} process() calls)",
        flush=True,
    )


async def clients(
    app: Any, make: Callable[[], Request], n_clients: int, n_requests: int
) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    latencies = await closed_loop(app, make, n_clients, n_requests)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out = summary(latencies, wall)
    out["cpu_ms_per_request"] = round(1000 * cpu / len(latencies), 3)
    return out


class Background:
    """Paced mutations through the ASGI app: likes of random (user, content) pairs
    and anonymous recordViews batches of VIEWS_PER_REQUEST counted-size views (the
    embedded workers carry their events to the trending worker). A tick whose
    request cannot start because MAX_IN_FLIGHT are waiting is shed and counted."""

    MAX_IN_FLIGHT = 64

    def __init__(
        self,
        app: Any,
        users: list[str],
        contents: int,
        likes_per_s: float,
        views_per_s: float,
    ) -> None:
        self.app = app
        self.users = users
        self.contents = contents
        self.likes_per_s = likes_per_s
        self.views_per_s = views_per_s
        self.sent = {"likes": 0, "view_events": 0}
        self.errors = 0
        self.shed = 0
        self.in_flight = 0
        self.rng = random.Random(21)
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._view_n = 0
        self.started = 0.0
        self.stopped = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        if self.likes_per_s > 0:
            self._tasks.append(asyncio.create_task(self._paced(self.likes_per_s, self._like)))
        if self.views_per_s > 0:
            rate = self.views_per_s / VIEWS_PER_REQUEST
            self._tasks.append(asyncio.create_task(self._paced(rate, self._views)))

    async def stop(self) -> None:
        self.stopped = time.perf_counter()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._pending, return_exceptions=True)

    def rates(self) -> dict[str, float]:
        wall = max((self.stopped or time.perf_counter()) - self.started, 1e-9)
        return {
            "likes_per_s": round(self.sent["likes"] / wall, 1),
            "view_events_per_s": round(self.sent["view_events"] / wall, 1),
        }

    async def _paced(self, rate: float, make: Callable[[], Awaitable[None]]) -> None:
        step = 1 / rate
        due = time.perf_counter()
        while True:
            due += step
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if self.in_flight >= self.MAX_IN_FLIGHT:
                self.shed += 1
                continue
            task = asyncio.create_task(self._send(make))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send(self, make: Callable[[], Awaitable[None]]) -> None:
        self.in_flight += 1
        try:
            await make()
        finally:
            self.in_flight -= 1

    async def _like(self) -> None:
        token = self.rng.choice(self.users)
        request = post(LIKE, {"id": cid(self.rng.randrange(self.contents))}, token)
        # Each user from an address of its own, as organic users come.
        answer = await call(self.app, from_own_address(request, token))
        if b'"errors"' in answer:
            self.errors += 1
        else:
            self.sent["likes"] += 1

    async def _views(self) -> None:
        views = []
        for _ in range(VIEWS_PER_REQUEST):
            self._view_n += 1
            views.append(
                {
                    "contentId": cid(self.rng.randrange(self.contents)),
                    "sessionId": f"bg-s{self._view_n}",
                    "deviceId": f"bg-d{self._view_n}",
                    # Counts for SHORT (2 s) and POST (1 s); a VIDEO's view needs
                    # 30 s and stays a raw view event (watch time only).
                    "watchedMs": 2_500,
                    "visibleFraction": 1.0,
                }
            )
        answer = await call(self.app, anonymous(VIEWS, {"v": views}))
        if b'"errors"' in answer:
            self.errors += 1
        else:
            self.sent["view_events"] += len(views)


class LoopLag:
    """The longest delay of a 10 ms timer while running: how long something held
    the event loop."""

    def __init__(self) -> None:
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.max_ms = max(self.max_ms, 1000 * (time.perf_counter() - t - 0.01))


def scores(answer: bytes) -> dict[str, float]:
    """A trending answer's content ids and scores."""
    items = (orjson.loads(answer).get("data") or {}).get("trending") or []
    return {item["content"]["contentId"]: float(item["score"]) for item in items}


def likes_to_enter(bar: float) -> int:
    """How many likes a content with no other events needs, arriving within a few
    seconds (FIVE_MINUTES' tau is 300 s: no decay to speak of), for a heat above
    ``bar`` (the 20th item's): each like adds 5 to both decayed sums."""
    from domain.trending import WINDOWS, TrendWindow, heat

    spec = WINDOWS[TrendWindow.FIVE_MINUTES]
    n = 1
    while heat(5.0 * n, 5.0 * n, spec) <= bar and n < 100_000:
        n += 1
    return n


async def spike(
    app: Any, k: int, service: str, tokens: list[str], rate: float, out: list[dict[str, Any]]
) -> None:
    """One spike: register a fresh content, like it from new users (``tokens``) at
    ``rate`` likes/s until it is listed (or every token has liked), and poll
    trending(FIVE_MINUTES, first: 20) every POLL_S from the first acknowledgement
    until it lists the content."""
    content = f"spike-{k:03d}-{os.getpid()}"
    answer = await call(app, post(REGISTER, {"id": content}, service))
    if b'"errors"' in answer:
        raise SystemExit(f"registerContent failed: {answer[:300]!r}")
    request = post(TRENDING, {"w": "FIVE_MINUTES", "n": 20}, service)
    before = scores(await call(app, request))
    bar = min(before.values()) if len(before) >= 20 else 0.0
    first_ack = asyncio.Event()
    entered_flag = asyncio.Event()
    acks: list[float] = []
    failures: list[str] = []

    async def like(token: str) -> None:
        answer = await call(app, from_own_address(post(LIKE, {"id": content}, token), token))
        if b'"errors"' in answer:
            failures.append(answer[:300].decode(errors="replace"))
        else:
            acks.append(time.perf_counter())
        first_ack.set()

    async def likers() -> None:
        sent: list[asyncio.Task[None]] = []
        due = time.perf_counter()
        for token in tokens:
            if entered_flag.is_set():
                break
            sent.append(asyncio.create_task(like(token)))
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.gather(*sent)
        first_ack.set()

    sending = asyncio.create_task(likers())
    await first_ack.wait()
    if not acks:
        await sending
        raise SystemExit(f"spike {k}: no like acknowledged: {failures[:1]}")
    t0 = acks[0]
    polls = 0
    entered: float | None = None
    likes_at_entry = 0
    score = None
    while time.perf_counter() - t0 < ENTRY_TIMEOUT_S:
        polls += 1
        now_scores = scores(await call(app, request))
        if content in now_scores:
            entered = time.perf_counter()
            likes_at_entry = len(acks)
            score = now_scores[content]
            break
        await asyncio.sleep(POLL_S)
    entered_flag.set()
    await sending
    needed = likes_to_enter(bar)
    eligible = acks[needed - 1] if needed <= len(acks) else None
    out.append(
        {
            "content": content,
            "likes": len(acks),
            "failed_likes": len(failures),
            "polls": polls,
            "bar_score": round(bar, 1),
            "score_at_entry": None if score is None else round(score, 1),
            "likes_needed": needed,
            "entry_ms": None if entered is None else round(1000 * (entered - t0), 1),
            "likes_acked_at_entry": likes_at_entry,
            # From the ack of the like that took the heat over the bar (computed
            # from the bar; an estimate: the bar moves a little meanwhile).
            "after_eligible_ms": None
            if entered is None or eligible is None
            else round(1000 * (entered - eligible), 1),
        }
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import main
    from domain.catalog import Registration, register_contents
    from domain.contents import ContentKind
    from domain.identity import Actor
    from resolvers.auth import issue_token
    from workers.trending import TrendingWorker

    settings = main.Settings()
    app = main.create_app(settings)
    secret = settings.jwt_secret or main.DEV_JWT_SECRET
    keys = main.Keys(settings.key_prefix, settings.stream_partitions)
    out: dict[str, Any] = {
        "events": args.events,
        "hour_events": args.hour_events,
        "contents": args.contents,
        "clients": args.clients,
        "requests_per_client": args.requests,
    }
    # Generated before the app starts: it holds the event loop for seconds.
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    gen = argparse.Namespace(contents=args.contents)
    hour = relabel(
        deliveries(generate(gen, now_ms, 70 * 60_000, args.hour_events), keys.partition), 1
    )
    live = relabel(
        deliveries(generate(gen, now_ms, 5 * 60_000, args.events, tag="T"), keys.partition), 2
    )
    small = (
        []
        if args.reads_only
        else relabel(
            deliveries(
                generate(gen, now_ms, 5 * 60_000, args.events // 2, tag="U"), keys.partition
            ),
            3,
        )
    )
    out["generate_s"] = round(time.perf_counter() - t0, 1)
    print(f"  generated the events in {out['generate_s']} s", flush=True)
    service = issue_token(secret, "bench-service", ["service"])
    reader = issue_token(secret, "ranking-reader")
    users = [issue_token(secret, f"bg{i:05d}") for i in range(args.users)]
    spike_users = [
        [issue_token(secret, f"spike{k:03d}-u{j:03d}") for j in range(args.spike_likes)]
        for k in range(args.spikes)
    ]
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        actor = Actor("bench", frozenset({"service"}))
        regs = [
            Registration(
                cid(i),
                f"creator-{i % 10}",
                ContentKind(kind_of(i)),
                DURATIONS[kind_of(i)],
            )
            for i in range(args.contents)
        ]
        for i in range(0, len(regs), 500):
            await register_contents(runtime.deps, actor, regs[i : i + 500])

        # 1. The apply rate. The worker's own batch: what XREADGROUP's COUNT is.
        worker = main.build_workers(runtime, "bench-loader")["trending"]
        batch = inspect.signature(TrendingWorker).parameters["batch"].default
        out["worker_batch"] = batch
        await apply_rate(worker, "hour", hour, batch, out)
        await apply_rate(worker, "live", live, batch, out)
        if not args.reads_only:
            await apply_rate(worker, "small_reads", small, SMALL_READ, out)
        out["apply_events_per_s"] = out["live"]["applied_per_s"]

        # 2. The reads, 20 clients.
        rng = random.Random(11)

        def signals_request() -> Request:
            start = rng.randrange(args.contents)
            ids = [cid((start + j) % args.contents) for j in range(100)]
            return post(SIGNALS, {"ids": ids}, reader)

        kinds: dict[str, Callable[[], Request]] = {
            "trending_hour": lambda: post(TRENDING, {"w": "HOUR", "n": 20}, reader),
            "trending_hour_signals": lambda: post(
                TRENDING_WITH_SIGNALS, {"w": "HOUR", "n": 20}, reader
            ),
            "signals_100": signals_request,
            "signals_100_uncached": signals_request,
        }
        cache = runtime.deps.ranking_signals
        for name, make in kinds.items():
            # The same reads with RANKING_SIGNALS_CACHE_MS=0: every content read from
            # Redis and projected, as when no two readers ask within the time to live.
            runtime.deps.ranking_signals = None if name.endswith("uncached") else cache
            sample = b""
            for _ in range(50):  # warm: parse and validation caches, compiled plans
                sample = await call(app, make())
            if b'"errors"' in sample:
                raise SystemExit(f"{name} failed: {sample[:400]!r}")
            if name.startswith("trending") and sample.count(b'"rank"') != 20:
                raise SystemExit(f"{name}: not 20 items: {sample[:400]!r}")
            out[name] = await clients(app, make, args.clients, args.requests)
            out[name]["answer_bytes"] = len(sample)
            print(
                f"  {name}: p50 {out[name]['p50_ms']} / p99 {out[name]['p99_ms']} ms, "
                f"{out[name]['per_s']} req/s, CPU {out[name]['cpu_ms_per_request']} ms/request",
                flush=True,
            )

        if args.reads_only:
            return out

        # 3. Entry latency under the background load.
        background = Background(app, users, args.contents, args.load_likes, args.load_views)
        lag = LoopLag()
        lag.start()
        cpu, wall = time.process_time(), time.perf_counter()
        background.start()
        await asyncio.sleep(args.warmup)
        spikes: list[dict[str, Any]] = []
        for k in range(args.spikes):
            await spike(app, k, service, spike_users[k], args.spike_rate, spikes)
            s = spikes[-1]
            print(
                f"  spike {k}: entered {s['entry_ms']} ms after the first like's ack, "
                f"{s['likes_acked_at_entry']} likes acked (needed {s['likes_needed']} "
                f"to beat the 20th's heat {s['bar_score']}; listed "
                f"{s['after_eligible_ms']} ms after that one's ack)",
                flush=True,
            )
            await asyncio.sleep(args.gap)
        await background.stop()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await lag.stop()
        entries = [s["entry_ms"] for s in spikes if s["entry_ms"] is not None]
        out["entry"] = {
            "spikes": len(spikes),
            "entered": len(entries),
            "timeouts": len(spikes) - len(entries),
            "spike_rate": args.spike_rate,
            "max_likes": args.spike_likes,
            "p50_ms": round(statistics.median(entries), 1) if entries else None,
            "p99_ms": round(pct(entries, 99), 1) if entries else None,
            "max_ms": round(max(entries), 1) if entries else None,
            "likes_at_entry_p50": statistics.median(
                s["likes_acked_at_entry"] for s in spikes if s["entry_ms"] is not None
            )
            if entries
            else None,
            "after_eligible_p50_ms": pct_or_none(
                [s["after_eligible_ms"] for s in spikes if s["after_eligible_ms"] is not None], 50
            ),
            "after_eligible_p99_ms": pct_or_none(
                [s["after_eligible_ms"] for s in spikes if s["after_eligible_ms"] is not None], 99
            ),
            "spikes_detail": spikes,
        }
        out["background"] = {
            **background.rates(),
            "target_likes_per_s": args.load_likes,
            "target_view_events_per_s": args.load_views,
            "errors": background.errors,
            "shed": background.shed,
            "process_cpu_pct": round(100 * cpu / wall, 1),
            "loop_lag_max_ms": round(lag.max_ms, 1),
            "seconds": round(wall, 1),
        }
        print(f"  background: {out['background']}", flush=True)
    return out


def report(result: dict[str, Any]) -> list[dict[str, str]]:
    live, small = result["live"], result.get("small_reads")
    rate = result["apply_events_per_s"]
    small_text = (
        ""
        if small is None
        else f"reads of {small['entries_per_partition_per_call']}: {small['applied_per_s']:,}/s; "
    )
    rows = [
        {
            "metric": "trending worker apply rate, one process (100,000 events within 5 min, "
            f"reads of {result['worker_batch']} entries of 50 events per partition)",
            "value": f"{rate:,} events/s applied (views, reactions, raw views; "
            f"{live['read_per_s']:,}/s counting the view ends it skips); "
            f"{small_text}70-min seed: {result['hour']['applied_per_s']:,}/s",
            "target": f">= {TARGETS['apply_events_per_s']:,}",
            "verdict": "PASS" if rate >= TARGETS["apply_events_per_s"] else "MISS",
        }
    ]
    names = {
        "trending_hour": ("trending(window: HOUR, first: 20)", TARGETS["trending_hour"]),
        "trending_hour_signals": ("trending(HOUR, 20) with signals (information)", None),
        "signals_100": ("rankingSignals, 100 ids, every field", TARGETS["signals_100"]),
        "signals_100_uncached": (
            "rankingSignals, 100 ids, every field, signals cache off (information)",
            None,
        ),
    }
    for key, (what, target) in names.items():
        r = result.get(key)
        if r is None:
            continue  # a result file from before this figure existed
        rows.append(
            {
                "metric": f"{what}, {result['clients']} clients",
                "value": f"p50 {r['p50_ms']} / p99 {r['p99_ms']} ms ({r['per_s']} req/s, "
                f"CPU {r['cpu_ms_per_request']} ms/request)",
                "target": "" if target is None else f"p99 <= {target:g} ms",
                "verdict": "" if target is None else ("PASS" if r["p99_ms"] <= target else "MISS"),
            }
        )
    if "entry" not in result:
        return rows  # --reads-only
    e, b = result["entry"], result["background"]
    rows.append(
        {
            "metric": f"entry latency: first like's ack -> trending(FIVE_MINUTES, 20) lists it "
            f"(spikes of {e['spike_rate']:g} likes/s; background {b['likes_per_s']} likes/s + "
            f"{b['view_events_per_s']} view events/s)",
            "value": f"p50 {e['p50_ms']} / p99 {e['p99_ms']} / max {e['max_ms']} ms "
            f"({e['entered']} of {e['spikes']} spikes entered, p50 {e['likes_at_entry_p50']} "
            f"likes acked by then; from the ack of the like that made it eligible: p50 "
            f"{e['after_eligible_p50_ms']} / p99 {e['after_eligible_p99_ms']} ms)",
            "target": "(reported; every spike enters)",
            "verdict": "PASS" if e["timeouts"] == 0 and e["entered"] else "MISS",
        }
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.trending", description=__doc__)
    p.add_argument("--events", type=int, default=100_000, help="within 5 minutes (measured)")
    p.add_argument("--hour-events", type=int, default=50_000, help="seed over 70 minutes")
    p.add_argument("--contents", type=int, default=200)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=100, help="per client and query")
    p.add_argument("--spikes", type=int, default=30)
    p.add_argument("--spike-likes", type=int, default=300, help="most likes per spike (new users)")
    p.add_argument("--spike-rate", type=float, default=100.0, help="a spike's likes/s")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between spikes")
    p.add_argument("--warmup", type=float, default=10.0, help="background before 1st spike")
    p.add_argument("--load-likes", type=float, default=50.0, help="background likes/s")
    p.add_argument("--load-views", type=float, default=500.0, help="background views/s")
    p.add_argument("--users", type=int, default=5000, help="background users")
    p.add_argument(
        "--reads-only",
        action="store_true",
        help="seed and measure the reads only (no small-reads apply, no entry latency)",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    redis = Redis(Path(tempfile.mkdtemp(prefix="likeview-trending-")))
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
        print(
            f"  {row['metric']}: {row['value']}"
            + (f"  (target {row['target']}: {row['verdict']})" if row["target"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
