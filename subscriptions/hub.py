"""LiveHub: the process-wide fanout of live updates over broadcaster.

The rest of the app only sees ``LiveHub``, ``Subscription`` and ``Update``.
What the hub adds over a bare ``broadcaster.Broadcast`` (see PITFALLS.md):

* one upstream subscription per channel, however many local subscribers,
  which also sidesteps broadcaster's new-channel race;
* a bounded latest-value slot per subscriber and channel, rate limited;
* supervision: a dead listener triggers a rebuild with backoff, a
  resubscribe of every live channel and a resync ``Update(channel, None)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from broadcaster import Broadcast
from prometheus_client import Counter

from subscriptions.coalesce import SlotTable

log = logging.getLogger(__name__)

# Each one resynced every open subscription (a fresh snapshot each).
PUBSUB_RECONNECTS = Counter(
    "likeview_live_pubsub_reconnects_total",
    "Pub/sub connections rebuilt after an error or a silent connection",
)

BroadcastFactory = Callable[[], Broadcast]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Update:
    channel: str
    # None means "resync": updates may have been missed, re-read the state.
    message: str | None


class Subscription:
    """Async iterator of ``Update``s for a fixed set of channels.

    Holds at most one pending message per channel, so a stalled reader costs
    constant memory. Iteration ends when the subscription or the hub closes.
    """

    def __init__(
        self,
        channels: Sequence[str],
        *,
        max_per_second: float,
        clock: Clock,
        control: Sequence[str] = (),
        rank: Callable[[str], int] | None = None,
    ) -> None:
        self._slots = SlotTable.for_rate(channels, max_per_second, control, rank)
        self._clock = clock
        self._changed = asyncio.Event()
        self._closed = False

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._slots.slots)

    @property
    def pending(self) -> int:
        """Channels with an undelivered message (never more than ``len(channels)``)."""
        return self._slots.pending_count

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Update:
        while True:
            if self._closed:
                raise StopAsyncIteration
            now = self._clock()
            due = self._slots.pop_due(now)
            if due is not None:
                return Update(*due)
            # Cleared before computing the wait so an offer() racing with the
            # wait below still wakes us.
            self._changed.clear()
            next_due = self._slots.next_due()
            if next_due is None:
                await self._changed.wait()
            else:
                await self._wait_changed_or(max(0.0, next_due - now))

    async def _wait_changed_or(self, delay: float) -> None:
        # Another channel may become deliverable while one waits out its rate
        # limit, so both a timer and a new offer wake the reader. A timer
        # handle rather than racing a sleep task against an event task: this
        # runs for every rate-limited subscriber on every push of a storm, and
        # two tasks per wait were a large share of the fanout's CPU.
        handle = asyncio.get_running_loop().call_later(delay, self._changed.set)
        try:
            await self._changed.wait()
        finally:
            handle.cancel()

    def _offer(self, channel: str, message: str | None) -> None:
        self._slots.offer(channel, message)
        self._changed.set()

    def _close(self) -> None:
        self._closed = True
        self._changed.set()


@dataclass(slots=True)
class _Channel:
    subscribers: set[Subscription] = field(default_factory=set)
    pump: asyncio.Task[None] | None = None


class LiveHub:
    """Fanout of live updates; use as ``async with LiveHub(factory) as hub``.

    Redis: ``LiveHub(lambda: Broadcast(backend=FixedRedisBackend(url)))``.
    Embedded: ``LiveHub(lambda: Broadcast("memory://"))``.
    """

    def __init__(
        self,
        broadcast_factory: BroadcastFactory,
        *,
        max_updates_per_second: float = 4.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        backoff_initial: float = 0.05,
        backoff_max: float = 5.0,
        subscribe_timeout: float = 5.0,
    ) -> None:
        if max_updates_per_second <= 0:
            raise ValueError("max_updates_per_second must be positive")
        self._factory = broadcast_factory
        self._rate = max_updates_per_second
        self._clock = clock
        self._sleep = sleep
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._subscribe_timeout = subscribe_timeout
        self._broadcast: Broadcast | None = None
        self._channels: dict[str, _Channel] = {}
        self._subscriptions: set[Subscription] = set()
        # Pumps being retired: a channel must not be resubscribed until its
        # old UNSUBSCRIBE has gone out, or the two could reach Redis reordered.
        self._retiring: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._reconnect_requested = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> LiveHub:
        # Fail fast at startup; only later outages are retried in the background.
        self._broadcast = await self._connect_broadcast()
        self._supervisor = asyncio.create_task(self._supervise(), name="livehub-supervisor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        for sub in list(self._subscriptions):
            sub._close()
        self._subscriptions.clear()
        await self._teardown()
        self._channels.clear()

    # -- public API ----------------------------------------------------------

    @property
    def healthy(self) -> bool:
        listener = _listener_task(self._broadcast) if self._broadcast is not None else None
        return listener is not None and not listener.done() and not self._closing

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def publish(self, channel: str, message: str) -> None:
        if self._broadcast is None:
            raise ConnectionError("LiveHub is not connected")
        await self._broadcast.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        channels: Sequence[str],
        *,
        control: Sequence[str] = (),
        rank: Callable[[str], int] | None = None,
    ) -> AsyncIterator[Subscription]:
        """``control`` channels are never rate limited or coalesced away, and are
        served first; with ``rank`` (a message's snapshot version) a pending
        message is only replaced by a newer one (see coalesce.LatestSlot)."""
        if isinstance(channels, str) or isinstance(control, str):
            raise TypeError("subscribe() takes sequences of channel names, not a str")
        if self._closing:
            raise RuntimeError("LiveHub is closed")
        sub = Subscription(
            channels, max_per_second=self._rate, clock=self._clock, control=control, rank=rank
        )
        self._subscriptions.add(sub)
        try:
            await self._attach(sub)
            yield sub
        finally:
            # Synchronous on purpose: it runs even when the caller is being
            # cancelled, and upstream cleanup happens in the retiring pump.
            self._detach(sub)

    # -- channel bookkeeping ---------------------------------------------------

    async def _attach(self, sub: Subscription) -> None:
        async with self._lock:
            for name in sub.channels:
                channel = self._channels.get(name)
                if channel is None:
                    channel = self._channels[name] = _Channel()
                channel.subscribers.add(sub)
                if channel.pump is None and self._broadcast is not None:
                    try:
                        channel.pump = await self._start_pump(self._broadcast, name)
                    except Exception:
                        # Keep the local registration: the reconnect will
                        # subscribe upstream and resync this subscriber.
                        log.warning("upstream subscribe to %r failed", name, exc_info=True)
                        self._reconnect_requested.set()

    def _detach(self, sub: Subscription) -> None:
        sub._close()
        self._subscriptions.discard(sub)
        for name in sub.channels:
            channel = self._channels.get(name)
            if channel is None:
                continue
            channel.subscribers.discard(sub)
            if channel.subscribers:
                continue
            del self._channels[name]
            if channel.pump is not None:
                self._retire(name, channel.pump)

    def _retire(self, name: str, pump: asyncio.Task[None]) -> None:
        # Cancelling runs broadcaster's subscribe() exit, which unsubscribes
        # upstream once the last local subscriber is gone.
        pump.cancel()
        self._retiring[name] = pump

        def forget(task: asyncio.Task[None]) -> None:
            if self._retiring.get(name) is task:
                del self._retiring[name]

        pump.add_done_callback(forget)

    async def _start_pump(self, broadcast: Broadcast, name: str) -> asyncio.Task[None]:
        retiring = self._retiring.get(name)
        if retiring is not None:
            await asyncio.gather(retiring, return_exceptions=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pump = asyncio.create_task(self._pump(broadcast, name, ready), name=f"livehub-pump:{name}")
        try:
            # Bounded because it runs under the hub lock: a Redis that
            # accepts SUBSCRIBE but never confirms must not freeze the hub.
            async with asyncio.timeout(self._subscribe_timeout):
                await ready
        except BaseException:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            raise
        return pump

    async def _pump(self, broadcast: Broadcast, name: str, ready: asyncio.Future[None]) -> None:
        try:
            async with broadcast.subscribe(name) as upstream:
                ready.set_result(None)
                # Draining promptly keeps broadcaster's unbounded queue empty;
                # the bounded slots below are where backpressure is absorbed.
                async for event in upstream:  # type: ignore[union-attr]
                    if event is not None:
                        self._fanout(name, event.message)
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                # A failing upstream also kills the listener, which the
                # supervisor handles; nobody awaits a retired pump's result.
                log.debug("pump for %r ended with an error", name, exc_info=True)

    def _fanout(self, name: str, message: str | None) -> None:
        channel = self._channels.get(name)
        if channel is None:
            return
        for sub in channel.subscribers:
            sub._offer(name, message)

    # -- connection and supervision --------------------------------------------

    async def _connect_broadcast(self) -> Broadcast:
        broadcast = self._factory()
        await broadcast.connect()
        if _listener_task(broadcast) is None:
            await _disconnect_quietly(broadcast)
            raise RuntimeError("broadcaster has no _listener_task: LiveHub cannot supervise it")
        return broadcast

    async def _supervise(self) -> None:
        while True:
            broadcast = self._broadcast
            listener = _listener_task(broadcast) if broadcast is not None else None
            if listener is not None:
                requested = asyncio.ensure_future(self._reconnect_requested.wait())
                try:
                    await asyncio.wait({listener, requested}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    requested.cancel()
                    await asyncio.gather(requested, return_exceptions=True)
                if listener.done() and not listener.cancelled():
                    log.warning("broadcast listener died: %r", listener.exception())
            self._reconnect_requested.clear()
            await self._reconnect()

    async def _reconnect(self) -> None:
        delay = self._backoff_initial
        while True:
            async with self._lock:
                await self._teardown()
                try:
                    await self._resubscribe_all()
                except Exception:
                    log.warning("reconnect failed; retrying in %.2fs", delay, exc_info=True)
                    await self._teardown()
                else:
                    self.reconnects += 1
                    PUBSUB_RECONNECTS.inc()
                    self._resync_all()
                    return
            # Backoff outside the lock so subscribers can still come and go.
            await self._sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _resubscribe_all(self) -> None:
        self._broadcast = broadcast = await self._connect_broadcast()
        for name, channel in list(self._channels.items()):
            channel.pump = await self._start_pump(broadcast, name)

    def _resync_all(self) -> None:
        for name, channel in self._channels.items():
            for sub in channel.subscribers:
                sub._offer(name, None)

    async def _teardown(self) -> None:
        """Stop all pumps and drop the current broadcast, whatever state it is in."""
        pumps = [c.pump for c in self._channels.values() if c.pump is not None]
        pumps += self._retiring.values()
        for channel in self._channels.values():
            channel.pump = None
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        broadcast, self._broadcast = self._broadcast, None
        if broadcast is not None:
            await _disconnect_quietly(broadcast)


def _listener_task(broadcast: Broadcast) -> asyncio.Task[None] | None:
    # broadcaster 0.3.1 exposes no public signal for a dead listener; its
    # task is the only one. A test pins this so an upgrade cannot hide it.
    task = getattr(broadcast, "_listener_task", None)
    return task if isinstance(task, asyncio.Task) else None


async def _disconnect_quietly(broadcast: Broadcast) -> None:
    listener = _listener_task(broadcast)
    try:
        # Re-raises the listener's error if it died; the backend then has
        # cleaned up after itself (FixedRedisBackend does).
        await broadcast.disconnect()
    except Exception:
        log.debug("error while disconnecting broadcast", exc_info=True)
    if listener is not None:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
