"""The Redis adapters on a real three-primary cluster: the calls that used to name
several partitions' keys at once, split per slot."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from domain.events import EngagementEvent
from storage.keys import Keys
from storage.redis_client import _PACKER, HiredisPackedConnection
from storage.redis_cluster import is_cluster, open_redis_cluster
from storage.redis_counters import RedisCounters
from storage.redis_publisher import RedisPublisher
from storage.redis_stream import RedisEventConsumer, RedisEventLog
from storage.redis_view_marks import RedisViewMarks
from subscriptions.redis_backend import FixedRedisBackend
from tests.cluster.cluster import LocalCluster

PARTITIONS = 8
_ids = itertools.count()


def _keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}", PARTITIONS)


def _event(cid: str, likes: int = 1) -> EngagementEvent:
    return EngagementEvent(f"e{next(_ids)}", "reaction", cid, "u1", 1_000, {"likes": likes})


def _one_per_partition(keys: Keys) -> list[str]:
    found: dict[int, str] = {}
    for i in itertools.count():
        found.setdefault(keys.partition(f"c{i}"), f"c{i}")
        if len(found) == keys.partitions:
            return [found[p] for p in range(keys.partitions)]
    raise AssertionError("unreachable")


async def test_open_redis_cluster_discovers_every_primary(redis_cluster: LocalCluster) -> None:
    client = open_redis_cluster(redis_cluster.url, max_connections=16)
    try:
        assert is_cluster(client)
        assert await client.ping()
        ports = sorted(n.port for n in client.get_primaries())
        assert ports == sorted(redis_cluster.ports)
        if _PACKER is not None:  # discovered nodes pack with hiredis too
            assert {n.connection_class for n in client.get_nodes()} == {HiredisPackedConnection}
    finally:
        await client.aclose()


def test_partition_streams_span_the_primaries(redis_cluster: LocalCluster) -> None:
    # The premise of the consumer tests below: streams live on different nodes.
    keys = _keys()
    nodes = {redis_cluster.node_of_slot(key_slot(s.encode())) for s in keys.streams()}
    assert len(nodes) > 1


async def test_consumer_reads_every_partition_blocking(cluster_client: Any) -> None:
    keys = _keys()
    consumer = RedisEventConsumer(cluster_client, keys, Keys.AGGREGATOR_GROUP, "w1")
    await consumer.ensure_groups()
    assert await consumer.read(10, None) == []
    cids = _one_per_partition(keys)
    await RedisEventLog(cluster_client, keys).append([_event(c) for c in cids])
    got: list[str] = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(got) < len(cids) and asyncio.get_running_loop().time() < deadline:
        for d in await consumer.read(10, 200):
            got += [e.content_id for e in d.events]
    assert sorted(got) == sorted(cids)
    # A blocked read per partition stays in flight; one XADD wakes exactly its own.
    wake = asyncio.create_task(consumer.read(10, 5_000))
    await RedisEventLog(cluster_client, keys).append([_event(cids[3])])
    deliveries = await asyncio.wait_for(wake, 10)
    assert [d.partition for d in deliveries] == [3]


async def test_consumer_pending_reads_return_own_unacknowledged(
    cluster_client: Any,
) -> None:
    keys = _keys()
    consumer = RedisEventConsumer(cluster_client, keys, Keys.ANALYTICS_GROUP, "w1")
    await consumer.ensure_groups()
    cids = _one_per_partition(keys)[:3]
    await RedisEventLog(cluster_client, keys).append([_event(c) for c in cids])
    first = await consumer.read(10, None)
    assert sorted(d.partition for d in first) == [0, 1, 2]
    again = await consumer.read(10, None, pending=True)
    assert sorted(d.message_id for d in again) == sorted(d.message_id for d in first)
    await consumer.ack(first)
    assert await consumer.read(10, None, pending=True) == []


async def test_consumer_recreates_groups_after_flushall(cluster_client: Any) -> None:
    keys = _keys()
    consumer = RedisEventConsumer(cluster_client, keys, Keys.TRENDING_GROUP, "w1")
    await consumer.ensure_groups()
    blocked = asyncio.create_task(consumer.read(10, 5_000))
    await cluster_client.flushall(target_nodes=RedisCluster.PRIMARIES)
    assert await asyncio.wait_for(blocked, 10) == []
    cid = _one_per_partition(keys)[5]
    await RedisEventLog(cluster_client, keys).append([_event(cid)])
    deadline = asyncio.get_running_loop().time() + 10
    got: list[str] = []
    while not got and asyncio.get_running_loop().time() < deadline:
        got = [e.content_id for d in await consumer.read(10, 200) for e in d.events]
    assert got == [cid]


async def test_counters_of_every_partition_in_one_read(cluster_client: Any) -> None:
    keys = _keys()
    counters = RedisCounters(cluster_client, keys, 3_600_000)
    await counters.load_scripts()
    cids = [f"c{i}" for i in range(40)]
    assert set((await counters.read(cids)).values()) == {None}  # cold: MongoDB fills them
    await counters.install_zeroed(cids)  # one script call per content, every slot
    for p, group in itertools.groupby(sorted(cids, key=keys.partition), key=keys.partition):
        await counters.apply(p, [_event(c, likes=2) for c in group])
    readings = await counters.read(cids)
    likes = {c: r.counters["likes"] if r else None for c, r in readings.items()}
    assert likes == dict.fromkeys(cids, 2)


async def test_view_marks_mget_per_partition(cluster_client: Any) -> None:
    keys = _keys()
    marks = RedisViewMarks(cluster_client, keys)
    wanted = [(c, "k") for c in _one_per_partition(keys)]
    assert await marks.get_many(wanted) == {}


async def test_publish_reaches_a_subscriber_on_another_node(
    cluster_client: Any, redis_cluster: LocalCluster
) -> None:
    # The server's pair: the live backend subscribes through a plain connection to the
    # seed node; the workers' PUBLISH goes to the channel's slot node, and classic
    # pub/sub broadcasts it to every node.
    seed = redis_cluster.port
    channels = (f"lv:live:{uuid.uuid4().hex}" for _ in range(100))
    far = next(c for c in channels if redis_cluster.node_of_slot(key_slot(c.encode())) != seed)
    backend = FixedRedisBackend(redis_cluster.url)
    await backend.connect()
    try:
        await backend.subscribe(far)
        await RedisPublisher(cluster_client).publish({far: "hello"})
        event = await asyncio.wait_for(backend.next_published(), 5)
        assert (event.channel, event.message) == (far, "hello")
    finally:
        await backend.disconnect()


def test_every_live_channel_shares_one_slot() -> None:
    # Publishes to one node reach a subscriber in order; to two nodes they may swap,
    # and a push would pair new counts with an old viewerReaction.
    keys = _keys()
    names = [keys.channel(f"c{i}") for i in range(50)] + [
        keys.user_channel(f"u{i}") for i in range(50)
    ]
    assert len({key_slot(n.encode()) for n in names}) == 1


async def test_a_user_message_never_trails_the_counts_published_after_it(
    cluster_client: Any, redis_cluster: LocalCluster
) -> None:
    # The aggregator's two publishes per batch, seen by a subscriber on the seed node
    # while the channels' slot lives on another node.
    keys = _keys()
    mine, counts = keys.user_channel("u"), keys.channel("c")
    assert redis_cluster.node_of_slot(key_slot(counts.encode())) != redis_cluster.port
    backend = FixedRedisBackend(redis_cluster.url)
    await backend.connect()
    publisher = RedisPublisher(cluster_client)
    try:
        await backend.subscribe(mine)
        await backend.subscribe(counts)
        for i in range(200):
            await publisher.publish({mine: str(i)})
            await publisher.publish({counts: str(i)})
        got = [
            (e.channel, e.message)
            for e in [await asyncio.wait_for(backend.next_published(), 5) for _ in range(400)]
        ]
        assert got == [(ch, str(i)) for i in range(200) for ch in (mine, counts)]
    finally:
        await backend.disconnect()


@pytest.mark.parametrize("partition", [0, 1, PARTITIONS - 1])
def test_a_partitions_script_keys_share_one_slot(partition: int) -> None:
    keys = Keys("lv", PARTITIONS)
    cids = [c for c in (f"x{i}" for i in range(200)) if keys.partition(c) == partition][:5]
    names = [
        keys.applied(partition),
        keys.stream(partition),
        keys.touched(partition),
        keys.analytics_applied(partition),
        keys.trend_applied(partition),
        keys.signals_stream(partition),
        *keys.counter_pairs(partition, cids),
        *(keys.view_dedupe(c, "d") for c in cids),
        *(keys.signal_ring(c) for c in cids),
        *(keys.trend_state(c) for c in cids),
        *(keys.reactor_viewers(c) for c in cids),
    ]
    assert len({key_slot(n.encode()) for n in names}) == 1
