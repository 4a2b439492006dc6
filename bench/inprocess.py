"""CPU per request with no sockets: the ASGI app driven directly, in this process.

    .venv/bin/python -m bench.inprocess [--cards 50] [--requests 3000] [--mode feed|like]

Starts a private redis-server, opens the app (mongomock, in-process workers), registers
200 contents, seeds 1,000 likes, warms up, then times ``--requests`` requests with
``time.process_time``. The figure is the app's own CPU per request (workers included,
no HTTP server or socket): the "in process" figures of docs/PERFORMANCE.md. It varies
by a few percent from run to run; compare several runs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.procs import Redis

N_CONTENTS = 200
FEED = (
    "query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) "
    "{ contentId likes viewerReaction reactions { reaction count } } }"
)
LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed summary { likes } } }"
REGISTER = (
    "mutation($id: ID!) { registerContent(input: "
    '{contentId: $id, creatorId: "creator", kind: VIDEO}) { contentId } }'
)

Request = tuple[bytes, list[tuple[bytes, bytes]]]


async def call(app: Any, request: Request) -> bytes:
    body, headers = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


async def closed_loop(
    app: Any, make: Callable[[], Request], n_clients: int, n_requests: int
) -> list[float]:
    """``n_clients`` clients on this loop, each sending ``n_requests`` requests one
    after another; the latency of every request, in ms.

    A latency runs from when its client is ready to send (its previous answer came)
    to its answer: a request that needs no I/O runs to its end once started, so
    timing from its start would leave out the wait for the other clients' requests,
    which a socket would have queued."""
    latencies: list[float] = []

    async def client() -> None:
        ready = time.perf_counter()
        for _ in range(n_requests):
            # Sending over a socket hands the loop to the others first.
            await asyncio.sleep(0)
            await call(app, make())
            done = time.perf_counter()
            latencies.append(1000 * (done - ready))
            ready = done

    await asyncio.gather(*(client() for _ in range(n_clients)))
    return latencies


def post(query: str, variables: dict[str, Any], token: str) -> Request:
    body = orjson.dumps({"query": query, "variables": variables})
    return body, [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]


def address_of(who: str) -> str:
    """An address of ``who``'s own, for X-Forwarded-For (which the service believes
    from 127.0.0.1). Organic load of many users liking from one address is what the
    integrity worker excludes as a fake-account crowd."""
    digest = hashlib.sha256(who.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{digest[2]}"


def from_own_address(request: Request, who: str) -> Request:
    """``request`` as sent from a network of ``who``'s own (``address_of``)."""
    body, headers = request
    return body, [*headers, (b"x-forwarded-for", address_of(who).encode())]


async def measure(args: argparse.Namespace) -> None:
    import main
    from resolvers.auth import issue_token

    settings = main.Settings()
    app = main.create_app(settings)
    secret = settings.jwt_secret or main.DEV_JWT_SECRET
    service = issue_token(secret, "bench-service", ["service"])
    users = [issue_token(secret, f"u{i:05d}") for i in range(500)]
    rng = random.Random(7)

    def cid() -> str:
        return f"c{rng.randrange(N_CONTENTS):05d}"

    def request() -> Request:
        token = rng.choice(users)
        if args.mode == "like":
            return post(LIKE, {"id": cid()}, token)
        start = rng.randrange(N_CONTENTS)
        ids = [f"c{(start + j) % N_CONTENTS:05d}" for j in range(args.cards)]
        return post(FEED, {"ids": ids}, token)

    async with app.router.lifespan_context(app):
        for i in range(N_CONTENTS):
            await call(app, post(REGISTER, {"id": f"c{i:05d}"}, service))
        for _ in range(1000):
            await call(app, post(LIKE, {"id": cid()}, rng.choice(users)))
        sample = b""
        for _ in range(300):
            sample = await call(app, request())
        if b'"errors"' in sample:
            raise SystemExit(f"the request failed: {sample[:300]!r}")
        requests = [request() for _ in range(args.requests)]
        await asyncio.sleep(1)  # let the workers settle the seed
        cpu, wall = time.process_time(), time.perf_counter()
        for r in requests:
            await call(app, r)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    what = f"{args.cards}-card feed" if args.mode == "feed" else "like"
    print(
        f"{what}: CPU {1000 * cpu / args.requests:.3f} ms/request, "
        f"wall {1000 * wall / args.requests:.3f} ms/request ({args.requests} requests)"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    p.add_argument("--mode", choices=["feed", "like"], default="feed")
    p.add_argument("--cards", type=int, default=50, help="ids per feed request (1-100)")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument(
        "--redis-cluster-url", help="a running, empty Redis Cluster instead (bench/cluster.py)"
    )
    args = p.parse_args(argv)
    redis = None
    if args.redis_cluster_url:
        os.environ.pop("REDIS_URL", None)
        os.environ["REDIS_CLUSTER_URL"] = args.redis_cluster_url
    else:
        redis = Redis(Path(tempfile.mkdtemp(prefix="likeview-inprocess-")))
        os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("ACCESS_LOG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        import uvloop

        uvloop.run(measure(args))
    finally:
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    main()
