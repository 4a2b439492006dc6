"""Redis behind Redis Sentinel: clients that follow the current primary.

``REDIS_SENTINELS`` (``host:port`` list) and ``REDIS_SENTINEL_MASTER`` (the
monitored name) replace ``REDIS_URL``. Every connection asks a sentinel where
the primary is when it connects, and redis-py drops a connection that finds
itself on a demoted primary (READONLY), so after a failover commands fail for
a moment and then reach the new primary. Writes the old primary acknowledged
but had not yet replicated are lost by the failover (replication is
asynchronous); the outbox relay and the reconciler put them back (docs/OPERATIONS.md,
"Failure drills").

Commands are packed with hiredis like storage/redis_client.py's clients. The
pool is redis-py's sentinel pool, which fails at ``max_connections`` instead of
waiting like ``open_redis``'s blocking pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import NoBackoff

from storage.redis_client import _PACKER, _HiredisPacking


class HiredisPackedSentinelConnection(_HiredisPacking, SentinelManagedConnection):
    pass


_CONNECTION_CLASS = HiredisPackedSentinelConnection if _PACKER is not None else None


def parse_sentinels(raw: str) -> list[tuple[str, int]]:
    """``"h1:26379,h2:26379"`` -> ``[("h1", 26379), ("h2", 26379)]``; a bad entry
    raises ValueError naming it."""
    out: list[tuple[str, int]] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS entry {entry!r} is not host:port")
        out.append((host, int(port)))
    return out


class SentinelRedis(aioredis.Redis):
    """A primary's client that also closes its sentinel connections."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            await self.sentinel_manager.aclose()


class SentinelTopology:
    """Where the primary of ``master`` is, as the sentinels say."""

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        master: str,
        *,
        password: str | None = None,
        socket_timeout_s: float | None = None,
    ) -> None:
        if not sentinels:
            raise ValueError("at least one sentinel is needed")
        self.sentinels = list(sentinels)
        self.master = master
        self._password = password
        self._socket_timeout_s = socket_timeout_s

    def _sentinel(self) -> Sentinel:
        timeouts: dict[str, Any] = {}
        if self._socket_timeout_s is not None:
            timeouts = {
                "socket_timeout": self._socket_timeout_s,
                "socket_connect_timeout": self._socket_timeout_s,
            }
        sentinel_kwargs = dict(timeouts)
        if self._password:
            sentinel_kwargs["password"] = self._password
        return Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs, **timeouts)

    def primary(self, *, max_connections: int = 256, **kwargs: Any) -> SentinelRedis:
        """A client of the current primary (``decode_responses`` like open_redis)."""
        sentinel = self._sentinel()
        options: dict[str, Any] = {"decode_responses": True, "max_connections": max_connections}
        if _CONNECTION_CLASS is not None:
            options["connection_class"] = _CONNECTION_CLASS
        options.update(kwargs)
        client = sentinel.master_for(self.master, redis_class=SentinelRedis, **options)
        assert isinstance(client, SentinelRedis)
        client.sentinel_manager = sentinel
        return client

    def pubsub_clients(self, timeout_s: float) -> tuple[SentinelRedis, SentinelRedis]:
        """A publishing client and a subscribing one for the live hub's backend
        (subscriptions/redis_backend.py), with connects and handshakes bounded by
        ``timeout_s``. The subscriber never retries: after a failover its
        connection fails, the hub builds a new backend, and that one asks the
        sentinels for the new primary."""
        timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        return (
            self.primary(decode_responses=False, max_connections=8, **timeouts),
            self.primary(
                decode_responses=False,
                max_connections=2,
                retry=Retry(NoBackoff(), 0),
                **timeouts,
            ),
        )


def open_sentinel_redis(
    sentinels: str,
    master: str,
    *,
    password: str | None = None,
    max_connections: int = 256,
) -> SentinelRedis:
    return SentinelTopology(parse_sentinels(sentinels), master, password=password).primary(
        max_connections=max_connections
    )
