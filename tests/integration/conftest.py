from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis

from domain.catalog import register_content
from domain.contents import ContentKind
from domain.identity import Actor
from main import Settings, build_workers, open_runtime
from storage.embedded_mongo import open_embedded_client
from storage.mongo import open_client
from tests.integration.doubles import FakeClock

SERVICE = Actor("ingest", frozenset({"service"}))


class CountingCollection:
    """Counts every call a repository makes on a collection: one call, one query."""

    def __init__(self, inner: Any, name: str, counts: Counter) -> None:
        self._inner = inner
        self._name = name
        self._counts = counts

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if callable(value) and not attr.startswith("_"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self._counts[f"{self._name}.{attr}"] += 1
                return value(*args, **kwargs)

            return counted
        return value


class CountingDB:
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.counts: Counter = Counter()

    def __getitem__(self, name: str) -> CountingCollection:
        return CountingCollection(self._inner[name], name, self.counts)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


class RoundTrips:
    """Counts Redis round trips: a command or a whole pipeline is one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original_cmd = aioredis.Redis.execute_command
        original_pipe = aioredis.client.Pipeline.execute

        async def cmd(client: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original_cmd(client, *args, **kwargs)

        async def pipe(p: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original_pipe(p, *args, **kwargs)

        monkeypatch.setattr(aioredis.Redis, "execute_command", cmd)
        monkeypatch.setattr(aioredis.client.Pipeline, "execute", pipe)


@pytest.fixture
async def app_redis(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    yield client
    await client.flushall()
    await client.aclose()


@pytest.fixture
async def mongo_db():
    """mongomock-motor; or, when MONGODB_URL is set, a fresh database on that real
    server (dropped afterwards), so the same tests are the contract suite."""
    url = os.environ.get("MONGODB_URL")
    if not url:
        yield CountingDB(open_embedded_client()["likeview_test"])
        return
    client = open_client(url)
    name = f"likeview_test_{uuid.uuid4().hex[:12]}"
    try:
        yield CountingDB(client[name])
    finally:
        await client.drop_database(name)
        client.close()


@pytest.fixture
async def runtime(redis_url, app_redis, mongo_db):
    settings = Settings(redis_url=redis_url, jwt_secret="t" * 32)
    async with open_runtime(settings, db=mongo_db, redis=app_redis) as rt:
        rt.workers = build_workers(rt, "test-consumer")
        yield rt


@pytest.fixture
def deps(runtime):
    return runtime.deps


@pytest.fixture
def workers(runtime):
    return runtime.workers


@pytest.fixture
def clock(deps):
    """A clock the test moves (tests/integration/doubles.py)."""
    deps.clock = FakeClock()
    return deps.clock


@pytest.fixture
async def video(deps, clock):
    """A VIDEO of 10 minutes (v1) and a POST (p1), registered at the test clock's time."""
    await register_content(deps, SERVICE, "v1", "creator", ContentKind.VIDEO, 600_000)
    await register_content(deps, SERVICE, "p1", "creator", ContentKind.POST, None)
    return "v1"


@pytest.fixture
async def content(deps):
    await register_content(deps, SERVICE, "c1", "creator", ContentKind.VIDEO, 120_000)
    return "c1"
