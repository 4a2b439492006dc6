"""Freshness under load: from sending a like or counted view to its minute bucket in
contentAnalytics, and to the trending worker's ranking signals. Timed from the send,
not the acknowledgement, so that a write held at the ingest gate (domain/admission.py)
counts its wait.

Runs in a thread beside a wrk run (scenario 4's view ingest). Two probes, each on
a content of its own registered apart from the load's contents (so nothing else
moves its numbers), run side by side:

- analytics: every ``interval`` s it likes its content as a new user, or records a
  counted view of it as a new viewer (alternately), then polls contentAnalytics
  (MINUTE, the last 10 minutes) every 20 ms until the totals show it;
- trending: the same on its own content, polling rankingSignals every 20 ms until
  the trending worker has applied it: ``updatedAt`` at or after the mutation was
  sent (the worker may apply the event before the client has read the answer, so
  not the acknowledgement) and the last hour's rate times 60 at least the likes or
  views made so far (exact while they are all within the hour: the sliding window
  counts every minute inside it in full, and the probe runs for seconds). A probe
  of its own, not the analytics probe's content, so that a slow analytics worker
  does not thin out the trending samples.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.inprocess import address_of

LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed } }"
VIEW = "mutation($v: [ViewInput!]!) { recordViews(inputs: $v) { decision { counted } } }"
TOTALS = """query($id: ID!, $r: TimeRange!) {
  contentAnalytics(contentId: $id, range: $r, granularity: MINUTE) {
    totals { likesAdded views } } }"""
SIGNALS = """query($ids: [ID!]!) { rankingSignals(contentIds: $ids) {
  likesPerMinute { oneHour } viewsPerMinute { oneHour } updatedAt } }"""
REGISTER = (
    "mutation($id: ID!) { registerContent(input: "
    '{contentId: $id, creatorId: "probe-creator", kind: POST}) { contentId } }'
)


class FreshnessProbe:
    def __init__(
        self,
        base: str,
        service: str,
        users: list[str],
        seconds: float,
        interval: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.base = base
        self.service = service
        self.users = users
        self.seconds = seconds
        self.interval = interval
        self.timeout = timeout
        self.lags_ms: list[float] = []
        # From the send to the mutation's answer (a wait at the ingest gate is in it).
        self.acks_ms: list[float] = []
        self.timeouts = 0
        self.trend_lags_ms: list[float] = []
        self.trend_timeouts = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(self.seconds + self.timeout + 30)

    def _run(self) -> None:
        try:
            asyncio.run(self._probe())
        except Exception as exc:  # reported, not raised: the load run goes on
            self.error = f"{type(exc).__name__}: {exc}"

    async def _gql(
        self, client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
    ) -> dict[str, Any]:
        # Each probe user from a network of its own, as organic users are: new
        # accounts liking unseen from one address are a crowd the integrity worker
        # excludes, and an excluded like is not a like added.
        r = await client.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": address_of(token)},
        )
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(str(body["errors"][:1]))
        return dict(body["data"])

    async def _probe(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(self._analytics(client), self._trending(client))

    async def _analytics(self, client: httpx.AsyncClient) -> None:
        cid = f"probe-{int(time.time())}"
        await self._gql(client, REGISTER, {"id": cid}, self.service)
        deadline = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            user = self.users[n % len(self.users)]
            if n % 2 == 0:
                await self._gql(client, LIKE, {"id": cid}, user)
                field, want = "likesAdded", n // 2 + 1
            else:
                event = {
                    "contentId": cid,
                    "sessionId": f"{cid}-s{n}",
                    # A POST counts after 1 s seen at least half on screen.
                    "watchedMs": 1_500,
                    "visibleFraction": 1.0,
                }
                await self._gql(client, VIEW, {"v": [event]}, user)
                field, want = "views", n // 2 + 1
            self.acks_ms.append(1000 * (time.monotonic() - started))
            n += 1
            while True:
                now = datetime.now(UTC)
                window = {
                    "from": (now - timedelta(minutes=10)).isoformat(),
                    "to": (now + timedelta(minutes=1)).isoformat(),
                }
                data = await self._gql(client, TOTALS, {"id": cid, "r": window}, self.service)
                if data["contentAnalytics"]["totals"][field] >= want:
                    self.lags_ms.append(1000 * (time.monotonic() - started))
                    break
                if time.monotonic() - started > self.timeout:
                    self.timeouts += 1
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _trending(self, client: httpx.AsyncClient) -> None:
        cid = f"probe-trend-{int(time.time())}"
        await self._gql(client, REGISTER, {"id": cid}, self.service)
        deadline = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            user = self.users[n % len(self.users)]
            sent_ms = int(time.time() * 1000)
            if n % 2 == 0:
                await self._gql(client, LIKE, {"id": cid}, user)
                field = "likesPerMinute"
            else:
                # A POST counts after 1 s seen at least half visible (the shipped
                # view policy): without visibleFraction the view would never count.
                event = {
                    "contentId": cid,
                    "sessionId": f"{cid}-s{n}",
                    "watchedMs": 1_500,
                    "visibleFraction": 1.0,
                }
                await self._gql(client, VIEW, {"v": [event]}, user)
                field = "viewsPerMinute"
            want = n // 2 + 1
            n += 1
            while True:
                data = await self._gql(client, SIGNALS, {"ids": [cid]}, self.service)
                if signals_show(data["rankingSignals"][0], field, want, sent_ms):
                    self.trend_lags_ms.append(1000 * (time.monotonic() - started))
                    break
                if time.monotonic() - started > self.timeout:
                    self.trend_timeouts += 1
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))


def signals_show(signals: dict[str, Any], field: str, want: int, sent_ms: int) -> bool:
    """Whether a rankingSignals answer has taken in the ``want``-th like or view
    (``field``: likesPerMinute or viewsPerMinute) of a mutation sent at ``sent_ms``
    (ms since the epoch): changed by the worker since, and the last hour's rate
    times 60 (the count within the hour) at least ``want``. The rate is a float
    quotient, so 3 likes may read back as 2.9999999999999996: a millionth of slack."""
    updated = signals.get("updatedAt")
    if updated is None:
        return False
    updated_ms = datetime.fromisoformat(updated).timestamp() * 1000
    # updatedAt has the worker's clock in ms; the send time is this process's (one
    # machine, one clock): a ms of slack for the rounding of either.
    if updated_ms < sent_ms - 1:
        return False
    return bool(signals[field]["oneHour"] * 60 >= want - 1e-6)
