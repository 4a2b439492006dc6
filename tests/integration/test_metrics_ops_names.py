"""Every metric the alerting rules and the dashboard name is in /metrics of a
running service (``python main.py serve``, the e2e suite's server, after a little
traffic), and a worker process serves its own on METRICS_PORT."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO, _free_port, serving
from tests.e2e.helpers import gql, like, register, token

OPS = REPO / "ops"
# Series Prometheus makes itself, not the service.
BUILTIN = {"up"}
SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "counter": ("", "_created"),
    "gauge": ("",),
}
VIEWS = "mutation($inputs: [ViewInput!]!) { recordViews(inputs: $inputs) { sessionId } }"


def named_in_ops() -> set[str]:
    text = (OPS / "prometheus" / "alerts.yml").read_text()
    text += (OPS / "grafana" / "likeview.json").read_text()
    return set(re.findall(r"\b(likeview_[a-z_]+|up)\b", text)) - BUILTIN


def exposed(metrics_text: str) -> set[str]:
    """Every series name the exposition declares (TYPE lines, with their suffixes)."""
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", metrics_text, re.MULTILINE):
        names |= {family + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


async def wait_for(client: httpx.AsyncClient, url: str, needle: str) -> str:
    text = ""
    for _ in range(200):  # a bounded poll: the lag probe runs at worker start
        try:
            text = (await client.get(url)).text
        except httpx.TransportError:
            text = ""
        if needle in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {url} within 20 s:\n{text[-2000:]}")


async def test_every_metric_the_alerts_and_dashboard_name_is_served(
    redis_proc: Any, tmp_path_factory: Any
) -> None:
    wanted = named_in_ops()
    assert len(wanted) > 20, wanted
    with serving(redis_proc, tmp_path_factory) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=15.0) as client:
            cid = await register(client)
            for _ in range(2):  # the second is an idempotent replay
                await like(client, "fan", cid, request_id="r1")
            await like(client, "fan", cid)  # a no-op
            views = await gql(
                client,
                VIEWS,
                {"inputs": [{"contentId": cid, "sessionId": "s1", "watchedMs": 1000}]},
                bearer=token("viewer"),
            )
            assert "errors" not in views, views
            text = await wait_for(
                client, "/metrics", 'likeview_event_log_undelivered_age_seconds{group="aggregator"'
            )
    missing = sorted(wanted - exposed(text))
    assert not missing, f"named in ops/ but not in /metrics: {missing}"
    # And the traffic moved what it should have.
    assert re.search(r'^likeview_idempotent_replays_total\{op="like"\} [1-9]', text, re.M)
    assert re.search(r'^likeview_like_noops_total\{op="like"\} [1-9]', text, re.M)
    assert re.search(r"^likeview_view_batch_seconds_count [1-9]", text, re.M)
    assert re.search(r'^likeview_ready\{dependency="redis"\} 1\.0', text, re.M)


def test_a_worker_process_serves_its_metrics_on_metrics_port(redis_proc: Any) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGODB_")}
    env.update(
        REDIS_URL=f"redis://{redis_proc.host}:{redis_proc.port}/0",
        KEY_PREFIX=f"wm{uuid.uuid4().hex[:8]}",
        METRICS_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    needle = 'likeview_event_log_pending_entries{group="aggregator",partition="0"}'
    proc = subprocess.Popen(
        [sys.executable, "main.py", "worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        text = ""
        with httpx.Client(timeout=5.0) as client:
            for _ in range(300):  # a bounded poll while the worker starts
                try:
                    text = client.get(f"http://127.0.0.1:{port}/metrics").text
                except httpx.TransportError:
                    text = ""
                if needle in text or proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert needle in text, f"worker exited with {proc.returncode}" if proc.poll() else text
        assert "likeview_event_loop_lag_seconds_bucket" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_the_ops_files_exist() -> None:
    assert Path(OPS / "prometheus" / "alerts.yml").is_file()
    assert Path(OPS / "grafana" / "likeview.json").is_file()
    if not named_in_ops():
        pytest.fail("no metric named in ops/")
