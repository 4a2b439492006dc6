"""The client address as a signal: normalised, hashed with a salt of the UTC day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.identity import (
    ADDRESS_HASH_HEX,
    AddressHasher,
    hash_address,
    normalize_address,
    salt_day,
)


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # a dual-stack listener's IPv4 peer
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # same line, another address
        ("testclient", "testclient"),
    ],
)
def test_normalize_address(host, normal):
    assert normalize_address(host) == normal


def test_the_hash_is_short_salted_and_hides_the_address():
    a = hash_address(b"salt-1", "203.0.113.7")
    assert len(a) == ADDRESS_HASH_HEX and set(a) <= set("0123456789abcdef")
    assert hash_address(b"salt-1", "203.0.113.7") == a
    assert hash_address(b"salt-1", "::ffff:203.0.113.7") == a
    assert hash_address(b"salt-1", "203.0.113.8") != a
    assert hash_address(b"salt-2", "203.0.113.7") != a


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 5, 1, 23, 59, 59, tzinfo=UTC), "20260501"),
        (datetime(2026, 5, 2, 0, 0, tzinfo=UTC), "20260502"),
        # 01:30 in UTC+2 is still the previous UTC day.
        (datetime(2026, 5, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))), "20260501"),
    ],
)
def test_salt_day_is_the_utc_day(moment, day):
    assert salt_day(moment) == day


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class Salts:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def salt_for(self, day: str) -> bytes:
        self.asked.append(day)
        await asyncio.sleep(0)
        return f"salt-of-{day}".encode()


async def test_same_day_same_hash_and_the_salt_rotates_at_utc_midnight():
    clock = Clock(datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    salts = Salts()
    hasher = AddressHasher(salts, clock)
    morning = await hasher.hash("203.0.113.7")
    clock.at = datetime(2026, 5, 1, 23, 59, tzinfo=UTC)
    assert await hasher.hash("203.0.113.7") == morning
    assert salts.asked == ["20260501"]  # fetched once for the day
    clock.at = datetime(2026, 5, 2, 0, 0, tzinfo=UTC)
    next_day = await hasher.hash("203.0.113.7")
    assert next_day != morning
    assert next_day == hash_address(b"salt-of-20260502", "203.0.113.7")
    assert salts.asked == ["20260501", "20260502"]
    assert await hasher.hash(None) is None and await hasher.hash("") is None


async def test_requests_at_midnight_share_one_fetch():
    salts = Salts()
    hasher = AddressHasher(salts, Clock(datetime(2026, 5, 1, tzinfo=UTC)))
    found = await asyncio.gather(*(hasher.hash(f"10.0.0.{i % 3}") for i in range(20)))
    assert salts.asked == ["20260501"]
    assert len(set(found)) == 3


@pytest.mark.parametrize(
    ("msg", "args", "shown"),
    [
        (
            '%s - "%s %s HTTP/%s" %d',
            ("203.0.113.7:5000", "POST", "/graphql", "1.1", 200),
            '- - "POST /graphql HTTP/1.1" 200',
        ),
        (
            '%s - "WebSocket %s" [accepted]',
            ("203.0.113.7:5000", "/graphql"),
            '- - "WebSocket /graphql" [accepted]',
        ),
        ("Started server process [%d]", (42,), "Started server process [42]"),
    ],
)
def test_uvicorn_lines_never_show_the_client_address(msg, args, shown):
    import logging

    from transport.client_address import HideClientAddress

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)
    assert HideClientAddress().filter(record)
    assert record.getMessage() == shown
