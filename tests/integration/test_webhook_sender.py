"""The webhook sender against a real HTTP receiver on 127.0.0.1 (workers/webhooks.py).

The receiver is a small asyncio HTTP/1.1 server in the test's own loop. It answers
each (path, webhook-id) by a script (a status code, or "hang": no answer for longer
than the sender's timeout), verifies every signature with the endpoint's secret
through ``standardwebhooks``, and keeps every request. The sender runs pass by pass
(``run_once``) on a FakeClock that the test moves to each delivery's ``next_at``:
nothing sleeps to synchronise, only the "hang" waits out the sender's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from standardwebhooks import Webhook

from domain.identity import Actor
from domain.webhooks import (
    ABANDONED_REASON,
    DELIVERY_WINDOW,
    GONE_REASON,
    WebhookPorts,
    new_secret,
    register_endpoint,
)
from resolvers import webhooks as webhook_resolvers
from schema.webhooks import WebhookEndpoint
from storage.mongo_webhooks import MongoWebhooks, ensure_webhook_indexes
from tests.integration.doubles import FakeClock
from workers.webhooks import DeploymentEndpoint, WebhookSender

BOB = Actor("bob")
TIMEOUT_S = 0.3  # the sender's, per attempt
HANG_S = 1.5  # how long a "hang" leaves a request unanswered


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answer: int | str


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> the endpoint's secret
        self.scripts: dict[tuple[str, str], list[int | str]] = defaultdict(list)
        self.default = 204
        self.requests: list[Received] = []
        # With the FakeClock near the wall clock, verify() (which also refuses
        # timestamps over 5 minutes off) runs as a receiver would run it; otherwise
        # the signature alone is checked, by the same library.
        self.check_time = True
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{path}"

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _verify(self, path: str, headers: dict[str, str], body: bytes) -> bool:
        hook = Webhook(self.secrets[path])
        try:
            if self.check_time:
                hook.verify(body, headers)
            else:
                at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
                expected = hook.sign(headers["webhook-id"], at, body.decode())
                if expected not in headers["webhook-signature"].split(" "):
                    return False
        except Exception:
            return False
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in head[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            script = self.scripts[(path, headers.get("webhook-id", ""))]
            answer = script.pop(0) if script else self.default
            self.requests.append(
                Received(path, headers, body, self._verify(path, headers, body), answer)
            )
            if answer == "hang":
                await asyncio.sleep(HANG_S)
            else:
                head_out = f"HTTP/1.1 {answer} X\r\nContent-Length: 0\r\nConnection: close\r\n"
                writer.write(head_out.encode() + b"\r\n")
                await writer.drain()
        finally:
            writer.close()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
async def receiver():
    async with Receiver() as r:
        yield r


@pytest.fixture
async def store(mongo_db):
    await ensure_webhook_indexes(mongo_db)
    await ensure_webhook_indexes(mongo_db)  # idempotent
    return MongoWebhooks(mongo_db)


@pytest.fixture
def wall_clock():
    """A FakeClock at the wall clock's time (so receivers' verify() accepts the
    timestamps), moved only by the test."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


async def add_endpoint(store, clock, receiver, path, creator=BOB):
    ports = WebhookPorts(store, clock, allow_insecure_local=True)
    endpoint = await register_endpoint(ports, creator, receiver.url(path))
    receiver.secrets[path] = endpoint.secret
    return endpoint


async def notify(db, clock, nid, creator="bob", kind="MILESTONE", **payload):
    await db["notifications"].insert_one(
        {
            "_id": nid,
            "creator_id": creator,
            "content_id": "v1",
            "kind": kind,
            "payload": payload or {"metric": "likes", "threshold": 100},
            "text": f"notification {nid}",
            "created_at": clock.now(),
            "read_at": None,
            "seq": 1,
            "webhook": "pending",
        }
    )


def sender_for(store, clock, **kw):
    kw.setdefault("timeout_s", TIMEOUT_S)
    kw.setdefault("rand", lambda: 0.5)
    return WebhookSender(store, None, clock, **kw)


async def deliveries(db, **query):
    return {d["_id"]: d async for d in db["webhook_deliveries"].find(query)}


async def drain(db, sender, clock, *, max_passes=200):
    """Passes until no delivery is pending, moving the clock to the next one due."""
    for _ in range(max_passes):
        await sender.run_once()
        pending = [d async for d in db["webhook_deliveries"].find({"status": "pending"})]
        if not pending:
            return
        clock.at = max(clock.at, min(d["next_at"] for d in pending))
    pytest.fail("deliveries still pending")


async def test_retries_through_failures_and_a_timeout_to_one_signed_notification(
    mongo_db, store, receiver, wall_clock
):
    clock = wall_clock
    await add_endpoint(store, clock, receiver, "/bob")
    deploy_secret = new_secret()
    receiver.secrets["/all"] = deploy_secret
    sender = sender_for(
        store, clock, deployment=DeploymentEndpoint(receiver.url("/all"), deploy_secret)
    )
    receiver.scripts[("/bob", "n1")] = [500, 500, "hang"]  # then the default, 204
    await notify(mongo_db, clock, "n1")
    await notify(mongo_db, clock, "n2", kind="FIRST_LIKE", actor="alice")

    first = await sender.run_once()
    assert (first.queued, first.created, first.attempts) == (2, 4, 4)
    assert (first.delivered, first.retrying) == (3, 1)
    await drain(mongo_db, sender, clock)

    # n1 to bob: 500, 500, a timeout, 204, each attempt recorded.
    d = (await deliveries(mongo_db))[f"n1:{(await store.list_for('bob'))[0].endpoint_id}"]
    assert d["status"] == "delivered"
    assert [a.get("status_code", a.get("error")) for a in d["attempts"]] == [
        500,
        500,
        "timeout",
        204,
    ]
    assert d["attempts"][2]["duration_ms"] >= TIMEOUT_S * 1000 * 0.9
    times = [a["at"] for a in d["attempts"]]
    assert times == sorted(times) and times[-1] - times[0] < timedelta(minutes=1)

    # Every request verified with its endpoint's secret; one webhook-id, one body.
    assert len(receiver.requests) == 4 + 1 + 2
    assert all(r.verified for r in receiver.requests)
    to_bob_n1 = [r for r in receiver.to("/bob") if r.headers["webhook-id"] == "n1"]
    assert len(to_bob_n1) == 4 and len({r.body for r in to_bob_n1}) == 1
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in receiver.requests:
        bodies[r.headers["webhook-id"]].add(r.body)
        assert json.loads(r.body)["data"]["id"] == r.headers["webhook-id"]
    assert {k: len(v) for k, v in bodies.items()} == {"n1": 1, "n2": 1}  # same bytes everywhere
    assert bodies["n1"] != bodies["n2"]
    n2 = json.loads(next(iter(bodies["n2"])))
    assert n2["type"] == "notification.first_like"
    assert n2["data"]["payload"] == {"actor": "alice"}
    # Delivered once each where it was accepted: a receiver deduping by id sees two.
    accepted = {(r.path, r.headers["webhook-id"]) for r in receiver.requests if r.answer == 204}
    assert accepted == {("/bob", "n1"), ("/bob", "n2"), ("/all", "n1"), ("/all", "n2")}

    states = {n["_id"]: n["webhook"] async for n in mongo_db["notifications"].find()}
    assert states == {"n1": "queued", "n2": "queued"}
    bob = (await store.list_for("bob"))[0]
    assert bob.active and bob.consecutive_failures == 0 and bob.last_success_at is not None
    assert (await sender.run_once()).idle


class DiesBeforeMarking:
    """The store, failing where a sender dies between its deliveries and "queued"."""

    def __init__(self, inner: MongoWebhooks) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def mark_notifications(self, ids: Any, state: str) -> None:
        raise ConnectionError("the sender died here")


async def test_queueing_is_once_even_for_two_senders_and_a_dead_one(
    mongo_db, store, receiver, wall_clock
):
    clock = wall_clock
    await add_endpoint(store, clock, receiver, "/bob")
    for i in range(5):
        await notify(mongo_db, clock, f"n{i}")
    a, b = sender_for(store, clock), sender_for(store, clock)
    reports = await asyncio.gather(a.run_once(), b.run_once())
    assert sum(r.queued for r in reports) == 5
    assert sum(r.created for r in reports) == 5
    # A sender dies after claiming n9 ("queueing") and creating its delivery.
    await notify(mongo_db, clock, "n9")
    with pytest.raises(ConnectionError):
        await sender_for(DiesBeforeMarking(store), clock).run_once()
    assert len(await deliveries(mongo_db, notification_id="n9")) == 1
    assert (await mongo_db["notifications"].find_one({"_id": "n9"}))["webhook"] == "queueing"
    assert (await a.run_once()).queued == 0  # not stale yet: nobody takes it
    clock.advance(minutes=3)
    again = await a.run_once()
    assert (again.queued, again.created) == (1, 0)  # the delivery existed: nothing new
    await drain(mongo_db, a, clock)
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(ids) == ["n0", "n1", "n2", "n3", "n4", "n9"]  # each once
    assert all(r.verified for r in receiver.requests)


async def test_410_disables_the_endpoint_at_once(mongo_db, store, receiver, wall_clock):
    clock = wall_clock
    gone = await add_endpoint(store, clock, receiver, "/gone")
    kept = await add_endpoint(store, clock, receiver, "/kept")
    receiver.scripts[("/gone", "n1")] = [410]
    receiver.scripts[("/gone", "n2")] = [500]
    sender = sender_for(store, clock)
    await notify(mongo_db, clock, "n1")
    await notify(mongo_db, clock, "n2")
    report = await sender.run_once()
    assert report.failed == 1 and report.delivered == 2
    state = {e.endpoint_id: e for e in await store.list_for("bob")}
    assert not state[gone.endpoint_id].active
    assert state[gone.endpoint_id].disabled_reason == GONE_REASON
    assert state[kept.endpoint_id].active
    found = await deliveries(mongo_db, endpoint_id=gone.endpoint_id)
    # n2's retry to the gone endpoint failed with it, whichever was sent first.
    assert {d["status"] for d in found.values()} == {"failed"}
    await notify(mongo_db, clock, "n3")
    report = await sender.run_once()
    assert (report.created, report.delivered) == (1, 1)  # to /kept only
    clock.advance(hours=1)
    await drain(mongo_db, sender, clock)
    assert [r.headers["webhook-id"] for r in receiver.to("/gone")] in (["n1", "n2"], ["n2", "n1"])


async def test_a_delivery_failing_for_24_hours_is_abandoned_and_disables_its_endpoint(
    mongo_db, store, receiver
):
    clock = FakeClock()  # far from the wall clock: signatures checked without the time
    receiver.check_time = False
    down = await add_endpoint(store, clock, receiver, "/down")
    receiver.default = 500
    sender = sender_for(store, clock, rand=lambda: 1.0)  # the slowest schedule
    await notify(mongo_db, clock, "n1")
    started = clock.now()
    await drain(mongo_db, sender, clock)
    (d,) = (await deliveries(mongo_db)).values()
    assert d["status"] == "abandoned"
    assert len(d["attempts"]) == 34  # tests/unit/test_webhooks.py: the slowest schedule
    assert d["attempts"][-1]["at"] == started + DELIVERY_WINDOW
    assert {a["status_code"] for a in d["attempts"]} == {500}
    (endpoint,) = await store.list_for("bob")
    assert endpoint.endpoint_id == down.endpoint_id
    assert not endpoint.active and endpoint.disabled_reason == ABANDONED_REASON
    assert endpoint.consecutive_failures == 34
    assert all(r.verified for r in receiver.requests)
    assert {r.body for r in receiver.requests} == {receiver.requests[0].body}


async def test_an_endpoint_that_takes_other_notifications_stays_active(mongo_db, store, receiver):
    clock = FakeClock()
    receiver.check_time = False
    await add_endpoint(store, clock, receiver, "/picky")
    receiver.scripts[("/picky", "bad")] = [500] * 100  # this one it always refuses
    sender = sender_for(store, clock, rand=lambda: 1.0)
    await notify(mongo_db, clock, "bad")
    await sender.run_once()
    clock.advance(hours=2)
    await notify(mongo_db, clock, "good")  # accepted (204) during bad's retries
    await drain(mongo_db, sender, clock)
    found = {d["notification_id"]: d["status"] for d in (await deliveries(mongo_db)).values()}
    assert found == {"bad": "abandoned", "good": "delivered"}
    (endpoint,) = await store.list_for("bob")
    assert endpoint.active and endpoint.disabled_reason is None


async def test_deleted_and_unconfigured_endpoints_get_nothing_more(
    mongo_db, store, receiver, wall_clock
):
    clock = wall_clock
    bob = await add_endpoint(store, clock, receiver, "/bob")
    secret = new_secret()
    receiver.secrets["/all"] = secret
    receiver.scripts[("/bob", "n1")] = [500]
    receiver.scripts[("/all", "n1")] = [500]
    with_deployment = sender_for(
        store, clock, deployment=DeploymentEndpoint(receiver.url("/all"), secret)
    )
    await notify(mongo_db, clock, "n1")
    assert (await with_deployment.run_once()).retrying == 2
    ports = WebhookPorts(store, clock, allow_insecure_local=True)
    from domain.webhooks import delete_endpoint

    assert await delete_endpoint(ports, BOB, bob.endpoint_id)
    # The deployment's endpoint unset (a restart without NOTIFY_WEBHOOK_URL).
    without = sender_for(store, clock)
    clock.advance(minutes=5)
    report = await without.run_once()
    assert (report.attempts, report.failed) == (0, 1)  # bob's was failed by the delete
    found = {d["endpoint_id"]: d["status"] for d in (await deliveries(mongo_db)).values()}
    assert found == {bob.endpoint_id: "failed", "deployment": "failed"}
    assert len(receiver.requests) == 2


async def test_the_deployment_endpoint_is_reenabled_only_by_new_settings(store, wall_clock):
    clock = wall_clock
    secret = new_secret()
    first = await store.upsert_deployment("https://hooks.example.com/a", secret, clock.now())
    assert first.active and first.creator_id is None
    assert await store.disable("deployment", GONE_REASON)
    same = await store.upsert_deployment("https://hooks.example.com/a", secret, clock.now())
    assert not same.active  # a restart does not re-enable it
    moved = await store.upsert_deployment("https://hooks.example.com/b", secret, clock.now())
    assert moved.active and moved.url.endswith("/b") and moved.disabled_reason is None
    assert await store.list_for("bob") == []  # nobody's own


async def test_run_stops_promptly(mongo_db, store, receiver, wall_clock):
    await add_endpoint(store, wall_clock, receiver, "/bob")
    await notify(mongo_db, wall_clock, "n1")
    sender = sender_for(store, wall_clock, idle_s=30)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    for _ in range(200):
        if receiver.requests:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["n1"]


# --- the GraphQL fields (schema/webhooks.py, resolvers/webhooks.py) -----------------


@strawberry.type
class Query:
    webhook_endpoints: list[WebhookEndpoint] = strawberry.field(
        resolver=webhook_resolvers.webhook_endpoints
    )


@strawberry.type
class Mutation:
    register_webhook_endpoint: WebhookEndpoint = strawberry.mutation(
        resolver=webhook_resolvers.register_webhook_endpoint
    )
    delete_webhook_endpoint: bool = strawberry.mutation(
        resolver=webhook_resolvers.delete_webhook_endpoint
    )


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)


@dataclass
class Services:
    webhooks: Any


@dataclass
class Ctx:
    services: Services
    actor: Actor | None

    def user(self) -> Actor | None:
        return self.actor


async def test_graphql_fields(store, wall_clock):
    ports = WebhookPorts(store, wall_clock, allow_insecure_local=True, max_endpoints=2)

    async def run(query: str, actor: Actor | None, **variables: Any) -> Any:
        return await SCHEMA.execute(
            query, variable_values=variables, context_value=Ctx(Services(ports), actor)
        )

    register = "mutation($u: String!) { registerWebhookEndpoint(url: $u) { id url active secret } }"
    made = await run(register, BOB, u="http://127.0.0.1:9/hook")
    assert made.errors is None
    endpoint = made.data["registerWebhookEndpoint"]
    assert endpoint["secret"].startswith("whsec_") and endpoint["active"]
    listed = await run("{ webhookEndpoints { id secret disabledReason } }", BOB)
    assert listed.data == {
        "webhookEndpoints": [{"id": endpoint["id"], "secret": None, "disabledReason": None}]
    }
    assert (await run("{ webhookEndpoints { id } }", Actor("eve"))).data == {"webhookEndpoints": []}
    refused = await run(register, BOB, u="http://10.0.0.1/hook")
    assert refused.errors and refused.errors[0].original_error.code == "BAD_USER_INPUT"
    anonymous = await run(register, None, u="https://hooks.example.com/")
    assert anonymous.errors and anonymous.errors[0].original_error.code == "UNAUTHENTICATED"
    await run(register, BOB, u="https://hooks.example.com/2")
    full = await run(register, BOB, u="https://hooks.example.com/3")
    assert full.errors and "at most 2" in full.errors[0].message
    delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }"
    assert (await run(delete, Actor("eve"), id=endpoint["id"])).data == {
        "deleteWebhookEndpoint": False
    }
    assert (await run(delete, BOB, id=endpoint["id"])).data == {"deleteWebhookEndpoint": True}
    assert len((await run("{ webhookEndpoints { id } }", BOB)).data["webhookEndpoints"]) == 1
    unwired = await SCHEMA.execute(
        "{ webhookEndpoints { id } }", context_value=Ctx(Services(None), BOB)
    )
    assert unwired.errors and "not configured" in unwired.errors[0].message
