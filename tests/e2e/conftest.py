"""End-to-end fixtures: the real server as a subprocess.

``likeview_server`` runs ``python main.py serve`` against the session's private
redis-server (pytest-redis), with MongoDB in-process (MONGODB_URL unset), so the
workers run inside the server process exactly as in the embedded deployment.
Each module gets its own server and its own Redis key prefix, so nothing needs
flushing while a server runs and modules cannot see each other's counters.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tests.e2e.helpers import ALLOWED_ORIGINS, LIVE_RATE, PARTITIONS, SECRET, Server

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"server exited with {proc.returncode} before it was ready:\n"
                    f"{log_path.read_text(errors='replace')}"
                )
            try:
                r = client.get("/readyz")
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)  # the interval of a bounded poll, not a synchronisation
    pytest.fail(
        f"server not ready within {STARTUP_TIMEOUT_S}s (last: {last}):\n"
        f"{log_path.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def serving(redis_proc: Any, tmp_path_factory: Any, **extra_env: str) -> Iterator[Server]:
    """``python main.py serve`` on a free port, with ``extra_env`` over the defaults."""
    port = _free_port()
    redis_url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    # A Redis Cluster (tests/cluster/cluster.py) is named by its seed node.
    env["REDIS_CLUSTER_URL" if getattr(redis_proc, "cluster", False) else "REDIS_URL"] = redis_url
    env.update(
        JWT_SECRET=SECRET,
        LIVE_MAX_UPDATES_PER_SECOND=str(LIVE_RATE),
        ALLOWED_ORIGINS=",".join(ALLOWED_ORIGINS),
        KEY_PREFIX=prefix,
        STREAM_PARTITIONS=str(PARTITIONS),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env)
    log_path = tmp_path_factory.mktemp("likeview") / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, log_path)
        yield Server(base_url, f"ws://127.0.0.1:{port}/graphql", redis_url, prefix, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


if os.environ.get("LIKEVIEW_TEST_REDIS") == "cluster":
    # The e2e modules on a local Redis Cluster (make test-cluster) instead of one Redis.

    @pytest.fixture(scope="session")
    def redis_proc(tmp_path_factory: Any) -> Iterator[Any]:
        from tests.cluster.cluster import local_cluster

        with local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
            yield cluster


@pytest.fixture(scope="module")
def likeview_server(redis_proc, tmp_path_factory) -> Iterator[Server]:
    with serving(redis_proc, tmp_path_factory) as server:
        yield server


@pytest.fixture
async def http(likeview_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=likeview_server.base_url, timeout=15.0, limits=limits
    ) as client:
        yield client


@pytest.fixture
async def redis_probe(likeview_server: Server, redis_proc: Any) -> AsyncIterator[aioredis.Redis]:
    """Read-only looks at the server's Redis (this never flushes anything)."""
    client: Any = (
        RedisCluster.from_url(likeview_server.redis_url, decode_responses=True)
        if getattr(redis_proc, "cluster", False)
        else aioredis.Redis.from_url(likeview_server.redis_url, decode_responses=True)
    )
    try:
        yield client
    finally:
        await client.aclose()
