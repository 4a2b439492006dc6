"""Reads of a live subscription wait out an outage instead of ending it.

A subscription opened while Redis is down, or whose resync read fails, would
otherwise end with an error and ``complete``, and most clients never retry.
Here the read is retried with capped backoff for as long as the client stays;
when the store answers again the subscriber gets a fresh snapshot, exactly as
after a pub/sub reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain import outages
from domain.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# What an outage looks like from here: the registered store outages
# (domain/outages.py), their API form, and the connection errors themselves.
_OUTAGE = (
    Unavailable,
    ConnectionError,
    TimeoutError,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, _OUTAGE) or outages.is_outage(exc)


async def until_available(
    read: Callable[[], Awaitable[T]],
    *,
    what: str,
    initial_s: float = 0.1,
    max_s: float = 5.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``read()``, retried with backoff while it fails as an outage; other errors
    propagate. Runs until it succeeds or the caller is cancelled (the client left)."""
    delay = initial_s
    while True:
        try:
            return await read()
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("%s failed (%r); retrying in %.2fs", what, exc, delay)
        await sleep(delay)
        delay = min(delay * 2, max_s)
