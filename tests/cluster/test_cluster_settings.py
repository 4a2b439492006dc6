"""REDIS_CLUSTER_URL in the settings and the wiring (no cluster needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio.cluster import RedisCluster

import main
from storage.redis_client import _PACKER, HiredisPackedConnection
from storage.redis_cluster import is_cluster, open_redis_cluster

SEED = "redis://127.0.0.1:7000/0"


@pytest.mark.parametrize(
    ("env", "shared"),
    [
        ({}, None),
        ({"REDIS_URL": "redis://r:6379/0"}, "redis://r:6379/0"),
        ({"REDIS_CLUSTER_URL": SEED}, SEED),
    ],
)
def test_shared_redis(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], shared: str) -> None:
    for name in ("REDIS_URL", "REDIS_CLUSTER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main.Settings().shared_redis == shared


def test_both_urls_fail_start_up() -> None:
    with pytest.raises(ValidationError, match="REDIS_URL or REDIS_CLUSTER_URL"):
        main.Settings(redis_url="redis://r:6379/0", redis_cluster_url=SEED)


async def test_cluster_url_opens_a_cluster_client() -> None:
    client = main._open_redis(main.Settings(redis_url=None, redis_cluster_url=SEED))
    try:
        assert isinstance(client, RedisCluster) and is_cluster(client)
        assert client.get_connection_kwargs()["decode_responses"] is True
    finally:
        await client.aclose()


async def test_cluster_nodes_pack_with_hiredis_and_bound_their_pools() -> None:
    client = open_redis_cluster(SEED, max_connections=12)
    try:
        (node,) = client.nodes_manager.startup_nodes.values()
        assert node.max_connections == 12
        if _PACKER is not None:
            assert node.connection_class is HiredisPackedConnection
            assert client.nodes_manager.connection_kwargs["connection_class"] is (
                HiredisPackedConnection
            )
    finally:
        await client.aclose()
