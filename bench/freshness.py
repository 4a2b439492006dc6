"""Analytics freshness under load: from an acknowledged like or counted view to its
minute bucket in contentAnalytics.

Runs in a thread beside a wrk run (scenario 4's view ingest): every ``interval`` s
it likes a probe content as a new user, or records a counted view of it as a new
viewer (alternately), then polls contentAnalytics (MINUTE, the last 10 minutes)
every 20 ms until the totals show it. The probe content is registered apart from
the load's contents, so nothing else moves its numbers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed } }"
VIEW = "mutation($v: [ViewInput!]!) { recordViews(inputs: $v) { decision { counted } } }"
TOTALS = """query($id: ID!, $r: TimeRange!) {
  contentAnalytics(contentId: $id, range: $r, granularity: MINUTE) {
    totals { likesAdded views } } }"""
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
        self.timeouts = 0
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
        r = await client.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(str(body["errors"][:1]))
        return dict(body["data"])

    async def _probe(self) -> None:
        cid = f"probe-{int(time.time())}"
        async with httpx.AsyncClient(timeout=10) as client:
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
                        "watchedMs": 1_500,  # a POST counts after 1 s
                    }
                    await self._gql(client, VIEW, {"v": [event]}, user)
                    field, want = "views", n // 2 + 1
                acked = time.monotonic()
                n += 1
                while True:
                    now = datetime.now(UTC)
                    window = {
                        "from": (now - timedelta(minutes=10)).isoformat(),
                        "to": (now + timedelta(minutes=1)).isoformat(),
                    }
                    data = await self._gql(client, TOTALS, {"id": cid, "r": window}, self.service)
                    if data["contentAnalytics"]["totals"][field] >= want:
                        self.lags_ms.append(1000 * (time.monotonic() - acked))
                        break
                    if time.monotonic() - acked > self.timeout:
                        self.timeouts += 1
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
