"""Scenario 9: count integrity under a traffic mix, measured through the public API.

    bash bench/run.sh --integrity [--seconds 180] [--json PATH]
    python -m bench.integrity --seconds 60          # a short look

Starts a private redis-server and the service as `python main.py serve` (embedded
MongoDB, the workers in the API process, every default setting: abuse limits on,
the shipped integrity rules) with ``FORWARDED_ALLOW_IPS=127.0.0.1``: this process is
the proxy, and presents each simulated client's address in ``X-Forwarded-For``, as a
proxy in front of the service would. It registers contents per traffic class (each
class its own contents, so its inflation is measurable), then runs organic users and
every attack concurrently for ``--seconds``, through GraphQL only (``like``,
``unlike``, ``recordViews``; tokens from ``resolvers.auth.issue_token`` with the
server's ``JWT_SECRET``). Then it polls the public counts
(``engagementSummaries { likes views }``) until they stop moving (at most 60 s plus a
margin) and reports, per attack, the inflation attempted, what got through (public
count minus what organic users legitimately did on the class's contents), the share
kept out and where (refused or not counted at ingest, or excluded later by the
integrity worker); and the organic loss: organic engagement that should count by the
view policies and the users' final like state, but is not in the public counts.

What each class does and why, and what it does not catch: docs/PERFORMANCE.md,
scenario 9. The attacks are written as a script of their category would be, not
tuned to the rules (domain/integrity_rules.toml is not read here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import RESULTS, ROOT, Redis, free_port

SECRET = "likeview-integrity-bench-secret-0123456789abcdef0123456789"
SETTLE_MAX_S = 60.0  # the worker's promise (INTEGRITY_SETTLE_S)
SETTLE_MARGIN_S = 30.0
QUIET_S = 15.0  # counts unchanged this long: settled
POLL_S = 1.0
TARGET_BLOCKED = 99.0  # % of attempted inflation kept out, overall
TARGET_ORGANIC_LOSS = 1.0  # % of organic engagement lost
BUCKET_S = 300  # the rules' bucket (5 minutes): where the run starts in it is reported

# The view policies' thresholds (domain/view_policies.toml) for the kinds used here.
THRESHOLD_MS = {"SHORT": 2_000, "VIDEO": 30_000, "POST": 1_000}
SHORT_FRACTION = 0.9  # VIDEO shorter than its threshold: 90% of its duration
MIN_VISIBLE = {"POST": 0.5}

LIKE = (
    "mutation($id: ID!, $r: ReactionType!, $req: String, $dev: ID) "
    "{ like(input: {contentId: $id, reaction: $r, requestId: $req, deviceId: $dev}) "
    "{ changed } }"
)
UNLIKE = (
    "mutation($id: ID!, $dev: ID) { unlike(input: {contentId: $id, deviceId: $dev}) { changed } }"
)
VIEWS = (
    "mutation($in: [ViewInput!]!) { recordViews(inputs: $in) "
    "{ sessionId decision { counted reason } } }"
)
SUMMARIES = (
    "query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) "
    "{ contentId likes views integrity { suspectLikes suspectViews } } }"
)
REGISTER = "mutation($in: [RegisterContentInput!]!) { registerContents(inputs: $in) { contentId } }"
REACTIONS = ("LIKE",) * 7 + ("LOVE", "LOVE", "LAUGH", "WOW")


# --- pure helpers (tests/unit/test_bench_integrity.py) -------------------------------


def threshold_ms(kind: str, duration_ms: int | None) -> int:
    """The watch time a session needs to count, as the shipped policy says."""
    base = THRESHOLD_MS[kind]
    if kind == "VIDEO" and duration_ms is not None and duration_ms < base:
        return math.ceil(duration_ms * SHORT_FRACTION)
    return base


def qualifies(
    kind: str, duration_ms: int | None, events: Sequence[tuple[int, float | None]]
) -> bool:
    """Whether a session's events (watchedMs, visibleFraction) pass the kind's policy:
    what an honest session should count as, independently of the server."""
    least = MIN_VISIBLE.get(kind)
    watched = sum(w for w, vis in events if least is None or (vis is not None and vis >= least))
    return watched >= threshold_ms(kind, duration_ms)


def share(part: float, whole: float) -> float | None:
    return None if whole <= 0 else round(100.0 * part / whole, 2)


def class_outcome(
    attempted: int, public: int, legit: int, suspect: int, ingest: int
) -> dict[str, Any]:
    """One class and metric: ``attempted`` what the script tried to add, ``public``
    the public count on its contents, ``legit`` what organic users legitimately did
    there, ``suspect`` what the integrity worker took out, ``ingest`` what the
    service accepted at first (acknowledged likes, sessions decided counted)."""
    through = max(0, public - legit)
    kept = max(0, attempted - through)
    return {
        "attempted": attempted,
        "through": through,
        "kept_out": kept,
        "blocked_pct": share(kept, attempted),
        "refused_at_ingest": max(0, attempted - ingest),
        "excluded_by_integrity": suspect,
    }


def organic_outcome(expected: int, public: int, per_content: Iterable[tuple[int, int]]) -> dict:
    """Organic engagement that should count (``expected``) against the public counts
    of the organic contents; ``per_content``: (expected, public) per content."""
    lost = extra = 0
    for exp, pub in per_content:
        lost += max(0, exp - pub)
        extra += max(0, pub - exp)
    return {
        "expected": expected,
        "public": public,
        "lost": lost,
        "over": extra,
        "loss_pct": share(lost, expected),
    }


def last_change(samples: Sequence[tuple[float, Any]]) -> float | None:
    """The time of the last sample that differs from the one before (None: no change)."""
    at = None
    for (_, before), (t, now) in itertools.pairwise(samples):
        if now != before:
            at = t
    return at


def quiet_for(samples: Sequence[tuple[float, Any]]) -> float:
    """How long the last value has held (0 with fewer than two samples)."""
    if len(samples) < 2:
        return 0.0
    t_last, value = samples[-1]
    since = t_last
    for t, v in reversed(samples):
        if v != value:
            break
        since = t
    return t_last - since


# --- the service ---------------------------------------------------------------------


class Serve:
    """`python main.py serve` on a free port, as an operator runs it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("w")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"main.py serve exited at start:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"main.py serve did not become healthy; see {log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# --- bookkeeping ---------------------------------------------------------------------


@dataclass
class Ledger:
    """What one traffic class tried and what the service said at once."""

    name: str
    what: str
    contents: list[str] = field(default_factory=list)
    actors: set[str] = field(default_factory=set)
    like_attempts: int = 0  # likes the script tried to add (a replay is one more)
    view_attempts: int = 0  # sessions (or replays) meant to make a counted view
    likes_acked: int = 0  # like answered changed=true
    likes_limited: int = 0  # RATE_LIMITED answers (retries included)
    sessions_counted: int = 0  # sessions whose decision said counted
    requests: int = 0
    errors: int = 0
    sample_error: str = ""
    retried: int = 0  # requests sent again after a service error or a dropped connection
    retry_sample: str = ""
    # Per content, how many sessions had each client-side interval shape (250 ms
    # quanta between event sends): how identical a script's timing stays in transit.
    shapes: dict[str, dict[tuple[int, ...], int]] = field(default_factory=dict)


@dataclass
class OrganicBook:
    """What organic users legitimately did: the state that should be public."""

    liked: dict[tuple[str, str], bool] = field(default_factory=dict)  # (user, content)
    viewed: set[tuple[str, str]] = field(default_factory=set)  # (viewer, content) qualifying
    server_counted: set[tuple[str, str]] = field(default_factory=set)
    sessions: int = 0
    qualifying_sessions: int = 0
    likes_refused: int = 0
    group_of: dict[str, str] = field(default_factory=dict)  # actor -> group

    def expected(self, cid: str) -> tuple[int, int]:
        likes = sum(1 for (_, c), on in self.liked.items() if on and c == cid)
        views = sum(1 for _, c in self.viewed if c == cid)
        return likes, views


@dataclass
class Content:
    cid: str
    kind: str
    duration_ms: int | None


@dataclass
class Person:
    """A simulated client: a signed-in user (token) or an anonymous device."""

    actor: str  # "u:<user>" or "d:<device>"
    token: str | None
    device: str | None
    addr: str
    sdk: str = "heartbeat"  # or "on_close": one event when the playback ends
    hb_s: float = 10.0  # the player's heartbeat period
    platform: str = "IOS"

    @property
    def user(self) -> str:
        return self.actor[2:]


class Api:
    """GraphQL over HTTP, each request from a client address (X-Forwarded-For)."""

    def __init__(self, base: str, client: httpx.AsyncClient) -> None:
        self.url = base + "/graphql"
        self.client = client

    async def post(
        self,
        ledger: Ledger,
        query: str,
        variables: dict[str, Any],
        token: str | None,
        addr: str,
    ) -> dict[str, Any]:
        headers = {"X-Forwarded-For": addr}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {"query": query, "variables": variables}
        for attempt in range(2):
            ledger.requests += 1
            try:
                r = await self.client.post(self.url, json=body, headers=headers)
                d = dict(r.json())
            except (httpx.HTTPError, ValueError) as exc:
                d = {"errors": [{"message": repr(exc)[:200], "extensions": {"code": "TRANSPORT"}}]}
            codes = {(e.get("extensions") or {}).get("code") for e in d.get("errors") or []}
            if attempt == 0 and codes & {"INTERNAL_SERVER_ERROR", "TRANSPORT"}:
                # As client SDKs do: send the same request again once, a second later
                # (the same ids, so it cannot apply twice).
                ledger.retried += 1
                ledger.retry_sample = ledger.retry_sample or str(d["errors"][0])[:200]
                await asyncio.sleep(1.0)
                continue
            return d
        return d

    async def like(
        self,
        ledger: Ledger,
        p: Person,
        cid: str,
        *,
        reaction: str = "LIKE",
        request_id: str | None = None,
        device: bool = True,
    ) -> tuple[str, int]:
        """("ok" | "same" | "limited" | "error", retryAfterMs)."""
        variables = {
            "id": cid,
            "r": reaction,
            "req": request_id,
            "dev": p.device if device else None,
        }
        d = await self.post(ledger, LIKE, variables, p.token, p.addr)
        return self._outcome(ledger, d, "like")

    async def unlike(self, ledger: Ledger, p: Person, cid: str) -> tuple[str, int]:
        d = await self.post(ledger, UNLIKE, {"id": cid, "dev": p.device}, p.token, p.addr)
        return self._outcome(ledger, d, "unlike")

    @staticmethod
    def _outcome(ledger: Ledger, d: dict[str, Any], field_name: str) -> tuple[str, int]:
        errors = d.get("errors")
        if errors:
            ext = errors[0].get("extensions") or {}
            if ext.get("code") == "RATE_LIMITED":
                ledger.likes_limited += 1
                return "limited", int(ext.get("retryAfterMs") or 1000)
            ledger.errors += 1
            ledger.sample_error = ledger.sample_error or str(errors[0])[:200]
            return "error", 0
        data = (d.get("data") or {}).get(field_name)
        if not data:
            return "error", 0
        if data["changed"] and field_name == "like":
            ledger.likes_acked += 1
        return ("ok" if data["changed"] else "same"), 0

    async def views(
        self, ledger: Ledger, token: str | None, addr: str, events: list[dict[str, Any]]
    ) -> list[bool]:
        """recordViews; per event, whether its session counted (so far)."""
        d = await self.post(ledger, VIEWS, {"in": events}, token, addr)
        got = (d.get("data") or {}).get("recordViews")
        if not got:
            if d.get("errors"):
                ledger.errors += 1
                ledger.sample_error = ledger.sample_error or str(d["errors"][0])[:200]
            return [False] * len(events)
        return [bool(x["decision"]["counted"]) for x in got]


class Sim:
    def __init__(self, api: Api, seconds: float, seed: int) -> None:
        self.api = api
        self.t0 = time.monotonic()
        self.until = self.t0 + seconds
        self.seed = seed
        self.book = OrganicBook()
        self.ledgers: dict[str, Ledger] = {}
        self.contents: dict[str, Content] = {}
        self._n = itertools.count()
        from resolvers.auth import issue_token

        self._issue = issue_token

    def token(self, user: str) -> str:
        return self._issue(SECRET, user, [], 24 * 3600)

    def uid(self, prefix: str) -> str:
        return f"{prefix}{next(self._n):07d}"

    def left(self) -> float:
        return self.until - time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but not past the end of the traffic."""
        await asyncio.sleep(max(0.0, min(seconds, self.left())))

    def ledger(self, name: str, what: str) -> Ledger:
        self.ledgers[name] = Ledger(name, what)
        return self.ledgers[name]

    def add_contents(
        self, ledger: Ledger, prefix: str, kind: str, n: int, rng: random.Random
    ) -> list[Content]:
        made: list[Content] = []
        for i in range(n):
            if kind == "SHORT":
                duration: int | None = rng.randrange(10_000, 60_000)
            elif kind == "VIDEO":
                duration = rng.randrange(90_000, 900_000)
            else:
                duration = None
            c = Content(f"{prefix}-{kind[0].lower()}{i:04d}", kind, duration)
            self.contents[c.cid] = c
            ledger.contents.append(c.cid)
            made.append(c)
        return made

    async def session(
        self,
        ledger: Ledger,
        p: Person,
        c: Content,
        steps: Sequence[tuple[float, int, int | None, float | None]],
        *,
        final: bool = True,
        organic: bool = False,
        session_id: str | None = None,
    ) -> bool:
        """One playback, event by event: ``steps`` are (sleep before, watchedMs,
        positionMs, visibleFraction); the last one is final when ``final``. Returns
        whether the server counted the session."""
        sid = session_id or self.uid("s")
        counted = False
        sent: list[tuple[int, float | None]] = []
        sends: list[float] = []
        for i, (pause, watched, pos, vis) in enumerate(steps):
            if pause > 0:
                await asyncio.sleep(pause)
            sends.append(time.monotonic())
            ev: dict[str, Any] = {
                "contentId": c.cid,
                "sessionId": sid,
                "eventId": f"{sid}-{i}",
                "watchedMs": watched,
                "platform": p.platform,
            }
            if p.device is not None:
                ev["deviceId"] = p.device
            if pos is not None:
                ev["positionMs"] = pos
            if vis is not None:
                ev["visibleFraction"] = vis
            if final and i == len(steps) - 1:
                ev["final"] = True
            (ok,) = await self.api.views(ledger, p.token, p.addr, [ev])
            counted = counted or ok
            sent.append((watched, vis))
        if counted:
            ledger.sessions_counted += 1
        if len(sends) > 1:
            shape = tuple(round((b - a) * 4) for a, b in itertools.pairwise(sends))
            per = ledger.shapes.setdefault(c.cid, {})
            per[shape] = per.get(shape, 0) + 1
        if organic:
            self.book.sessions += 1
            key = (p.actor, c.cid)
            if qualifies(c.kind, c.duration_ms, sent):
                self.book.qualifying_sessions += 1
                self.book.viewed.add(key)
            if counted:
                self.book.server_counted.add(key)
        return counted


# --- organic users -------------------------------------------------------------------


def lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(high, max(low, rng.lognormvariate(math.log(median), sigma)))


async def human_playback(
    sim: Sim, ledger: Ledger, p: Person, c: Content, watch_s: float, rng: random.Random
) -> bool:
    """A person's playback as a player SDK reports it: real elapsed play time since the
    previous event (pauses add none), the furthest position, sometimes a pause or a
    seek; heartbeats every ``p.hb_s`` with jitter, or one event at the end."""
    watch_s = min(watch_s, max(0.0, sim.left() - 1.0))
    if watch_s <= 0.3:
        return False
    duration = c.duration_ms or 10**9
    pause_at = rng.uniform(0.2, 0.8) * watch_s if rng.random() < 0.2 else None
    pause_s = rng.uniform(2.0, 12.0)
    seek_at = rng.uniform(0.2, 0.8) * watch_s if rng.random() < 0.15 else None
    seek_by = rng.choice([rng.randrange(5_000, 40_000), -rng.randrange(3_000, 15_000)])
    sid = sim.uid("s")
    pos = 0
    sent: list[tuple[int, float | None]] = []
    counted = False
    n = 0

    async def send(watched: int, final: bool) -> None:
        nonlocal counted, n
        ev: dict[str, Any] = {
            "contentId": c.cid,
            "sessionId": sid,
            "eventId": f"{sid}-{n}",
            "watchedMs": watched,
            "positionMs": min(pos, duration),
            "platform": p.platform,
            "final": final,
        }
        if p.device is not None:
            ev["deviceId"] = p.device
        n += 1
        (ok,) = await sim.api.views(ledger, p.token, p.addr, [ev])
        counted = counted or ok
        sent.append((watched, None))

    if p.sdk == "heartbeat":
        await send(0, False)
    played = 0.0  # seconds of play so far
    unsent = 0.0  # ... not yet reported
    last = time.monotonic()
    paused = seeked = False
    while played < watch_s - 1e-3:
        step = min(p.hb_s * rng.uniform(0.85, 1.15), watch_s - played)
        if pause_at is not None and not paused and played + step > pause_at:
            step = max(0.05, pause_at - played)
        await asyncio.sleep(step)
        now = time.monotonic()
        played += now - last
        unsent += now - last
        pos += int((now - last) * 1000)
        last = now
        if pause_at is not None and not paused and played >= pause_at - 1e-3:
            paused = True
            if p.sdk == "heartbeat":
                await send(int(unsent * 1000), False)
                unsent = 0.0
            await asyncio.sleep(min(pause_s, max(0.0, sim.left() - 1.0)))
            if p.sdk == "heartbeat":
                await send(0, False)  # the paused player's heartbeat: no watch time
            last = time.monotonic()
            continue
        if p.sdk == "heartbeat" and played < watch_s - 1e-3:
            await send(int(unsent * 1000), False)
            unsent = 0.0
            if seek_at is not None and not seeked and played >= seek_at:
                seeked = True
                pos = max(0, pos + seek_by)
    await send(int(unsent * 1000), True)
    sim.book.sessions += 1
    key = (p.actor, c.cid)
    if qualifies(c.kind, c.duration_ms, sent):
        sim.book.qualifying_sessions += 1
        sim.book.viewed.add(key)
    if counted:
        sim.book.server_counted.add(key)
        ledger.sessions_counted += 1
    return counted


async def human_feed(
    sim: Sim, ledger: Ledger, p: Person, posts: Sequence[Content], rng: random.Random
) -> list[Content]:
    """Scrolling a feed of posts: one impression (session) per card with its dwell
    and how much of it was on screen, sent in batches of a few cards as feed SDKs do.
    Returns the cards the person stopped on."""
    batch: list[dict[str, Any]] = []
    kept: list[tuple[Content, int, float]] = []
    stopped: list[Content] = []

    async def flush() -> None:
        if not batch:
            return
        counted = await sim.api.views(ledger, p.token, p.addr, list(batch))
        for (c, dwell, vis), ok in zip(kept, counted, strict=True):
            sim.book.sessions += 1
            key = (p.actor, c.cid)
            if qualifies(c.kind, c.duration_ms, [(dwell, vis)]):
                sim.book.qualifying_sessions += 1
                sim.book.viewed.add(key)
            if ok:
                sim.book.server_counted.add(key)
                ledger.sessions_counted += 1
        batch.clear()
        kept.clear()

    per_flush = rng.randint(3, 6)
    for c in posts:
        if sim.left() < 2:
            break
        if rng.random() < 0.35:  # scrolled past
            dwell_s, vis = rng.uniform(0.15, 0.7), rng.uniform(0.1, 0.6)
        else:
            dwell_s, vis = lognormal(rng, 2.0, 0.9, 0.4, 30.0), rng.uniform(0.5, 1.0)
        dwell_s = min(dwell_s, max(0.1, sim.left() - 1.5))
        t = time.monotonic()
        await asyncio.sleep(dwell_s)
        dwell = int((time.monotonic() - t) * 1000)
        sid = sim.uid("f")
        ev: dict[str, Any] = {
            "contentId": c.cid,
            "sessionId": sid,
            "eventId": f"{sid}-0",
            "watchedMs": dwell,
            "visibleFraction": round(vis, 3),
            "source": "FEED",
            "platform": p.platform,
            "final": True,
        }
        if p.device is not None:
            ev["deviceId"] = p.device
        batch.append(ev)
        kept.append((c, dwell, vis))
        if vis >= 0.5 and dwell >= 1500:
            stopped.append(c)
        if len(batch) >= per_flush:
            await flush()
    await flush()
    return stopped


async def organic_like(sim: Sim, ledger: Ledger, p: Person, c: Content, rng: random.Random) -> None:
    if p.token is None:
        return
    key = (p.user, c.cid)
    if sim.book.liked.get(key):
        return
    sim.book.liked[key] = True
    reaction = rng.choice(REACTIONS)
    for _ in range(3):
        outcome, wait_ms = await sim.api.like(ledger, p, c.cid, reaction=reaction)
        if outcome != "limited":
            break
        sim.book.likes_refused += 1
        await asyncio.sleep(min(wait_ms / 1000, 5.0))
    if rng.random() < 0.06 and sim.left() > 8:  # changed their mind
        await asyncio.sleep(rng.uniform(1.0, 5.0))
        sim.book.liked[key] = False
        await sim.api.unlike(ledger, p, c.cid)


@dataclass
class Taste:
    """How a person browses: the mix of kinds, how long they watch, how often they like."""

    mix: tuple[float, float, float] = (0.5, 0.2, 0.3)  # SHORT, VIDEO, POST
    short_median_s: float = 6.0
    video_median_s: float = 35.0
    like_p: float = 0.1
    think_median_s: float = 2.5
    items: float = 6.0  # per visit, mean
    visits: int = 2


def popular(rng: random.Random, pool: Sequence[Content]) -> Content:
    """Zipf-ish popularity: a few contents get most of the attention."""
    i = min(len(pool) - 1, int(len(pool) * rng.random() ** 2.2))
    return pool[i]


async def organic_person(
    sim: Sim,
    ledger: Ledger,
    p: Person,
    pools: dict[str, list[Content]],
    taste: Taste,
    rng: random.Random,
    start_s: float,
) -> None:
    await asyncio.sleep(start_s)
    for visit in range(taste.visits):
        if sim.left() < 4:
            return
        n = max(1, int(rng.expovariate(1 / taste.items)) + 1)
        for _ in range(n):
            if sim.left() < 3:
                return
            kind = rng.choices(("SHORT", "VIDEO", "POST"), weights=taste.mix)[0]
            if kind == "POST":
                cards = [popular(rng, pools["POST"]) for _ in range(rng.randint(4, 12))]
                for c in await human_feed(sim, ledger, p, cards, rng):
                    if rng.random() < taste.like_p:
                        await organic_like(sim, ledger, p, c, rng)
            else:
                c = popular(rng, pools[kind])
                if kind == "SHORT":
                    if rng.random() < 0.3:
                        watch = rng.uniform(0.3, 1.9)  # swiped away
                    else:
                        watch = lognormal(rng, taste.short_median_s, 0.8, 0.5, 90.0)
                else:
                    watch = lognormal(rng, taste.video_median_s, 0.9, 2.0, 600.0)
                await human_playback(sim, ledger, p, c, watch, rng)
                liked_after = 3.0 if kind == "SHORT" else 15.0
                if watch >= liked_after and rng.random() < taste.like_p:
                    await organic_like(sim, ledger, p, c, rng)
            await sim.sleep(lognormal(rng, taste.think_median_s, 0.8, 0.2, 30.0))
        if visit + 1 < taste.visits:
            await sim.sleep(rng.uniform(5.0, 40.0))


def organic(sim: Sim, pools: dict[str, list[Content]], seconds: float) -> list[Awaitable[None]]:
    """Campus NAT (hundreds of accounts on one address), homes, a carrier NAT of
    anonymous phones, a family tablet, heavy but honest users."""
    ledger = sim.ledgers["organic"]
    rng = random.Random(sim.seed)
    tasks: list[Awaitable[None]] = []
    spread = 0.5 * seconds

    def person(group: str, actor: str, device: str | None, addr: str, signed: bool) -> Person:
        r = rng.random()
        p = Person(
            actor=actor,
            token=sim.token(actor[2:]) if signed else None,
            device=device,
            addr=addr,
            sdk="on_close" if r < 0.3 else "heartbeat",
            hb_s=rng.choice((5.0, 10.0, 10.0, 15.0)),
            platform=rng.choice(("IOS", "ANDROID", "WEB", "WEB")),
        )
        sim.book.group_of[actor] = group
        ledger.actors.add(actor)
        return p

    def taste() -> Taste:
        return Taste(
            mix=rng.choice(((0.6, 0.1, 0.3), (0.3, 0.4, 0.3), (0.4, 0.2, 0.4))),
            short_median_s=rng.uniform(3.0, 10.0),
            video_median_s=rng.uniform(15.0, 60.0),
            like_p=rng.uniform(0.02, 0.25),
            think_median_s=rng.uniform(1.0, 5.0),
            items=rng.uniform(3.0, 10.0),
            visits=rng.choice((1, 1, 2, 3)),
        )

    campus = "198.18.7.1"
    for i in range(250):  # a campus: hundreds of students behind one address
        app = rng.random() < 0.6
        p = person("campus", f"u:stu{i:04d}", f"stu-phone-{i:04d}" if app else None, campus, True)
        tasks.append(organic_person(sim, ledger, p, pools, taste(), rng, rng.uniform(0, spread)))
    for i in range(100):  # at home, each their own address
        addr = f"203.0.113.{i + 1}"
        p = person("home", f"u:home{i:04d}", f"home-dev-{i:04d}", addr, True)
        tasks.append(organic_person(sim, ledger, p, pools, taste(), rng, rng.uniform(0, spread)))
    carrier = "100.64.12.1"
    for i in range(120):  # anonymous phones behind a mobile carrier's NAT
        dev = f"cg-phone-{i:04d}"
        p = person("carrier", f"d:{dev}", dev, carrier, False)
        tasks.append(organic_person(sim, ledger, p, pools, taste(), rng, rng.uniform(0, spread)))
    for i in range(3):  # a family tablet: three accounts, one device, one home
        p = person("family", f"u:fam{i}", "family-tablet", "203.0.113.200", True)
        t = taste()
        t.visits = 1
        tasks.append(organic_person(sim, ledger, p, pools, t, rng, i * seconds / 3.5))
    for i in range(5):  # heavy but honest: binge-scrolling shorts, liking a lot
        p = person("heavy", f"u:heavy{i}", f"heavy-phone-{i}", f"203.0.113.{210 + i}", True)
        t = Taste(
            mix=(0.85, 0.0, 0.15),
            short_median_s=4.0,
            like_p=0.35,
            think_median_s=0.6,
            items=10_000,
            visits=1,
        )
        tasks.append(organic_person(sim, ledger, p, pools, t, rng, rng.uniform(0, 5)))
    # One heavy viewer with two screens: a TV playing videos back to back, and the
    # phone scrolling shorts, same account.
    tv = person("heavy", "u:heavy-tv", "heavy-tv-box", "203.0.113.220", True)
    tv.platform, tv.sdk = "TV", "heartbeat"
    phone = Person(tv.actor, tv.token, "heavy-tv-phone", tv.addr, "heartbeat", 10.0, "ANDROID")
    tv_taste = Taste(mix=(0, 1, 0), video_median_s=120, like_p=0.2, think_median_s=2, items=10_000)
    ph_taste = Taste(mix=(1, 0, 0), short_median_s=8, like_p=0.15, think_median_s=1, items=10_000)
    tasks.append(organic_person(sim, ledger, tv, pools, tv_taste, rng, 1.0))
    tasks.append(organic_person(sim, ledger, phone, pools, ph_taste, rng, 3.0))
    return tasks


# --- attacks -------------------------------------------------------------------------


async def until_done(sim: Sim, workers: Iterable[Awaitable[None]]) -> None:
    await asyncio.gather(*workers)


async def bot_likes(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Headless-browser accounts working through a target list as fast as the limits
    allow: open the page (its player sends the start event), like, next; a refused
    like waits ``retryAfterMs`` and tries again."""

    async def bot(i: int) -> None:
        user = f"blbot{i:03d}"
        p = Person(f"u:{user}", sim.token(user), f"bl-dev-{i:03d}", f"198.51.100.{10 + i % 2}")
        lg.actors.add(p.actor)
        order = list(targets)
        random.Random(i).shuffle(order)
        for c in order:
            if sim.left() < 1:
                return
            await sim.session(lg, p, c, [(0, 0, 0, None)], final=False)
            await asyncio.sleep(1.0)
            lg.like_attempts += 1
            while sim.left() > 1:
                outcome, wait_ms = await sim.api.like(lg, p, c.cid)
                if outcome != "limited":
                    break
                await sim.sleep(wait_ms / 1000)

    await until_done(sim, (bot(i) for i in range(10)))


async def like_spree(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """An API script: one account likes every target, back to back, no viewing,
    whatever the answers."""

    async def spree(i: int) -> None:
        user = f"spree{i}"
        p = Person(f"u:{user}", sim.token(user), f"spree-dev-{i}", f"198.51.100.{30 + i}")
        lg.actors.add(p.actor)
        await asyncio.sleep(5 + 20 * i)
        for c in targets:
            if sim.left() < 1:
                return
            lg.like_attempts += 1
            await sim.api.like(lg, p, c.cid)

    await until_done(sim, (spree(i) for i in range(3)))


async def click_farm(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """A phone farm behind one address: 15 phones, 10 accounts each; the worker at
    each phone switches account, opens each task (a target short), watches a few
    seconds (a person, so human timing) and likes it."""
    addr = "198.51.100.50"

    async def phone(k: int) -> None:
        rng = random.Random(1000 + k)
        dev = f"farm-phone-{k:02d}"
        for a in range(10):
            user = f"farm{k:02d}-{a}"
            p = Person(f"u:{user}", sim.token(user), dev, addr, "heartbeat", 2.0, "ANDROID")
            lg.actors.add(p.actor)
            await asyncio.sleep(rng.uniform(2.0, 5.0))  # switch account
            for c in rng.sample(targets, 5):
                if sim.left() < 6:
                    return
                lg.view_attempts += 1
                await human_playback_attack(sim, lg, p, c, rng.uniform(2.5, 6.0), rng)
                lg.like_attempts += 1
                await sim.api.like(lg, p, c.cid)
                await asyncio.sleep(rng.uniform(0.5, 2.0))

    await until_done(sim, (phone(k) for k in range(15)))


async def human_playback_attack(
    sim: Sim, lg: Ledger, p: Person, c: Content, watch_s: float, rng: random.Random
) -> bool:
    """Real elapsed time reported (start, heartbeats, final), no pauses or seeks."""
    steps: list[tuple[float, int, int | None, float | None]] = [(0, 0, 0, None)]
    done = 0.0
    while done < watch_s - 1e-3:
        step = min(p.hb_s * rng.uniform(0.9, 1.1), watch_s - done)
        done += step
        steps.append((step, int(step * 1000), int(done * 1000), None))
    return await sim.session(lg, p, c, steps)


async def account_farm(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Accounts sharing devices: 40 accounts taking turns on 5 emulators, each
    playing the target shorts with the script's timing (start, 3 s, end)."""
    users = [f"acf{i:03d}" for i in range(40)]
    tokens = {u: sim.token(u) for u in users}
    turn = itertools.count()

    async def emulator(k: int) -> None:
        dev = f"emu-{k}"
        while sim.left() > 5:
            n = next(turn)  # every account plays every target once, round by round
            user = users[n % len(users)]
            c = targets[(n // len(users)) % len(targets)]
            p = Person(f"u:{user}", tokens[user], dev, "198.51.100.60", platform="ANDROID")
            lg.actors.add(p.actor)
            lg.view_attempts += 1
            await sim.session(lg, p, c, [(0, 0, 0, None), (3.0, 3000, 3000, None)])
            await asyncio.sleep(0.5)

    await until_done(sim, (emulator(k) for k in range(5)))


def scripted_steps(
    hb_s: float, beats: int, watched_ms: int, tail_ms: int
) -> list[tuple[float, int, int | None, float | None]]:
    """A script's playback: start, ``beats`` heartbeats of exactly ``watched_ms`` each
    ``hb_s`` apart, an end ``tail_ms`` later; positions as a player's."""
    steps: list[tuple[float, int, int | None, float | None]] = [(0, 0, 0, None)]
    pos = 0
    for _ in range(beats):
        pos += watched_ms
        steps.append((hb_s, watched_ms, pos, None))
    pos += tail_ms
    steps.append((tail_ms / 1000, tail_ms, pos, None))
    return steps


async def view_bot(sim: Sim, lg: Ledger, targets: list[Content], addr: str) -> None:
    """A view bot behind one address (a mobile proxy on a carrier's NAT): 30 browser
    instances, each playback with a fresh device id (cookies cleared), the player's
    events replayed with the script's fixed timing: start, 3 heartbeats of 10 s,
    end at 31.5 s."""
    steps = scripted_steps(10.0, 3, 10_000, 1_500)

    async def instance(k: int) -> None:
        n = 0
        while sim.left() > 33:
            dev = f"vb-{k:02d}-{n:04d}-{random.getrandbits(24):06x}"
            n += 1
            p = Person(f"d:{dev}", None, dev, addr, platform="WEB")
            lg.actors.add(p.actor)
            lg.view_attempts += 1
            await sim.session(lg, p, targets[(k + n) % len(targets)], steps)

    await until_done(sim, (instance(k) for k in range(30)))


async def rotating_humanlike(sim: Sim, lg: Ledger, targets: list[Content], addr: str) -> None:
    """The same bot with randomised timing: each playback a fresh device id, a random
    heartbeat period, watch length and jitter, as a person's would vary."""

    async def instance(k: int) -> None:
        rng = random.Random(5000 + k)
        n = 0
        while sim.left() > 40:
            dev = f"rh-{k:02d}-{n:04d}-{rng.getrandbits(24):06x}"
            n += 1
            p = Person(f"d:{dev}", None, dev, addr, "heartbeat", rng.uniform(4.0, 12.0), "WEB")
            lg.actors.add(p.actor)
            lg.view_attempts += 1
            c = targets[(k + n) % len(targets)]
            await human_playback_attack(sim, lg, p, c, rng.uniform(31.0, 38.0), rng)
            await asyncio.sleep(rng.uniform(0.5, 3.0))

    await until_done(sim, (instance(k) for k in range(20)))


async def identical_many_addresses(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Scripted identical playback through a residential proxy pool: every playback
    from another address and a fresh device, one event saying 31 s watched
    (the first event is credited in full), final."""
    n = 0
    while sim.left() > 2:
        n += 1
        dev = f"ip-{n:05d}-{random.getrandbits(24):06x}"
        addr = f"172.{16 + n // 250 % 16}.{n % 250}.{1 + n // 4000 % 250}"
        p = Person(f"d:{dev}", None, dev, addr, platform="WEB")
        lg.actors.add(p.actor)
        lg.view_attempts += 1
        c = targets[n % len(targets)]
        asyncio.get_running_loop().create_task(sim.session(lg, p, c, [(0, 31_000, 31_000, None)]))
        await asyncio.sleep(0.5)


async def refresh_spam(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Reload scripts: 8 anonymous browsers (cookies kept) and 4 signed-in accounts
    each reloading one short: the player starts, its first heartbeat after 2.2 s
    passes the short's threshold, then the page reloads (no end event)."""

    async def reloader(p: Person, c: Content) -> None:
        while sim.left() > 3:
            lg.view_attempts += 1
            await sim.session(lg, p, c, [(0, 0, 0, None), (2.2, 2200, 2200, None)], final=False)
            await asyncio.sleep(0.3)

    people = []
    for i in range(8):
        dev = f"rs-browser-{i}"
        people.append(Person(f"d:{dev}", None, dev, f"203.0.113.{230 + i}", platform="WEB"))
    for i in range(4):
        user = f"rsuser{i}"
        people.append(
            Person(f"u:{user}", sim.token(user), f"rs-dev-{i}", f"203.0.113.{240 + i}", "heartbeat")
        )
    for p in people:
        lg.actors.add(p.actor)
    await until_done(sim, (reloader(p, targets[i % len(targets)]) for i, p in enumerate(people)))


async def scripted_autoplay(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Autoplay in hidden tabs: 15 accounts playing a playlist of videos, heartbeats
    of 10 s with the position stuck at 0 and nothing visible, 4 beats, end, next."""

    async def tab(i: int) -> None:
        user = f"auto{i:02d}"
        p = Person(f"u:{user}", sim.token(user), f"auto-dev-{i:02d}", "198.51.100.70", "heartbeat")
        lg.actors.add(p.actor)
        k = i
        while sim.left() > 42:
            c = targets[k % len(targets)]
            k += 1
            lg.view_attempts += 1
            steps: list[tuple[float, int, int | None, float | None]] = [(0, 0, 0, 0.0)]
            steps += [(10.0, 10_000, 0, 0.0)] * 4
            await sim.session(lg, p, c, steps)
            await asyncio.sleep(0.5)

    await until_done(sim, (tab(i) for i in range(15)))


async def replays(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Captured requests sent again: per target, one account's real playback (one
    event at the end, 35 s) and like, and one anonymous device's playback, then
    each replayed verbatim 40 times from a pool of addresses (same session and
    event ids, same like requestId), and the account's playback 40 times more
    under new session ids."""

    async def one(j: int, c: Content) -> None:
        user = f"replayer{j}"
        p = Person(f"u:{user}", sim.token(user), f"rp-dev-{j}", f"203.0.113.{100 + j}")
        anon = Person(f"d:rp-anon-{j}", None, f"rp-anon-{j}", f"203.0.113.{120 + j}")
        lg.actors.update({p.actor, anon.actor})
        await asyncio.sleep(36)  # the capture is a real 35 s playback
        captured = {
            "contentId": c.cid,
            "sessionId": f"rp-{j}",
            "eventId": f"rp-{j}-0",
            "watchedMs": 35_000,
            "positionMs": 35_000,
            "deviceId": p.device,
            "final": True,
        }
        captured_anon = dict(captured, sessionId=f"rpa-{j}", eventId=f"rpa-{j}-0")
        captured_anon["deviceId"] = anon.device
        req = f"rp-like-{j}"
        for who, ev in ((p, captured), (anon, captured_anon)):
            lg.view_attempts += 1
            if (await sim.api.views(lg, who.token, who.addr, [ev]))[0]:
                lg.sessions_counted += 1
        lg.like_attempts += 1
        await sim.api.like(lg, p, c.cid, request_id=req)
        for r in range(40):
            if sim.left() < 2:
                return
            addr = f"192.0.2.{1 + (r * 7 + j) % 250}"
            lg.view_attempts += 3
            await sim.api.views(lg, p.token, addr, [captured])
            await sim.api.views(lg, None, addr, [captured_anon])
            renamed = dict(captured, sessionId=f"rp-{j}-{r}", eventId=f"rp-{j}-{r}-0")
            await sim.api.views(lg, p.token, addr, [renamed])
            lg.like_attempts += 1
            await sim.api.like(lg, Person(p.actor, p.token, p.device, addr), c.cid, request_id=req)
            await asyncio.sleep(1.0)

    await until_done(sim, (one(j, c) for j, c in enumerate(targets)))


async def fake_accounts(sim: Sim, lg: Ledger, targets: list[Content]) -> None:
    """Freshly made accounts, each liking one target once with no viewing, from a
    few datacenter addresses, no device id (straight to the API)."""
    n = 0
    while sim.left() > 1:
        user = f"fresh{n:05d}"
        p = Person(f"u:{user}", sim.token(user), None, f"198.51.100.{80 + n % 3}")
        lg.actors.add(p.actor)
        lg.like_attempts += 1
        c = targets[n % len(targets)]
        n += 1
        asyncio.get_running_loop().create_task(sim.api.like(lg, p, c.cid, device=False))
        await asyncio.sleep(0.6)


# --- the run -------------------------------------------------------------------------

# (name, what, prefix, {kind: count})
CLASSES: list[tuple[str, str, dict[str, int]]] = [
    ("organic", "organic users (campus NAT, homes, carrier NAT, family tablet, heavy users)",
     {"SHORT": 200, "VIDEO": 60, "POST": 120}),
    ("bot_likes", "bot likes: 10 headless accounts liking targets as fast as allowed",
     {"SHORT": 160}),
    ("like_spree", "like spree: 3 accounts each liking 300 posts back to back, no viewing",
     {"POST": 300}),
    ("click_farm", "click farm: 15 phones x 10 accounts, watch a few s and like, one address",
     {"SHORT": 20}),
    ("account_farm", "account farm: 40 accounts taking turns on 5 devices, scripted plays",
     {"SHORT": 10}),
    ("view_bot", "view bot: fresh device id per play, identical playback, behind the carrier NAT",
     {"VIDEO": 4}),
    ("identical_addrs", "identical one-event playback, every play from another address",
     {"VIDEO": 5}),
    ("refresh_spam", "refresh spam: 12 browsers/accounts reloading a short every ~2.5 s",
     {"SHORT": 3}),
    ("autoplay", "scripted autoplay: hidden tabs, position stuck at 0, nothing visible",
     {"VIDEO": 8}),
    ("replays", "replays of captured view and like requests (verbatim and renamed)",
     {"VIDEO": 5}),
    ("fake_accounts", "fake accounts: fresh accounts each liking once, no viewing",
     {"POST": 10}),
    ("rotating_humanlike", "rotating device ids behind one address, randomised human-like timing",
     {"VIDEO": 4}),
]  # fmt: skip


async def register(sim: Sim, api: Api, service: str) -> None:
    lg = Ledger("register", "")
    items = [
        {"contentId": c.cid, "creatorId": f"creator-{c.cid.split('-')[0]}", "kind": c.kind}
        | ({"durationMs": c.duration_ms} if c.duration_ms else {})
        for c in sim.contents.values()
    ]
    for i in range(0, len(items), 500):
        d = await api.post(lg, REGISTER, {"in": items[i : i + 500]}, service, "127.0.0.1")
        if d.get("errors") or not d.get("data"):
            raise SystemExit(f"registerContents failed: {str(d)[:500]}")


async def read_counts(api: Api, cids: list[str]) -> dict[str, tuple[int, int, int, int]]:
    lg = Ledger("read", "")
    out: dict[str, tuple[int, int, int, int]] = {}
    for i in range(0, len(cids), 100):
        d = await api.post(lg, SUMMARIES, {"ids": cids[i : i + 100]}, None, "127.0.0.1")
        if not d.get("data"):
            raise SystemExit(f"engagementSummaries failed: {str(d)[:500]}")
        for s in d["data"]["engagementSummaries"]:
            integ = s["integrity"]
            out[s["contentId"]] = (
                s["likes"],
                s["views"],
                integ["suspectLikes"],
                integ["suspectViews"],
            )
    return out


async def read_tiers(api: Api, admin: str, actors: list[str]) -> dict[str, dict[str, Any]]:
    lg = Ledger("tiers", "")
    out: dict[str, dict[str, Any]] = {}
    # 9 per request: `reasons` and `evidence` count 100 items each against MAX_LIST_ITEMS.
    for i in range(0, len(actors), 9):
        chunk = actors[i : i + 9]
        fields = " ".join(
            f"a{j}: actorRisk(actor: {json.dumps(a)}) "
            "{ tier trust reasons evidence { key value } }"
            for j, a in enumerate(chunk)
        )
        d = await api.post(lg, f"{{ {fields} }}", {}, admin, "127.0.0.1")
        data = d.get("data") or {}
        for j, a in enumerate(chunk):
            if data.get(f"a{j}"):
                out[a] = data[f"a{j}"]
    return out


async def settle(
    api: Api, cids: list[str], t_end: float
) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, Any]]:
    """Poll every content's counts until they have not moved for QUIET_S (at most
    SETTLE_MAX_S + SETTLE_MARGIN_S after the traffic ended)."""
    samples: list[tuple[float, Any]] = []
    counts: dict[str, tuple[int, int, int, int]] = {}
    while True:
        counts = await read_counts(api, cids)
        now = time.monotonic() - t_end
        samples.append((now, tuple(sorted(counts.items()))))
        if quiet_for(samples) >= QUIET_S or now >= SETTLE_MAX_S + SETTLE_MARGIN_S:
            break
        await asyncio.sleep(POLL_S)
    changed = last_change(samples)
    return counts, {
        "last_change_s": None if changed is None else round(changed, 1),
        "polled_s": round(samples[-1][0], 1),
        "settled": quiet_for(samples) >= QUIET_S,
        "within_target": changed is None or changed <= SETTLE_MAX_S,
    }


async def simulate(base: str, seconds: float, seed: int) -> dict[str, Any]:
    from resolvers.auth import issue_token

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        api = Api(base, client)
        sim = Sim(api, seconds, seed)
        rng = random.Random(seed)
        made: dict[str, dict[str, list[Content]]] = {}
        for name, what, kinds in CLASSES:
            lg = sim.ledger(name, what)
            made[name] = {k: sim.add_contents(lg, name, k, n, rng) for k, n in kinds.items()}
        service = issue_token(SECRET, "bench-service", ["service"], 3600)
        admin = issue_token(SECRET, "bench-admin", ["admin"], 3600)
        await register(sim, api, service)
        print(f"# registered {len(sim.contents)} contents", flush=True)

        wall_start = time.time()
        sim.t0 = time.monotonic()
        sim.until = sim.t0 + seconds
        L = sim.ledgers
        jobs: list[Awaitable[None]] = [
            *organic(sim, made["organic"], seconds),
            bot_likes(sim, L["bot_likes"], made["bot_likes"]["SHORT"]),
            like_spree(sim, L["like_spree"], made["like_spree"]["POST"]),
            click_farm(sim, L["click_farm"], made["click_farm"]["SHORT"]),
            account_farm(sim, L["account_farm"], made["account_farm"]["SHORT"]),
            view_bot(sim, L["view_bot"], made["view_bot"]["VIDEO"], "100.64.12.1"),
            identical_many_addresses(sim, L["identical_addrs"], made["identical_addrs"]["VIDEO"]),
            refresh_spam(sim, L["refresh_spam"], made["refresh_spam"]["SHORT"]),
            scripted_autoplay(sim, L["autoplay"], made["autoplay"]["VIDEO"]),
            replays(sim, L["replays"], made["replays"]["VIDEO"]),
            fake_accounts(sim, L["fake_accounts"], made["fake_accounts"]["POST"]),
            rotating_humanlike(
                sim, L["rotating_humanlike"], made["rotating_humanlike"]["VIDEO"], "198.18.7.1"
            ),
        ]
        print(
            f"# traffic for {seconds:.0f} s: {len(jobs) - len(CLASSES) + 1} organic clients "
            f"and {len(CLASSES) - 1} attacks, concurrently",
            flush=True,
        )
        progress = asyncio.get_running_loop().create_task(report_progress(sim))
        await asyncio.gather(*jobs)
        # Sessions the attacks fired and forgot (identical_addrs, fake_accounts).
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        pending = [t for t in pending if t is not progress]
        if pending:
            await asyncio.wait(pending, timeout=30)
        progress.cancel()
        t_end = time.monotonic()
        traffic_s = t_end - sim.t0
        print(
            f"# traffic done after {traffic_s:.0f} s; waiting for the counts to settle", flush=True
        )
        counts, settled = await settle(api, list(sim.contents), t_end)
        print(f"# settle: {settled}", flush=True)
        organic_actors = sorted(L["organic"].actors)
        attack_actors = sorted(a for n, lg in L.items() if n != "organic" for a in lg.actors)
        tiers = await read_tiers(api, admin, organic_actors + attack_actors)
    return report(sim, counts, tiers, settled, traffic_s, wall_start)


async def report_progress(sim: Sim) -> None:
    while True:
        await asyncio.sleep(20)
        reqs = sum(lg.requests for lg in sim.ledgers.values())
        errs = sum(lg.errors for lg in sim.ledgers.values())
        print(f"  t={time.monotonic() - sim.t0:.0f}s requests={reqs} errors={errs}", flush=True)


def report(
    sim: Sim,
    counts: dict[str, tuple[int, int, int, int]],
    tiers: dict[str, dict[str, Any]],
    settled: dict[str, Any],
    traffic_s: float,
    wall_start: float,
) -> dict[str, Any]:
    classes: dict[str, Any] = {}
    tot_att = tot_through = 0
    for name, lg in sim.ledgers.items():
        pub_l = sum(counts[c][0] for c in lg.contents)
        pub_v = sum(counts[c][1] for c in lg.contents)
        sus_l = sum(counts[c][2] for c in lg.contents)
        sus_v = sum(counts[c][3] for c in lg.contents)
        legit = [sim.book.expected(c) for c in lg.contents]
        leg_l = sum(x[0] for x in legit)
        leg_v = sum(x[1] for x in legit)
        tier_count: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for a in lg.actors:
            t = tiers.get(a)
            tier = t["tier"] if t else "UNKNOWN"
            tier_count[tier] = tier_count.get(tier, 0) + 1
            for r in (t or {}).get("reasons", []):
                reasons[r] = reasons.get(r, 0) + 1
        base = {
            "what": lg.what,
            "contents": len(lg.contents),
            "actors": len(lg.actors),
            "actor_tiers": tier_count,
            "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "requests": lg.requests,
            "errors": lg.errors,
            "sample_error": lg.sample_error,
            "retried": lg.retried,
            "retry_sample": lg.retry_sample,
            "client_shapes": {
                c: {"sessions": sum(v.values()), "shapes": len(v), "largest": max(v.values())}
                for c, v in lg.shapes.items()
            },
            "likes_limited": lg.likes_limited,
        }
        if name == "organic":
            per_content = [
                (e[0] + e[1], counts[c][0] + counts[c][1])
                for c, e in zip(lg.contents, legit, strict=True)
            ]
            out = organic_outcome(leg_l + leg_v, pub_l + pub_v, per_content)
            likes_out = organic_outcome(
                leg_l,
                pub_l,
                [(e[0], counts[c][0]) for c, e in zip(lg.contents, legit, strict=True)],
            )
            views_out = organic_outcome(
                leg_v,
                pub_v,
                [(e[1], counts[c][1]) for c, e in zip(lg.contents, legit, strict=True)],
            )
            by_group: dict[str, dict[str, int]] = {}
            for a, g in sim.book.group_of.items():
                t = tiers.get(a)
                row = by_group.setdefault(
                    g, {"actors": 0, "TRUSTED": 0, "DOUBTFUL": 0, "EXCLUDED": 0}
                )
                row["actors"] += 1
                if t:
                    row[t["tier"]] += 1
            expected_not_counted = len(sim.book.viewed - sim.book.server_counted)
            classes[name] = base | {
                "engagement": out,
                "likes": likes_out,
                "views": views_out,
                "suspect_likes": sus_l,
                "suspect_views": sus_v,
                "sessions": sim.book.sessions,
                "qualifying_sessions": sim.book.qualifying_sessions,
                "viewer_content_pairs_expected": len(sim.book.viewed),
                "expected_views_not_counted_at_ingest": expected_not_counted,
                "counted_at_ingest_not_expected": len(sim.book.server_counted - sim.book.viewed),
                "likes_refused_at_ingest": sim.book.likes_refused,
                "groups": by_group,
            }
            continue
        likes = class_outcome(lg.like_attempts, pub_l, leg_l, sus_l, lg.likes_acked)
        views = class_outcome(lg.view_attempts, pub_v, leg_v, sus_v, lg.sessions_counted)
        attempted = lg.like_attempts + lg.view_attempts
        through = likes["through"] + views["through"]
        tot_att += attempted
        tot_through += through
        classes[name] = base | {
            "likes": likes,
            "views": views,
            "attempted": attempted,
            "through": through,
            "blocked_pct": share(attempted - through, attempted),
        }
    org = classes["organic"]["engagement"]
    shares = [c["blocked_pct"] for n, c in classes.items() if n != "organic" and c["attempted"]]
    overall = share(tot_att - tot_through, tot_att)
    return {
        "when": dt.datetime.fromtimestamp(wall_start, dt.UTC).isoformat(timespec="seconds"),
        "traffic_s": round(traffic_s, 1),
        "bucket_phase_s": round(wall_start % BUCKET_S, 1),
        "settle": settled,
        "classes": classes,
        "overall": {
            "attempted": tot_att,
            "through": tot_through,
            "blocked_pct": overall,
            "class_mean_blocked_pct": round(sum(shares) / len(shares), 2) if shares else None,
            "class_min_blocked_pct": min(shares) if shares else None,
            "organic_loss_pct": org["loss_pct"],
        },
        "verdicts": {
            "blocked_overall": "PASS" if (overall or 0) >= TARGET_BLOCKED else "MISS",
            "organic_loss": "PASS"
            if org["loss_pct"] is not None and org["loss_pct"] <= TARGET_ORGANIC_LOSS
            else "MISS",
            "settle_within_60s": "PASS" if settled["within_target"] else "MISS",
        },
    }


def print_report(doc: dict[str, Any]) -> None:
    print(
        "\n| class | attempted (likes + views) | got through | kept out | blocked | "
        "refused/not counted at ingest | excluded by integrity | actors excluded/doubtful |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, c in doc["classes"].items():
        if name == "organic":
            continue
        tiers = c["actor_tiers"]
        print(
            f"| {name} | {c['likes']['attempted']} + {c['views']['attempted']} | "
            f"{c['likes']['through']} + {c['views']['through']} | "
            f"{c['attempted'] - c['through']} | {c['blocked_pct']}% | "
            f"{c['likes']['refused_at_ingest']} + {c['views']['refused_at_ingest']} | "
            f"{c['likes']['excluded_by_integrity']} + {c['views']['excluded_by_integrity']} | "
            f"{tiers.get('EXCLUDED', 0)}/{tiers.get('DOUBTFUL', 0)} of {c['actors']} |"
        )
    o = doc["overall"]
    org = doc["classes"]["organic"]
    print(
        f"\noverall: {o['attempted']} attempted, {o['through']} through, "
        f"{o['blocked_pct']}% blocked (class mean {o['class_mean_blocked_pct']}%, "
        f"min {o['class_min_blocked_pct']}%)  [target >= {TARGET_BLOCKED}%: "
        f"{doc['verdicts']['blocked_overall']}]"
    )
    e = org["engagement"]
    print(
        f"organic: expected {e['expected']} (likes {org['likes']['expected']}, views "
        f"{org['views']['expected']}), public {e['public']}, lost {e['lost']} "
        f"({e['loss_pct']}%), over {e['over']}  [target <= {TARGET_ORGANIC_LOSS}%: "
        f"{doc['verdicts']['organic_loss']}]"
    )
    print(f"organic actors by group: {org['groups']}")
    print(
        f"settle: last change {doc['settle']['last_change_s']} s after the traffic "
        f"(polled {doc['settle']['polled_s']} s)  [<= {SETTLE_MAX_S:.0f} s: "
        f"{doc['verdicts']['settle_within_60s']}]"
    )
    print(f"run started {doc['bucket_phase_s']} s into a 5-minute bucket")
    retried = {n: c["retried"] for n, c in doc["classes"].items() if c["retried"]}
    errors = {n: c["errors"] for n, c in doc["classes"].items() if c["errors"]}
    print(f"sent again after a service error: {retried or 'none'}; failed: {errors or 'none'}")
    for name in ("view_bot", "refresh_spam", "autoplay"):
        shapes = doc["classes"][name]["client_shapes"]
        if shapes:
            print(f"{name}: client-side timing shapes per content {shapes}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.integrity", description=__doc__)
    p.add_argument("--seconds", type=float, default=180.0, help="traffic duration (180)")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    args = p.parse_args(argv)
    if args.seconds < 45:
        p.error("--seconds must be at least 45 (the scripted playbacks take 31-40 s)")
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found: run through bench/run.sh")
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="likeview-integrity-"))
    redis = Redis(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "RATE_LIMIT"))}
    env.update(
        {
            "REDIS_URL": redis.url,
            "JWT_SECRET": SECRET,
            # This process is the proxy: it presents each client's address.
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "false",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("INTEGRITY_RULES_PATH", None)
    srv = None
    try:
        srv = Serve(env, tmp / "server.log")
        print(f"# main.py serve on {srv.base} (embedded MongoDB, redis {redis.url})", flush=True)
        doc = asyncio.run(simulate(srv.base, args.seconds, args.seed))
    finally:
        if srv is not None:
            srv.stop()
        redis.stop()
    doc["seconds"] = args.seconds
    doc["server_log"] = str(tmp / "server.log")
    print_report(doc)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.json or RESULTS / "integrity-latest.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
