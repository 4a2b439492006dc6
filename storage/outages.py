"""The drivers' errors that mean a store is down or too slow (domain/outages.py).

redis-py: ConnectionError (refused, reset, no pooled connection within
REDIS_POOL_WAIT_S) and TimeoutError (REDIS_SOCKET_TIMEOUT_S). pymongo:
ConnectionFailure, whose subclasses are AutoReconnect, NetworkTimeout,
ServerSelectionTimeoutError and WaitQueueTimeoutError. Registered on import and
again by ``register_drivers`` (idempotent), which start-up calls.
"""

from __future__ import annotations

from pymongo.errors import ConnectionFailure, ExecutionTimeout
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.outages import register


def register_drivers() -> None:
    register("redis", RedisConnectionError, RedisTimeoutError)
    register("mongodb", ConnectionFailure, ExecutionTimeout)


register_drivers()
