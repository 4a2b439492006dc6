"""Real processes for the failure drills: redis-server, redis-sentinel, the service
(`main.py serve`, `main.py worker`), and a TCP proxy that can go silent.

Every wait here is a bounded poll on a condition; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis.asyncio as aioredis

from main import WORKER_NAMES
from tests.e2e.conftest import REPO, _free_port, _wait_ready
from tests.e2e.helpers import LIVE_RATE, PARTITIONS, SECRET, Server

T = TypeVar("T")

REDIS_SERVER = shutil.which("redis-server")
# Debian's redis-sentinel is redis-server started in sentinel mode.
REDIS_SENTINEL = shutil.which("redis-sentinel") or REDIS_SERVER

# Every worker `main.py serve` runs in the embedded mode, for drills that move some
# of them to separate processes (WORKERS).
ALL_WORKERS = WORKER_NAMES


def need_redis() -> str:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary on PATH (make redis-server installs it)")
    return REDIS_SERVER


async def poll(
    probe: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    *,
    within: float,
    interval: float = 0.05,
    what: str,
) -> T:
    """``probe()`` until ``predicate`` holds; AssertionError after ``within`` s.
    A probe that raises counts as not yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        try:
            last = await probe()
            if predicate(last):
                return last
        except Exception as exc:
            last = exc
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not met within {within}s; last: {last!r}")
        await asyncio.sleep(interval)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, within: float = 15) -> None:
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"process exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # the interval of a bounded poll
    pytest.fail(f"nothing listens on {port} within {within}s:\n{log.read_text(errors='replace')}")


# --- redis-server and redis-sentinel -------------------------------------------------


@dataclass
class RedisProc:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url, decode_responses=True)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def start_redis(
    workdir: Path, *, replica_of: int | None = None, port: int | None = None
) -> RedisProc:
    exe = need_redis()
    port = port or _free_port()
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--dbfilename",
        f"dump-{port}.rdb",
    ]
    if replica_of is not None:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    log = workdir / f"redis-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    _wait_port(port, proc, log)
    return RedisProc(port, proc, log)


def start_sentinel(workdir: Path, master: str, master_port: int) -> RedisProc:
    """One sentinel (quorum 1) watching ``master``; it fails over after 1 s down."""
    port = _free_port()
    conf = workdir / f"sentinel-{port}.conf"
    # Sentinel rewrites its configuration file: it must be its own and writable.
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {master} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {master} 1000\n"
        f"sentinel failover-timeout {master} 5000\n"
        f"sentinel parallel-syncs {master} 1\n"
    )
    log = workdir / f"sentinel-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(REDIS_SENTINEL), str(conf), "--sentinel"], stdout=out, stderr=subprocess.STDOUT
        )
    _wait_port(port, proc, log)
    return RedisProc(port, proc, log)


# --- the service ---------------------------------------------------------------------


def service_env(prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        JWT_SECRET=SECRET,
        LIVE_MAX_UPDATES_PER_SECOND=str(LIVE_RATE),
        KEY_PREFIX=prefix,
        STREAM_PARTITIONS=str(PARTITIONS),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def serve(workdir: Path, env: dict[str, str]) -> Iterator[Server]:
    """``main.py serve`` on a free port with exactly ``env``."""
    port = _free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Proc(proc, log)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc, log)
        yield Server(
            f"http://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}/graphql",
            env.get("REDIS_URL", ""),
            env["KEY_PREFIX"],
            log,
        )
    finally:
        server.stop()


def start_worker(workdir: Path, env: dict[str, str], workers: str) -> Proc:
    """``main.py worker`` running only ``workers``, its metrics on a free port."""
    port = _free_port()
    log = workdir / f"worker-{port}.log"
    env = {**env, "WORKERS": workers, "METRICS_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Proc(proc, log, f"http://127.0.0.1:{port}/metrics")


def new_prefix() -> str:
    return f"drill{uuid.uuid4().hex[:10]}"


# --- metrics and the event log --------------------------------------------------------


def metric_values(text: str, name: str, **labels: str) -> list[float]:
    """Every sample of ``name`` whose labels include ``labels``."""
    out: list[float] = []
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            out.append(float(value))
    return out


async def scrape(client: httpx.AsyncClient, url: str) -> str:
    try:
        r = await client.get(url)
    except httpx.RemoteProtocolError:
        # A pooled connection idle for uvicorn's keep-alive (5 s, as long as drill
        # 4's scrape period) may be closed by the server as this GET goes out on it;
        # a GET is safe to send again, on a new connection.
        r = await client.get(url)
    r.raise_for_status()
    return r.text


def stream(prefix: str, partition: int) -> str:
    return f"{prefix}:{{p{partition}}}:events"


async def group_backlog(redis: aioredis.Redis, prefix: str, group: str) -> tuple[int, int]:
    """(entries not yet delivered, entries delivered and not acknowledged) of
    ``group`` over every partition."""
    lag = pending = 0
    for p in range(PARTITIONS):
        name = stream(prefix, p)
        if not await redis.exists(name):
            continue
        for g in await redis.xinfo_groups(name):
            if g["name"] == group:
                lag += int(g.get("lag") or 0)
                pending += int(g["pending"])
    return lag, pending


async def pending_of(redis: aioredis.Redis, prefix: str, group: str, consumer: str) -> int:
    n = 0
    for p in range(PARTITIONS):
        name = stream(prefix, p)
        if not await redis.exists(name):
            continue
        for c in await redis.xinfo_consumers(name, group):
            if c["name"] == consumer:
                n += int(c["pending"])
    return n


# --- a TCP proxy that can stop forwarding without closing ----------------------------


@dataclass
class _Pipe:
    writers: list[asyncio.StreamWriter]
    tasks: list[asyncio.Task[None]]
    frozen: bool = False
    # A replica's link to its primary (it sent REPLCONF or PSYNC).
    replication: bool = False


@dataclass
class SilentProxy:
    """127.0.0.1:port -> target. ``freeze()`` makes every open connection silent:
    bytes are read and dropped both ways, nothing is closed, no reset is sent (a
    dead NAT entry or a stuck middlebox). Connections opened later forward normally.
    ``refuse`` closes new connections at once (the target looks down)."""

    target_port: int
    port: int = 0
    accepted: int = 0
    refuse: bool = False
    _pipes: list[_Pipe] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self, *, replication_only: bool = False) -> int:
        """Silence every open connection (or only replicas' links); how many."""
        n = 0
        for pipe in self._pipes:
            if not pipe.frozen and (pipe.replication or not replication_only):
                pipe.frozen = True
                n += 1
        return n

    def drop_all(self) -> None:
        """Close every open connection (the target went away)."""
        for pipe in self._pipes:
            for w in pipe.writers:
                w.close()
        self._pipes.clear()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self._pipes:
            for t in pipe.tasks:
                t.cancel()
            for w in pipe.writers:
                w.close()
        await asyncio.gather(*(t for p in self._pipes for t in p.tasks), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pipe = _Pipe([writer, up_w], [])
        pipe.tasks = [
            asyncio.create_task(self._copy(reader, up_w, pipe, sniff=True)),
            asyncio.create_task(self._copy(up_r, writer, pipe)),
        ]
        self._pipes.append(pipe)

    @staticmethod
    async def _copy(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, pipe: _Pipe, *, sniff: bool = False
    ) -> None:
        try:
            while data := await src.read(65536):
                if sniff and not pipe.replication:
                    upper = data.upper()
                    pipe.replication = b"REPLCONF" in upper or b"PSYNC" in upper
                if pipe.frozen:
                    continue  # swallowed: the peer hears nothing, and no FIN
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not pipe.frozen:
                dst.close()


@contextlib.asynccontextmanager
async def silent_proxy(target_port: int) -> AsyncIterator[SilentProxy]:
    """The proxy runs on its own event loop in a thread: the drills' synchronous
    waits (a server starting) must not stall its forwarding. Its flags are plain
    attributes; ``freeze`` and ``drop_all`` run on its loop."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="silent-proxy", daemon=True)
    thread.start()
    proxy = asyncio.run_coroutine_threadsafe(SilentProxy(target_port).start(), loop).result(10)
    try:
        yield _OnLoop(proxy, loop)  # type: ignore[misc]
    finally:
        asyncio.run_coroutine_threadsafe(proxy.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class _OnLoop:
    """SilentProxy's interface, calling into the proxy's own loop."""

    def __init__(self, proxy: SilentProxy, loop: asyncio.AbstractEventLoop) -> None:
        self._proxy = proxy
        self._loop = loop

    @property
    def url(self) -> str:
        return self._proxy.url

    @property
    def port(self) -> int:
        return self._proxy.port

    @property
    def accepted(self) -> int:
        return self._proxy.accepted

    @property
    def refuse(self) -> bool:
        return self._proxy.refuse

    @refuse.setter
    def refuse(self, value: bool) -> None:
        self._proxy.refuse = value

    def _call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def freeze(self, *, replication_only: bool = False) -> int:
        return self._call(lambda: self._proxy.freeze(replication_only=replication_only))

    def drop_all(self) -> None:
        self._call(self._proxy.drop_all)


# --- load ----------------------------------------------------------------------------


@dataclass
class Load:
    """Likes by fresh users on ``contents``, ``concurrency`` at a time: what was
    acknowledged per content, and what failed (the drill decides if that is fine)."""

    client: httpx.AsyncClient
    contents: list[str]
    concurrency: int = 4
    acked: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    sent: int = 0

    async def run(self, stop: asyncio.Event, limit: int | None = None) -> None:
        async def one_runner(k: int) -> None:
            while not stop.is_set() and (limit is None or self.sent < limit):
                cid = self.contents[self.sent % len(self.contents)]
                self.sent += 1
                if await self.like_until_acked(cid, stop):
                    self.acked[cid] = self.acked.get(cid, 0) + 1

        await asyncio.gather(*(one_runner(k) for k in range(self.concurrency)))

    async def like_until_acked(self, cid: str, stop: asyncio.Event) -> bool:
        """One user's like, retried (a like is idempotent per user) until the
        service acknowledges it; False if it never did before ``stop``."""
        from tests.e2e.helpers import LIKE, own_address, token, uid

        user = uid("u")
        request = uid("r")
        for _ in range(200):
            try:
                r = await self.client.post(
                    "/graphql",
                    json={
                        "query": LIKE,
                        "variables": {"input": {"contentId": cid, "requestId": request}},
                    },
                    headers={"authorization": f"Bearer {token(user)}", **own_address(user)},
                )
                body = r.json()
                if r.status_code == 200 and not body.get("errors"):
                    return True
            except (httpx.TransportError, ValueError):
                pass
            self.failed += 1
            if stop.is_set():
                return False
            await asyncio.sleep(0.1)  # a retry's backoff, not a synchronisation
        return False

    @property
    def total(self) -> int:
        return sum(self.acked.values())


async def likes_of(client: httpx.AsyncClient, contents: list[str]) -> dict[str, int]:
    from tests.e2e.helpers import SUMMARIES, data_of, gql

    body = await gql(client, SUMMARIES, {"ids": contents})
    return {s["contentId"]: s["likes"] for s in data_of(body)["engagementSummaries"]}
