"""Who is acting: derived from a verified token, never from a request body."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from domain.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from domain.ports import Clock


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    roles: frozenset[str] = frozenset()


def require_user(actor: Actor | None) -> Actor:
    if actor is None:
        raise Unauthenticated("this operation needs a signed-in user: send a valid bearer token")
    return actor


def require_role(actor: Actor | None, *roles: str) -> Actor:
    actor = require_user(actor)
    if not actor.roles.intersection(roles):
        raise Forbidden(f"this operation needs one of the roles: {', '.join(roles)}")
    return actor


# --------------------------------------------------------------------------- client address
#
# The client's address is a signal for abuse limits and the integrity worker, never an
# identity: it is not shown to anyone, never stored, logged or put in an event as it is,
# and never the only reason to refuse anything. What is kept is a hash with a salt that
# changes every UTC day (as Plausible does): the same address gives the same hash all
# day, for per-address features and limits, and unrelated hashes on other days, so no
# address can be followed across days and a stored hash cannot be reversed by hashing
# all 2^32 IPv4 addresses once the day's salt is gone.

ADDRESS_HASH_HEX = 16


def normalize_address(host: str) -> str:
    """The address as limits see it: an IPv4-mapped IPv6 address is its IPv4 address,
    and an IPv6 address is its /64 network (one subscriber's line usually has a whole
    /64 and picks addresses in it at will). Anything else (a Unix socket, a test
    client's name) is kept as it is."""
    try:
        ip = ipaddress.ip_address(host.strip())
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def hash_address(salt: bytes, host: str) -> str:
    """blake2b(salt || normalized address), the first ADDRESS_HASH_HEX hex digits."""
    digest = hashlib.blake2b(salt + normalize_address(host).encode(), digest_size=8)
    return digest.hexdigest()[:ADDRESS_HASH_HEX]


def salt_day(now: datetime) -> str:
    """The UTC day a salt belongs to, ``yyyymmdd``."""
    return now.astimezone(UTC).strftime("%Y%m%d")


class SaltStore(Protocol):
    async def salt_for(self, day: str) -> bytes:
        """The day's salt, shared by every process (made by the first to ask)."""
        ...


class AddressHasher:
    """Hashes client addresses with the day's salt, fetched once per day per process."""

    def __init__(self, salts: SaltStore, clock: Clock) -> None:
        self._salts = salts
        self._clock = clock
        self._day: str | None = None
        self._salt = b""
        # Requests arriving together at midnight share one fetch.
        self._lock = asyncio.Lock()

    async def _salt_of(self, day: str) -> bytes:
        if day == self._day:
            return self._salt
        async with self._lock:
            if day != self._day:
                salt = await self._salts.salt_for(day)
                self._day, self._salt = day, salt
                return salt
            return self._salt

    async def warm(self) -> None:
        """At start-up, so no request pays for the first fetch of the day."""
        await self._salt_of(salt_day(self._clock.now()))

    async def hash(self, host: str | None) -> str | None:
        if not host:
            return None
        return hash_address(await self._salt_of(salt_day(self._clock.now())), host)
