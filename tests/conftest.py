"""Shared fixtures: a private real Redis server per test session.

pytest-redis starts ``redis-server`` on a free port, so tests never touch a
database someone else uses. Where no redis-server binary exists, the tests
that need it skip and say why; fakeredis is only for the embedded mode.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

REDIS_SERVER = shutil.which("redis-server")

if REDIS_SERVER:
    from pytest_redis import factories

    redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None, timeout=30)  # type: ignore[arg-type]
else:  # pragma: no cover - depends on the machine

    @pytest.fixture(scope="session")
    def redis_proc():
        pytest.skip("no redis-server binary on PATH: real-Redis tests cannot run here")


@pytest.fixture
def redis_url(redis_proc) -> str:
    return f"redis://{redis_proc.host}:{redis_proc.port}/0"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    try:
        yield client
    finally:
        await client.flushall()
        await client.aclose()
