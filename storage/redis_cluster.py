"""The Redis Cluster client: redis-py's asyncio ``RedisCluster`` from a seed node URL.

Every key a script or multi-key command names carries one hash tag (storage/keys.py),
so the adapters run unchanged on a cluster; the few places where one call used to span
partitions (the event consumers' XREADGROUP) split per slot when ``is_cluster`` says so.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from storage.redis_client import _PACKER, HiredisPackedConnection


def open_redis_cluster(url: str, max_connections: int = 256) -> RedisCluster:
    """A cluster client discovering every node from the seed ``url``.

    ``max_connections`` bounds each node's pool (redis-py keeps one pool per node).
    Unlike the single-node client's blocking pool, a full node pool fails the command
    at once with MaxConnectionsError: redis-py's cluster client has no waiting pool.
    """
    client = RedisCluster.from_url(url, decode_responses=True, max_connections=max_connections)
    if _PACKER is not None and not url.startswith("rediss://"):
        # Same C packer as the single-node client (storage/redis_client.py): every node
        # is created from these kwargs, so it applies to nodes discovered later too.
        client.connection_kwargs["connection_class"] = HiredisPackedConnection
        client.nodes_manager.connection_kwargs["connection_class"] = HiredisPackedConnection
        for node in client.nodes_manager.startup_nodes.values():
            node.connection_class = HiredisPackedConnection
    return client


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
