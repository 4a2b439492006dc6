"""Scenario 10, creator notifications and webhooks (issue 14): a hot content's
notifications per simulated hour against the limits, webhook delivery throughput and
latency, and the notifier's apply rate.

    .venv/bin/python -m bench.notifications [--hours 3] [--likes-per-minute 60]
        [--step-s 10] [--webhooks 2000] [--paced 5,50] [--paced-s 10]
        [--events 100000] [--contents 200] [--json PATH]

In one process, as the embedded mode runs (mongomock in the process, a private
redis-server), three parts, each in an app of its own (a fresh in-process MongoDB;
Redis flushed between them). The app's embedded background workers are switched
off (``main.embedded_workers`` replaced by a no-op for the bench): the bench runs
the workers itself.

1. **Hot content, simulated hours.** Scenario 2's shape: every like goes to one
   content, each from a new user (a user likes once). A creator's VIDEO is
   registered, then ``--likes-per-minute`` simulated likes a minute for ``--hours``
   simulated hours, each a real ``like`` mutation through the ASGI app (no
   sockets; the real like path: idempotency-free ``set_reaction`` behind the
   GraphQL resolver, the rate limiter, the outbox, the event log). The service's
   clock (``deps.clock``, which stamps the events and which every worker built by
   ``main.build_workers`` reads) is a clock the bench moves: likes are spread
   evenly over each ``--step-s`` simulated seconds, then the aggregator,
   integrity, trending and notifier workers' ``run_once()`` run, in that order;
   every simulated minute the notifier's ``maintain()`` runs too (in production
   ``tick()`` calls it once a real minute, which a simulated hour would otherwise
   see about once). After the load, simulated minutes pass with only the workers
   running until the last digest window has been sent (at most ``--drain-hours``).
   Reported: the creator's notifications per simulated hour by kind, the most in
   any sliding hour against NOTIFY_PER_CONTENT_PER_HOUR and NOTIFY_PER_HOUR, and
   every digest's ``count`` against the truth computed from the likes sent: the
   likes acknowledged with an event time in [its window start, the next window's
   start).
2. **Webhooks.** A receiver on 127.0.0.1 (Starlette under uvicorn in a
   subprocess of this bench: verifies every request with ``standardwebhooks``,
   answers 204, records when it accepted each ``webhook-id``). The creator
   registers it through ``registerWebhookEndpoint`` (WEBHOOK_ALLOW_INSECURE_LOCAL=
   true). Notifications are stored the way the notifier stores them
   (``MongoNotifications.insert`` of ``domain.notifications.make``: the documents
   of the contract in docs/NOTIFICATIONS.md, ``webhook: "pending"``), not made by
   the notifier. The WebhookSender of ``main.build_workers`` runs as production
   runs it: its ``run(stop)`` loop, on the wall clock. (a) Throughput: a backlog
   of ``--webhooks`` notifications stored at once, then the sender started:
   notifications delivered per second from its start to the last acceptance.
   (b) Latency: with the sender running, notifications stored at each rate of
   ``--paced`` for ``--paced-s`` seconds: p50/p99 from ``created_at`` to the
   receiver's acceptance.
3. **The notifier's apply rate** (information). The notifier's lag during
   scenario 4 needs the service under load in its own process and cannot be
   measured here: the scenario-4 probe is separate work. Instead, generated
   events (``bench.analytics.generate``: view sessions and reactions over
   ``--contents`` contents within the last 5 minutes) go through the notifier's
   own ``process()`` in reads of 200 entries per partition (its ``batch``), as
   ``bench.trending.apply_rate`` does for the trending worker. The aggregator and
   the trending worker apply the same entries first (untimed), so the counters and
   ranking signals the notifier reads exist, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.analytics import deliveries, generate, pct
from bench.inprocess import call, post
from bench.procs import ROOT, Redis, free_port
from bench.trending import DURATIONS, apply_rate, cid, kind_of, relabel

HOUR_MS = 3_600_000
CREATOR = "hot-creator"
HOT = "hot-0"
WEBHOOK_CREATOR = "wh-creator"
LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed } }"
REGISTER = (
    "mutation($id: ID!, $c: ID!) { registerContent(input: "
    "{contentId: $id, creatorId: $c, kind: VIDEO, durationMs: 600000}) { contentId } }"
)
REGISTER_HOOK = "mutation($u: String!) { registerWebhookEndpoint(url: $u) { id secret url } }"
RECEIVER_SECRET_ENV = "LIKEVIEW_BENCH_WEBHOOK_SECRET"
WORKER_ORDER = ("aggregator", "integrity", "trending", "notifier")


# --- pure helpers (tests/unit/test_bench_notifications.py) ------------------------


def seq_ms(seq: str) -> int:
    """A notification's creation time, from its ``seq`` (``<14-digit ms>-<id>``)."""
    return int(seq.split("-", 1)[0])


def per_hour(times_ms: Sequence[int], kinds: Sequence[str], start_ms: int) -> dict[int, Counter]:
    """Notifications by whole simulated hour since ``start_ms`` (0 = the first hour),
    counted by kind."""
    out: dict[int, Counter] = {}
    for at, kind in zip(times_ms, kinds, strict=True):
        out.setdefault((at - start_ms) // HOUR_MS, Counter())[kind] += 1
    return out


def max_sliding_hour(times_ms: Sequence[int]) -> int:
    """The most notifications in any closed interval of one hour, [t - 1 h, t]: what
    the limit bounds (a notification is refused while the hour before it, its start
    included, holds the limit already)."""
    ordered = sorted(times_ms)
    best, lo = 0, 0
    for hi, at in enumerate(ordered):
        while ordered[lo] < at - HOUR_MS:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def digest_truth(starts: Sequence[int], likes_ms: Sequence[int]) -> list[int]:
    """For digest windows starting at ``starts`` (ascending), how many of the likes
    (one per user, event times ``likes_ms``) fall in each: [start, next start), the
    last one open-ended. A window takes every reaction from its first until it is
    closed, and the next reaction opens the next window, so with no reaction at the
    closing instant that is exactly its distinct reactors."""
    ordered = sorted(likes_ms)
    out = []
    for i, start in enumerate(starts):
        lo = bisect.bisect_left(ordered, start)
        hi = bisect.bisect_left(ordered, starts[i + 1]) if i + 1 < len(starts) else len(ordered)
        out.append(hi - lo)
    return out


# --- shared ---------------------------------------------------------------------


class SimClock:
    """The service's clock, moved by the bench (as tests/integration's FakeClock)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def set_ms(self, ms: int) -> None:
        self.at = datetime.fromtimestamp(ms / 1000, UTC)

    @property
    def ms(self) -> int:
        return int(self.at.timestamp() * 1000)


@contextlib.contextmanager
def no_embedded_workers() -> Iterator[None]:
    """The app's lifespan without its background workers: the bench runs them."""
    import main

    @contextlib.asynccontextmanager
    async def none(runtime: Any) -> AsyncIterator[None]:
        yield

    original = main.embedded_workers
    main.embedded_workers = none
    try:
        yield
    finally:
        main.embedded_workers = original


def checked(answer: bytes, what: str) -> dict[str, Any]:
    body = orjson.loads(answer)
    if body.get("errors"):
        raise SystemExit(f"{what} failed: {answer[:400]!r}")
    return dict(body["data"])


def ms_stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p99_ms": round(pct(values, 99), 1),
        "max_ms": round(max(values), 1),
    }


# --- 1. the hot content -------------------------------------------------------------


async def hot_content(args: argparse.Namespace) -> dict[str, Any]:
    import main
    from resolvers.auth import issue_token

    settings = main.Settings()
    cfg = settings.notify_config()
    secret = settings.jwt_secret or main.DEV_JWT_SECRET
    service = issue_token(secret, "bench-service", ["service"])
    likes_per_step = max(1, round(args.likes_per_minute * args.step_s / 60))
    steps = int(args.hours * 3600 / args.step_s)
    total = likes_per_step * steps
    t0 = time.perf_counter()
    tokens = [issue_token(secret, f"hot-u{n:06d}") for n in range(total)]
    print(f"  issued {total:,} user tokens in {time.perf_counter() - t0:.1f} s", flush=True)
    app = main.create_app(settings)
    out: dict[str, Any] = {
        "hours": args.hours,
        "likes_per_minute": args.likes_per_minute,
        "step_s": args.step_s,
        "likes_per_step": likes_per_step,
        "limits": {
            "per_content_per_hour": cfg.per_content_per_hour,
            "per_hour": cfg.per_hour,
            "digest_s": cfg.digest_s,
            "settle_s": cfg.settle_s,
        },
    }
    with no_embedded_workers():
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            start = datetime.now(UTC).replace(microsecond=0)
            clock = SimClock(start)
            runtime.deps.clock = clock  # what the use cases and every worker read
            workers = main.build_workers(runtime, "bench-notify")
            checked(await call(app, post(REGISTER, {"id": HOT, "c": CREATOR}, service)), "register")
            start_ms = clock.ms
            sent_ms: list[int] = []
            refused = 0
            wall = time.perf_counter()
            cpu = time.process_time()
            step_ms = int(args.step_s * 1000)
            spacing = step_ms // likes_per_step
            n = 0

            async def run_workers() -> None:
                for name in WORKER_ORDER:
                    await workers[name].run_once()

            for step in range(steps):
                base = start_ms + step * step_ms
                for i in range(likes_per_step):
                    clock.set_ms(base + i * spacing)
                    answer = await call(app, post(LIKE, {"id": HOT}, tokens[n]))
                    n += 1
                    if b'"changed":true' in answer:
                        sent_ms.append(base + i * spacing)
                    else:
                        refused += 1
                clock.set_ms(base + step_ms - 1)
                await run_workers()
                if (step + 1) * step_ms % 60_000 < step_ms:
                    await workers["notifier"].maintain()
                if (step + 1) % max(1, steps // 6) == 0:
                    print(
                        f"  simulated {(step + 1) * args.step_s / 3600:.2f} h: "
                        f"{len(sent_ms):,} likes ({time.perf_counter() - wall:.0f} s)",
                        flush=True,
                    )
            load_end_ms = start_ms + steps * step_ms
            load_wall = time.perf_counter() - wall
            # The drain: minutes pass, the workers run, until the last window is sent.
            state = workers["notifier"]._state
            drained_ms = load_end_ms
            minute = 0
            while minute < args.drain_hours * 60:
                minute += 1
                clock.set_ms(load_end_ms + minute * 60_000)
                await run_workers()
                await workers["notifier"].maintain()
                due = await runtime.redis.zrange(state.keys.notify_due(), 0, -1)
                waiting = [m for m in due if str(m).startswith(f"d:{HOT}:")]
                if await state.open_window(HOT) is None and not waiting:
                    drained_ms = clock.ms
                    break
            else:
                drained_ms = -1
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            docs = [
                d
                async for d in runtime.db["notifications"]
                .find({"creator_id": CREATOR})
                .sort("seq", 1)
            ]
            folds = [d async for d in runtime.db["notification_folds"].find({})]
            reading = (await runtime.deps.counters.read([HOT])).get(HOT)
            reactors = await runtime.db["reactions"].count_documents(
                {"content_id": HOT, "reaction": {"$ne": None}}
            )
    times = [seq_ms(d["seq"]) for d in docs]
    kinds = [str(d["kind"]) for d in docs]
    hours = per_hour(times, kinds, start_ms)
    digests = [d for d in docs if d["kind"] == "REACTIONS_DIGEST"]
    windowed = [d for d in digests if d["payload"].get("window_start_ms") is not None]
    starts = [int(d["payload"]["window_start_ms"]) for d in windowed]
    truth = digest_truth(starts, sent_ms)
    counts = [int(d["payload"]["count"]) for d in windowed]
    diffs = [
        {"window_start_ms": s, "count": c, "truth": t}
        for s, c, t in zip(starts, counts, truth, strict=True)
        if c != t
    ]
    folded_carried = sum(int(d["payload"].get("folded_count", 0)) for d in digests)
    sliding = max_sliding_hour(times)
    out.update(
        {
            "likes_sent": n,
            "likes_acknowledged": len(sent_ms),
            "likes_refused": refused,
            "reactors_in_mongodb": reactors,
            "public_likes": None if reading is None else reading.counters.get("likes", 0),
            "excluded_likes": None if reading is None else reading.counters.get("x_likes", 0),
            "load_wall_s": round(load_wall, 1),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "drained_after_min": None
            if drained_ms < 0
            else round((drained_ms - load_end_ms) / 60_000),
            "notifications": len(docs),
            "per_hour": {
                str(h): dict(sorted(c.items())) | {"total": sum(c.values())}
                for h, c in sorted(hours.items())
            },
            "load_hours": int(args.hours),
            "max_sliding_hour": sliding,
            "within_limits": sliding <= min(cfg.per_content_per_hour, cfg.per_hour),
            "digests": [
                {
                    "created_min": round((seq_ms(d["seq"]) - start_ms) / 60_000, 1),
                    "window_start_min": None
                    if d["payload"].get("window_start_ms") is None
                    else round((int(d["payload"]["window_start_ms"]) - start_ms) / 60_000, 1),
                    "count": int(d["payload"]["count"]),
                    "folded_count": int(d["payload"].get("folded_count", 0)),
                    "text": d["text"],
                }
                for d in digests
            ],
            "digest_counts_sum": sum(counts),
            "digest_truth_sum": sum(truth),
            "digest_diffs": diffs,
            "digests_exact": not diffs and sum(counts) == len(sent_ms),
            "other": [
                {
                    "kind": d["kind"],
                    "created_min": round((seq_ms(d["seq"]) - start_ms) / 60_000, 2),
                    "text": d["text"],
                }
                for d in docs
                if d["kind"] != "REACTIONS_DIGEST"
            ],
            "folds": len(folds),
            "folds_undigested": sum(1 for f in folds if f.get("digest_id") is None),
            "folds_by_kind": dict(Counter(str(f["kind"]) for f in folds)),
            "folded_carried_by_digests": folded_carried,
        }
    )
    return out


# --- 2. webhooks ----------------------------------------------------------------------


def receiver_app(secret: str) -> Any:
    """The local receiver: verifies, answers 204, records the first acceptance of
    each webhook-id (wall clock, seconds) and counts the rest."""
    from standardwebhooks import Webhook, WebhookVerificationError
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    hook = Webhook(secret)
    accepted: dict[str, float] = {}
    tally = {"requests": 0, "bad_signature": 0, "repeats": 0}

    async def receive(request: Request) -> Response:
        body = await request.body()
        tally["requests"] += 1
        try:
            hook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            tally["bad_signature"] += 1
            return Response(status_code=400)
        at = time.time()
        wid = request.headers["webhook-id"]
        if wid in accepted:
            tally["repeats"] += 1
        else:
            accepted[wid] = at
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        if request.query_params.get("times"):
            return JSONResponse({**tally, "accepted": len(accepted), "times": accepted})
        return JSONResponse({**tally, "accepted": len(accepted)})

    return Starlette(routes=[Route("/hook", receive, methods=["POST"]), Route("/stats", stats)])


def run_receiver(port: int) -> None:
    import uvicorn

    secret = os.environ[RECEIVER_SECRET_ENV]
    kw: dict[str, Any] = {}
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        kw["loop"] = "uvloop"
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        kw["http"] = "httptools"
    uvicorn.run(
        receiver_app(secret),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        **kw,
    )


@dataclass
class Receiver:
    proc: subprocess.Popen[bytes]
    base: str

    @classmethod
    def start(cls, port: int, secret: str) -> Receiver:
        env = {**os.environ, RECEIVER_SECRET_ENV: secret}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.notifications", "--receiver", str(port)],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit("the webhook receiver exited at start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/stats", timeout=1).status_code == 200:
                    return cls(proc, base)
            time.sleep(0.1)
        proc.terminate()
        raise SystemExit("the webhook receiver did not start")

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()


async def wait_accepted(client: httpx.AsyncClient, base: str, n: int, timeout_s: float) -> float:
    """Polls the receiver until it has accepted ``n`` ids; the wall time it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        got = (await client.get(base + "/stats")).json()["accepted"]
        if got >= n:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - t0


async def webhooks(args: argparse.Namespace) -> dict[str, Any]:
    import main
    from domain import notifications as nt
    from resolvers.auth import issue_token
    from storage.mongo_notifications import MongoNotifications

    settings = main.Settings()
    secret = settings.jwt_secret or main.DEV_JWT_SECRET
    creator = issue_token(secret, WEBHOOK_CREATOR)
    port = free_port()
    app = main.create_app(settings)
    out: dict[str, Any] = {"backlog": args.webhooks, "paced": args.paced, "paced_s": args.paced_s}
    seq = 0

    async def store_one(store: MongoNotifications) -> str:
        nonlocal seq
        seq += 1
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        n = nt.make(
            f"digest:wh-{seq % 50}:{seq}",
            WEBHOOK_CREATOR,
            f"wh-{seq % 50}",
            nt.NotificationKind.REACTIONS_DIGEST,
            nt.digest_payload(
                nt.DigestWindow(f"wh-{seq % 50}", int(now.timestamp() * 1000), 44, ["a", "b"]),
                [],
                0,
            ),
            nt.digest_text(f"your video wh-{seq % 50}", ["a", "b"], 44, 0),
            now,
            settings.notification_ttl_s,
        )
        if not await store.insert(n):
            raise SystemExit("duplicate notification id")
        return n.id

    with no_embedded_workers():
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            store = MongoNotifications(runtime.db)
            hook = checked(
                await call(
                    app, post(REGISTER_HOOK, {"u": f"http://127.0.0.1:{port}/hook"}, creator)
                ),
                "registerWebhookEndpoint",
            )["registerWebhookEndpoint"]
            receiver = Receiver.start(port, hook["secret"])
            try:
                sender = main.build_workers(runtime, "bench-webhooks")["webhooks"]
                out["sender"] = {
                    "batch": sender._batch,
                    "concurrency": sender._concurrency,
                    "idle_s": sender._idle,
                }
                created: dict[str, float] = {}
                async with httpx.AsyncClient() as client:
                    # (a) the backlog
                    t0 = time.perf_counter()
                    for _ in range(args.webhooks):
                        nid = await store_one(store)
                        created[nid] = time.time()
                    out["backlog_store_s"] = round(time.perf_counter() - t0, 2)
                    stop = asyncio.Event()
                    cpu = time.process_time()
                    started = time.time()
                    task = asyncio.create_task(sender.run(stop))
                    took = await wait_accepted(client, receiver.base, args.webhooks, 600)
                    cpu = time.process_time() - cpu
                    times = (await client.get(receiver.base + "/stats?times=1")).json()
                    backlog_ids = [i for i in created if i in times["times"]]
                    backlog_times = [times["times"][i] for i in backlog_ids]
                    last = max(backlog_times) if backlog_times else started
                    out["backlog_result"] = {
                        "accepted": len(backlog_times),
                        "seconds": round(last - started, 2),
                        "per_s": round(len(backlog_times) / max(last - started, 1e-9)),
                        "wait_s": round(took, 2),
                        "process_cpu_pct": round(100 * cpu / max(took, 1e-9), 1),
                        # Queue wait dominates: the backlog was stored before the start.
                        "latency": ms_stats(
                            [1000 * (times["times"][i] - created[i]) for i in backlog_ids]
                        ),
                    }
                    print(f"  backlog: {out['backlog_result']}", flush=True)
                    # (b) paced, the sender running
                    out["paced_result"] = []
                    for rate in args.paced:
                        ids: list[str] = []
                        t0 = time.perf_counter()
                        due = t0
                        count = int(rate * args.paced_s)
                        for _ in range(count):
                            ids.append(await store_one(store))
                            due += 1 / rate
                            await asyncio.sleep(max(0.0, due - time.perf_counter()))
                        expected = len(created) + len(ids)
                        await wait_accepted(client, receiver.base, expected, 120)
                        times = (await client.get(receiver.base + "/stats?times=1")).json()
                        docs = {
                            d["_id"]: d["created_at"]
                            async for d in runtime.db["notifications"].find(
                                {"_id": {"$in": ids}}, {"created_at": 1}
                            )
                        }
                        lat = [
                            1000 * (times["times"][i] - _epoch(docs[i]))
                            for i in ids
                            if i in times["times"]
                        ]
                        for i in ids:
                            created[i] = _epoch(docs[i])
                        row = {"rate": rate, "sent": count, **ms_stats(lat)}
                        out["paced_result"].append(row)
                        print(f"  paced {rate}/s: {row}", flush=True)
                    stop.set()
                    await task
                    final = (await client.get(receiver.base + "/stats")).json()
                statuses = Counter(
                    [
                        (d["status"], int(d.get("attempt_count", 0)))
                        async for d in runtime.db["webhook_deliveries"].find(
                            {}, {"status": 1, "attempt_count": 1}
                        )
                    ]
                )
                out["receiver"] = final
                out["deliveries"] = {f"{s}/{a} attempts": c for (s, a), c in statuses.items()}
            finally:
                receiver.stop()
    return out


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


# --- 3. the notifier's apply rate ----------------------------------------------------


async def notifier_rate(args: argparse.Namespace) -> dict[str, Any]:
    import main
    from domain.catalog import Registration, register_contents
    from domain.contents import ContentKind
    from domain.identity import Actor
    from workers.notifier import NotifierWorker

    settings = main.Settings()
    keys = main.Keys(settings.key_prefix, settings.stream_partitions)
    now_ms = int(time.time() * 1000)
    gen = argparse.Namespace(contents=args.contents)
    entries = relabel(
        deliveries(generate(gen, now_ms, 5 * 60_000, args.events, tag="N"), keys.partition), 4
    )
    app = main.create_app(settings)
    out: dict[str, Any] = {"events": args.events, "contents": args.contents}
    with no_embedded_workers():
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            regs = [
                Registration(
                    cid(i), f"creator-{i % 10}", ContentKind(kind_of(i)), DURATIONS[kind_of(i)]
                )
                for i in range(args.contents)
            ]
            actor = Actor("bench", frozenset({"service"}))
            for i in range(0, len(regs), 500):
                await register_contents(runtime.deps, actor, regs[i : i + 500])
            workers = main.build_workers(runtime, "bench-loader")
            batch = inspect.signature(NotifierWorker).parameters["batch"].default
            out["worker_batch"] = batch
            from bench.trending import reads

            t0 = time.perf_counter()
            for read in reads(entries, batch):
                await workers["aggregator"].process(read)
                await workers["trending"].process(read)
            out["prepare_s"] = round(time.perf_counter() - t0, 1)
            await apply_rate(workers["notifier"], "live", entries, batch, out)
            out["notifications"] = await runtime.db["notifications"].count_documents({})
            out["folds"] = await runtime.db["notification_folds"].count_documents({})
    return out


# --- the report ---------------------------------------------------------------------


def report(result: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    hot = result.get("hot")
    if hot:
        lim = hot["limits"]
        load = [hot["per_hour"].get(str(h), {"total": 0}) for h in range(hot["load_hours"])]
        rows.append(
            {
                "metric": f"hot content: notifications to its creator per simulated hour "
                f"({hot['likes_per_minute']:g} likes/min from new users, "
                f"{hot['likes_acknowledged']:,} likes in {hot['hours']:g} h)",
                "value": "; ".join(
                    f"h{h + 1}: {c['total']} ("
                    + ", ".join(f"{k} {v}" for k, v in c.items() if k != "total")
                    + ")"
                    for h, c in enumerate(load)
                )
                + f"; most in any sliding hour: {hot['max_sliding_hour']}",
                "target": f"<= {lim['per_content_per_hour']} per content, "
                f"<= {lim['per_hour']} per creator, per hour",
                "verdict": "PASS" if hot["within_limits"] else "MISS",
            }
        )
        rows.append(
            {
                "metric": "hot content: every digest's count = distinct reactors in its window",
                "value": f"{len(hot['digests'])} digests, counts sum "
                f"{hot['digest_counts_sum']:,} = truth {hot['digest_truth_sum']:,} "
                f"(likes acknowledged {hot['likes_acknowledged']:,}); "
                f"{len(hot['digest_diffs'])} differ; {hot['folds']} held back, "
                f"{hot['folded_carried_by_digests']} carried by digests",
                "target": "all equal",
                "verdict": "PASS" if hot["digests_exact"] else "MISS",
            }
        )
    wh = result.get("webhooks")
    if wh:
        b = wh["backlog_result"]
        rows.append(
            {
                "metric": f"webhooks: delivery throughput, backlog of {wh['backlog']:,} "
                "notifications, one sender (run loop), local receiver",
                "value": f"{b['per_s']:,} notifications/s ({b['accepted']:,} in {b['seconds']} s)",
                "target": "(reported)",
                "verdict": "",
            }
        )
        for p in wh["paced_result"]:
            rows.append(
                {
                    "metric": f"webhooks: latency created_at -> receiver accepted, "
                    f"{p['rate']:g} notifications/s for {wh['paced_s']:g} s",
                    "value": f"p50 {p['p50_ms']} / p99 {p['p99_ms']} / max {p['max_ms']} ms "
                    f"({p['n']} of {p['sent']})",
                    "target": "(reported)",
                    "verdict": "",
                }
            )
    nr = result.get("notifier")
    if nr:
        live = nr["live"]
        rows.append(
            {
                "metric": f"notifier apply rate, one process ({nr['events']:,} events within "
                f"5 min, reads of {nr['worker_batch']} entries per partition; information)",
                "value": f"{live['applied_per_s']:,} events/s applied "
                f"({live['read_per_s']:,}/s read, raw view events included)",
                "target": "(information; the scenario-4 lag is separate)",
                "verdict": "",
            }
        )
    return rows


async def measure(args: argparse.Namespace, redis: Redis) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "hot" in args.parts:
        print("## hot content, simulated hours", flush=True)
        result["hot"] = await hot_content(args)
        redis.flushall()
    if "webhooks" in args.parts:
        print("## webhooks", flush=True)
        result["webhooks"] = await webhooks(args)
        redis.flushall()
    if "notifier" in args.parts:
        print("## notifier apply rate", flush=True)
        result["notifier"] = await notifier_rate(args)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.notifications", description=__doc__)
    p.add_argument("--hours", type=float, default=3.0, help="simulated hours of load")
    p.add_argument("--likes-per-minute", type=float, default=60.0, help="simulated")
    p.add_argument("--step-s", type=float, default=10.0, help="simulated s between worker runs")
    p.add_argument("--drain-hours", type=float, default=3.0)
    p.add_argument("--webhooks", type=int, default=2000, help="backlog of notifications")
    p.add_argument(
        "--paced",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[5.0, 50.0],
        help="notifications/s, comma-separated",
    )
    p.add_argument("--paced-s", type=float, default=10.0)
    p.add_argument("--events", type=int, default=100_000, help="notifier apply rate")
    p.add_argument("--contents", type=int, default=200)
    p.add_argument(
        "--parts",
        type=lambda s: s.split(","),
        default=["hot", "webhooks", "notifier"],
        help="comma-separated: hot, webhooks, notifier",
    )
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--receiver", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.receiver is not None:
        run_receiver(args.receiver)
        return
    redis = Redis(Path(tempfile.mkdtemp(prefix="likeview-notifications-")))
    os.environ["REDIS_URL"] = redis.url
    os.environ["WEBHOOK_ALLOW_INSECURE_LOCAL"] = "true"
    os.environ.setdefault("ACCESS_LOG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        import uvloop

        result = uvloop.run(measure(args, redis))
    finally:
        redis.stop()
    result["rows"] = report(result)
    for row in result["rows"]:
        print(
            f"  {row['metric']}: {row['value']}"
            + (f"  (target {row['target']}: {row['verdict']})" if row["verdict"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
