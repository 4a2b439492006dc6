"""`python main.py serve` with OTEL_EXPORTER_OTLP_ENDPOINT: spans reach a collector over
OTLP/HTTP, and the access line carries the trace id."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.e2e.helpers import data_of, like, register


class _Collector(http.server.BaseHTTPRequestHandler):
    posts: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).posts.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.posts = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


async def test_spans_are_exported_and_logged(redis_proc, tmp_path_factory, collector) -> None:
    with serving(
        redis_proc,
        tmp_path_factory,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector,
        OTEL_SERVICE_NAME="likeview-e2e",
        OTEL_BSP_SCHEDULE_DELAY="50",
        LOG_JSON="true",
    ) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http_client:
            cid = await register(http_client)
            body = await like(http_client, "alice", cid)
            assert data_of(body)["like"]["changed"] is True
            deadline = asyncio.get_running_loop().time() + 15
            while not any(b"mutation Like" in p[2] for p in _Collector.posts):
                assert asyncio.get_running_loop().time() < deadline, _Collector.posts
                await asyncio.sleep(0.05)
        lines = server.logs().splitlines()
    path, content_type, payload = next(p for p in _Collector.posts if b"mutation Like" in p[2])
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert b"likeview-e2e" in payload  # service.name
    records = [json.loads(line) for line in lines if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "likeview.access"]
    graphql = [r for r in access if r["path"] == "/graphql"]
    assert len(graphql) == 2 and all(len(r["trace_id"]) == 32 for r in graphql)
    assert graphql[0]["trace_id"] != graphql[1]["trace_id"]
