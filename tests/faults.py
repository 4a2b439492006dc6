"""Fault injection for the failure drills (tests/drills/): a MongoDB that stops
answering and a TCP proxy that slows or stalls Redis (tests/drills/procs.py has
the processes: redis-server, the service).

Nothing here sleeps to synchronise: waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pymongo.errors import ServerSelectionTimeoutError

# --- MongoDB: a database whose collections fail on demand ---------------------------


class MongoFaults:
    """The switch: which collections fail (``None``: none; an empty set: all)."""

    def __init__(self) -> None:
        self.failing: set[str] | None = None
        self.refused = 0

    def fail(self, collections: Iterable[str] = ()) -> None:
        self.failing = set(collections)

    def heal(self) -> None:
        self.failing = None

    def check(self, name: str) -> None:
        if self.failing is None or (self.failing and name not in self.failing):
            return
        self.refused += 1
        # What motor raises when no server answers within serverSelectionTimeoutMS.
        raise ServerSelectionTimeoutError(f"injected: no MongoDB server for {name}")


class FaultyCollection:
    """Every public method fails while its collection is failing. A real driver
    raises from the awaited call or the cursor's first batch; raising at the call
    is the same to a coroutine that awaits it at once, as every repository does."""

    def __init__(self, inner: Any, name: str, faults: MongoFaults) -> None:
        self._inner = inner
        self._name = name
        self._faults = faults

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value) or attr.startswith("_"):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._faults.check(self._name)
            return value(*args, **kwargs)

        return guarded


class FaultyDatabase:
    """Wraps a motor (or mongomock-motor) database; ``command`` (the readiness
    ping) fails whenever anything fails."""

    def __init__(self, inner: Any, faults: MongoFaults) -> None:
        self._inner = inner
        self.faults = faults

    def __getitem__(self, name: str) -> FaultyCollection:
        return FaultyCollection(self._inner[name], name, self.faults)

    async def command(self, *args: Any, **kwargs: Any) -> Any:
        if self.faults.failing is not None:
            self.faults.check("$cmd")
        return await self._inner.command(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


# --- Redis: a proxy that adds latency or stops forwarding ---------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``delay_s`` holds every chunk that
    long before passing it on (both ways), ``stalled`` holds them until cleared."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.delay_s = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    @stalled.setter
    def stalled(self, value: bool) -> None:
        if value:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while chunk := await src.read(65536):
                await self._flowing.wait()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)  # the injected latency itself
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()


@contextlib.asynccontextmanager
async def latency_proxy(target_port: int) -> AsyncIterator[TcpProxy]:
    """A TcpProxy on its own event loop in a thread, so the drills' synchronous
    waits (a server starting) never stall its forwarding. ``delay_s`` is a plain
    attribute its loop reads at every chunk."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="latency-proxy", daemon=True)
    thread.start()
    proxy = TcpProxy("127.0.0.1", target_port)
    asyncio.run_coroutine_threadsafe(proxy.__aenter__(), loop).result(10)
    try:
        yield proxy
    finally:
        proxy.delay_s = 0.0
        loop.call_soon_threadsafe(proxy._flowing.set)
        asyncio.run_coroutine_threadsafe(proxy.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
