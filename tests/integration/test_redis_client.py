"""The Redis client packs commands with hiredis: same bytes, same errors, same answers."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from storage.redis_client import HiredisPackedConnection, open_redis


@pytest.mark.parametrize(
    "args",
    [
        ("GET", "k"),
        ("SET", "lv:{p1}:cnt:c00001", "x" * 300),
        ("EVALSHA", "ab" * 20, 2, "k1", "k2", 3, -7, 0),
        ("HSET", "h", "f", 1.5),
        ("SET", "ünïcode", "värde"),
        ("SET", b"raw\x00bytes", b"\xff\xfe"),
        ("SCRIPT LOAD", "return 1"),  # a two-word command name is split
    ],
)
def test_the_same_bytes_as_redis_pys_python_packer(args):
    python = b"".join(Connection().pack_command(*args))
    hiredis = b"".join(HiredisPackedConnection().pack_command(*args))
    assert hiredis == python


@pytest.mark.parametrize("bad", [None, object()])
def test_a_bad_argument_is_a_data_error_as_before(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        HiredisPackedConnection().pack_command("SET", "k", bad)


async def test_the_client_uses_it_and_talks_to_a_real_server(redis_url):
    client = open_redis(redis_url)
    try:
        assert client.connection_pool.connection_class is HiredisPackedConnection
        pipe = client.pipeline(transaction=False)
        pipe.set("lv:test:k", "värde")
        pipe.eval("return {KEYS[1], ARGV[1] + 1}", 1, "lv:test:k", 41)
        pipe.get("lv:test:k")
        assert await pipe.execute() == [True, ["lv:test:k", 42], "värde"]
    finally:
        await client.aclose()


async def test_at_the_connection_limit_a_command_waits_instead_of_failing(redis_url):
    """Blocking reads hold every connection for a moment: a command then waits for
    one to come back rather than failing with MaxConnectionsError."""
    import asyncio

    client = open_redis(redis_url, max_connections=2, wait_s=5.0)
    try:
        # Two blocking pops hold both connections for 0.3 s.
        async def pop(i: int) -> object:
            return await client.blpop([f"lv-test-empty-{i}"], 0.3)

        held = [asyncio.create_task(pop(i)) for i in range(2)]
        await asyncio.sleep(0.05)
        assert await client.ping() is True  # waited for a connection, did not raise
        assert await asyncio.gather(*held) == [None, None]
    finally:
        await client.aclose()
