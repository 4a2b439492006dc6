"""The Redis client: redis-py asyncio, packing commands with hiredis' C packer.

redis-py's synchronous connection packs commands with hiredis when it is
installed; its asyncio connection always packs them in Python, at about half
a microsecond per argument. A feed read sends ~120 arguments per request, so
the Python packer was ~5% of the request's CPU. The packer below is
redis-py's own hiredis serializer (same output, same DataError on a bad
argument); only plain ``redis://`` and unix-socket connections use it, TLS
keeps redis-py's default class.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

try:
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # pragma: no cover - older redis-py
    HIREDIS_AVAILABLE = False

_PACKER: Any = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        return list(_PACKER.pack(*args))


class HiredisPackedConnection(_HiredisPacking, Connection):
    pass


class HiredisPackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


def open_redis(
    url: str,
    max_connections: int = 256,
    wait_s: float = 5.0,
    *,
    socket_timeout_s: float | None = 5.0,
    connect_timeout_s: float | None = 2.0,
) -> aioredis.Redis:
    """A client over a blocking pool: at ``max_connections`` a command waits up to
    ``wait_s`` for a connection to come back instead of failing at once (redis-py's
    default pool raises MaxConnectionsError, which a burst of requests beside the
    workers' blocking reads reached: docs/PERFORMANCE.md, scenario 9).

    A reply slower than ``socket_timeout_s`` (a connection slower than
    ``connect_timeout_s``) raises redis-py's TimeoutError, which the API answers as
    UNAVAILABLE: without it a stalled Redis held every request, and its connection,
    forever. It must exceed the workers' blocking reads (1 s), which share the pool.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_s,
        decode_responses=True,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
    )
    client = aioredis.Redis(connection_pool=pool)
    if _PACKER is not None:
        if pool.connection_class is Connection:
            pool.connection_class = HiredisPackedConnection
        elif pool.connection_class is UnixDomainSocketConnection:
            pool.connection_class = HiredisPackedUnixConnection
    return client
