"""Drill 1 (the request side): Redis killed for 10 s under load, restarted empty.

A redis-server this test owns (no persistence) behind ``main.py serve`` (MongoDB
in process). Clients like distinct (user, content) pairs with a requestId each,
retrying the same requestId on a typed refusal; another records view batches,
another reads summaries. Mid-load Redis is SIGKILLed, stays down OUTAGE_S, and
comes back EMPTY on the same port.

Expected (docs/OPERATIONS.md, Failure drills): no answer is ever
INTERNAL_SERVER_ERROR; likes and views answer during the outage (MongoDB holds
them; the outbox relay republishes); a retry of a landed like answers
``changed: true``, during the outage and after the restart; registerContent
answers; reads fail fast with UNAVAILABLE. After settling, every content's likes
equal the successful pairs and its views the sessions answered as counted:
0 lost, 0 doubled. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.drills.procs import new_prefix, poll, serve, service_env, start_redis
from tests.e2e.helpers import data_of, gql, like, register, service_token

OUTAGE_S = 10.0
CONTENTS = 8
LIKE_CLIENTS = 4
# Load shape, not synchronisation: each client's pause between pairs.
LIKE_PACE_S = 0.03
VIEW_PACE_S = 0.1
READ_PACE_S = 0.2
MAX_ATTEMPTS = 60
RETRYABLE = {"UNAVAILABLE", "IDEMPOTENCY_KEY_IN_USE", "RATE_LIMITED"}

SUMMARIES = """query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) {
  contentId likes views } }"""
RECORD_MANY = """mutation($v: [ViewInput!]!) { recordViews(inputs: $v) {
  contentId sessionId decision { counted reason } } }"""
REGISTER = """mutation($i: RegisterContentInput!) { registerContent(input: $i) { contentId } }"""


def code_of(body: dict[str, Any]) -> str:
    if not body.get("errors"):
        return "OK"
    return str((body["errors"][0].get("extensions") or {}).get("code"))


@dataclass
class Tally:
    """What the clients saw: every attempt's outcome by operation and code."""

    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    liked: dict[str, set[str]] = field(default_factory=dict)
    counted_sessions: dict[str, set[str]] = field(default_factory=dict)
    likes_done: int = 0
    unanswered: list[str] = field(default_factory=list)

    def note(self, op: str, body: dict[str, Any]) -> str:
        code = code_of(body)
        self.codes[(op, code)] += 1
        return code


async def retrying(tally: Tally, op: str, call: Any, what: str) -> dict[str, Any] | None:
    """``call()`` until it answers without a retryable error; None if it never did."""
    for _ in range(MAX_ATTEMPTS):
        try:
            body = await call()
        except httpx.TransportError:
            tally.codes[(op, "TRANSPORT")] += 1
            await asyncio.sleep(0.2)  # a client's back-off
            continue
        code = tally.note(op, body)
        if code not in RETRYABLE:
            return body
        wait_ms = (body["errors"][0].get("extensions") or {}).get("retryAfterMs", 200)
        await asyncio.sleep(min(wait_ms, 500) / 1000)  # a client's back-off
    tally.unanswered.append(what)
    return None


async def like_client(
    http: httpx.AsyncClient,
    cids: list[str],
    pairs: itertools.count,
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        k = next(pairs)
        user, cid = f"d1-u{k // CONTENTS}", cids[k % CONTENTS]
        body = await retrying(
            tally,
            "like",
            lambda u=user, c=cid, r=f"r{k}": like(http, u, c, request_id=r, own_network=True),
            f"like {k}",
        )
        if body is not None:
            assert code_of(body) == "OK", body
            tally.liked.setdefault(cid, set()).add(user)
            tally.likes_done += 1
        await asyncio.sleep(LIKE_PACE_S)


async def view_client(
    http: httpx.AsyncClient, cids: list[str], tally: Tally, stop: asyncio.Event
) -> None:
    for n in itertools.count():
        if stop.is_set():
            return
        batch = [
            {
                "contentId": cids[(n + i) % CONTENTS],
                "sessionId": f"d1-s{n}-{i}",
                "deviceId": f"d1-dev{n}-{i}",
                "eventId": "e1",
                "watchedMs": 5_000,
            }
            for i in range(3)
        ]
        body = await retrying(
            tally, "recordViews", lambda b=batch: gql(http, RECORD_MANY, {"v": b}), f"views {n}"
        )
        if body is not None:
            for result in data_of(body)["recordViews"]:
                if result["decision"]["counted"]:
                    tally.counted_sessions.setdefault(result["contentId"], set()).add(
                        result["sessionId"]
                    )
        await asyncio.sleep(VIEW_PACE_S)


async def read_client(
    http: httpx.AsyncClient, cids: list[str], tally: Tally, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        tally.note("summaries", await gql(http, SUMMARIES, {"ids": cids}))
        await asyncio.sleep(READ_PACE_S)


async def test_redis_killed_under_load_then_restarted_empty(tmp_path: Path) -> None:
    redis = start_redis(tmp_path)
    env = service_env(
        new_prefix(),
        REDIS_URL=redis.url,
        OUTBOX_GRACE_S="1",
        REDIS_SOCKET_TIMEOUT_S="2",
        # "After settling" includes a reconciler pass: a counter rebuilt from a recount
        # while a write was landing in MongoDB takes that write as included (the
        # rebuild's as-of time) until the reconciler recounts the content.
        RECONCILE_INTERVAL_S="5",
    )
    try:
        with serve(tmp_path, env) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
                await _drill(http, lambda: start_redis(tmp_path, port=redis.port), redis)
    finally:
        redis.stop()


async def _drill(http: httpx.AsyncClient, restart: Any, redis: Any) -> None:
    cids = [await register(http, kind="SHORT") for _ in range(CONTENTS)]
    tally = Tally()
    stop = asyncio.Event()
    pairs = itertools.count()
    clients = [
        *(
            asyncio.create_task(like_client(http, cids, pairs, tally, stop))
            for _ in range(LIKE_CLIENTS)
        ),
        asyncio.create_task(view_client(http, cids, tally, stop)),
        asyncio.create_task(read_client(http, cids, tally, stop)),
    ]
    try:
        await poll(lambda: _value(tally.likes_done), lambda n: n >= 150, within=60, what="warm-up")
        before_outage = tally.likes_done

        redis.stop()  # SIGKILL
        loop = asyncio.get_running_loop()
        down_at = loop.time()
        # A like that lands in the outage replays on its retry: changed stays true.
        first = data_of(await like(http, "d1-dup", cids[0], request_id="dup"))["like"]
        again = data_of(await like(http, "d1-dup", cids[0], request_id="dup"))["like"]
        assert first["changed"] and again["changed"], (first, again)
        tally.liked.setdefault(cids[0], set()).add("d1-dup")
        # Registration stands on MongoDB alone.
        late = f"d1-late-{loop.time():.0f}"
        reg = await gql(
            http,
            REGISTER,
            {"i": {"contentId": late, "creatorId": "creator-1", "kind": "SHORT"}},
            bearer=service_token(),
        )
        assert code_of(reg) == "OK", reg
        # The outage lasts OUTAGE_S under load: the scenario, not a synchronisation.
        await asyncio.sleep(max(0.0, OUTAGE_S - (loop.time() - down_at)))
        during_outage = tally.likes_done - before_outage

        redis = restart()  # empty: no persistence
        await poll(
            lambda: http.get("/readyz"),
            lambda r: r.status_code == 200,
            within=30,
            what="ready after the restart",
        )
        # Redis lost the idempotency record: the document replays it.
        after = data_of(await like(http, "d1-dup", cids[0], request_id="dup"))["like"]
        assert after["changed"], after
        mark = tally.likes_done
        await poll(
            lambda: _value(tally.likes_done),
            lambda n: n >= mark + 150,
            within=60,
            what="load after",
        )
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert not tally.unanswered, tally.unanswered
    internal = {k: v for k, v in tally.codes.items() if k[1] == "INTERNAL_SERVER_ERROR"}
    assert not internal, tally.codes
    assert set(tally.codes) <= {
        ("like", "OK"),
        ("like", "UNAVAILABLE"),
        ("like", "IDEMPOTENCY_KEY_IN_USE"),
        ("recordViews", "OK"),
        ("summaries", "OK"),
        ("summaries", "UNAVAILABLE"),
    }, tally.codes

    expected = {
        cid: (len(tally.liked.get(cid, ())), len(tally.counted_sessions.get(cid, ())))
        for cid in [*cids, late]
    }

    async def counts() -> dict[str, tuple[int, int]]:
        body = await gql(http, SUMMARIES, {"ids": [*cids, late]})
        return {
            s["contentId"]: (s["likes"], s["views"]) for s in data_of(body)["engagementSummaries"]
        }

    settled = await poll(
        counts, lambda c: c == expected, within=60, what=f"exact counts {expected}"
    )
    print(
        "\ndrill 1:",
        f"likes answered {tally.likes_done} (during the outage {during_outage}),",
        f"outcomes {dict(sorted(tally.codes.items()))},",
        f"likes counted {sum(v[0] for v in settled.values())},",
        f"views counted {sum(v[1] for v in settled.values())}",
    )


async def _value(n: int) -> int:
    return n
