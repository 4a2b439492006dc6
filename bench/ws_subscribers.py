"""Subscriber process for the live-fanout scenario (graphql-transport-ws).

    python -m bench.ws_subscribers --url ws://127.0.0.1:P/graphql --tokens F
        --offset 0 --count 500 --content c00000 --out result.json

Prints ``READY <ok> <failed>`` once every subscriber has its first message, then
records (wall time, likes) of every message until a line ``STOP`` arrives on stdin
(or --max-seconds pass), and writes them to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

QUERY = "subscription($ids: [ID!]!) { engagementUpdated(contentIds: $ids) { contentId likes } }"


async def subscriber(
    url: str,
    token: str,
    content: str,
    log: list[tuple[float, int]],
    ready: asyncio.Event,
    errors: list[str],
) -> None:
    try:
        async with connect(
            url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            open_timeout=30,
            ping_interval=None,
            max_queue=None,
        ) as ws:
            await ws.send(
                orjson.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                ).decode()
            )
            ack = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no ack: {ack}")
            await ws.send(
                orjson.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": QUERY, "variables": {"ids": [content]}},
                    }
                ).decode()
            )
            # Plain iteration: no task or wait set per message. The client must
            # stay cheaper than the server, or its own queueing shows up as
            # delivery latency. The suite stops us by cancelling this task.
            async for raw in ws:
                now = time.time()
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind == "next":
                    payload = msg["payload"]
                    if payload.get("errors"):
                        raise RuntimeError(str(payload["errors"])[:300])
                    log.append((now, int(payload["data"]["engagementUpdated"]["likes"])))
                    ready.set()
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    raise RuntimeError(f"subscription ended: {msg}")
    except Exception as exc:  # recorded, reported by the suite
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
        ready.set()


async def amain(args: argparse.Namespace, tokens: list[str]) -> None:
    logs: list[list[tuple[float, int]]] = [[] for _ in tokens]
    errors: list[list[str]] = [[] for _ in tokens]
    readies = [asyncio.Event() for _ in tokens]
    tasks = []
    for i, tok in enumerate(tokens):
        tasks.append(
            asyncio.create_task(
                subscriber(args.url, tok, args.content, logs[i], readies[i], errors[i])
            )
        )
        if i % 50 == 49:  # connect in waves; the server also has to keep up
            await asyncio.gather(*(r.wait() for r in readies[i - 49 : i + 1]))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    failed = sum(1 for e in errors if e)
    print(f"READY {len(tokens) - failed} {failed}", flush=True)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.max_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    result = orjson.dumps({"logs": logs, "errors": [e[0] if e else None for e in errors]})
    await loop.run_in_executor(None, Path(args.out).write_bytes, result)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--content", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-seconds", type=float, default=300)
    args = p.parse_args()
    import uvloop

    tokens = Path(args.tokens).read_text().split()[args.offset : args.offset + args.count]
    uvloop.run(amain(args, tokens))


if __name__ == "__main__":
    main()
