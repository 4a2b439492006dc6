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


def open_redis(url: str) -> aioredis.Redis:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    if _PACKER is not None:
        pool = client.connection_pool
        if pool.connection_class is Connection:
            pool.connection_class = HiredisPackedConnection
        elif pool.connection_class is UnixDomainSocketConnection:
            pool.connection_class = HiredisPackedUnixConnection
    return client
