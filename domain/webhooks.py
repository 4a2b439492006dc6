"""Notification webhooks (Standard Webhooks): the rules, pure.

Each notification is POSTed to every active endpoint of its creator, and to the
deployment's endpoint (NOTIFY_WEBHOOK_URL), as the Standard Webhooks
specification says (https://www.standardwebhooks.com/):

- ``webhook-id``: the notification id, the same on every attempt and for every
  endpoint, so a receiver that dedupes by it never takes one notification for two,
  and never takes two notifications for one;
- ``webhook-timestamp``: the attempt's time, in whole seconds since the epoch;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
  with the endpoint's secret, made by the ``standardwebhooks`` library;
- the body: JSON ``{"type", "timestamp", "data"}``, built once when the delivery is
  queued and stored with it, so every retry sends the same bytes.

Delivery is at least once: retries back off exponentially with full jitter
(``backoff``) for 24 hours after the first attempt, then the delivery is abandoned
(``decide``). An endpoint is disabled at once when it answers 410 Gone, and when a
delivery to it is abandoned while nothing it was sent succeeded since that
delivery's first attempt (``disables_on_abandon``): 24 hours in which every attempt
failed. docs/WEBHOOKS.md says all of this for receivers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import json
import math
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from domain.errors import BadUserInput
from domain.identity import Actor, require_user
from domain.ports import Clock

# --- retries ------------------------------------------------------------------------

# The wait after the n-th failed attempt is drawn uniformly from
# [MIN_DELAY, min(MAX_DELAY, BASE_DELAY * 2**(n-1))] ("full jitter"): 5 s, 10 s,
# 20 s ... up to an hour, so retries of many deliveries spread out instead of
# arriving together when a receiver comes back. The floor keeps a draw near zero
# from retrying a failing receiver at once.
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
MIN_DELAY = timedelta(seconds=1)
# Attempts go on this long after the first one; the last is made at the deadline.
DELIVERY_WINDOW = timedelta(hours=24)
# One attempt's whole time (connect, send, answer), the WEBHOOK_TIMEOUT_S default.
DEFAULT_TIMEOUT_S = 10.0


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # queued or waiting for its next attempt
    DELIVERED = "delivered"  # an attempt got a 2xx
    FAILED = "failed"  # its endpoint answered 410, was disabled or deleted: not tried again
    ABANDONED = "abandoned"  # every attempt failed for DELIVERY_WINDOW


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"


def classify(status_code: int | None) -> Outcome:
    """What an attempt's answer means. ``None``: no answer (timeout, connection
    refused or reset, TLS failure). 2xx delivers; 410 Gone says the endpoint is
    gone for good; everything else is retried: 3xx too, as redirects are not
    followed (a redirect could lead a request where the URL check would refuse)."""
    if status_code is None:
        return Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRY


def backoff(failures: int, rand: float) -> timedelta:
    """The wait after the ``failures``-th failed attempt in a row (1 for the first),
    for ``rand`` drawn uniformly from [0, 1)."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    if not 0.0 <= rand <= 1.0:
        raise ValueError("rand must be in [0, 1]")
    # 2**(n-1) overflows nothing in Python, but the cap is reached at n = 11.
    ceiling = min(MAX_DELAY, BASE_DELAY * (2 ** min(failures - 1, 20)))
    return max(MIN_DELAY, ceiling * rand)


@dataclass(frozen=True, slots=True)
class Decision:
    status: DeliveryStatus
    next_at: datetime | None  # when to try again (PENDING only)


def decide(
    outcome: Outcome, *, first_attempt_at: datetime, now: datetime, failures: int, rand: float
) -> Decision:
    """A delivery's state after an attempt made at or before ``now``.

    ``failures`` counts the failed attempts of this delivery, this one included
    (a delivery stops at its first success). The next attempt is never later than
    ``first_attempt_at + DELIVERY_WINDOW``; a failure at or after that is the end.
    """
    if outcome is Outcome.DELIVERED:
        return Decision(DeliveryStatus.DELIVERED, None)
    if outcome is Outcome.GONE:
        return Decision(DeliveryStatus.FAILED, None)
    deadline = first_attempt_at + DELIVERY_WINDOW
    if now >= deadline:
        return Decision(DeliveryStatus.ABANDONED, None)
    return Decision(DeliveryStatus.PENDING, min(now + backoff(failures, rand), deadline))


def disables_on_abandon(last_success_at: datetime | None, first_attempt_at: datetime) -> bool:
    """An abandoned delivery disables its endpoint only if nothing sent to the
    endpoint succeeded since that delivery's first attempt: one payload a receiver
    keeps refusing must not cut off an endpoint that takes everything else."""
    return last_success_at is None or last_success_at < first_attempt_at


GONE_REASON = "answered 410 Gone"
ABANDONED_REASON = "every attempt failed for 24 hours"

# --- endpoints ----------------------------------------------------------------------

MAX_ENDPOINTS = 10
MAX_URL_CHARS = 2048
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# The deployment's endpoint (NOTIFY_WEBHOOK_URL) has this fixed id and no creator.
DEPLOYMENT_ENDPOINT_ID = "deployment"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    creator_id: str | None  # None: the deployment's, which receives every notification
    url: str
    secret: str
    active: bool
    created_at: datetime
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    last_success_at: datetime | None = None


def new_secret() -> str:
    """``whsec_`` and 32 random bytes in base64, the format Standard Webhooks libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def check_secret(secret: str) -> str:
    """A signing secret: ``whsec_`` and base64 of 24 to 64 bytes (the specification's
    bounds). Raises ValueError otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' and base64") from exc
    if not 24 <= len(raw) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return secret


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names without any lookup: an IPv6 literal, a dotted quad, or
    any other form the resolver would take as IPv4 ("2130706433", "0x7f.1", "127.1")."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _local_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def check_url(url: str, *, allow_insecure_local: bool = False) -> str:
    """A creator's endpoint URL, or BadUserInput.

    ``https://`` only, to a public host. The service makes these requests from inside
    the deployment, so a URL naming a loopback, private, link-local (cloud metadata at
    169.254.169.254), multicast or reserved address, or ``localhost``, would let any
    creator reach what only the service can reach (server-side request forgery). The
    check is on the URL as written, IP literals in every form the resolver accepts
    included; it does not resolve names, so a public name that resolves to a private
    address is not caught here: docs/WEBHOOKS.md says what a deployment should add.

    ``allow_insecure_local`` (WEBHOOK_ALLOW_INSECURE_LOCAL, for tests and local
    development) also accepts ``http://`` and ``https://`` to 127.0.0.1, ::1 and
    localhost, and nothing else private.
    """
    if not isinstance(url, str) or not url.strip():
        raise BadUserInput("url must be a non-empty string")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise BadUserInput(f"url is longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise BadUserInput("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BadUserInput(f"url is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise BadUserInput("url must start with https://")
    if not host:
        raise BadUserInput("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise BadUserInput("url must not carry a user name or password")
    if parts.fragment:
        raise BadUserInput("url must not have a fragment")
    local = host in LOCAL_HOSTS
    if allow_insecure_local and local:
        return url
    if scheme != "https":
        raise BadUserInput("url must start with https://")
    if _local_name(host):
        raise BadUserInput("url must not name a local host")
    address = _ip_literal(host)
    if address is not None and (not address.is_global or address.is_multicast):
        raise BadUserInput("url must not name a private, loopback or link-local address")
    return url


def check_deployment(url: str | None, secret: str | None) -> None:
    """NOTIFY_WEBHOOK_URL and NOTIFY_WEBHOOK_SECRET, for the settings (ValueError).

    The operator's own endpoint may be internal (http://notifier.internal), so only
    the scheme is checked, not the host."""
    if url is None:
        return
    if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError("NOTIFY_WEBHOOK_URL must be an http:// or https:// URL")
    if not secret:
        raise ValueError("NOTIFY_WEBHOOK_SECRET is required when NOTIFY_WEBHOOK_URL is set")
    check_secret(secret)


# --- messages -----------------------------------------------------------------------


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def iso(at: datetime) -> str:
    """Milliseconds, UTC, "Z": what MongoDB keeps of a time, so a body rebuilt from a
    stored notification is the same bytes."""
    return _utc(at).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def event_type(kind: str) -> str:
    return f"notification.{kind.lower()}"


def notification_body(notification: Mapping[str, Any]) -> str:
    """The body for a notification document (the ``notifications`` collection):
    compact JSON with sorted keys, a pure function of the document."""
    created = iso(notification["created_at"])
    data = {
        "id": str(notification["_id"]),
        "kind": str(notification["kind"]),
        "creator_id": notification["creator_id"],
        "content_id": notification.get("content_id"),
        "payload": _plain(notification.get("payload") or {}),
        "text": notification.get("text"),
        "created_at": created,
    }
    body = {"type": event_type(data["kind"]), "timestamp": created, "data": data}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed by ``standardwebhooks``."""
    at = _utc(at)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification for one endpoint (``webhook_deliveries``), as the sender reads it."""

    delivery_id: str  # "<notification id>:<endpoint id>": queued once, whoever queues it
    notification_id: str  # the webhook-id
    endpoint_id: str
    body: str  # built once, sent as it is on every attempt
    attempt_count: int  # attempts made; all failed while the delivery is pending
    first_attempt_at: datetime | None
    next_at: datetime


def delivery_id(notification_id: str, endpoint_id: str) -> str:
    return f"{notification_id}:{endpoint_id}"


# --- the creator's endpoints (GraphQL) ----------------------------------------------


class EndpointStore(Protocol):
    async def insert(self, endpoint: Endpoint) -> None: ...

    async def count_for(self, creator_id: str) -> int: ...

    async def list_for(self, creator_id: str) -> list[Endpoint]:
        """A creator's endpoints, oldest first."""

    async def delete(self, creator_id: str, endpoint_id: str) -> bool:
        """Remove the creator's endpoint (its pending deliveries fail); False if the
        creator has no such endpoint."""


@dataclass(frozen=True, slots=True)
class WebhookPorts:
    endpoints: EndpointStore
    clock: Clock
    # WEBHOOK_ALLOW_INSECURE_LOCAL: http:// and loopback hosts (tests, development).
    allow_insecure_local: bool = False
    max_endpoints: int = MAX_ENDPOINTS


async def register_endpoint(ports: WebhookPorts, actor: Actor | None, url: str) -> Endpoint:
    """A new endpoint of the signed-in user, with a new secret (shown once)."""
    user = require_user(actor)
    url = check_url(url, allow_insecure_local=ports.allow_insecure_local)
    limit = ports.max_endpoints
    if await ports.endpoints.count_for(user.user_id) >= limit:
        raise BadUserInput(f"at most {limit} webhook endpoints per creator")
    endpoint = Endpoint(
        endpoint_id=new_endpoint_id(),
        creator_id=user.user_id,
        url=url,
        secret=new_secret(),
        active=True,
        created_at=ports.clock.now(),
    )
    await ports.endpoints.insert(endpoint)
    # Two registrations at once may both pass the count: the later one goes.
    if await ports.endpoints.count_for(user.user_id) > limit:
        await ports.endpoints.delete(user.user_id, endpoint.endpoint_id)
        raise BadUserInput(f"at most {limit} webhook endpoints per creator")
    return endpoint


async def list_endpoints(ports: WebhookPorts, actor: Actor | None) -> Sequence[Endpoint]:
    user = require_user(actor)
    return await ports.endpoints.list_for(user.user_id)


async def delete_endpoint(ports: WebhookPorts, actor: Actor | None, endpoint_id: str) -> bool:
    """True when the signed-in user's endpoint was deleted; False when the user has no
    endpoint of that id (another creator's endpoint reads as absent)."""
    user = require_user(actor)
    if not isinstance(endpoint_id, str) or not endpoint_id or len(endpoint_id) > 128:
        raise BadUserInput("id must be a webhook endpoint id")
    if endpoint_id == DEPLOYMENT_ENDPOINT_ID:
        return False
    return await ports.endpoints.delete(user.user_id, endpoint_id)
