"""A real local Redis Cluster for tests: three primaries, no replicas.

Each node is ``redis-server --cluster-enabled yes`` on a free port in its own tmp
directory (nothing persisted); ``redis-cli --cluster create`` assigns the 16384 slots.
The handle looks like pytest-redis's ``redis_proc`` (``host``, ``port`` of the seed
node) with ``cluster = True``, so the e2e fixtures can run on it unchanged.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

PRIMARIES = 3
READY_TIMEOUT_S = 30.0


@dataclass
class LocalCluster:
    host: str
    ports: list[int]
    cluster: bool = True
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def node_of_slot(self, slot: int) -> int:
        """The port of the primary serving ``slot``."""
        with redis.Redis(host=self.host, port=self.port) as r:
            for start, end, primary, *_ in r.execute_command("CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(primary[1])
        raise LookupError(f"slot {slot} is not served")


def _free_ports(n: int) -> list[int]:
    # Held open together so the n ports differ; a cluster bus port is port + 10000.
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < n:
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port + 10000 < 65536:
                ports.append(port)
        return ports


def _cluster_ok(host: str, port: int) -> bool:
    try:
        with redis.Redis(host=host, port=port, socket_timeout=2) as r:
            info = r.execute_command("CLUSTER INFO")
    except redis.RedisError:
        return False
    # redis-py parses CLUSTER INFO into a dict of str to str.
    state = info.get("cluster_state") if isinstance(info, dict) else None
    return state in ("ok", b"ok")


def _wait(predicate: object, what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            pytest.fail(f"a cluster node exited while waiting for {what}")
        if predicate():
            return
        time.sleep(0.05)  # the interval of a bounded poll, not a synchronisation
    pytest.fail(f"{what} not reached within {READY_TIMEOUT_S}s")


@contextlib.contextmanager
def local_cluster(tmp: Path, host: str = "127.0.0.1") -> Iterator[LocalCluster]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        pytest.skip("redis-server and redis-cli are needed for the Redis Cluster tests")
    cluster = LocalCluster(host, _free_ports(PRIMARIES))
    try:
        for port in cluster.ports:
            node_dir = tmp / f"node-{port}"
            node_dir.mkdir()
            cluster.procs.append(
                subprocess.Popen(
                    [server, "--port", str(port), "--bind", host, *_node_args(node_dir)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in cluster.ports:
            _wait(lambda p=port: _pings(host, p), f"node {port} answering", cluster.procs)
        subprocess.run(
            [cli, "--cluster", "create", *(f"{host}:{p}" for p in cluster.ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=READY_TIMEOUT_S,
        )
        for port in cluster.ports:
            _wait(lambda p=port: _cluster_ok(host, p), f"cluster_state:ok on {port}", cluster.procs)
        yield cluster
    finally:
        for proc in cluster.procs:
            proc.terminate()
        for proc in cluster.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _node_args(node_dir: Path) -> list[str]:
    return [
        *("--cluster-enabled", "yes"),
        *("--cluster-config-file", str(node_dir / "nodes.conf")),
        *("--dir", str(node_dir)),
        *("--save", ""),
        *("--appendonly", "no"),
        *("--logfile", str(node_dir / "redis.log")),
    ]


def _pings(host: str, port: int) -> bool:
    try:
        with redis.Redis(host=host, port=port, socket_timeout=1) as r:
            return bool(r.ping())
    except redis.RedisError:
        return False
