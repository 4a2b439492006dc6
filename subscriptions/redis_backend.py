"""A Redis pub/sub backend for broadcaster 0.3.1 that works with redis-py 8.

Two upstream defects of broadcaster 0.3.1 are fixed here:

* ``RedisBackend.subscribe`` wakes its listener before SUBSCRIBE has been
  sent; with redis-py 8 the listener then finds no subscription, leaves
  ``listen()`` and never wakes again, so nothing is delivered.
* A dead pub/sub connection is invisible: the listener task dies and
  ``next_published()`` waits forever. Here the failure is re-raised from
  ``next_published()`` so broadcaster's listener task ends with it and
  ``LiveHub`` can rebuild everything.

A pub/sub connection can also die silently: a proxy or a NAT that stops
forwarding without a reset leaves the socket open and quiet, and pushes just
stop. The listener therefore pings when it has heard nothing for half of
``health_check_s`` and fails when the PING goes unanswered for the other half,
so a dead connection is noticed within ``health_check_s`` (LIVE_PUBSUB_HEALTH_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from broadcaster import Event
from broadcaster._backends.redis import RedisBackend
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


class BackendClosedError(ConnectionError):
    """The pub/sub connection failed or was closed; build a new backend."""


class PubSubSilentError(TimeoutError):
    """The pub/sub connection stopped answering (no reset, no data, no PONG)."""


class FixedRedisBackend(RedisBackend):
    def __init__(
        self,
        url: str | None = None,
        *,
        health_check_s: float = 5.0,
        publish_client: aioredis.Redis | None = None,
        subscribe_client: aioredis.Redis | None = None,
    ) -> None:
        """From a URL, or from two clients (Redis Sentinel: storage/redis_sentinel.py);
        ``subscribe_client`` must not retry (see below)."""
        # Deliberately not calling super().__init__: its pub/sub client would
        # retry, and the listener below replaces the upstream one entirely.
        if health_check_s <= 0:
            raise ValueError("health_check_s must be positive")
        self._health_s = health_check_s
        if url is not None:
            # Bounded connects and handshakes: a silent peer must not hang a
            # reconnect (the health check covers only an established connection).
            timeouts: dict[str, Any] = {
                "socket_connect_timeout": health_check_s,
                "socket_timeout": health_check_s,
            }
            publish_client = aioredis.Redis.from_url(url, **timeouts)
            # redis-py would otherwise reconnect and resubscribe silently, losing
            # whatever was published meanwhile without anyone noticing. Failing
            # loudly lets the hub resync its subscribers.
            subscribe_client = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **timeouts)
        if publish_client is None or subscribe_client is None:
            raise ValueError("FixedRedisBackend needs a url or both clients")
        self._conn = publish_client
        self._sub_conn = subscribe_client
        self._pubsub = self._sub_conn.pubsub()
        self._ready = asyncio.Event()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listener: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._closed = False
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    async def connect(self) -> None:
        try:
            await self._pubsub.connect()
        except BaseException:
            await self.disconnect()
            raise
        self._listener = asyncio.create_task(self._pubsub_listener(), name="redis-pubsub-listener")

    async def disconnect(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            # Awaited so no "Task was destroyed but it is pending" at loop close.
            with contextlib.suppress(BaseException):
                await self._listener
        await self._close_connections()
        self._fail_waiters(BackendClosedError("backend disconnected"))

    async def subscribe(self, channel: str) -> None:
        self._raise_if_unusable()
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(confirmed)
        try:
            # The fix: only wake the listener once redis-py has recorded the
            # subscription, otherwise ``listen()`` exits immediately.
            await self._pubsub.subscribe(channel)
            self._ready.set()
            # Waiting for Redis's confirmation means a PUBLISH issued after
            # this returns is guaranteed to reach us.
            await confirmed
        finally:
            waiters = self._confirmations.get(channel, [])
            if confirmed in waiters:
                waiters.remove(confirmed)
            if not waiters:
                self._confirmations.pop(channel, None)

    async def unsubscribe(self, channel: str) -> None:
        # After a failure the connection is gone and the server has already
        # dropped every subscription; redis-py would reconnect just to send this.
        if self._closed or self._failure is not None:
            return
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        await self._conn.publish(channel, message)

    async def next_published(self) -> Event:
        self._raise_if_unusable()
        getter = asyncio.ensure_future(self._queue.get())
        assert self._listener is not None
        try:
            await asyncio.wait({getter, self._listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        if getter.done() and not getter.cancelled():
            return getter.result()
        self._raise_if_unusable()
        raise BackendClosedError("pub/sub listener stopped")  # pragma: no cover - defensive

    def _raise_if_unusable(self) -> None:
        if self._failure is not None:
            raise BackendClosedError(f"pub/sub connection failed: {self._failure!r}") from (
                self._failure
            )
        if self._closed:
            raise BackendClosedError("backend disconnected")

    async def _pubsub_listener(self) -> None:
        try:
            while True:
                # Checked and cleared in one step so a concurrent subscribe()
                # that sets ``_ready`` afterwards cannot be missed.
                if not self._pubsub.subscribed:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                await self._listen_checked()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = exc
            self._fail_waiters(exc)
            # Nobody may call disconnect() on a failed backend (broadcaster's
            # Broadcast.disconnect re-raises the listener error first).
            await self._close_connections()

    async def _listen_checked(self) -> None:
        """Read messages while subscribed; raise PubSubSilentError when the
        connection stays quiet and does not answer a PING."""
        half = self._health_s / 2
        heard = time.monotonic()
        ping_sent: float | None = None
        while self._pubsub.subscribed:
            message = await self._pubsub.get_message(timeout=half)
            now = time.monotonic()
            if message is not None:
                heard, ping_sent = now, None
                self._handle(message)
            elif ping_sent is None:
                if now - heard >= half:
                    await self._pubsub.ping()
                    ping_sent = now
            elif now - ping_sent >= half:
                raise PubSubSilentError(
                    f"no data and no PONG on the pub/sub connection for {now - heard:.1f}s"
                )

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":
            return
        channel = _text(message["channel"])
        if kind == "message":
            self._queue.put_nowait(Event(channel=channel, message=_text(message["data"])))
        elif kind == "subscribe":
            for waiter in self._confirmations.get(channel, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _fail_waiters(self, exc: BaseException) -> None:
        for waiters in self._confirmations.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(BackendClosedError(str(exc)))

    async def _close_connections(self) -> None:
        # Bounded: closing a connection whose peer went silent must not hang the hub.
        for close in (self._pubsub.aclose, self._sub_conn.aclose, self._conn.aclose):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._health_s):
                    await close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
