"""The webhook sender: every notification, POSTed to its creator's endpoints and the
deployment's, signed as Standard Webhooks says (domain/webhooks.py, docs/WEBHOOKS.md).

A pass does two things:

1. Queue: notifications the notifier left with ``webhook: "pending"`` are claimed
   one by one (``pending`` -> ``queueing``, atomically, so two senders never take
   the same one), get one delivery per active endpoint of their creator plus the
   deployment's, and become ``queued``. A delivery's id is
   ``<notification id>:<endpoint id>``, so a sender that died between the two steps
   costs nothing: the notification is claimed again after ``queue_lease`` and the
   deliveries that exist already are not inserted twice.
2. Send: due deliveries are leased (their ``next_at`` moved past the lease, with
   this pass's token) and POSTed, ``concurrency`` at a time, each attempt bounded by
   ``timeout_s`` as a whole. The attempt is recorded and the delivery rescheduled,
   delivered, abandoned or failed (domain.webhooks.decide); a sender that dies
   mid-attempt leaves the delivery due again when the lease ends (at least once).

``run_once()`` does one pass and returns what it did; ``run(stop)`` repeats passes,
resting ``idle_s`` when one found nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from domain.ports import Clock
from domain.webhooks import (
    ABANDONED_REASON,
    DEFAULT_TIMEOUT_S,
    DEPLOYMENT_ENDPOINT_ID,
    GONE_REASON,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Outcome,
    classify,
    decide,
    delivery_id,
    disables_on_abandon,
    event_type,
    notification_body,
    sign_headers,
)

log = logging.getLogger(__name__)

USER_AGENT = "Likeview-Webhooks/1"
QUEUED = "queued"
INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class DeploymentEndpoint:
    """NOTIFY_WEBHOOK_URL and NOTIFY_WEBHOOK_SECRET: every notification goes there too."""

    url: str
    secret: str


@dataclass(slots=True)
class SenderReport:
    queued: int = 0  # notifications given their deliveries this pass
    created: int = 0  # deliveries created
    attempts: int = 0  # POSTs made
    delivered: int = 0
    retrying: int = 0
    abandoned: int = 0
    failed: int = 0  # ended without an attempt or by 410: their endpoint is gone
    disabled: list[str] = field(default_factory=list)  # endpoints disabled this pass

    @property
    def idle(self) -> bool:
        return not (self.queued or self.attempts or self.failed)


class WebhookStore(Protocol):
    """storage/mongo_webhooks.py's MongoWebhooks, as the sender uses it."""

    async def upsert_deployment(self, url: str, secret: str, now: datetime) -> Endpoint: ...

    async def claim_notifications(
        self, now: datetime, limit: int, *, stale_before: datetime, token: str
    ) -> list[dict[str, Any]]: ...

    async def mark_notifications(self, ids: Sequence[Any], state: str) -> None: ...

    async def active_endpoints(
        self, creator_ids: Iterable[str], *, deployment: bool
    ) -> list[Endpoint]: ...

    async def add_deliveries(self, docs: Sequence[dict[str, Any]]) -> int: ...

    async def claim_due(
        self, now: datetime, limit: int, *, lease_until: datetime, token: str
    ) -> list[Delivery]: ...

    async def endpoints(self, endpoint_ids: Sequence[str]) -> dict[str, Endpoint]: ...

    async def record_attempt(
        self,
        delivery: Delivery,
        token: str,
        attempt: dict[str, Any] | None,
        status: DeliveryStatus,
        next_at: datetime | None,
        first_attempt_at: datetime | None,
    ) -> bool: ...

    async def endpoint_succeeded(self, endpoint_id: str, at: datetime) -> None: ...

    async def endpoint_failed(self, endpoint_id: str) -> None: ...

    async def disable(
        self, endpoint_id: str, reason: str, *, unless_success_since: datetime | None = None
    ) -> bool: ...

    async def fail_pending(self, endpoint_id: str) -> None: ...


def http_client(timeout_s: float = DEFAULT_TIMEOUT_S, concurrency: int = 16) -> httpx.AsyncClient:
    """The sender's client: no redirects followed (a redirect could lead where the URL
    check refuses), the proxy settings of the environment honoured (HTTPS_PROXY: an
    egress proxy is where a deployment stops requests to its own network)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        headers={"user-agent": USER_AGENT},
    )


class WebhookSender:
    def __init__(
        self,
        store: WebhookStore,
        client_factory: Callable[[], httpx.AsyncClient] | None,
        clock: Clock,
        *,
        deployment: DeploymentEndpoint | None = None,
        batch: int = 100,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        concurrency: int = 16,
        idle_s: float = 1.0,
        queue_lease: timedelta = timedelta(minutes=2),
        rand: Callable[[], float] = random.random,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be positive")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._store = store
        self._factory = client_factory or (lambda: http_client(timeout_s, concurrency))
        self._clock = clock
        self._deployment = deployment
        self._batch = batch
        self._timeout = timeout_s
        self._concurrency = concurrency
        self._idle = idle_s
        self._queue_lease = queue_lease
        # A leased delivery is due again this long after its attempt started.
        self._lease = timedelta(seconds=2 * timeout_s + 60)
        self._rand = rand
        self._client: httpx.AsyncClient | None = None
        self._prepared = False

    async def _prepare(self) -> None:
        if self._deployment is not None:
            d = self._deployment
            endpoint = await self._store.upsert_deployment(d.url, d.secret, self._clock.now())
            if not endpoint.active:
                log.warning(
                    "the deployment's webhook endpoint is disabled (%s); set a new "
                    "NOTIFY_WEBHOOK_URL or NOTIFY_WEBHOOK_SECRET to enable it",
                    endpoint.disabled_reason,
                )
        self._prepared = True

    async def run_once(self, stop: asyncio.Event | None = None) -> SenderReport:
        """Queue what the notifier left pending, then send what is due, once."""
        if not self._prepared:
            await self._prepare()
        report = SenderReport()
        await self._queue(report)
        if stop is not None and stop.is_set():
            return report
        now = self._clock.now()
        token = uuid.uuid4().hex
        due = await self._store.claim_due(
            now, self._batch, lease_until=now + self._lease, token=token
        )
        if not due:
            return report
        endpoints = await self._store.endpoints(list({d.endpoint_id for d in due}))
        if self._client is not None:
            await self._send_all(self._client, due, endpoints, token, report)
        else:
            async with self._factory() as client:
                await self._send_all(client, due, endpoints, token, report)
        return report

    async def run(self, stop: asyncio.Event) -> None:
        async with self._factory() as client:
            self._client = client
            try:
                while not stop.is_set():
                    try:
                        report: SenderReport | None = await self.run_once(stop)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("webhook sender pass failed")
                        report = None
                    if report is None or report.idle:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self._idle)
            finally:
                self._client = None

    # --- queueing ---------------------------------------------------------------------

    async def _queue(self, report: SenderReport) -> None:
        now = self._clock.now()
        claimed = await self._store.claim_notifications(
            now, self._batch, stale_before=now - self._queue_lease, token=uuid.uuid4().hex
        )
        if not claimed:
            return
        endpoints = await self._store.active_endpoints(
            {str(n["creator_id"]) for n in claimed if n.get("creator_id") is not None},
            deployment=self._deployment is not None,
        )
        by_creator: dict[str | None, list[Endpoint]] = {}
        for e in endpoints:
            by_creator.setdefault(e.creator_id, []).append(e)
        everyone = by_creator.get(None, [])
        docs: list[dict[str, Any]] = []
        queued: list[Any] = []
        invalid: list[Any] = []
        for n in claimed:
            try:
                body = notification_body(n)
            except (KeyError, TypeError, ValueError):
                log.exception("notification %s has no webhook body; not sent", n.get("_id"))
                invalid.append(n["_id"])
                continue
            queued.append(n["_id"])
            creator = n.get("creator_id")
            own = by_creator.get(str(creator), []) if creator is not None else []
            for e in own + everyone:
                docs.append(
                    {
                        "_id": delivery_id(str(n["_id"]), e.endpoint_id),
                        "notification_id": str(n["_id"]),
                        "endpoint_id": e.endpoint_id,
                        "creator_id": e.creator_id,
                        "type": event_type(str(n["kind"])),
                        "body": body,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": [],
                        "attempt_count": 0,
                        "first_attempt_at": None,
                        "next_at": now,
                        "created_at": now,
                    }
                )
        report.created += await self._store.add_deliveries(docs)
        await self._store.mark_notifications(queued, QUEUED)
        await self._store.mark_notifications(invalid, INVALID)
        report.queued += len(queued)

    # --- sending ----------------------------------------------------------------------

    async def _send_all(
        self,
        client: httpx.AsyncClient,
        due: list[Delivery],
        endpoints: dict[str, Endpoint],
        token: str,
        report: SenderReport,
    ) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(delivery: Delivery) -> None:
            async with gate:
                try:
                    await self._send(
                        client, delivery, endpoints.get(delivery.endpoint_id), token, report
                    )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Left leased: due again when the lease ends.
                    log.exception("webhook delivery %s failed", delivery.delivery_id)

        await asyncio.gather(*(one(d) for d in due))
        # A delivery in flight when its endpoint was disabled recorded its own
        # outcome after the disabling failed the pending ones: fail it too. (One in
        # flight in another sender is failed when it next comes due.)
        for endpoint_id in report.disabled:
            await self._store.fail_pending(endpoint_id)

    async def _post(
        self, client: httpx.AsyncClient, endpoint: Endpoint, delivery: Delivery, at: datetime
    ) -> tuple[int | None, str | None]:
        """(status code, None) or (None, what went wrong). The answer's body is never
        read: a receiver cannot make the sender hold megabytes."""
        headers = sign_headers(endpoint.secret, delivery.notification_id, delivery.body, at)
        try:
            async with asyncio.timeout(self._timeout):
                async with client.stream(
                    "POST", endpoint.url, content=delivery.body.encode(), headers=headers
                ) as response:
                    return response.status_code, None
        except (TimeoutError, httpx.TimeoutException):
            return None, "timeout"
        except httpx.HTTPError as exc:
            return None, type(exc).__name__

    async def _send(
        self,
        client: httpx.AsyncClient,
        delivery: Delivery,
        endpoint: Endpoint | None,
        token: str,
        report: SenderReport,
    ) -> None:
        store = self._store
        if (
            endpoint is None
            or not endpoint.active
            or (endpoint.endpoint_id == DEPLOYMENT_ENDPOINT_ID and self._deployment is None)
        ):
            # Deleted or disabled since it was queued: it ends here, unsent.
            await store.record_attempt(
                delivery, token, None, DeliveryStatus.FAILED, None, delivery.first_attempt_at
            )
            report.failed += 1
            return
        at = self._clock.now()
        started = time.monotonic()
        status_code, error = await self._post(client, endpoint, delivery, at)
        duration_ms = round((time.monotonic() - started) * 1000)
        report.attempts += 1
        attempt: dict[str, Any] = {"at": at, "duration_ms": duration_ms}
        if status_code is not None:
            attempt["status_code"] = status_code
        else:
            attempt["error"] = error
        outcome = classify(status_code)
        first = delivery.first_attempt_at or at
        decision = decide(
            outcome,
            first_attempt_at=first,
            now=self._clock.now(),
            failures=delivery.attempt_count + 1,
            rand=self._rand(),
        )
        await store.record_attempt(
            delivery, token, attempt, decision.status, decision.next_at, first
        )
        eid = endpoint.endpoint_id
        if outcome is Outcome.DELIVERED:
            report.delivered += 1
            await store.endpoint_succeeded(eid, at)
            return
        await store.endpoint_failed(eid)
        if decision.status is DeliveryStatus.FAILED:
            report.failed += 1
            if await store.disable(eid, GONE_REASON):
                report.disabled.append(eid)
                log.warning("webhook endpoint %s disabled: %s", eid, GONE_REASON)
        elif decision.status is DeliveryStatus.ABANDONED:
            report.abandoned += 1
            log.warning("webhook delivery %s abandoned after 24 h", delivery.delivery_id)
            if disables_on_abandon(endpoint.last_success_at, first) and await store.disable(
                eid, ABANDONED_REASON, unless_success_since=first
            ):
                report.disabled.append(eid)
                log.warning("webhook endpoint %s disabled: %s", eid, ABANDONED_REASON)
        else:
            report.retrying += 1
