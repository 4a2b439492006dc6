"""Refuse an oversized request before reading it whole.

An ASGI middleware: a declared ``Content-Length`` above the limit is refused at
once; a body without one (chunked) is read only up to the limit. Either way the
client gets HTTP 413 with a JSON error, and the app never sees the request. The
body read here is handed on as it came, so the app reads it as usual. A query
string above the limit (a GraphQL GET) gets 414.

WebSocket messages are bounded by the server (uvicorn's ``ws_max_size``, set
from the same setting by ``main.py serve``): it refuses an oversized frame
before it reaches the app.
"""

from __future__ import annotations

from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]

CODE = "PAYLOAD_TOO_LARGE"


def _error(message: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": CODE}}]})


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if len(scope.get("query_string", b"")) > limit:
            await _refuse(send, 414, f"The URL is longer than {limit} bytes")
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"The request body is larger than {limit} bytes")
            return
        if declared == 0 or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, f"The request body is larger than {limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Any, status: int, message: str) -> None:
    body = _error(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
