"""Soak: the embedded mode under a steady mixed load, watched for stalls and memory.

    bash bench/run.sh --soak [--soak-seconds 600] [--rate 70] [--embedded-redis]
    python -m bench.soak --soak-seconds 180 --env RECONCILE_INTERVAL_S=30

The server runs as `main:create_app` without MONGODB_URL (mongomock in process, the
workers inside the API process); Redis is the soak's private redis-server, or
fakeredis in process with ``--embedded-redis``. This process drives an open-loop
load at a fixed rate (likes, recordViews batches, feed reads; a request's latency
is counted from when it was due, so a stall shows in full), polls /healthz every
100 ms (the longest answer is the longest stall seen from outside, which also
works against a server without the lag metric: ``--server-root`` runs another
tree), and every 5 s samples the server's RSS and scrapes /metrics for
``likeview_event_loop_lag_max_seconds``. Everything stays on loopback and stops
after the given duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import RESULTS, ROOT, Redis, Server

SECRET = "likeview-soak-secret-0123456789abcdef0123456789abcdef"
N_USERS = 2_000
SAMPLE_S = 5.0
HEALTH_EVERY_S = 0.1
LAG_METRIC = "likeview_event_loop_lag_max_seconds"

LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed summary { likes } } }"
UNLIKE = "mutation($id: ID!) { unlike(input: {contentId: $id}) { changed summary { likes } } }"
VIEWS = (
    "mutation($in: [ViewInput!]!) { recordViews(inputs: $in) { sessionId decision { counted } } }"
)
FEED = (
    "query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) "
    "{ contentId likes views viewerReaction } }"
)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    shed: int = 0  # not sent: too many requests already in flight
    sample_error: str = ""

    def error(self, kind: str, text: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.sample_error = self.sample_error or text[:300]


class Load:
    def __init__(self, base: str, tokens: list[str], args: argparse.Namespace) -> None:
        self.base = base
        self.tokens = tokens
        self.args = args
        self.tally = Tally()
        self.liked: list[tuple[str, str]] = []
        self.run_tag = f"{os.getpid()}-{time.time_ns() % 10**9}"
        self.n = 0
        kinds = [("like", args.likes), ("views", args.views), ("feed", args.feeds)]
        self.kinds = [k for k, w in kinds if w > 0]
        self.weights = [w for _, w in kinds if w > 0]

    def _cid(self) -> str:
        return f"s{random.randrange(self.args.contents):05d}"

    def body(self, kind: str) -> tuple[dict[str, Any], str]:
        self.n += 1
        token = random.choice(self.tokens)
        if kind == "like":
            if self.n % 3 == 0 and self.liked:
                token, cid = self.liked.pop(random.randrange(len(self.liked)))
                return {"query": UNLIKE, "variables": {"id": cid}}, token
            cid = self._cid()
            if len(self.liked) < 1000:
                self.liked.append((token, cid))
            return {"query": LIKE, "variables": {"id": cid}}, token
        if kind == "views":
            items = [
                {
                    "contentId": self._cid(),
                    "sessionId": f"s{self.run_tag}-{self.n}-{j}",
                    "eventId": f"e{self.run_tag}-{self.n}-{j}",
                    "deviceId": f"d{j}",
                    "watchedMs": 5_000 + random.randrange(40_000),
                    "positionMs": 5_000,
                    "visibleFraction": 0.9,
                    "final": True,
                }
                for j in range(self.args.view_batch)
            ]
            return {"query": VIEWS, "variables": {"in": items}}, token
        start = random.randrange(self.args.contents)
        ids = [f"s{(start + j) % self.args.contents:05d}" for j in range(50)]
        return {"query": FEED, "variables": {"ids": ids}}, token

    async def one(self, client: httpx.AsyncClient, kind: str, due: float) -> None:
        payload, token = self.body(kind)
        try:
            r = await client.post(
                self.base + "/graphql",
                json=payload,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.args.timeout,
            )
        except httpx.TimeoutException:
            self.tally.timeouts += 1
            return
        except httpx.HTTPError as exc:
            self.tally.error(kind, f"{type(exc).__name__}: {exc}")
            return
        self.tally.latencies.setdefault(kind, []).append(time.perf_counter() - due)
        if r.status_code != 200 or b'"errors"' in r.content:
            self.tally.error(kind, f"HTTP {r.status_code}: {r.text}")

    async def run(self, seconds: float) -> None:
        limits = httpx.Limits(max_connections=self.args.max_in_flight)
        async with httpx.AsyncClient(limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            t0 = time.perf_counter()
            i = 0
            while (due := t0 + i / self.args.rate) < t0 + seconds:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                i += 1
                if len(tasks) >= self.args.max_in_flight:
                    self.tally.shed += 1
                    continue
                kind = random.choices(self.kinds, self.weights)[0]
                task = asyncio.create_task(self.one(client, kind, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=self.args.timeout + 5)


async def health_probe(
    base: str, stop: asyncio.Event, out: list[tuple[float, float]], failed: list[str]
) -> None:
    """(elapsed, seconds) of each /healthz answer: from outside, a stall of the
    server's loop is the time one of these takes. Failures (refused, reset, timed
    out) are kept apart: their duration says nothing about a stall."""
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await client.get(base + "/healthz")
                out.append((started - t0, time.perf_counter() - started))
            except httpx.HTTPError as exc:
                failed.append(f"{started - t0:.1f}s {type(exc).__name__}")
            await asyncio.sleep(HEALTH_EVERY_S)


def scrape_lag(text: str) -> float | None:
    m = re.search(rf"^{LAG_METRIC} ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def lag_buckets(text: str) -> dict[float, float]:
    """Cumulative counts of the lag histogram by upper bound."""
    pattern = r'^likeview_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.eE+-]+)$'
    return {float(le): float(n) for le, n in re.findall(pattern, text, re.M)}


def longest_in_window(start: dict[float, float], end: dict[float, float]) -> float | None:
    """The upper bound of the bucket that holds the longest stall between two scrapes
    (the gauge is the longest since the process started, start-up included)."""
    if not end:
        return None
    total = end[float("inf")] - start.get(float("inf"), 0)
    for le in sorted(end):
        if end[le] - start.get(le, 0) >= total:
            return le
    return None


async def scrape(base: str) -> str:
    async with httpx.AsyncClient(timeout=120) as client:
        with contextlib.suppress(httpx.HTTPError):
            return (await client.get(base + "/metrics")).text
    return ""


async def sampler(base: str, pid: int, stop: asyncio.Event, samples: list[dict[str, Any]]) -> None:
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        while not stop.is_set():
            lag = None
            with contextlib.suppress(httpx.HTTPError):
                lag = scrape_lag((await client.get(base + "/metrics")).text)
            samples.append(
                {
                    "t": round(time.perf_counter() - t0, 1),
                    "rss_mb": round(rss_mb(pid), 1),
                    "lag": lag,
                }
            )
            print(
                f"  t={samples[-1]['t']:6.0f}s rss={samples[-1]['rss_mb']:7.1f} MB"
                f" loop-lag-max={lag}",
                flush=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def register(base: str, token: str, n: int) -> None:
    ids = [f"s{i:05d}" for i in range(n)]
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        for i in range(0, n, 25):
            fields = " ".join(
                f'a{j}: registerContent(input: {{contentId: "{cid}", creatorId: "creator", '
                f"kind: VIDEO, durationMs: 60000}}) {{ contentId }}"
                for j, cid in enumerate(ids[i : i + 25])
            )
            r = await c.post(base + "/graphql", json={"query": f"mutation {{ {fields} }}"})
            if r.json().get("errors"):
                raise SystemExit(f"registerContent failed: {r.text[:300]}")


async def soak(srv: Server, args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from resolvers.auth import issue_token

    tokens = [issue_token(SECRET, f"u{i:05d}", [], 24 * 3600) for i in range(N_USERS)]
    service = issue_token(SECRET, "soak-service", ["service"], 24 * 3600)
    await register(srv.base, service, args.contents)
    print(f"# registered {args.contents} contents; load for {args.soak_seconds} s", flush=True)
    stop = asyncio.Event()
    health: list[tuple[float, float]] = []
    health_failed: list[str] = []
    samples: list[dict[str, Any]] = []
    load = Load(srv.base, tokens, args)
    watchers = [
        asyncio.create_task(health_probe(srv.base, stop, health, health_failed)),
        asyncio.create_task(sampler(srv.base, srv.pid, stop, samples)),
    ]
    before = lag_buckets(await scrape(srv.base))
    await load.run(args.soak_seconds)
    stop.set()
    await asyncio.gather(*watchers)
    report = summarize(load.tally, health, samples, args)
    report["healthz_failed"] = {"n": len(health_failed), "first": health_failed[:5]}
    report["loop_lag_max_in_soak_le_s"] = longest_in_window(
        before, lag_buckets(await scrape(srv.base))
    )
    return report


def summarize(
    tally: Tally,
    health: list[tuple[float, float]],
    samples: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rss = [(s["t"], s["rss_mb"]) for s in samples]
    lags = [s["lag"] for s in samples if s["lag"] is not None]
    every = [x for v in tally.latencies.values() for x in v]
    worst = sorted(health, key=lambda h: -h[1])[:5]
    return {
        "requests": {
            kind: {
                "n": len(v),
                "p50_ms": round(1000 * (pct(v, 50) or 0), 1),
                "p99_ms": round(1000 * (pct(v, 99) or 0), 1),
                "max_ms": round(1000 * max(v), 1),
            }
            for kind, v in sorted(tally.latencies.items())
        },
        "all": {
            "n": len(every),
            "p99_ms": round(1000 * (pct(every, 99) or 0), 1),
            "max_ms": round(1000 * max(every, default=0), 1),
            "timeouts": tally.timeouts,
            "shed": tally.shed,
            "errors": tally.errors,
            "sample_error": tally.sample_error,
        },
        "rss_mb": {
            "start": rss[0][1] if rss else None,
            "end": rss[-1][1] if rss else None,
            "max": max((r[1] for r in rss), default=None),
            "slope_mb_per_min": None if (s := slope_per_min(rss)) is None else round(s, 2),
            "slope_last_half_mb_per_min": (
                None if (s := slope_per_min(rss[len(rss) // 2 :])) is None else round(s, 2)
            ),
        },
        "loop_lag_max_s_metric": max(lags) if lags else None,
        # A sample waits for its /metrics answer: a long gap is a server that did not answer.
        "sample_gap_max_s": max(
            (b["t"] - a["t"] for a, b in itertools.pairwise(samples)), default=None
        ),
        "healthz_max_s": round(max((h[1] for h in health), default=0), 3),
        "healthz_worst": [{"at_s": round(t, 1), "s": round(d, 3)} for t, d in worst],
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--soak-seconds", type=float, default=600.0)
    p.add_argument("--rate", type=float, default=70.0, help="requests per second, all kinds")
    p.add_argument("--likes", type=float, default=3, help="weight of like/unlike")
    p.add_argument("--views", type=float, default=2, help="weight of recordViews batches")
    p.add_argument("--feeds", type=float, default=2, help="weight of 50-card feed reads")
    p.add_argument("--view-batch", type=int, default=15, help="view events per recordViews")
    p.add_argument("--contents", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout, seconds")
    p.add_argument("--max-in-flight", type=int, default=400)
    p.add_argument("--embedded-redis", action="store_true", help="REDIS_URL unset: fakeredis")
    p.add_argument("--server-root", type=Path, default=ROOT, help="tree to run the server from")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="server setting")
    p.add_argument("--out", type=Path, default=None, help="JSON report (default bench/results)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="likeview-soak-"))
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "REDIS_URL")}
    env.update(
        {
            "JWT_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "false",
            "PYTHONPATH": str(args.server_root.resolve()),
        }
    )
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    redis = None if args.embedded_redis else Redis(tmp)
    if redis is not None:
        env["REDIS_URL"] = redis.url
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    srv = Server("main:create_app", env, tmp / "server.log", root=args.server_root.resolve())
    try:
        report = asyncio.run(soak(srv, args))
    finally:
        srv.stop()
        if redis is not None:
            redis.stop()
    report = {
        "when": started,
        "command": " ".join(sys.argv),
        "server_root": str(args.server_root.resolve()),
        "redis": "fakeredis in process" if redis is None else "private redis-server",
        "settings": args.env,
        "cores": os.cpu_count(),
        "server_log": str(tmp / "server.log"),
        **report,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"soak-{int(time.time())}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    shown = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(shown, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
