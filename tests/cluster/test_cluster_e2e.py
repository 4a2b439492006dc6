"""The real server on a three-primary Redis Cluster (REDIS_CLUSTER_URL): what only a
cluster can break. The e2e modules themselves also run on it (``make test-cluster``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from storage.keys import Keys
from tests.cluster.cluster import LocalCluster
from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    PARTITIONS,
    SUBSCRIBE,
    GqlWs,
    Server,
    data_of,
    eventually,
    like,
    register,
    summary,
    token,
    uid,
    wait_drained,
)


@pytest.fixture(scope="module")
def likeview_server(redis_cluster: LocalCluster, tmp_path_factory: Any) -> Iterator[Server]:
    with serving(redis_cluster, tmp_path_factory) as server:
        yield server


def _node_port(cluster: LocalCluster, key: str) -> int:
    return cluster.node_of_slot(key_slot(key.encode()))


def _channels(cluster: LocalCluster, port: int, pattern: str) -> list[str]:
    with redis.Redis(host=cluster.host, port=port, decode_responses=True) as r:
        return list(r.pubsub_channels(pattern))


async def test_live_push_crosses_nodes(
    http: httpx.AsyncClient, likeview_server: Server, redis_cluster: LocalCluster
) -> None:
    # The aggregator's PUBLISH goes to the live channels' slot node, the server's
    # subscription sits on the seed node: with the cluster's slot layout
    # (tests/cluster/cluster.py) those differ, so the push crosses the bus.
    seed = redis_cluster.port
    channel_of = Keys(likeview_server.key_prefix, PARTITIONS).channel
    cid = uid()
    publish_port = _node_port(redis_cluster, channel_of(cid))
    assert publish_port != seed, "the live channels' slot moved to the seed node"
    await register(http, cid)
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token("watcher"))
        await ws.subscribe("1", SUBSCRIBE, {"ids": [cid]})
        first = (await ws.next_payload("1", 5.0))["data"]["engagementUpdated"]
        assert first["likes"] == 0
        assert _channels(redis_cluster, seed, channel_of(cid)) == [channel_of(cid)]
        assert _channels(redis_cluster, publish_port, channel_of(cid)) == []
        data_of(await like(http, "alice", cid))
        pushed = (await ws.next_payload("1", 5.0))["data"]["engagementUpdated"]
        assert (pushed["contentId"], pushed["likes"]) == (cid, 1)


async def test_keys_spread_over_every_primary(
    http: httpx.AsyncClient, likeview_server: Server, redis_cluster: LocalCluster
) -> None:
    cids = [await register(http) for _ in range(12)]
    for cid in cids:
        data_of(await like(http, "spread", cid))
    probe: Any = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        await wait_drained(probe, likeview_server)
    finally:
        await probe.aclose()
    prefix = likeview_server.key_prefix
    for port in redis_cluster.ports:
        with redis.Redis(host=redis_cluster.host, port=port, decode_responses=True) as r:
            assert any(True for _ in r.scan_iter(match=f"{prefix}:*", count=1000)), port


async def test_flushall_on_every_primary_rebuilds(
    http: httpx.AsyncClient, likeview_server: Server, redis_cluster: LocalCluster
) -> None:
    cid = await register(http)
    for user in ("u1", "u2", "u3"):
        data_of(await like(http, user, cid, "LOVE"))
    probe: Any = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        await wait_drained(probe, likeview_server)
        assert (await summary(http, cid))["likes"] == 3
        await probe.flushall(target_nodes=RedisCluster.PRIMARIES)
        # (No DBSIZE check: the workers recreate their streams and groups at once.)
        counters = Keys(likeview_server.key_prefix, PARTITIONS).counters(cid)
        assert await probe.exists(counters) == 0
        # Counters come back from MongoDB on the next read; the streams and their
        # consumer groups are recreated on the next write (NOGROUP is handled).
        assert (await summary(http, cid))["likes"] == 3
        data_of(await like(http, "u4", cid, "LOVE"))
        await eventually(
            lambda: summary(http, cid), lambda s: s["likes"] == 4, what="likes == 4 after flush"
        )
        await wait_drained(probe, likeview_server)
        assert (await summary(http, cid))["likes"] == 4
    finally:
        await probe.aclose()
