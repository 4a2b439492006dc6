"""The request id and the access log (docs/OPERATIONS.md, "Logs").

An ASGI middleware, outermost: every HTTP response, including the 413s of
transport/body_limit.py and CORS preflights, carries ``X-Request-Id``. The id is
the request's own ``X-Request-Id`` when it is sane (at most 128 characters of
``[A-Za-z0-9._:-]``), else a new one (32 hex digits). While the request is served it
is bound in structlog's context variables (``request_id``), so every log line of
the request carries it (main.configure_logging merges them).

With ``access_log`` (ACCESS_LOG) one line per HTTP request at its end, replacing
uvicorn's: method, path (never the query string: a GraphQL GET may carry tokens
or personal data in it), status, duration_ms, operation (the GraphQL operation
name the endpoint saw, ``persisted`` or ``anonymous`` when the request named none,
``invalid`` when the name is not a GraphQL name; absent off the GraphQL endpoint)
and request_id. A WebSocket gets a line when it is accepted or refused and one at
its close. The client's address is never logged (transport/client_address.py).
Without ``access_log`` nothing is timed or logged: the header costs a few µs.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, reset_contextvars

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

HEADER = b"x-request-id"
# What the GraphQL endpoint saw of the operation (note_operation), read back here: the
# endpoint runs in the middleware's task, so what it sets is seen after it returns.
_operation_seen: ContextVar[object] = ContextVar("likeview_operation", default=None)
PERSISTED = "persisted"
ANONYMOUS = "anonymous"
INVALID = "invalid"

_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,127}")
_ERROR_BODY = b"Internal Server Error"


def request_id_of(scope: Scope) -> str:
    """The request's X-Request-Id when it is sane, else a new id."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return os.urandom(16).hex()  # 128 random bits, as a uuid4's; a quarter of its cost


def note_operation(name: object, extensions: object) -> None:
    """What the GraphQL endpoint knows of the operation, for the access line. The
    name is the client's and checked only when a line is written."""
    if name is None:
        persisted = isinstance(extensions, dict) and "persistedQuery" in extensions
        name = PERSISTED if persisted else ANONYMOUS
    _operation_seen.set(name)


def _operation(name: object) -> str | None:
    if name is None or name in (PERSISTED, ANONYMOUS):
        return name
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    return INVALID  # a client's string, possibly forging log lines: never written


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class RequestId:
    def __init__(self, app: Any, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        self._log = structlog.get_logger("likeview.access")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        tokens = bind_contextvars(request_id=request_id)
        try:
            if kind == "http":
                await self._http(scope, receive, send, request_id)
            else:
                await self._websocket(scope, receive, send, request_id)
        finally:
            reset_contextvars(**tokens)

    async def _http(self, scope: Scope, receive: Any, send: Any, request_id: str) -> None:
        header = (HEADER, request_id.encode("ascii"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        access = self.access_log
        if access:
            start = time.perf_counter()
            seen = _operation_seen.set(None)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status == 0:
                # Starlette's error middleware, outside this one, would answer 500
                # without the id: answered here, it only re-raises (and logs).
                with contextlib.suppress(Exception):
                    await send_with_id(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [
                                (b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(_ERROR_BODY)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": _ERROR_BODY})
            raise
        finally:
            if access:
                self._log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status or 500,
                    duration_ms=_ms(start),
                    operation=_operation(_operation_seen.get()),
                    request_id=request_id,
                )
                _operation_seen.reset(seen)

    async def _websocket(self, scope: Scope, receive: Any, send: Any, request_id: str) -> None:
        header = (HEADER, request_id.encode("ascii"))
        access = self.access_log
        start = time.perf_counter()
        opened = False
        code: int | None = None

        def line(event: str, status: int | None) -> None:
            self._log.info(
                event,
                method="WEBSOCKET",
                path=scope["path"],
                status=status,
                duration_ms=_ms(start),
                request_id=request_id,
            )

        async def send_with_id(message: Message) -> None:
            nonlocal opened, code
            kind = message["type"]
            if kind == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", ()), header]}
                if access and not opened:
                    opened = True
                    line("websocket connect", 101)
            elif kind == "websocket.close" and access:
                if code is None:
                    code = message.get("code", 1000)
                if not opened:
                    opened = True
                    line("websocket connect", 403)  # refused before it was accepted
            await send(message)

        async def receive_close_code() -> Message:
            nonlocal code
            message: Message = await receive()
            if message["type"] == "websocket.disconnect" and code is None:
                code = message.get("code", 1005)
            return message

        try:
            await self.app(scope, receive_close_code if access else receive, send_with_id)
        finally:
            if access:
                line("websocket close", code if code is not None else 1006)
