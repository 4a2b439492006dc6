"""The suite: start Redis and the service, load it from separate processes, report.

bash bench/run.sh [--quick] [--scenario N ...] [--profile] [--repeat N] [--no-rate-limits]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.freshness import FreshnessProbe
from bench.inprocess import address_of
from bench.log_lag import LogLagSampler
from bench.procs import RESULTS, ROOT, CpuMeter, Redis, Server, server, uvicorn_fast_flags

WRK_DIR = ROOT / "bench" / "wrk"
SECRET = "likeview-bench-secret-0123456789abcdef0123456789abcdef"
N_CONTENTS = 10_000
N_USERS = 40_000
PRODUCT = "main:create_app"
CONTROL = "bench.control_app:create_control_app"

# Judged as ratios to a control measured in the same run wherever a control
# exists: machines differ by 2x from day to day, ratios much less.
TARGETS = {
    "ratio": 80.0,  # GraphQL like throughput, % of control
    "control_ratio": 80.0,  # feed and recordViews throughput, % of their controls
    "fanout_p99": 250.0,  # ms
    "fanout_rate": 4.0,  # updates/subscriber/s
    "lag_p99": 500.0,  # ms
    "analytics_fresh_p99": 5000.0,  # ms, during scenario 4's ingest
}


# The load comes from 127.0.0.1 with few devices, so the default abuse limits (made
# for one person, one device, one NAT) would refuse or not count most of it. The
# suite runs with them on, each check made as in production (one GCRA script call
# per request), at a rate the bench never reaches; --no-rate-limits turns them off
# (RATE_LIMITS=false) to measure what the checks cost (docs/PERFORMANCE.md).
BENCH_RATE = "100000000:100000000"


def rate_limit_env(off: bool) -> dict[str, str]:
    if off:
        return {"RATE_LIMITS": "false"}
    env = {"RATE_LIMITS": "true"}
    for action in ("LIKE", "UNLIKE", "VIEW"):
        for scope in ("USER", "DEVICE", "ADDRESS"):
            env[f"RATE_LIMIT_{action}_{scope}"] = BENCH_RATE
    return env


# --- helpers --------------------------------------------------------------------


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def r1(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick: bool = args.quick
        self.dur = 5 if args.quick else 12
        self.tmp = Path(tempfile.mkdtemp(prefix="likeview-bench-"))
        self.redis = Redis(self.tmp)
        self.env = dict(os.environ)
        self.env.update(
            {
                "REDIS_URL": self.redis.url,
                "JWT_SECRET": SECRET,
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        self.env.update(rate_limit_env(args.no_rate_limits))
        self.rate_limits = (
            "off (RATE_LIMITS=false)"
            if args.no_rate_limits
            else f"on, every RATE_LIMIT_<ACTION>_<SCOPE>={BENCH_RATE} (checked, never refusing)"
        )
        self.mongo = (
            "external MongoDB (MONGODB_URL)"
            if os.environ.get("MONGODB_URL")
            else "mongomock in the server process (MONGODB_URL unset)"
        )
        if os.environ.get("MONGODB_URL"):
            self.env["MONGODB_DB"] = f"likeview_bench_{os.getpid()}"
        sys.path.insert(0, str(ROOT))
        from resolvers.auth import issue_token

        t0 = time.perf_counter()
        self.users = [issue_token(SECRET, f"u{i:05d}", [], 24 * 3600) for i in range(N_USERS)]
        self.service = issue_token(SECRET, "bench-service", ["service"], 24 * 3600)
        self.tokens_file = self.tmp / "tokens.txt"
        self.tokens_file.write_text("\n".join(self.users) + "\n")
        print(f"# {N_USERS} user tokens issued in {time.perf_counter() - t0:.1f}s", flush=True)
        self.results: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []

    def tokens_slice(self, name: str, start: int, stop: int) -> Path:
        path = self.tmp / f"tokens-{name}.txt"
        path.write_text("\n".join(self.users[start:stop]) + "\n")
        return path

    def fresh(
        self, target: str = PRODUCT, name: str = "server"
    ) -> contextlib.AbstractContextManager[Server]:
        self.redis.flushall()
        return server(target, self.env, self.tmp / f"{name}-{time.time_ns()}.log")

    def close(self) -> None:
        self.redis.stop()
        if os.environ.get("MONGODB_URL"):
            with contextlib.suppress(Exception):
                import pymongo

                pymongo.MongoClient(os.environ["MONGODB_URL"]).drop_database(self.env["MONGODB_DB"])

    def row(
        self, n: str, what: str, value: str, target: str = "", verdict: str = "", note: str = ""
    ) -> None:
        self.rows.append(
            {
                "scenario": n,
                "metric": what,
                "value": value,
                "target": target,
                "verdict": verdict,
                "note": note,
            }
        )
        print(
            f"  {what}: {value}"
            + (f"  (target {target}: {verdict})" if target else "")
            + (f"  [{note}]" if note else ""),
            flush=True,
        )


def gql(
    base: str,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(
        base + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=timeout,
    )
    return dict(r.json())


async def register_all(base: str, token: str, control: bool = False) -> float:
    """Register N_CONTENTS contents: GraphQL registerContent with 25 aliases per request."""
    t0 = time.perf_counter()
    ids = [f"c{i:05d}" for i in range(N_CONTENTS)]
    chunks = [ids[i : i + 25] for i in range(0, len(ids), 25)]
    sem = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:

        async def one(chunk: list[str]) -> None:
            async with sem:
                if control:
                    body = [
                        {
                            "contentId": c,
                            "creatorId": "creator",
                            "kind": "VIDEO",
                            "durationMs": 60_000,
                        }
                        for c in chunk
                    ]
                    r = await client.post(base + "/control/register", json=body)
                    r.raise_for_status()
                    return
                fields = " ".join(
                    f'a{j}: registerContent(input: {{contentId: "{c}", creatorId: "creator", '
                    f"kind: VIDEO, durationMs: 60000}}) {{ contentId }}"
                    for j, c in enumerate(chunk)
                )
                r = await client.post(base + "/graphql", json={"query": f"mutation {{ {fields} }}"})
                data = r.json()
                if data.get("errors"):
                    raise SystemExit(f"registerContent failed: {data['errors'][:1]}")

        await asyncio.gather(*(one(c) for c in chunks))
    return time.perf_counter() - t0


def register(ctx: Ctx, srv: Server, control: bool = False) -> None:
    secs = asyncio.run(register_all(srv.base, ctx.service, control))
    print(
        f"# registered {N_CONTENTS} contents in {secs:.1f}s "
        f"({'control route' if control else 'GraphQL registerContent'})",
        flush=True,
    )


def wrk(
    srv: Server,
    redis: Redis,
    script: str,
    args: list[str],
    duration: float,
    conns: int,
    threads: int = 2,
    timeout: str = "10s",
    during: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(conns),
        "-d",
        f"{duration}s",
        "--timeout",
        timeout,
        "-s",
        str(WRK_DIR / script),
        srv.base,
        "--",
        *args,
    ]
    meter = CpuMeter({"server": srv.pid, "redis": redis.proc.pid})
    meter.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if during is not None:
        during()
    out, _ = proc.communicate(timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    cpu = meter.stop({"wrk": wrk_cpu})
    m = re.search(r"^WRKJSON (.*)$", out, re.M)
    if not m:
        raise SystemExit(f"wrk gave no summary:\n{out[-2000:]}")
    res = dict(json.loads(m.group(1)))
    secs = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / secs
    res["ok_rps"] = res["ok"] / secs
    res["cpu_pct"] = cpu
    lat = res["lat_us"]
    res["lat_ms"] = {k: round(v / 1000, 2) for k, v in lat.items()}
    return res


def describe(res: dict[str, Any]) -> str:
    lat = res["lat_ms"]
    return (
        f"{res['ok_rps']:.0f} ok req/s ({res['requests']} requests, "
        f"{res['gql_errors'] + res['bad_status']} errors), "
        f"p50 {lat['p50']} / p95 {lat['p95']} / p99 {lat['p99']} ms"
    )


def redis_cpu_ceiling(res: dict[str, Any], per_request: int = 1) -> dict[str, Any]:
    """Redis's ceiling for the same work, from the run itself: the Redis CPU that
    each operation cost while the scenario ran (its commands and scripts, and the
    workers' stream reads, applies and publishes for it), so how many such
    operations one Redis core serves per second. Redis driven at its own limit
    pipelines more and costs less per command, so this errs low."""
    busy = float(res["cpu_pct"].get("redis") or 0.0)
    if busy <= 0:
        return {}
    per_s = res["ok_rps"] * per_request * 100 / busy
    return {
        "redis_cpu_pct": busy,
        "ops_per_s": round(per_s),
        "service_share_pct": round(100 * res["ok_rps"] * per_request / per_s, 1),
    }


def ceiling_row(ctx: Ctx, n: str, what: str, res: dict[str, Any], per_request: int = 1) -> None:
    ceiling = redis_cpu_ceiling(res, per_request)
    res["redis_cpu_ceiling"] = ceiling
    if ceiling:
        ctx.row(
            n,
            f"Redis ceiling for the same {what} (its CPU per operation in this run)",
            f"{ceiling['ops_per_s']} {what}/s per Redis core; GraphQL at "
            f"{ceiling['service_share_pct']:.0f}% of it (Redis {ceiling['redis_cpu_pct']}% busy)",
        )


def cpu_note(res: dict[str, Any]) -> str:
    c = res["cpu_pct"]
    return "CPU % of a core: " + ", ".join(f"{k} {v}" for k, v in c.items())


def summary_likes(base: str, cid: str) -> int:
    d = gql(base, "query($id: ID!) { engagementSummary(contentId: $id) { likes } }", {"id": cid})
    return int(d["data"]["engagementSummary"]["likes"])


def drain_to(base: str, cid: str, expected: int, timeout: float = 20) -> tuple[int, float]:
    t0 = time.perf_counter()
    seen = -1
    while time.perf_counter() - t0 < timeout:
        seen = summary_likes(base, cid)
        if seen == expected:
            break
        time.sleep(0.05)
    return seen, time.perf_counter() - t0


def active_reactors(base: str, cid: str) -> int:
    """Ground truth from MongoDB through the reactors connection (not the counters)."""
    total, after = 0, None
    q = (
        "query($id: ID!, $after: String) { reactors(contentId: $id, first: 100, after: $after) "
        "{ edges { cursor } pageInfo { hasNextPage endCursor } } }"
    )
    for _ in range(10_000):
        d = gql(base, q, {"id": cid, "after": after}, timeout=120)
        conn = d["data"]["reactors"]
        total += len(conn["edges"])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    return total


# --- scenarios ------------------------------------------------------------------


def s1_likes(ctx: Ctx) -> None:
    print("\n## 1. like/unlike over HTTP, many users, 10,000 contents (+ control)", flush=True)
    args = [str(ctx.tokens_file), str(N_CONTENTS)]
    out: dict[str, Any] = {}
    for mode, target in (("graphql", PRODUCT), ("control", CONTROL)):
        with ctx.fresh(target, mode) as srv:
            register(ctx, srv, control=mode == "control")
            wrk(srv, ctx.redis, "like.lua", [*args, mode], 2, 16)  # warm-up
            res = wrk(srv, ctx.redis, "like.lua", [*args, mode], ctx.dur, 16)
            out[mode] = res
            print(f"  {mode}: {describe(res)}; {cpu_note(res)}", flush=True)
            if res["sample_error"]:
                print(f"  {mode} sample error: {res['sample_error']}", flush=True)
    g, c = out["graphql"], out["control"]
    ratio = 100 * g["ok_rps"] / c["ok_rps"] if c["ok_rps"] else 0.0
    out["ratio_pct"] = round(ratio, 1)
    ctx.results["1_likes"] = out
    ctx.row("1", "GraphQL like/unlike", describe(g), note=cpu_note(g))
    ctx.row("1", "control like/unlike (bare Starlette route)", describe(c), note=cpu_note(c))
    ctx.row(
        "1",
        "GraphQL like throughput vs control",
        f"{ratio:.0f}% of control",
        f">= {TARGETS['ratio']:.0f}%",
        "PASS" if ratio >= TARGETS["ratio"] else "MISS",
    )
    print(f"  GraphQL like throughput = {ratio:.0f}% of control", flush=True)
    ceiling_row(ctx, "1", "likes", g)
    if ctx.args.profile:
        profile(ctx, "1", "like.lua", [str(ctx.tokens_file), str(N_CONTENTS), "graphql"], 16)


def profile(ctx: Ctx, n: str, script: str, args: list[str], conns: int) -> None:
    """A separate, extra run of the scenario with py-spy sampling the server."""
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        print("  profile skipped: py-spy not installed (pip install py-spy)", flush=True)
        return
    raw = RESULTS / f"profile-s{n}.txt"
    with ctx.fresh(PRODUCT, f"profile{n}") as srv:
        register(ctx, srv)
        wrk(srv, ctx.redis, "like.lua", [str(ctx.tokens_file), str(N_CONTENTS), "graphql"], 3, 16)
        spy: list[subprocess.Popen[bytes]] = []

        def start_spy() -> None:
            spy.append(
                subprocess.Popen(
                    [
                        pyspy,
                        "record",
                        "-p",
                        str(srv.pid),
                        "-d",
                        str(ctx.dur - 1),
                        "-r",
                        "200",
                        "-f",
                        "raw",
                        "-o",
                        str(raw),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        res = wrk(srv, ctx.redis, script, args, ctx.dur, conns, during=start_spy)
        spy[0].wait(60)
    print(f"  (under py-spy) {describe(res)}", flush=True)
    prof = summarize_profile(raw)
    prof["under_profiler"] = describe(res)
    ctx.results[f"{n}_profile"] = prof
    for line in prof["text"]:
        print("  " + line, flush=True)


LAYERS = {
    "mongomock (in-process MongoDB)": ("mongomock", "bson/", "pymongo/"),
    "strawberry / graphql-core": ("strawberry/", "graphql/"),
    "redis client": ("redis/",),
    "uvicorn / starlette / httptools / websockets": (
        "uvicorn/",
        "starlette/",
        "httptools",
        "websockets/",
    ),
    "jwt": ("jwt/",),
    # py-spy names a frame "func (path/relative/to/sys.path:line)".
    "app code (domain/storage/resolvers/schema/workers/subscriptions)": (
        "(domain/",
        "(storage/",
        "(resolvers/",
        "(schema/",
        "(workers/",
        "(subscriptions/",
        "(main.py",
    ),
}


def _layer(frame: str) -> str | None:
    for name, keys in LAYERS.items():
        if any(key in frame for key in keys):
            return name
    return None


def summarize_profile(raw: Path) -> dict[str, Any]:
    """py-spy collapsed stacks -> self time by layer (innermost library frame) and top frames."""
    if not raw.exists():
        return {"text": ["profile: py-spy wrote nothing"]}
    total = 0
    self_t: dict[str, int] = {}
    by_layer: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = stack.split(";")
        self_t[frames[-1]] = self_t.get(frames[-1], 0) + k
        # Charge the sample to the innermost frame that belongs to a known layer; stdlib
        # frames (asyncio, json, copy, ...) are charged to whoever called them.
        layer = next((ly for f in reversed(frames) if (ly := _layer(f))), "other / idle")
        by_layer[layer] = by_layer.get(layer, 0) + k

    def share(k: int) -> float:
        return round(100 * k / max(total, 1), 1)

    text = [f"py-spy samples: {total} (200 Hz, --nonblocking; idle included)"]
    text.append("self time by layer (innermost library frame of each sample):")
    for name, k in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        text.append(f"  {share(k):5.1f}%  {name}")
    text.append("top self frames:")
    for name, k in sorted(self_t.items(), key=lambda kv: -kv[1])[:12]:
        text.append(f"  {share(k):5.1f}%  {name[:140]}")
    return {
        "samples": total,
        "self_by_layer_pct": {k: share(v) for k, v in by_layer.items()},
        "text": text,
        "raw": str(raw.relative_to(ROOT)),
    }


def s2_hot(ctx: Ctx) -> None:
    print("\n## 2. hot content: every like to one content id, exact final count", flush=True)
    cid = "c00000"
    with ctx.fresh(PRODUCT, "hot") as srv:
        register(ctx, srv)
        res = wrk(srv, ctx.redis, "hot.lua", [str(ctx.tokens_file), cid, "2"], ctx.dur, 16)
        print(f"  {describe(res)}; {cpu_note(res)}", flush=True)
        # wrk stops counting at the deadline with up to one request per connection still
        # in flight (the server completes those), so the truth is MongoDB's active
        # reactors; the responses bound it: ok <= truth <= ok + connections + errors.
        time.sleep(1)  # let the server finish the requests wrk left in flight
        truth = active_reactors(srv.base, cid)
        seen, waited = drain_to(srv.base, cid, truth)
    errs = res["gql_errors"] + res["bad_status"] + sum(res["socket_errors"].values())
    bounded = res["ok"] <= truth <= res["ok"] + 16 + errs
    exact = seen == truth and bounded and res["extra"] == 0
    out = {
        **res,
        "acknowledged_likes": res["ok"],
        "final_count": seen,
        "drain_s": round(waited, 2),
        "reactors_in_mongodb": truth,
        "exact": exact,
    }
    ctx.results["2_hot"] = out
    ctx.row("2", "hot-content like", describe(res), note=cpu_note(res))
    ctx.row(
        "2",
        "hot-content final count exact",
        f"engagementSummary.likes={seen} = active reactors in MongoDB={truth} "
        f"(acknowledged likes {res['ok']}, +<=16 in flight at wrk's deadline); "
        f"settled {waited:.2f}s after load",
        "equal",
        "PASS" if exact else "MISS",
    )


def versus_control(ctx: Ctx, n: str, what: str, g: dict[str, Any], c: dict[str, Any]) -> float:
    """GraphQL's throughput as a share of its control's, measured in the same run."""
    ratio = 100 * g["ok_rps"] / c["ok_rps"] if c["ok_rps"] else 0.0
    ctx.row(
        n,
        f"{what}: GraphQL throughput vs control",
        f"{ratio:.0f}% of control",
        f">= {TARGETS['control_ratio']:.0f}%",
        "PASS" if ratio >= TARGETS["control_ratio"] else "MISS",
    )
    return round(ratio, 1)


def redis_read_ceiling(ctx: Ctx, duration: float) -> dict[str, Any]:
    """Redis's own ceiling for a feed page's reads: redis-benchmark sending the counter
    read script, pipelined as the service sends it (one call per partition, here
    the 50 ids' share of one partition), from 20 connections."""
    sys.path.insert(0, str(ROOT))
    import redis

    from storage.keys import Keys
    from storage.redis_counters import READ

    keys = Keys("lv", 4)
    cids = [f"c{i:05d}" for i in range(N_CONTENTS)]
    part = [c for c in cids if keys.partition(c) == 0][: 50 // keys.partitions]
    names = [*keys.counter_pairs(0, part), keys.applied(0)]
    client = redis.Redis.from_url(ctx.redis.url)
    sha = client.script_load(READ)
    client.close()
    requests = max(20_000, int(duration * 20_000))
    cmd = [
        "redis-benchmark", "-p", str(ctx.redis.port), "-c", "20", "-P", str(keys.partitions),
        "-n", str(requests), "-q", "--csv",
        "EVALSHA", sha, str(len(names)), *names, str(len(part)),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    rps = float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
    pages = rps / keys.partitions
    return {"script_calls_per_s": round(rps), "feed_pages_per_s": round(pages)}


def s3_feed(ctx: Ctx) -> None:
    print(
        "\n## 3. feed read: engagementSummaries of 50 ids, signed-in viewer, 20 clients"
        " (+ control)",
        flush=True,
    )
    out: dict[str, Any] = {}
    args = [str(ctx.tokens_file), str(N_CONTENTS)]
    for mode, target in (("graphql", PRODUCT), ("control", CONTROL)):
        with ctx.fresh(target, f"feed-{mode}") as srv:
            register(ctx, srv, control=mode == "control")
            seed = wrk(srv, ctx.redis, "like.lua", [*args, mode], 3, 16)
            print(f"  {mode}: seeded with {seed['ok']} like/unlike mutations", flush=True)
            wrk(srv, ctx.redis, "feed.lua", [*args, mode], 2, 20)
            res = wrk(srv, ctx.redis, "feed.lua", [*args, mode], ctx.dur, 20)
            res["seeded_mutations"] = seed["ok"]
            out[mode] = res
    ceiling = redis_read_ceiling(ctx, ctx.dur)
    if ctx.args.profile:
        profile(ctx, "3", "feed.lua", [*args, "graphql"], 20)
    g, c = out["graphql"], out["control"]
    out["redis_ceiling"] = ceiling
    # The feed's p99 stays the headline latency; the ratio is the target.
    out.update(g)
    ctx.row("3", "feed read (50 summaries)", describe(g), note=cpu_note(g))
    ctx.row("3", "control feed read (bare Starlette route)", describe(c), note=cpu_note(c))
    out["ratio_pct"] = versus_control(ctx, "3", "feed read", g, c)
    ctx.row(
        "3",
        "Redis ceiling for the same reads (redis-benchmark)",
        f"{ceiling['feed_pages_per_s']} pages/s; GraphQL at "
        f"{100 * g['ok_rps'] / ceiling['feed_pages_per_s']:.0f}% of it",
    )
    ceiling_row(ctx, "3", "pages", g)
    ctx.row("3", "feed read p99 at 20 clients (information)", f"{g['lat_ms']['p99']} ms")
    ctx.results["3_feed"] = out


def s4_views(ctx: Ctx) -> None:
    print("\n## 4. view ingest: recordViews in batches of 100 (+ control)", flush=True)
    out: dict[str, Any] = {}
    for mode, target in (("graphql", PRODUCT), ("control", CONTROL)):
        with ctx.fresh(target, f"views-{mode}") as srv:
            register(ctx, srv, control=mode == "control")
            args = [str(ctx.tokens_file), str(N_CONTENTS), "100"]
            probe = wrk(srv, ctx.redis, "views.lua", [*args, f"w{mode}", mode], 2, 8)
            # Analytics freshness under this load (the product only): likes and
            # counted views of a probe content, each until its minute bucket shows it.
            fresh = (
                FreshnessProbe(srv.base, ctx.service, ctx.users[35_000:36_000], ctx.dur - 1)
                if mode == "graphql"
                else None
            )
            # Every worker's lag on the same load (the product only), from the log.
            lags = LogLagSampler(ctx.redis.url, ctx.dur) if mode == "graphql" else None

            def during(fresh: Any = fresh, lags: Any = lags) -> None:
                if fresh is not None:
                    fresh.start()
                if lags is not None:
                    lags.start()

            res = wrk(
                srv,
                ctx.redis,
                "views.lua",
                [*args, f"m{mode}", mode],
                ctx.dur,
                8,
                during=during if mode == "graphql" else None,
            )
            if lags is not None:
                lags.join()
                out["log_lag"] = {"groups": lags.summary(), "error": lags.error}
            if fresh is not None:
                fresh.join()
                out["freshness"] = {
                    "probes": len(fresh.lags_ms),
                    "timeouts": fresh.timeouts,
                    "error": fresh.error,
                    "p50_ms": round(pct(fresh.lags_ms, 50) or 0, 1),
                    "p99_ms": round(pct(fresh.lags_ms, 99) or 0, 1),
                    # Of which the mutation's own answer (information).
                    "ack_p50_ms": round(pct(fresh.acks_ms, 50) or 0, 1),
                    "ack_max_ms": round(max(fresh.acks_ms, default=0), 1),
                }
                # The trending worker's lag on the same load (information).
                out["trending_lag"] = {
                    "probes": len(fresh.trend_lags_ms),
                    "timeouts": fresh.trend_timeouts,
                    "error": fresh.error,
                    "p50_ms": round(pct(fresh.trend_lags_ms, 50) or 0, 1),
                    "p99_ms": round(pct(fresh.trend_lags_ms, 99) or 0, 1),
                    "max_ms": round(max(fresh.trend_lags_ms, default=0), 1),
                }
            res["view_events_per_s"] = round(res["ok"] * 100 / (res["duration_us"] / 1e6))
            res["probe_sample_error"] = probe["sample_error"]
            out[mode] = res
            if res["sample_error"]:
                print(f"  {mode} sample error: {res['sample_error']}", flush=True)
    if ctx.args.profile:
        profile(ctx, "4", "views.lua", [*args, "m", "graphql"], 8)
    g, c = out["graphql"], out["control"]
    out.update(g)
    ctx.row("4", "recordViews (100/request)", describe(g), note=cpu_note(g))
    ctx.row("4", "control recordViews (bare Starlette route)", describe(c), note=cpu_note(c))
    out["ratio_pct"] = versus_control(ctx, "4", "recordViews", g, c)
    ceiling_row(ctx, "4", "view events", g, per_request=100)
    fresh = out.get("freshness")
    if fresh:
        ok = not fresh["error"] and not fresh["timeouts"] and fresh["probes"] > 0
        ctx.row(
            "4",
            "analytics freshness during the ingest (like or counted view -> its minute bucket)",
            f"p50 {fresh['p50_ms']} / p99 {fresh['p99_ms']} ms ({fresh['probes']} probes, "
            f"{fresh['timeouts']} timeouts; the mutation's answer p50 {fresh['ack_p50_ms']} / "
            f"max {fresh['ack_max_ms']} ms of it)"
            + (f"; {fresh['error']}" if fresh["error"] else ""),
            f"p99 <= {TARGETS['analytics_fresh_p99']:.0f} ms",
            "PASS" if ok and fresh["p99_ms"] <= TARGETS["analytics_fresh_p99"] else "MISS",
        )
    lag = out.get("trending_lag")
    if lag:
        ctx.row(
            "4",
            "trending worker lag during the ingest (like or counted view -> rankingSignals), "
            "information",
            f"p50 {lag['p50_ms']} / p99 {lag['p99_ms']} / max {lag['max_ms']} ms "
            f"({lag['probes']} probes, {lag['timeouts']} timeouts)"
            + (f"; {lag['error']}" if lag["error"] else ""),
        )
    log_lag = out.get("log_lag")
    if log_lag:
        groups = log_lag["groups"]
        ctx.row(
            "4",
            "each worker's lag during the ingest (oldest event waiting for it, sampled every "
            "0.5 s), information",
            "; ".join(
                f"{g} p50 {v['p50_ms']:.0f} / max {v['max_ms']:.0f} ms"
                for g, v in sorted(groups.items())
            )
            + (f"; {log_lag['error']}" if log_lag["error"] else ""),
        )
    ctx.row(
        "4",
        "view events/s (information)",
        f"{g['view_events_per_s']} (control {c['view_events_per_s']})",
        note=("errors: " + g["sample_error"][:120]) if g["sample_error"] else "",
    )
    ctx.results["4_views"] = out


async def _like(client: httpx.AsyncClient, base: str, token: str, cid: str) -> tuple[float, int]:
    r = await client.post(
        base + "/graphql",
        # Each user from a network of its own: fresh accounts liking one content
        # unseen from one address are a fake-account crowd to the integrity worker.
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": address_of(token)},
        json={
            "query": "mutation($id: ID!) { like(input: {contentId: $id}) "
            "{ changed summary { likes } } }",
            "variables": {"id": cid},
        },
    )
    t = time.time()
    d = r.json()
    if d.get("errors"):
        raise SystemExit(f"like failed: {d['errors'][:1]}")
    return t, int(d["data"]["like"]["summary"]["likes"])


def s5_fanout(ctx: Ctx) -> None:
    print("\n## 5. live fanout: 1,000 WebSocket subscribers on one content", flush=True)
    cid = "c00001"
    n_subs = 200 if ctx.quick else 1000
    n_slow = 10 if ctx.quick else 20
    storm_s = 3 if ctx.quick else 5
    slow_tokens = ctx.users[30_000 : 30_000 + n_slow]
    storm_file = ctx.tokens_slice("storm", 0, 30_000)
    with ctx.fresh(PRODUCT, "fanout") as srv:
        register(ctx, srv)
        subs_file = ctx.tokens_slice("subs", 31_000, 31_000 + n_subs)
        procs, outs = [], []
        half = n_subs // 2
        for i in range(2):
            out = ctx.tmp / f"subs-{i}.json"
            outs.append(out)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.ws_subscribers",
                        "--url",
                        srv.base.replace("http", "ws") + "/graphql",
                        "--tokens",
                        str(subs_file),
                        "--offset",
                        str(i * half),
                        "--count",
                        str(half),
                        "--content",
                        cid,
                        "--out",
                        str(out),
                        "--max-seconds",
                        "240",
                    ],
                    cwd=ROOT,
                    env=ctx.env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        t0 = time.perf_counter()
        ready = [p.stdout.readline().split() for p in procs]  # type: ignore[union-attr]
        connected = sum(int(r[1]) for r in ready if len(r) == 3)
        failed = sum(int(r[2]) for r in ready if len(r) == 3)
        print(
            f"  {connected} subscribers ready ({failed} failed) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )

        async def slow() -> list[tuple[float, int]]:
            acks = []
            async with httpx.AsyncClient(timeout=30) as client:
                for tok in slow_tokens:
                    acks.append(await _like(client, srv.base, tok, cid))
                    await asyncio.sleep(0.5)
            return acks

        acks = asyncio.run(slow())
        time.sleep(1)
        storm_t0 = time.time()
        storm = wrk(srv, ctx.redis, "hot.lua", [str(storm_file), cid, "2"], storm_s, 32)
        storm_t1 = time.time()
        time.sleep(1)  # let the server finish the requests wrk left in flight
        expected = active_reactors(srv.base, cid)  # every like here is a distinct user
        seen, waited = drain_to(srv.base, cid, expected)
        time.sleep(1.5)  # > one rate-limit interval: the final value must reach everyone
        for p in procs:
            p.stdin.write("STOP\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        for p in procs:
            p.wait(60)
    logs: list[list[list[float]]] = []
    errors: list[str] = []
    for out in outs:
        data = orjson.loads(out.read_bytes())
        logs.extend(data["logs"])
        errors.extend(e for e in data["errors"] if e)
    lat: list[float] = []
    missed = 0
    for t_ack, count in acks:
        for log in logs:
            hit = next((t for t, n in log if n >= count), None)
            if hit is None:
                missed += 1
            else:
                lat.append((hit - t_ack) * 1000)
    window = storm_t1 - storm_t0
    rates = [sum(1 for t, _ in log if storm_t0 <= t <= storm_t1) / window for log in logs]
    finals_ok = sum(1 for log in logs if log and log[-1][1] == expected)
    p50, p99 = pct(lat, 50), pct(lat, 99)
    mean_rate = statistics.fmean(rates) if rates else 0.0
    max_rate = max(rates) if rates else 0.0
    out_d = {
        "subscribers": n_subs,
        "connected": connected,
        "failed": failed,
        "subscriber_errors": errors[:5],
        "slow_likes": len(acks),
        "delivery_ms": {
            "p50": r1(p50),
            "p99": r1(p99),
            "max": r1(max(lat) if lat else None),
            "samples": len(lat),
            "missed": missed,
        },
        "storm": {
            **storm,
            "offered": "closed loop, 32 connections",
            "likes_per_s": round(storm["ok"] / window, 1),
            "window_s": round(window, 2),
        },
        "updates_per_subscriber_per_s": {"mean": round(mean_rate, 2), "max": round(max_rate, 2)},
        "final_count": seen,
        "expected": expected,
        "drain_s": round(waited, 2),
        "subscribers_with_final_count": finals_ok,
    }
    ctx.results["5_fanout"] = out_d
    ctx.row("5", "subscribers connected", f"{connected} of {n_subs}")
    ctx.row(
        "5",
        "like -> subscriber delivery",
        f"p50 {r1(p50)} ms / p99 {r1(p99)} ms ({len(lat)} deliveries, {missed} missed)",
        f"p99 <= {TARGETS['fanout_p99']:.0f} ms",
        "PASS" if p99 is not None and p99 <= TARGETS["fanout_p99"] and not missed else "MISS",
    )
    ctx.row(
        "5",
        "storm likes achieved",
        f"{storm['ok'] / window:.0f} likes/s for {window:.1f}s (asked: 2,000/s)",
        note=cpu_note(storm),
    )
    ctx.row(
        "5",
        "updates per subscriber per s during storm",
        f"mean {mean_rate:.2f}, max {max_rate:.2f}",
        f"<= {TARGETS['fanout_rate']:.0f}",
        "PASS" if max_rate <= TARGETS["fanout_rate"] + 0.5 else "MISS",
        note="max allows +0.5 for window edges",
    )
    ctx.row(
        "5",
        "final count delivered to every subscriber",
        f"{finals_ok} of {len(logs)} got {expected} (summary shows {seen})",
        "all",
        "PASS" if finals_ok == len(logs) == n_subs and seen == expected else "MISS",
    )


def s6_lag(ctx: Ctx) -> None:
    print(
        "\n## 6. counter lag: acknowledged like -> count visible in engagementSummary", flush=True
    )
    n = 20 if ctx.quick else 60
    with ctx.fresh(PRODUCT, "lag") as srv:
        register(ctx, srv)

        async def run() -> tuple[list[float], int]:
            lags, timeouts = [], 0
            q = "query($id: ID!) { engagementSummary(contentId: $id) { likes } }"
            async with httpx.AsyncClient(timeout=30) as client:
                for i in range(n):
                    cid = f"c{(i * 97) % N_CONTENTS:05d}"
                    t_ack, count = await _like(client, srv.base, ctx.users[35_000 + i], cid)
                    while True:
                        r = await client.post(
                            srv.base + "/graphql", json={"query": q, "variables": {"id": cid}}
                        )
                        now = time.time()
                        if r.json()["data"]["engagementSummary"]["likes"] >= count:
                            lags.append((now - t_ack) * 1000)
                            break
                        if now - t_ack > 5:
                            timeouts += 1
                            break
                        await asyncio.sleep(0.002)
                    await asyncio.sleep(0.2)
            return lags, timeouts

        lags, timeouts = asyncio.run(run())
    p50, p99 = pct(lags, 50), pct(lags, 99)
    ctx.results["6_lag"] = {
        "samples": len(lags),
        "timeouts": timeouts,
        "lag_ms": {"p50": r1(p50), "p99": r1(p99), "max": r1(max(lags) if lags else None)},
    }
    ctx.row(
        "6",
        "counter lag (ack -> visible)",
        f"p50 {r1(p50)} ms / p99 {r1(p99)} ms ({len(lags)} likes, {timeouts} timeouts)",
        f"p99 <= {TARGETS['lag_p99']:.0f} ms",
        "PASS" if p99 is not None and p99 <= TARGETS["lag_p99"] and not timeouts else "MISS",
    )


SCENARIOS = {1: s1_likes, 2: s2_hot, 3: s3_feed, 4: s4_views, 5: s5_fanout, 6: s6_lag}


# --- main -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    wrk_v = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "cores": os.cpu_count(),
        "mem_gib": round(int(mem) / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_v.split("[")[0].strip(),
        "uvicorn_flags": " ".join(uvicorn_fast_flags()),
    }


# The targets are judged on medians of repeated runs: (scenario, metric, path in
# the results, target key, direction).
MEDIANS: list[tuple[str, str, tuple[str, ...], str, str]] = [
    ("1", "GraphQL like throughput vs control (%)", ("1_likes", "ratio_pct"), "ratio", ">="),
    ("3", "feed read throughput vs control (%)", ("3_feed", "ratio_pct"), "control_ratio", ">="),
    ("4", "recordViews throughput vs control (%)", ("4_views", "ratio_pct"), "control_ratio", ">="),
    (
        "5",
        "like -> subscriber delivery p99 (ms)",
        ("5_fanout", "delivery_ms", "p99"),
        "fanout_p99",
        "<=",
    ),
    (
        "5",
        "updates per subscriber per s in the storm (mean)",
        ("5_fanout", "updates_per_subscriber_per_s", "mean"),
        "fanout_rate",
        "<=",
    ),
    ("6", "counter lag p99 (ms)", ("6_lag", "lag_ms", "p99"), "lag_p99", "<="),
    (
        "4",
        "analytics freshness p99 during the ingest (ms)",
        ("4_views", "freshness", "p99_ms"),
        "analytics_fresh_p99",
        "<=",
    ),
]


def _dig(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target: every run's value, their median and its verdict; and for the
    pass/fail rows without a number (exact counts, final counts delivered), in
    how many runs they passed."""
    out: list[dict[str, Any]] = []
    for n, metric, path, target, direction in MEDIANS:
        values = [v for run in runs if (v := _dig(run["results"], path)) is not None]
        if not values:
            continue
        median = statistics.median(values)
        goal = TARGETS[target]
        ok = median >= goal if direction == ">=" else median <= goal
        out.append(
            {
                "scenario": n,
                "metric": metric,
                "value": f"median {median:g} (runs: {', '.join(f'{v:g}' for v in values)})",
                "target": f"{direction} {goal:g}",
                "verdict": "PASS" if ok else "MISS",
                "median": median,
                "values": values,
            }
        )
    checks: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for row in run["rows"]:
            # Rows with a numeric target are judged on the medians above.
            if row["verdict"] and not row["target"].startswith(("<", ">", "p99")):
                checks.setdefault((row["scenario"], row["metric"]), []).append(row["verdict"])
    for (n, metric), verdicts in checks.items():
        passed = verdicts.count("PASS")
        out.append(
            {
                "scenario": n,
                "metric": metric,
                "value": f"PASS in {passed} of {len(verdicts)} runs",
                "target": "every run",
                "verdict": "PASS" if passed == len(verdicts) == len(runs) else "MISS",
            }
        )
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| # | metric | value | target | verdict |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['metric']} | {r['value']} | {r['target']} | {r['verdict']} |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short runs (5 s of load, fewer subs)")
    p.add_argument(
        "--scenario",
        type=int,
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also profile the server with py-spy (extra runs of scenarios 1, 3 and 4)",
    )
    p.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="serve with RATE_LIMITS=false (default: on, with limits the bench never reaches)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the scenarios N times and judge the targets on the medians",
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: run through bench/run.sh, or apt-get install -y wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args)
    started = time.time()
    info = machine()
    print(
        f"# machine: {info}\n# MongoDB: {ctx.mongo}\n# Redis: private redis-server "
        f"{ctx.redis.url}\n# uvicorn {info['uvicorn_flags']}\n# abuse limits: {ctx.rate_limits}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    try:
        for run in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"\n# run {run} of {args.repeat}", flush=True)
            ctx.results, ctx.rows = {}, []
            for n in args.scenario or sorted(SCENARIOS):
                try:
                    SCENARIOS[n](ctx)
                except (Exception, SystemExit) as exc:
                    print(f"  scenario {n} FAILED: {exc}", flush=True)
                    ctx.results[f"{n}_failed"] = str(exc)[:2000]
                    ctx.row(str(n), "scenario failed", str(exc)[:200], verdict="FAIL")
            runs.append({"rows": ctx.rows, "results": ctx.results})
            print_table(ctx.rows)
            # Profiles are of the first run only: they are for reading, not judging.
            ctx.args.profile = False
    finally:
        ctx.close()
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "took_s": round(time.time() - started),
        "quick": args.quick,
        "machine": info,
        "mongodb": ctx.mongo,
        "rate_limits": ctx.rate_limits,
        "targets": TARGETS,
        "rows": runs[-1]["rows"],
        "results": runs[-1]["results"],
    }
    if args.repeat > 1:
        summary = medians(runs)
        print(f"\n## The targets on the medians of {args.repeat} runs")
        print_table(summary)
        doc["runs"] = runs
        doc["medians"] = summary
    (RESULTS / "latest.json").write_text(json.dumps(doc, indent=2, default=str))
    print(
        f"\nwrote {(RESULTS / 'latest.json').relative_to(ROOT)} "
        f"(took {doc['took_s']} s; server logs in {ctx.tmp})"
    )
    return 0
