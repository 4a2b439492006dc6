"""Redis Cluster fixtures: one local three-primary cluster per test session.

``redis_proc`` is overridden here, so the e2e fixtures (``serving``, ``redis_probe``)
run the server with REDIS_CLUSTER_URL in this package. The e2e modules themselves
run on the cluster with ``LIKEVIEW_TEST_REDIS=cluster`` (``make test-cluster``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.cluster.cluster import LocalCluster, local_cluster
from tests.e2e.conftest import http  # noqa: F401 - the e2e HTTP client fixture, as is


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: Any) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_proc(redis_cluster: LocalCluster) -> LocalCluster:
    return redis_cluster


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
