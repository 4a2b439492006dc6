"""The pure rules of notification webhooks (domain/webhooks.py): retry schedule,
answers, signatures, bodies, URL and secret checks, endpoint registration."""

from __future__ import annotations

import base64
import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from domain.errors import BadUserInput, Unauthenticated
from domain.identity import Actor
from domain.webhooks import (
    DELIVERY_WINDOW,
    MAX_DELAY,
    DeliveryStatus,
    Endpoint,
    Outcome,
    WebhookPorts,
    backoff,
    check_deployment,
    check_secret,
    check_url,
    classify,
    decide,
    delete_endpoint,
    disables_on_abandon,
    list_endpoints,
    new_secret,
    notification_body,
    register_endpoint,
    sign_headers,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


# --- retry schedule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "rand", "wait_s"),
    [
        (1, 1.0, 5),  # the ceiling doubles from 5 s
        (2, 1.0, 10),
        (3, 1.0, 20),
        (3, 0.5, 10),  # full jitter: uniform below the ceiling
        (4, 0.25, 10),
        (1, 0.5, 2.5),
        (1, 0.0, 1),  # never below a second
        (2, 0.01, 1),
        (10, 1.0, 2560),
        (11, 1.0, 3600),  # 5120 s capped at an hour
        (11, 0.5, 1800),
        (60, 1.0, 3600),
        (10_000, 0.75, 2700),  # no overflow however long it fails
    ],
)
def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling(failures, rand, wait_s):
    assert backoff(failures, rand) == timedelta(seconds=wait_s)


@pytest.mark.parametrize(("failures", "rand"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_backoff_refuses_nonsense(failures, rand):
    with pytest.raises(ValueError):
        backoff(failures, rand)


@pytest.mark.parametrize(
    ("outcome", "now", "failures", "status", "next_at"),
    [
        (Outcome.DELIVERED, T0, 1, DeliveryStatus.DELIVERED, None),
        (Outcome.DELIVERED, T0 + DELIVERY_WINDOW, 40, DeliveryStatus.DELIVERED, None),
        (Outcome.GONE, T0, 1, DeliveryStatus.FAILED, None),
        (Outcome.RETRY, T0, 1, DeliveryStatus.PENDING, T0 + 2.5 * S),
        (Outcome.RETRY, T0 + 60 * S, 4, DeliveryStatus.PENDING, T0 + 80 * S),
        # Never later than the deadline: the last attempt is made at it.
        (
            Outcome.RETRY,
            T0 + DELIVERY_WINDOW - 10 * S,
            30,
            DeliveryStatus.PENDING,
            T0 + DELIVERY_WINDOW,
        ),
        (Outcome.RETRY, T0 + DELIVERY_WINDOW, 31, DeliveryStatus.ABANDONED, None),
        (Outcome.RETRY, T0 + DELIVERY_WINDOW + S, 31, DeliveryStatus.ABANDONED, None),
    ],
)
def test_decide(outcome, now, failures, status, next_at):
    decision = decide(outcome, first_attempt_at=T0, now=now, failures=failures, rand=0.5)
    assert decision.status is status
    assert decision.next_at == next_at


def _schedule(rand) -> list[datetime]:
    """Every attempt's time for a receiver that always fails, attempts taking no time."""
    at, attempts = T0, [T0]
    while True:
        d = decide(Outcome.RETRY, first_attempt_at=T0, now=at, failures=len(attempts), rand=rand())
        if d.status is DeliveryStatus.ABANDONED:
            return attempts
        assert d.status is DeliveryStatus.PENDING and d.next_at is not None
        at = d.next_at
        attempts.append(at)


def test_the_slowest_schedule_tries_34_times_in_24_hours():
    # Waits of 5, 10 ... 2560 s (5115 s), then 22 of an hour, then one at the deadline.
    attempts = _schedule(lambda: 1.0)
    assert len(attempts) == 1 + 10 + 22 + 1
    assert attempts[-1] == T0 + DELIVERY_WINDOW


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_a_jittered_schedule_stays_in_its_bounds(seed):
    rng = random.Random(seed)
    attempts = _schedule(rng.random)
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    assert attempts[-1] == T0 + DELIVERY_WINDOW  # tried up to the end, not past it
    for n, wait in enumerate(waits[:-1], start=1):
        assert S <= wait <= min(MAX_DELAY, 5 * S * 2 ** min(n - 1, 12))
    # Each wait averages half its ceiling: more attempts than the slowest schedule.
    assert 34 < len(attempts) < 80
    assert attempts == _schedule(random.Random(seed).random)  # seeded: reproducible


@pytest.mark.parametrize(
    ("status_code", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (None, Outcome.RETRY),  # timeout, refused, reset
        (301, Outcome.RETRY),  # redirects are not followed
        (308, Outcome.RETRY),
        (400, Outcome.RETRY),
        (401, Outcome.RETRY),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (410, Outcome.GONE),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_classify(status_code, outcome):
    assert classify(status_code) is outcome


@pytest.mark.parametrize(
    ("last_success_at", "disables"),
    [
        (None, True),  # never took anything
        (T0 - S, True),  # nothing since this delivery's first attempt
        (T0, False),
        (T0 + timedelta(hours=3), False),  # took other notifications meanwhile
    ],
)
def test_an_abandoned_delivery_disables_only_an_endpoint_that_took_nothing(
    last_success_at, disables
):
    assert disables_on_abandon(last_success_at, T0) is disables


# --- signatures and bodies ----------------------------------------------------------


def _notification(**over):
    doc = {
        "_id": "n1",
        "creator_id": "bob",
        "content_id": "v1",
        "kind": "MILESTONE",
        "payload": {"metric": "likes", "threshold": 100, "at": T0},
        "text": "Your video reached 100 likes — 🎉",
        "created_at": T0,
        "read_at": None,
        "seq": 3,
        "webhook": "pending",
    }
    doc.update(over)
    return doc


def test_signature_round_trip_with_standardwebhooks_verify():
    secret = new_secret()
    body = notification_body(_notification())
    now = datetime.now(UTC)
    headers = sign_headers(secret, "n1", body, now)
    assert headers["webhook-id"] == "n1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["id"] == "n1"
    assert Webhook(secret).verify(body.encode(), headers)["type"] == "notification.milestone"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another endpoint's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("100", "101"), headers)  # tampered
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "n2"})  # replayed as another


def test_signature_is_the_specification_hmac():
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = sign_headers(secret, "msg_1", '{"a":1}', datetime.fromtimestamp(1_700_000_000, UTC))
    mac = hmac.new(b"k" * 32, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()


def test_the_body_is_a_pure_function_of_the_notification():
    body = notification_body(_notification())
    assert body == notification_body(_notification())
    # Field order, read state and a naive UTC time (a driver without tz_aware) change nothing.
    reordered = dict(reversed(list(_notification(read_at=T0, seq=9).items())))
    assert notification_body(reordered) == body
    assert notification_body(_notification(created_at=T0.replace(tzinfo=None))) == body
    parsed = json.loads(body)
    assert parsed == {
        "type": "notification.milestone",
        "timestamp": "2026-11-23T12:00:00.000Z",
        "data": {
            "id": "n1",
            "kind": "MILESTONE",
            "creator_id": "bob",
            "content_id": "v1",
            "payload": {"metric": "likes", "threshold": 100, "at": "2026-11-23T12:00:00.000Z"},
            "text": "Your video reached 100 likes — 🎉",
            "created_at": "2026-11-23T12:00:00.000Z",
        },
    }
    assert notification_body(_notification(_id="n2")) != body


# --- URLs and secrets ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/likeview",
        "https://hooks.example.com:8443/a/b?x=1",
        "HTTPS://Hooks.Example.com/",
        "https://8.8.8.8/hook",
        "https://[2001:4860:4860::8888]/hook",
        "https://localhost.example.com/",  # a public name that says localhost
    ],
)
def test_public_https_urls_are_accepted(url):
    assert check_url(url) == url
    assert check_url(url, allow_insecure_local=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "hooks.example.com",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "http://hooks.example.com/",  # not https
        "https:///nohost",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com/#frag",
        "https://hooks.example.com:99999/",
        "https://hooks.example .com/",
        "https://hooks.example.com/\nx",
        "https://" + "a" * 2050 + ".com/",
        # SSRF: loopback, private, link-local (cloud metadata), reserved, in every spelling
        "https://localhost/",
        "https://LOCALHOST./",
        "https://api.localhost/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://0.0.0.0/",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.1.10/",
        "https://100.64.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://224.0.0.1/",
    ],
)
def test_other_urls_are_refused(url):
    with pytest.raises(BadUserInput):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/hook", True),
        ("https://127.0.0.1/hook", True),
        ("http://localhost:9000/", True),
        ("http://[::1]:9000/", True),
        ("http://127.0.0.2/", False),  # loopback, but not the local host named
        ("http://10.0.0.1/", False),
        ("http://169.254.169.254/", False),
        ("http://hooks.example.com/", False),  # insecure is for local hosts only
        ("ftp://127.0.0.1/", False),
    ],
)
def test_insecure_local_urls_only_when_allowed(url, allowed):
    with pytest.raises(BadUserInput):
        check_url(url)
    if allowed:
        assert check_url(url, allow_insecure_local=True) == url
    else:
        with pytest.raises(BadUserInput):
            check_url(url, allow_insecure_local=True)


def test_new_secrets_are_whsec_and_32_random_bytes():
    a, b = new_secret(), new_secret()
    assert a != b
    assert check_secret(a) == a
    assert a.startswith("whsec_") and len(base64.b64decode(a[6:])) == 32


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "secret",
        base64.b64encode(b"k" * 32).decode(),  # no prefix
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"k" * 8).decode(),  # too short
        "whsec_" + base64.b64encode(b"k" * 65).decode(),  # too long
    ],
)
def test_bad_secrets_are_refused(secret):
    with pytest.raises(ValueError):
        check_secret(secret)


def test_the_deployment_endpoint_needs_a_secret():
    check_deployment(None, None)
    check_deployment("http://notifier.internal/hook", new_secret())  # operator's own: internal ok
    with pytest.raises(ValueError, match="NOTIFY_WEBHOOK_SECRET"):
        check_deployment("https://hooks.example.com/", None)
    with pytest.raises(ValueError):
        check_deployment("https://hooks.example.com/", "not-a-secret")
    with pytest.raises(ValueError, match="NOTIFY_WEBHOOK_URL"):
        check_deployment("ftp://hooks.example.com/", new_secret())


# --- registration -------------------------------------------------------------------


class MemoryEndpoints:
    def __init__(self) -> None:
        self.rows: dict[str, Endpoint] = {}

    async def insert(self, endpoint: Endpoint) -> None:
        self.rows[endpoint.endpoint_id] = endpoint

    async def count_for(self, creator_id: str) -> int:
        return sum(e.creator_id == creator_id for e in self.rows.values())

    async def list_for(self, creator_id: str) -> list[Endpoint]:
        return [e for e in self.rows.values() if e.creator_id == creator_id]

    async def delete(self, creator_id: str, endpoint_id: str) -> bool:
        e = self.rows.get(endpoint_id)
        if e is None or e.creator_id != creator_id:
            return False
        del self.rows[endpoint_id]
        return True


class Clock:
    def now(self) -> datetime:
        return T0


BOB, EVE = Actor("bob"), Actor("eve")


async def test_register_list_delete():
    ports = WebhookPorts(MemoryEndpoints(), Clock())
    made = await register_endpoint(ports, BOB, "https://hooks.example.com/bob")
    assert made.creator_id == "bob" and made.active and made.created_at == T0
    check_secret(made.secret)
    assert [e.endpoint_id for e in await list_endpoints(ports, BOB)] == [made.endpoint_id]
    assert await list_endpoints(ports, EVE) == []
    assert await delete_endpoint(ports, EVE, made.endpoint_id) is False  # not hers
    assert await delete_endpoint(ports, BOB, "deployment") is False
    assert await delete_endpoint(ports, BOB, made.endpoint_id) is True
    assert await delete_endpoint(ports, BOB, made.endpoint_id) is False


async def test_registration_needs_a_user_a_good_url_and_room():
    ports = WebhookPorts(MemoryEndpoints(), Clock(), max_endpoints=3)
    with pytest.raises(Unauthenticated):
        await register_endpoint(ports, None, "https://hooks.example.com/")
    with pytest.raises(Unauthenticated):
        await list_endpoints(ports, None)
    with pytest.raises(BadUserInput):
        await register_endpoint(ports, BOB, "http://127.0.0.1:9/")
    for i in range(3):
        await register_endpoint(ports, BOB, f"https://hooks.example.com/{i}")
    with pytest.raises(BadUserInput, match="at most 3"):
        await register_endpoint(ports, BOB, "https://hooks.example.com/4")
    await register_endpoint(ports, EVE, "https://hooks.example.com/eve")  # per creator
    local = WebhookPorts(MemoryEndpoints(), Clock(), allow_insecure_local=True)
    assert (await register_endpoint(local, BOB, "http://127.0.0.1:9/")).url == "http://127.0.0.1:9/"
